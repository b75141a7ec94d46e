"""Tuning the retrieval defaults on CMRC 2018 dev questions 0-999 (reported on the rest elsewhere).

For each chunking (size, overlap in embedding tokens) the CMRC passages are ingested once through
the real indexer (cached under bench/cache/); each tuning question's lexical and dense candidates
are fetched once, then every fusion setting is scored from them: R@1, MRR and answer-recall at
500 / 1,000 prompt tokens with the answer path's own packing (kb.answering.evidence.pack).

    python bench/tune.py --chunkings 256:38 192:32 320:48 --questions 1000
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from retrieval import BUDGETS, ensure_models_dir, load_dataset, open_or_build_kb  # noqa: E402

GRID = {
    "lexical_weight": [1.0],
    "dense_weight": [0.5, 0.75, 1.0, 1.5],
    "rrf_k": [10, 30, 60],
    "candidates": [20, 50, 100],
    "doc_weight": [0.0, 0.25, 0.5, 1.0],
}
QUICK_GRID = {"lexical_weight": [1.0], "dense_weight": [0.75, 1.0], "rrf_k": [10, 60], "candidates": [50],
              "doc_weight": [0.0, 0.5]}


def score(settings: dict, prepared, store, llm_tokens, pack, page_text) -> dict:
    """Quality numbers for one setting over the prepared questions."""
    from kb.search.retriever import Candidates, fuse

    n = len(prepared)
    r1 = mrr = 0.0
    budget_hits = {b: 0 for b in BUDGETS}
    for q, cand, texts in prepared:
        c = settings["candidates"]
        sub = Candidates(cand.lexical[:c], cand.dense[:c], None, 0.0, cand.doc_of)
        fused = fuse(sub, settings["lexical_weight"], settings["dense_weight"], settings["rrf_k"],
                     settings["doc_weight"])
        ranked = sorted(fused, key=lambda cid: -fused[cid])[:20]
        first = next((i for i, cid in enumerate(ranked) if any(a in texts[cid].text for a in q["answers"])), None)
        if first is not None:
            r1 += first == 0
            mrr += 1 / (first + 1)
        hits = [texts[cid] for cid in ranked]
        for b in BUDGETS:
            spans = pack(hits, b, llm_tokens, page_text, terms=q["terms"])
            budget_hits[b] += any(a in s.text for s in spans for a in q["answers"])
    return {"R@1": round(r1 / n, 4), "MRR": round(mrr / n, 4),
            **{f"R@{b}tok": round(v / n, 4) for b, v in budget_hits.items()}}


def floor_sweep(kb, embedder, answerable: list[dict], unanswerable: list[dict]) -> list[dict]:
    """How each score floor trades answers kept against questions rightly told "not found".

    Answerable: CMRC tuning questions whose answer is in the top 5 without a floor; unanswerable:
    XQuAD-zh questions (other topics) asked of the CMRC KB.
    """
    from kb.text import lexical
    from kb.text.language import language
    from kb.search.retriever import Retriever

    retriever = Retriever(kb.store, embedder)

    def features(question: str):
        terms = lexical.query_terms(question)
        lang = language(question)
        out = []
        for h in retriever.search(question, 5, apply_floor=False):
            coverage = None
            if h.lexical_rank is not None and terms:
                coverage = len(terms & set(lexical.terms(h.text))) / len(terms)
            out.append((h.text, h.relevance, language(h.text) != lang, coverage))
        return out

    pos = [(q, features(q["question"])) for q in answerable]
    pos = [(q, f) for q, f in pos if any(any(a in t for a in q["answers"]) for t, *_ in f)]
    neg = [features(q["question"]) for q in unanswerable]
    rows = []
    for same in (0.08, 0.10, 0.11, 0.12, 0.13, 0.14, 0.16):
        for coverage in (0.5, 0.67):
            def passes(rel, cross, cov):
                if rel is not None and rel >= (0.03 if cross else same):
                    return True
                return cov is not None and cov >= coverage
            kept = sum(any(passes(*x[1:]) and any(a in x[0] for a in q["answers"]) for x in f) for q, f in pos)
            rejected = sum(not any(passes(*x[1:]) for x in f) for f in neg)
            rows.append({"margin": same, "term_coverage": coverage, "answers_kept": round(kept / len(pos), 4),
                         "unanswerable_rejected": round(rejected / len(neg), 4)})
    return rows


def main(argv=None) -> int:
    """Sweep chunkings and fusion settings; print and save the ranking."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chunkings", nargs="+", default=["256:38"])
    p.add_argument("--questions", type=int, default=1000)
    p.add_argument("--dataset", default="cmrc")
    p.add_argument("--quick", action="store_true", help="a small grid around the defaults")
    p.add_argument("--floor", action="store_true", help="sweep the score floor instead")
    p.add_argument("--int8", action="store_true", help="with the int8 embedder (models/onnx_int8.py)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args(argv)
    ensure_models_dir()
    from functools import lru_cache

    from kb.answering.evidence import pack
    from kb.search.retriever import Retriever
    from models.embedder import Embedder
    from models.llm import LocalLLM

    embedder = Embedder.default(int8=args.int8)
    llm = LocalLLM.default("qwen2.5-coder-1.5b-instruct-q4_k_m", n_ctx=512)
    llm_tokens = lru_cache(maxsize=None)(llm.count_tokens)
    passages, queries = load_dataset(args.dataset, 0, args.questions)
    rows = []
    if args.floor:
        from kb.text.chunking import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP_TOKENS

        kb, _, _ = open_or_build_kb(args.dataset, passages, embedder, DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP_TOKENS)
        _, others = load_dataset("xquad-zh", 0, 400)
        rows = [dict(r, embedder=embedder.model_id) for r in floor_sweep(kb, embedder, queries[:600], others)]
        for r in rows:
            print(json.dumps(r), flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"floor-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(rows, indent=1))
        return 0
    for chunking in args.chunkings:
        size, overlap = (int(x) for x in chunking.split(":"))
        kb, _, _ = open_or_build_kb(args.dataset, passages, embedder, size, overlap)
        store = kb.store
        page_text = lru_cache(maxsize=None)(store.page_text)
        retriever = Retriever(store, embedder, candidates=max(GRID["candidates"]), doc_weight=1.0)
        started = time.perf_counter()
        prepared = []
        from kb.text.lexical import query_terms

        for q in queries:
            q["terms"] = query_terms(q["question"])
            cand = retriever.candidates_for(q["question"])
            ids = {cid for cid, _ in cand.lexical} | {cid for cid, _ in cand.dense}
            prepared.append((q, cand, store.chunks(ids)))
        print(f"{chunking}: candidates for {len(queries)} questions in {time.perf_counter() - started:.0f}s",
              flush=True)
        grid = QUICK_GRID if args.quick else GRID
        keys = list(grid)
        for values in itertools.product(*(grid[k] for k in keys)):
            settings = dict(zip(keys, values, strict=True))
            row = {"chunk_tokens": size, "overlap_tokens": overlap, **settings,
                   **score(settings, prepared, store, llm_tokens, pack, page_text)}
            rows.append(row)
        best = sorted((r for r in rows if r["chunk_tokens"] == size and r["overlap_tokens"] == overlap),
                      key=lambda r: (-r["R@1000tok"], -r["R@500tok"], -r["R@300tok"], -r["MRR"]))[:5]
        for r in best:
            print("  " + json.dumps(r), flush=True)
        kb.close()
    rows.sort(key=lambda r: (-r["R@1000tok"], -r["R@500tok"], -r["R@300tok"], -r["MRR"]))
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"tune-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(rows, indent=1))
    print(f"best of {len(rows)} settings (saved to {out}):")
    for r in rows[:10]:
        print("  " + json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
