"""Answers measured end to end: through the real Answerer, default model and settings.

For each dataset a knowledge base is built from its passages minus a held-out set; questions on the
kept passages are (a) answerable, questions on the held-out passages whose answers occur in no
kept passage are (b) unanswerable. (c) pairs a question with one before it: an unrelated question
from another passage, or (CMRC) a question about the same subject with the subject replaced by
它 in the second. Beside ours, a naive LangChain "stuff" baseline (top 4 RecursiveCharacterText-
Splitter(1000, 200) chunks, dense only, LangChain's QA prompt, same model). Sentence checking is
measured on answers with one number, date or name swapped for another from the same KB.

    python bench/answers.py --quick            # a few minutes: XQuAD zh, few questions
    python bench/answers.py --calibrate        # the probe's threshold, CMRC questions 0-999 only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from retrieval import TUNE_QUESTIONS, ensure_models_dir, load_dataset, open_or_build_kb  # noqa: E402

from kb.text.chunking import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP_TOKENS  # noqa: E402

LABELS = {"cmrc": "CMRC dev 1000+ (zh)", "xquad-zh": "XQuAD zh", "xquad-en": "XQuAD en", "xquad-zh-en": "XQuAD zh→en"}
HELD_OUT_SHARE = 0.12  # of passages: their questions become unanswerable
LANGCHAIN_PROMPT = ("Use the following pieces of context to answer the question at the end. If you don't know "
                    "the answer, just say that you don't know, don't try to make up an answer.\n\n{context}\n\n"
                    "Question: {question}\nHelpful Answer:")
_HEADER = re.compile(r"^\s*[\[【]\d+[\]】]\s*\S+\.\w+\s*·")


def contains(text: str, answers: list[str]) -> bool:
    """A gold answer string occurs in `text` (case and width folded)."""
    from kb.answering.values import normalise

    t = normalise(text)
    return any(a and normalise(a) in t for a in answers)


def split(dataset: str, offset: int, seed: int = 0):
    """(kept passages, answerable questions, unanswerable questions) for a dataset."""
    passages, questions = load_dataset(dataset, 0, None)
    rng = random.Random(seed)
    pids = sorted(passages)
    held = set(rng.sample(pids, max(1, int(len(pids) * HELD_OUT_SHARE))))
    kept = {p: r for p, r in passages.items() if p not in held}
    kept_text = [f"{r.get('title', '')}\n{r['text']}" for r in kept.values()]
    in_range = questions[offset:] if dataset == "cmrc" else questions
    if dataset == "cmrc" and offset == 0:
        in_range = questions[:TUNE_QUESTIONS]
    answerable = [q for q in in_range if q["gold_pid"] not in held]
    unanswerable = [q for q in in_range if q["gold_pid"] in held
                    and not any(contains(t, q["answers"]) for t in kept_text)]
    rng.shuffle(answerable)
    rng.shuffle(unanswerable)
    return kept, answerable, unanswerable


def bare(text: str) -> bool:
    """A bare name or number ("Lowry Digital[1]", "1990"): no language to follow."""
    plain = re.sub(r"[\[【]\d+[\]】]", "", text).strip(" .。")
    return len(plain.split()) <= 3 and not re.search(r"[\u3400-\u9fff]{2,}|[.!?。！？]", plain)


def timed(stream) -> tuple[float | None, float]:
    """Run an AnswerStream; (seconds to first piece, seconds in all)."""
    t0 = time.perf_counter()
    first = None
    for _ in stream:
        if first is None:
            first = time.perf_counter() - t0
    return first, time.perf_counter() - t0


class Ours:
    """The real Answerer, default settings, one fresh conversation per question."""

    def __init__(self, kb, llm, **settings):
        from kb.answering.answer import Answerer

        self.make = lambda: Answerer(kb, llm, **settings)  # noqa: E731

    def ask(self, question: str, history=(), answerer=None):
        answerer = answerer or self.make()
        stream = answerer.ask(question, history)
        ttft, total = timed(stream)
        r = stream.result
        return {"text": r.text, "raw": r.raw_text, "not_found": r.not_found, "rejected_by": r.rejected_by,
                "p": r.answerability, "cited": [s.text for s in r.cited], "sources": r.sources,
                "checks": r.checks, "ttft": ttft, "total": total, "result": r}


class Naive:
    """LangChain's stuff chain, by hand: top 4 dense chunks of 1000/200 splits into its QA prompt."""

    def __init__(self, passages: dict, embedder, llm):
        from retrieval import naive_baseline

        self.rank, _ = naive_baseline(passages, embedder)
        self.llm = llm

    def ask(self, question: str, history=(), answerer=None):
        context = "\n\n".join(t.text for t in self.rank(question)[:4])
        messages = [{"role": "user", "content": LANGCHAIN_PROMPT.format(context=context, question=question)}]
        t0 = time.perf_counter()
        first, parts = None, []
        for piece in self.llm.stream_chat(messages, max_tokens=512, temperature=0.2):
            first = first if first is not None else time.perf_counter() - t0
            parts.append(piece)
        from kb.answering.answer import says_not_found

        text = "".join(parts)
        refused = says_not_found(text) or bool(re.search(r"don'?t know|do not know|不知道", text, re.I))
        return {"text": text, "raw": text, "not_found": refused, "rejected_by": None, "p": None, "cited": [],
                "sources": [], "checks": [], "ttft": first, "total": time.perf_counter() - t0}


def answerable_row(system, questions, lang_of) -> dict:
    """Contains-gold, cited source holds gold, language, rejected, markers-only, header copies, times."""
    from kb.answering.answer import is_empty_answer
    from kb.text.language import language

    rows = []
    for q in questions:
        a = system.ask(q["question"])
        rows.append({"qid": q["qid"], "question": q["question"], "answers": q["answers"], "text": a["text"],
                     "raw": a["raw"], "gold": contains(a["text"], q["answers"]) and not a["not_found"],
                     "cited_gold": any(contains(t, q["answers"]) for t in a["cited"]),
                     "lang_ok": a["not_found"] or language(a["text"]) == lang_of or bare(a["text"]),
                     "rejected": a["not_found"], "markers_only": is_empty_answer(a["raw"]),
                     "header_copy": bool(_HEADER.search(a["raw"])), "p": a["p"],
                     "ttft": a["ttft"], "total": a["total"],
                     "checks": [(c.status, c.text) for c in a["checks"]],
                     "sources": [dataclasses.asdict(x) for x in a["sources"]]})
    n = max(len(rows), 1)
    return {"n": len(rows), "contains_gold": sum(r["gold"] for r in rows) / n,
            "cited_holds_gold": sum(r["cited_gold"] for r in rows) / n,
            "language_ok": sum(r["lang_ok"] for r in rows) / n, "rejected": sum(r["rejected"] for r in rows) / n,
            "markers_only": sum(r["markers_only"] for r in rows), "header_copies": sum(r["header_copy"] for r in rows),
            "ttft_median_s": statistics.median([r["ttft"] for r in rows if r["ttft"]] or [0]),
            "total_median_s": statistics.median([r["total"] for r in rows] or [0]), "rows": rows}


def unanswerable_row(system, questions) -> dict:
    """Rejection rate over questions whose answers are not in the knowledge base."""
    rows = []
    for q in questions:
        a = system.ask(q["question"])
        rows.append({"qid": q["qid"], "question": q["question"], "text": a["text"], "rejected": a["not_found"],
                     "rejected_by": a["rejected_by"], "p": a["p"], "ttft": a["ttft"], "total": a["total"]})
    n = max(len(rows), 1)
    by = {}
    for r in rows:
        if r["rejected"]:
            by[r["rejected_by"] or "model"] = by.get(r["rejected_by"] or "model", 0) + 1
    return {"n": len(rows), "rejected": sum(r["rejected"] for r in rows) / n, "rejected_by": by, "rows": rows}


def pairs(questions: list[dict], passages: dict, n: int, rng: random.Random):
    """(unrelated pairs, dependent pairs): (first question, second question, gold answers of the second)."""
    unrelated = []
    for q in questions[:n]:
        other = next(o for o in rng.sample(questions, min(len(questions), 20)) if o["gold_pid"] != q["gold_pid"])
        unrelated.append((other["question"], q["question"], q["answers"], q["question"]))
    dependent = []
    by_pid: dict[str, list[dict]] = {}
    for q in questions:
        by_pid.setdefault(q["gold_pid"], []).append(q)
    for q in questions:
        title = (passages.get(q["gold_pid"]) or {}).get("title", "").strip()
        if len(title) < 2 or title not in q["question"] or len(dependent) >= n:
            continue
        first = next((o for o in by_pid[q["gold_pid"]] if o is not q and title in o["question"]), None)
        if first is None:
            continue
        second = q["question"].replace(f"《{title}》", "它").replace(title, "它")
        dependent.append((first["question"], second, q["answers"], q["question"]))
    return unrelated, dependent


def follow_up_rows(system, kind_pairs, fresh: dict) -> dict:
    """Contains-gold of the second question of each pair, against the same question asked fresh."""
    ok, fresh_ok = 0, 0
    for first, second, answers, original in kind_pairs:
        answerer = system.make()
        a1 = system.ask(first, (), answerer)
        history = [{"role": "user", "content": first}, {"role": "assistant", "content": a1["text"]}]
        a2 = system.ask(second, history, answerer)
        ok += contains(a2["text"], answers) and not a2["not_found"]
        if original not in fresh:
            f = system.ask(original)
            fresh[original] = contains(f["text"], answers) and not f["not_found"]
        fresh_ok += fresh[original]
    n = max(len(kind_pairs), 1)
    return {"n": len(kind_pairs), "second": ok / n, "fresh": fresh_ok / n}


def swapped(rows: list[dict], kb, checker, rng: random.Random) -> dict:
    """Sentence checking on answers that contain the gold answer: each checked sentence as it is
    (should pass) and with one number or Latin name swapped for another from the KB (should not)."""
    from kb.answering.answer import Source
    from kb.answering.values import key_tokens

    vocab_numbers, vocab_latin = set(), set()
    for text in kb.store.db.query("SELECT text FROM chunks ORDER BY id LIMIT 400"):
        vocab_numbers |= set(re.findall(r"\d{2,4}", text[0]))
        vocab_latin |= set(re.findall(r"\b[A-Z][a-z]{3,}\b", text[0]))
    vocab_numbers, vocab_latin = sorted(vocab_numbers), sorted(vocab_latin)
    altered = flagged_altered = unaltered = flagged_unaltered = 0
    for r in rows:
        if r["rejected"] or not r["gold"]:
            continue
        sources = [s if isinstance(s, Source) else Source(**s) for s in r["sources"]]
        for c in checker.check(r["text"], sources, None, r["question"]):
            if c.status == "skipped":
                continue
            unaltered += 1
            flagged_unaltered += c.status == "unsupported"
            keys = key_tokens(c.text)
            target = (keys["numbers"] or keys["latin"] or [None])[0]
            if target is None:
                continue
            pool = vocab_numbers if keys["numbers"] else vocab_latin
            choices = [v for v in pool if v != target and v not in target and target not in v]
            if not choices:
                continue
            changed = c.text.replace(target, rng.choice(choices), 1)
            checks = checker.check(changed, sources, None, r["question"])
            altered += 1
            flagged_altered += any(x.status == "unsupported" for x in checks)
    return {"altered": altered, "altered_flagged": flagged_altered / max(altered, 1),
            "unaltered": unaltered, "unaltered_flagged": flagged_unaltered / max(unaltered, 1)}


def recheck(path: Path, embedder, llm, chunking: tuple[int, int]) -> None:
    """Sentence checking again, with today's checker, over the answers a bench run saved (their
    sources rebuilt by the same retrieval and packing where the run did not save them)."""
    from kb.answering.answer import Answerer
    from kb.answering.grounding import Checker

    data = json.loads(path.read_text())
    names = {v: k for k, v in LABELS.items()}
    for row in data["rows"]:
        if row["system"] != "ours":
            continue
        name = names[row["dataset"]]
        kept, _, _ = split(name, TUNE_QUESTIONS)
        kb, _, _ = open_or_build_kb(f"{name}-heldout", kept, embedder, *chunking)
        rows = data["details"][f"{name}/ours"]["answerable"]
        answerer = Answerer(kb, llm, answerable_threshold=None, check=False)
        for r in rows:
            if r.get("sources") is None:
                r["sources"] = answerer.prompt(r["question"], r["question"],
                                               answerer.retriever.search(r["question"], answerer.top_k))[1]
        result = swapped(rows, kb, Checker(embedder), random.Random(0))
        print(row["dataset"], json.dumps(result), flush=True)
        kb.close()


def main(argv=None) -> int:
    """Run the answer bench; write JSON and a Markdown table to bench/results/."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=list(LABELS), choices=list(LABELS))
    p.add_argument("--questions", type=int, default=200, help="answerable questions per dataset")
    p.add_argument("--unanswerable", type=int, default=100, help="unanswerable questions per dataset")
    p.add_argument("--pairs", type=int, default=50, help="follow-up pairs of each kind")
    p.add_argument("--systems", nargs="+", default=["ours", "naive"])
    p.add_argument("--naive-questions", type=int, help="questions of each kind for the naive baseline "
                   "(default: as many as ours)")
    p.add_argument("--naive-datasets", nargs="+", choices=list(LABELS), help="datasets for the baseline (default: all)")
    p.add_argument("--pairs-datasets", nargs="+", default=["cmrc", "xquad-zh", "xquad-en"], choices=list(LABELS))
    p.add_argument("--llm", default=None, help="chat model (default: the catalog default)")
    p.add_argument("--quick", action="store_true", help="XQuAD zh, 12 + 12 questions, 4 + 4 pairs")
    p.add_argument("--calibrate", nargs="?", const="cmrc", choices=["cmrc", "xquad-en"],
                   help="only the probe's P(yes), answerable vs not: CMRC questions 0-999, or the last "
                        "questions of XQuAD-en's shuffled lists (the bench asks the first ones)")
    p.add_argument("--chunking", default=f"{DEFAULT_CHUNK_TOKENS}:{DEFAULT_OVERLAP_TOKENS}",
                   help="chunk:overlap tokens of the benchmark KBs (default: the app's)")
    p.add_argument("--recheck", type=Path, help="only sentence checking, again, over a saved answers-*.json")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--variant", choices=["float", "int8"],
                   help="the embedder's float model or its int8 variant (default: what the app uses)")
    args = p.parse_args(argv)
    chunking = tuple(int(x) for x in args.chunking.split(":"))
    if args.quick:
        args.datasets, args.questions, args.unanswerable, args.pairs = ["xquad-zh"], 12, 12, 4
    ensure_models_dir()
    from kb.answering.grounding import Checker
    from kb.answering.prompt import SYSTEM
    from kb.text.language import language
    from models.embedder import Embedder
    from models.llm import LocalLLM

    embedder = Embedder.default(int8={"float": False, "int8": True}.get(args.variant))
    llm = LocalLLM.default(args.llm)
    if args.recheck:
        recheck(args.recheck, embedder, llm, chunking)
        return 0
    llm.prime([{"role": "system", "content": SYSTEM["zh"]}])
    rng = random.Random(0)
    rows, details = [], {}
    for name in ([args.calibrate] if args.calibrate else args.datasets):
        kept, answerable, unanswerable = split(name, 0 if args.calibrate else TUNE_QUESTIONS)
        kb, _, _ = open_or_build_kb(f"{name}-heldout", kept, embedder, *chunking)
        print(f"{name}: {len(kept)} passages kept, {len(answerable)} answerable, "
              f"{len(unanswerable)} unanswerable questions", flush=True)
        if args.calibrate == "xquad-en":  # never asked by the bench: it takes the first ones
            answerable, unanswerable = answerable[::-1], unanswerable[::-1]
        if args.calibrate:
            calibrate(kb, llm, answerable[:args.questions], unanswerable[:args.unanswerable], args.out)
            return 0
        lang = language(answerable[0]["question"])
        for label in args.systems:
            nq, nu = args.questions, args.unanswerable
            if label == "naive":
                if args.naive_datasets and name not in args.naive_datasets:
                    continue
                nq = nu = args.naive_questions or nq
            system = Ours(kb, llm, temperature=0.2) if label == "ours" else Naive(kept, embedder, llm)
            a = answerable_row(system, answerable[:nq], lang)
            u = unanswerable_row(system, unanswerable[:min(nu, args.unanswerable)])
            row = {"dataset": LABELS[name], "system": label, **{k: v for k, v in a.items() if k != "rows"},
                   "unanswerable_n": u["n"], "unanswerable_rejected": u["rejected"], "rejected_by": u["rejected_by"]}
            if label == "ours":
                row.update(swapped(a["rows"], kb, Checker(embedder), rng))
                if args.pairs and name in args.pairs_datasets:
                    fresh = {r["question"]: r["gold"] for r in a["rows"]}
                    unrelated, dependent = pairs(answerable, kept, args.pairs, rng)
                    for mode in ("auto", "always"):
                        sysm = Ours(kb, llm, temperature=0.2, follow_up=mode)
                        fu = follow_up_rows(sysm, unrelated, fresh)
                        row[f"unrelated_{mode}"] = fu["second"]
                        row["unrelated_fresh"], row["unrelated_n"] = fu["fresh"], fu["n"]
                        if dependent:
                            fd = follow_up_rows(sysm, dependent, fresh)
                            row[f"dependent_{mode}"] = fd["second"]
                            row["dependent_fresh"], row["dependent_n"] = fd["fresh"], fd["n"]
            rows.append(row)
            details[f"{name}/{label}"] = {"answerable": a["rows"], "unanswerable": u["rows"]}
            print("  " + json.dumps(row, ensure_ascii=False, default=str), flush=True)
        kb.close()
    write(rows, details, args.out, llm, embedder)
    return 0


def calibrate(kb, llm, answerable, unanswerable, out: Path) -> None:
    """P(yes) of the probe for answerable and unanswerable CMRC tuning questions, and thresholds."""
    from kb.answering.answer import Answerer

    from kb.answering.answerability import answerability
    from kb.text.language import language

    scores = {"answerable": [], "unanswerable": []}
    other = {"answerable": [], "unanswerable": []}  # the probe asked in the other language
    for kind, qs in (("answerable", answerable), ("unanswerable", unanswerable)):
        for q in qs:
            # a threshold above 1 turns every question away right after the probe: no answer is generated
            answerer = Answerer(kb, llm, answerable_threshold=1.01)
            stream = answerer.ask(q["question"])
            stream.text()
            scores[kind].append(stream.result.answerability)  # None: below the floor, no probe
            lang = language(q["question"])
            hits = answerer.retriever.search(q["question"], answerer.top_k)
            if hits:
                messages, _ = answerer.prompt(q["question"], q["question"], hits, (), lang)
                other[kind].append(answerability(llm, messages, "en" if lang == "zh" else "zh"))
            else:
                other[kind].append(None)
            print(kind, q["qid"], scores[kind][-1], other[kind][-1], flush=True)
    table = []
    for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.88, 0.9, 0.92, 0.94, 0.96):
        kept = sum(1 for s in scores["answerable"] if s is not None and s >= t) / max(len(answerable), 1)
        rejected = sum(1 for s in scores["unanswerable"] if s is None or s < t) / max(len(unanswerable), 1)
        kept_o = sum(1 for s in other["answerable"] if s is not None and s >= t) / max(len(answerable), 1)
        rejected_o = sum(1 for s in other["unanswerable"] if s is None or s < t) / max(len(unanswerable), 1)
        table.append({"threshold": t, "answerable_kept": round(kept, 3), "unanswerable_rejected": round(rejected, 3),
                      "other_probe_kept": round(kept_o, 3), "other_probe_rejected": round(rejected_o, 3)})
        print(json.dumps(table[-1]), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"calibrate-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(
        {"scores": scores, "other_probe": other, "table": table}, indent=1))


def write(rows: list[dict], details: dict, out: Path, llm, embedder) -> None:
    """JSON with every answer, and the Markdown table for bench/README.md."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    models = {"model": llm.model_name, "embedder": embedder.model_id}
    (out / f"answers-{stamp}.json").write_text(json.dumps({"rows": rows, "details": details, **models},
                                                          ensure_ascii=False, indent=1, default=str))
    cols = ["dataset", "system", "n", "contains_gold", "cited_holds_gold", "language_ok", "rejected",
            "markers_only", "header_copies", "unanswerable_n", "unanswerable_rejected", "ttft_median_s",
            "total_median_s", "altered", "altered_flagged", "unaltered_flagged", "unrelated_n", "unrelated_fresh",
            "unrelated_auto", "unrelated_always", "dependent_n", "dependent_fresh", "dependent_auto",
            "dependent_always"]

    def fmt(v):
        return f"{v:.3f}" if isinstance(v, float) else ("" if v is None else str(v))
    table = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    table += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    (out / f"answers-{stamp}.md").write_text(f"model: {llm.model_name}, embedder: {embedder.model_id}\n\n"
                                             + "\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    sys.exit(main())
