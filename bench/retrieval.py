"""Retrieval quality on the shared benchmarks, through the real indexer and retriever.

Each corpus becomes one .txt file per passage, ingested by `KnowledgeBase.add` (real chunking,
real store); every question then goes through the real `Retriever`. Reported per system:
answer-recall@1/5/10 (a retrieved chunk contains a gold answer), MRR, and answer-recall at fixed
context budgets (ranked chunks taken until 500 / 1,000 LLM tokens are filled).

    python bench/retrieval.py --datasets xquad-zh xquad-zh-en --queries 200
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ZHIKU_SHARED", ROOT.parent / "shared")) / "bench"
sys.path.insert(0, str(ROOT))

# dataset -> (passage files, question files, file whose answers are checked)
DATASETS = {
    "cmrc": (["cmrc2018-dev/passages.jsonl"], ["cmrc2018-dev/queries.jsonl"], None),
    "xquad-zh": (["xquad/rag_format_zh/passages.jsonl"], ["xquad/rag_format_zh/queries.jsonl"], None),
    "xquad-en": (["xquad/rag_format_en/passages.jsonl"], ["xquad/rag_format_en/queries.jsonl"], None),
    # cross-lingual: questions in one language over passages in the other; answers must be found in
    # the passages' language, so they come from the aligned question file of that language
    "xquad-zh-en": (["xquad/rag_format_en/passages.jsonl"], ["xquad/rag_format_zh/queries.jsonl"],
                    "xquad/rag_format_en/queries.jsonl"),
    "xquad-en-zh": (["xquad/rag_format_zh/passages.jsonl"], ["xquad/rag_format_en/queries.jsonl"],
                    "xquad/rag_format_zh/queries.jsonl"),
    # one KB of CMRC + XQuAD zh + XQuAD en passages; the Chinese questions of both, so each has
    # thousands of distractors in two languages
    "pooled": (["cmrc2018-dev/passages.jsonl", "xquad/rag_format_zh/passages.jsonl",
                "xquad/rag_format_en/passages.jsonl"],
               ["cmrc2018-dev/queries.jsonl", "xquad/rag_format_zh/queries.jsonl"], None),
}
BUDGETS = (300, 500, 1000)
# CMRC dev questions 0-999 tune the defaults (bench/tune.py); reports use the rest
TUNE_QUESTIONS = 1000


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSON-lines file."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_dataset(name: str, offset: int, limit: int | None):
    """(passages, questions with answers to check) for a dataset name.

    `offset` skips that many CMRC questions (the tuning set); `limit` caps each question file.
    """
    passage_files, query_files, answer_file = DATASETS[name]
    passages = {}
    for pf in passage_files:
        # XQuAD's zh and en passages share ids; keep both apart when they are pooled
        suffix = "-en" if name == "pooled" and "rag_format_en" in pf else ""
        for row in read_jsonl(SHARED / pf):
            passages[row["pid"] + suffix] = row
    queries = []
    for qf in query_files:
        rows = read_jsonl(SHARED / qf)
        if answer_file:
            answers = {q["qid"]: q["answers"] for q in read_jsonl(SHARED / answer_file)}
            rows = [dict(q, answers=answers[q["qid"]]) for q in rows if q["qid"] in answers]
        if qf.startswith("cmrc"):
            rows = rows[offset:]
        queries += rows[:limit] if limit else rows
    return passages, queries


def contains_answer(text: str, answers: list[str]) -> bool:
    """True when a gold answer string occurs in `text`."""
    return any(a and a in text for a in answers)


def evaluate(rank, context, queries, label: str) -> dict:
    """Answer-recall@k, MRR and answer-recall of the prompt context at each token budget.

    `rank(question)` gives ranked objects with `.text`; `context(question, ranked, budget)` the
    texts a prompt of that budget would hold.
    """
    hits = {1: 0, 5: 0, 10: 0}
    budget_hits = {b: 0 for b in BUDGETS}
    rr = 0.0
    elapsed = 0.0
    for q in queries:
        t0 = time.perf_counter()
        ranked = rank(q["question"])
        elapsed += time.perf_counter() - t0
        first = next((i for i, r in enumerate(ranked) if contains_answer(r.text, q["answers"])), None)
        if first is not None:
            rr += 1 / (first + 1)
            for k in hits:
                hits[k] += first < k
        for b in BUDGETS:
            budget_hits[b] += any(contains_answer(t, q["answers"]) for t in context(q["question"], ranked, b))
    n = max(len(queries), 1)
    return {"system": label, "questions": len(queries),
            **{f"R@{k}": round(v / n, 4) for k, v in hits.items()}, "MRR": round(rr / n, 4),
            **{f"R@{b}tok": round(v / n, 4) for b, v in budget_hits.items()},
            "ms_per_query": round(1000 * elapsed / n, 1)}


def take_until_full(count_tokens):
    """The simple way to fill a prompt: ranked chunks in order until the next one does not fit."""
    def context(_question, ranked, budget):
        used, out = 0, []
        for r in ranked:
            cost = count_tokens(r.text)
            if used + cost > budget:
                break
            used += cost
            out.append(r.text)
        return out
    return context


def packed(count_tokens, page_text):
    """Our answer path's filling: kb.answering.evidence.pack (neighbours merged, best sentences of the last)."""
    from kb.answering.evidence import pack
    from kb.text.lexical import query_terms

    def context(question, ranked, budget):
        return [s.text for s in pack(ranked, budget, count_tokens, page_text, terms=query_terms(question))]
    return context


CACHE = Path(os.environ.get("ZHIKU_BENCH_CACHE", ROOT / "bench" / "cache"))  # knowledge bases built once


def ensure_models_dir() -> None:
    """Point ZHIKU_MODELS at the installed models before any KB home is switched."""
    if not os.environ.get("ZHIKU_MODELS"):
        from models.paths import models_dir

        os.environ["ZHIKU_MODELS"] = str(models_dir())


def open_or_build_kb(dataset: str, passages: dict, embedder, chunk_tokens: int, overlap: int,
                     cache: bool = True):
    """The dataset's KB for one chunking: ingested once through the real indexer, then reused.

    Returns (kb, seconds spent ingesting or None when reused, the index report or None).
    """
    from kb.knowledge_base import KnowledgeBase

    corpus = "+".join(Path(f).parts[-2] for f in DATASETS[dataset][0]) if dataset in DATASETS else dataset
    model = embedder.model_id.split('@')[-1]
    variant = model.partition("+")[2]  # a derived model (the int8 e5) gets its own knowledge base
    key = f"{corpus}-{len(passages)}-{chunk_tokens}-{overlap}-{model[:8]}{'-' + variant if variant else ''}"
    folder = CACHE / key if cache else Path(tempfile.mkdtemp(prefix="zhiku-bench-"))
    os.environ["ZHIKU_HOME"] = str(folder / "home")
    if (folder / "done").exists():
        return KnowledgeBase.open("bench", embedder), None, None
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    docs = folder / "docs"
    docs.mkdir(parents=True)
    for pid, row in passages.items():
        (docs / f"{pid}.txt").write_text(f"{row.get('title', '')}\n\n{row['text']}", encoding="utf-8")
    kb = KnowledgeBase.create("bench", embedder, chunk_tokens, overlap)
    started = time.perf_counter()
    report = kb.add([docs])
    (folder / "done").write_text(json.dumps({"chunks": report.chunks_added}))
    return kb, time.perf_counter() - started, report


@dataclass
class Text:
    """A ranked chunk of the naive baseline."""

    text: str


def naive_baseline(passages: dict, embedder):
    """LangChain's RecursiveCharacterTextSplitter(1000, 200), default separators, dense FAISS only."""
    import faiss
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    chunks = [c for row in passages.values() for c in splitter.split_text(f"{row.get('title', '')}\n\n{row['text']}")]
    vecs = embedder.embed_passages(chunks)
    index = faiss.IndexFlatIP(vecs.shape[1])
    index.add(vecs)

    def rank(question: str) -> list[Text]:
        _, ids = index.search(embedder.embed_query(question).reshape(1, -1), 10)
        return [Text(chunks[i]) for i in ids[0] if i >= 0]
    return rank, len(chunks)


def main(argv=None) -> int:
    """Run the chosen datasets and systems; write JSON and a Markdown table."""
    from kb.text.chunking import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP_TOKENS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--queries", type=int, help="questions per question file (default: all)")
    p.add_argument("--offset", type=int, default=TUNE_QUESTIONS,
                   help="CMRC questions to skip: the tuning set (default 1000)")
    p.add_argument("--systems", nargs="+", default=["ours", "lexical", "dense", "naive"])
    p.add_argument("--chunk-tokens", type=int, default=DEFAULT_CHUNK_TOKENS)
    p.add_argument("--overlap-tokens", type=int, default=DEFAULT_OVERLAP_TOKENS)
    p.add_argument("--variant", choices=["float", "int8"],
                   help="the embedder's float model or its int8 variant (default: what the app uses)")
    p.add_argument("--fresh", action="store_true", help="ingest again instead of reusing bench/cache")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args(argv)
    ensure_models_dir()
    from functools import lru_cache

    from kb.search.retriever import Retriever
    from models.embedder import Embedder
    from models.llm import LocalLLM

    embedder = Embedder.default(int8={"float": False, "int8": True}.get(args.variant))
    llm = LocalLLM.default("qwen2.5-coder-1.5b-instruct-q4_k_m", n_ctx=512)  # its tokenizer sizes budgets
    count_tokens = lru_cache(maxsize=None)(llm.count_tokens)
    rows = []
    for name in args.datasets:
        passages, queries = load_dataset(name, args.offset, args.queries)
        print(f"{name}: {len(passages)} passages, {len(queries)} questions", flush=True)
        kb, ingest_s, report = open_or_build_kb(name, passages, embedder, args.chunk_tokens,
                                                args.overlap_tokens, cache=not args.fresh)
        if report:
            print(f"  ingested {report.chunks_added} chunks in {ingest_s:.0f}s", flush=True)
        systems = {"ours": {}, "lexical": {"dense_weight": 0.0}, "dense": {"lexical_weight": 0.0}}
        for label in args.systems:
            if label.endswith("-pg"):  # the same chunks in a server knowledge base (bench/pg_copy.py)
                from pg_copy import copy_kb, server_kb, start_server

                server = server_kb(start_server(CACHE / "postgres"), f"bench-{name}", embedder,
                                   args.chunk_tokens, args.overlap_tokens)
                print(f"  copied into PostgreSQL: {copy_kb(kb, server)}", flush=True)
                retriever = Retriever(server.store, embedder, **systems[label.removesuffix("-pg")])
                rank = lambda q, r=retriever: r.search(q, 10, apply_floor=False)  # noqa: E731
                context = packed(count_tokens, lru_cache(maxsize=None)(server.store.page_text))
                chunks = server.store.count("chunks")
            elif label == "naive":
                rank, chunks = naive_baseline(passages, embedder)
                context = take_until_full(count_tokens)
            else:
                retriever = Retriever(kb.store, embedder, **systems[label])
                rank = lambda q, r=retriever: r.search(q, 10, apply_floor=False)  # noqa: E731
                context = packed(count_tokens, lru_cache(maxsize=None)(kb.store.page_text))
                chunks = kb.store.count("chunks")
            row = evaluate(rank, context, queries, label)
            row.update(dataset=name, chunks=chunks)
            rows.append(row)
            print("  " + json.dumps(row, ensure_ascii=False), flush=True)
        kb.close()
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.out / f"retrieval-{stamp}.json").write_text(json.dumps(rows, ensure_ascii=False, indent=2))
    cols = ["dataset", "system", "questions", "chunks", "R@1", "R@5", "R@10", "MRR",
            *[f"R@{b}tok" for b in BUDGETS], "ms_per_query"]
    table = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    table += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    (args.out / f"retrieval-{stamp}.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
