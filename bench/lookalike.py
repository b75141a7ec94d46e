"""Answers over look-alike documents: the passages that look most like the answer, without it.

A real folder holds many documents about the question's topic (news of the same event, reports of
the same company) and often none holds the answer. The held-out sets of bench/answers.py rarely
look like that (a held-out passage's neighbours are seldom this close), so these sets are built
from the retriever itself: for each sampled question, the ten passages the app's hybrid retriever
ranks highest for it over the whole dataset, minus every passage that contains a gold answer, are
its *look-alikes* (unanswerable); the same plus its gold passage make it *answerable with noise*.
Each set pools its questions' passages into one knowledge base (hundreds of passages).

Two phases, so that the checks can be tuned without asking the model again:
- `generate` asks every question once through the real Answerer (default model and settings, the
  probe's P(yes) recorded but not acted on, no check) and appends each answer to a JSON-lines file
  as it is made: a rerun continues where the last one stopped.
- `score` applies today's decisions to the saved answers — the probe's threshold, the sentence
  checker, the fail-closed rule (kb.answering.answer.settle) — and reports each measure with a 95% Wilson
  interval.

Sets: CMRC dev questions 1000+ and the first three quarters of XQuAD zh/en's shuffled questions
report; CMRC 0-999 and the XQuAD tails tune ("-tune").

    python bench/lookalike.py generate                       # every set, resumable
    python bench/lookalike.py generate --sets cmrc-tune --answerable 30 --unanswerable 30
    python bench/lookalike.py score                          # table to stdout and bench/results/
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from retrieval import TUNE_QUESTIONS, ensure_models_dir, load_dataset, open_or_build_kb  # noqa: E402

from kb.text.chunking import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP_TOKENS  # noqa: E402

OUT = Path(os.environ.get("ZHIKU_BENCH_OUT", ROOT / "bench" / "results")) / "lookalike"
LOOKALIKES = 10  # passages per question, the "top ~10"
# XQuAD: the last quarter of the shuffled question list tunes, the rest reports
TAIL_SHARE = 0.25
SETS = {  # name -> (dataset, part)
    "cmrc": ("cmrc", "report"), "xquad-zh": ("xquad-zh", "report"), "xquad-en": ("xquad-en", "report"),
    "cmrc-tune": ("cmrc", "tune"), "xquad-zh-tune": ("xquad-zh", "tune"), "xquad-en-tune": ("xquad-en", "tune"),
    # across languages (Chinese questions over English passages and the reverse): answerable only,
    # for the checks' false flags when answer and source are in different languages
    "xquad-zh-en": ("xquad-zh-en", "cross"), "xquad-en-zh": ("xquad-en-zh", "cross"),
}
SIZES = {"report": (150, 100), "tune": (30, 30), "cross": (60, 0)}  # answerable, unanswerable for ours
ALIGNED = {"xquad-zh-en": "xquad-zh", "xquad-en-zh": "xquad-en"}  # where the question's own-language answers are
NAIVE_SIZE = 30
THRESHOLD_OVERRIDE: dict[str, float] = {}  # --threshold zh=0.9: score with another probe threshold  # of each kind, report sets only
LANGCHAIN_PROMPT = ("Use the following pieces of context to answer the question at the end. If you don't know "
                    "the answer, just say that you don't know, don't try to make up an answer.\n\n{context}\n\n"
                    "Question: {question}\nHelpful Answer:")


def contains(text: str, answers: list[str]) -> bool:
    """A gold answer string occurs in `text` (case and width folded)."""
    from kb.answering.values import normalise

    t = normalise(text)
    return any(a and normalise(a) in t for a in answers)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float, float]:
    """(share, low, high): the 95% Wilson score interval of k successes in n."""
    if n == 0:
        return (float("nan"),) * 3
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)


def questions_of(dataset: str, part: str) -> tuple[dict, list[dict]]:
    """The dataset's passages and the questions of one part (report or tune), in a fixed shuffle."""
    passages, questions = load_dataset(dataset, 0, None)
    if dataset in ALIGNED:  # an answer may name the gold answer in the question's language too
        own = {q["qid"]: q["answers"] for q in load_dataset(ALIGNED[dataset], 0, None)[1]}
        questions = [dict(q, answers=q["answers"] + own.get(q["qid"], [])) for q in questions]
    if dataset == "cmrc":
        questions = questions[:TUNE_QUESTIONS] if part == "tune" else questions[TUNE_QUESTIONS:]
        random.Random(1).shuffle(questions)
        return passages, questions
    random.Random(1).shuffle(questions)
    cut = int(len(questions) * (1 - TAIL_SHARE))
    return passages, questions[cut:] if part == "tune" else questions[:cut]


def lookalikes(kb, question: str, k: int = LOOKALIKES) -> list[str]:
    """The `k` passages (by id) the app's hybrid retriever ranks highest for `question`, floor off."""
    from kb.search.retriever import Retriever

    retriever = getattr(kb, "_bench_retriever", None) or Retriever(kb.store, kb.embedder)
    kb._bench_retriever = retriever
    out: list[str] = []
    for hit in retriever.search(question, 4 * k, apply_floor=False):
        pid = Path(hit.name).stem
        if pid not in out:
            out.append(pid)
        if len(out) == k:
            break
    return out


def build_set(name: str, embedder, n_answerable: int, n_unanswerable: int, chunking: tuple[int, int]):
    """(passages of the set's knowledge base, answerable questions, unanswerable questions)."""
    dataset, part = SETS[name]
    passages, questions = questions_of(dataset, part)
    full, _, _ = open_or_build_kb(dataset, passages, embedder, *chunking)
    from kb.answering.values import normalise

    texts = {pid: normalise(f"{r.get('title', '')}\n{r['text']}") for pid, r in passages.items()}

    class Holding(dict):  # passages holding a question's gold answer, worked out when first asked
        def __missing__(self, qid):
            answers = [normalise(a) for a in by_qid[qid]["answers"] if a]
            self[qid] = {pid for pid, t in texts.items() if any(a in t for a in answers)}
            return self[qid]
    by_qid = {q["qid"]: q for q in questions}
    holding = Holding()
    removed: set[str] = set()  # passages holding an unanswerable question's answer
    golds: set[str] = set()  # gold passages of answerable questions
    answerable, unanswerable, pool = [], [], set()
    for i, q in enumerate(questions):
        if len(answerable) >= n_answerable and len(unanswerable) >= n_unanswerable:
            break
        want_unanswerable = len(unanswerable) < n_unanswerable and (i % 2 or len(answerable) >= n_answerable)
        if want_unanswerable:
            if holding[q["qid"]] & golds:
                continue
            near = [p for p in lookalikes(full, q["question"]) if p not in holding[q["qid"]]]
            removed |= holding[q["qid"]]
            unanswerable.append(dict(q, lookalikes=near))
            pool |= set(near)
        else:
            if q["gold_pid"] in removed or q["gold_pid"] not in holding[q["qid"]]:
                continue
            near = [p for p in lookalikes(full, q["question"]) if p not in holding[q["qid"]]]
            golds.add(q["gold_pid"])
            answerable.append(dict(q, lookalikes=near))
            pool |= set(near) | {q["gold_pid"]}
    full.close()
    kept = {pid: passages[pid] for pid in sorted(pool - removed)}
    return kept, answerable, unanswerable


def answers_path(name: str, system: str) -> Path:
    """The JSON-lines file a set's answers are appended to."""
    return OUT / f"{name}-{system}.jsonl"


def done(path: Path) -> set[str]:
    """Question ids already answered in `path` (a line cut by a kill is ignored)."""
    out = set()
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                out.add(json.loads(line)["qid"])
            except (json.JSONDecodeError, KeyError):
                continue
    return out


def ask_ours(kb, llm, q: dict) -> dict:
    """One fresh Answerer per question: the probe's P(yes) recorded, never acted on; no check."""
    from kb.answering.answer import Answerer

    answerer = Answerer(kb, llm, answerable_threshold=0.0, check=False)
    t0 = time.perf_counter()
    stream = answerer.ask(q["question"])
    first = None
    for _ in stream:
        first = first if first is not None else time.perf_counter() - t0
    r = stream.result
    return {"text": r.text, "raw": r.raw_text, "not_found": r.not_found, "rejected_by": r.rejected_by,
            "p": r.answerability, "sources": [dataclasses.asdict(s) for s in r.sources],
            "related": [dataclasses.asdict(s) for s in r.related],
            "ttft": first, "total": time.perf_counter() - t0}


def ask_naive(rank, llm, q: dict) -> dict:
    """LangChain's stuff chain by hand: top 4 dense 1000/200 chunks in its QA prompt."""
    from kb.answering.answer import says_not_found

    context = "\n\n".join(t.text for t in rank(q["question"])[:4])
    messages = [{"role": "user", "content": LANGCHAIN_PROMPT.format(context=context, question=q["question"])}]
    t0 = time.perf_counter()
    first, parts = None, []
    for piece in llm.stream_chat(messages, max_tokens=512, temperature=0.2):
        first = first if first is not None else time.perf_counter() - t0
        parts.append(piece)
    text = "".join(parts)
    refused = says_not_found(text) or bool(re.search(r"don'?t know|do not know|不知道", text, re.I))
    return {"text": text, "raw": text, "not_found": refused, "rejected_by": "model" if refused else None,
            "p": None, "sources": [], "related": [], "ttft": first, "total": time.perf_counter() - t0}


def generate(args) -> None:
    """Ask every question of every set not yet answered; each answer appended as it comes."""
    ensure_models_dir()
    from kb.answering.prompt import SYSTEM
    from models.embedder import Embedder
    from models.llm import LocalLLM

    embedder = Embedder.default()
    llm = LocalLLM.default(args.llm)
    llm.prime([{"role": "system", "content": SYSTEM["zh"]}])
    OUT.mkdir(parents=True, exist_ok=True)
    chunking = (DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP_TOKENS)
    for name in args.sets:
        part = SETS[name][1]
        n_a, n_u = (args.answerable or SIZES[part][0]), (args.unanswerable or SIZES[part][1])
        kept, answerable, unanswerable = build_set(name, embedder, n_a, n_u, chunking)
        print(f"{name}: {len(kept)} passages, {len(answerable)} answerable, {len(unanswerable)} unanswerable",
              flush=True)
        (OUT / f"{name}-set.json").write_text(json.dumps(
            {"passages": sorted(kept), "answerable": [q["qid"] for q in answerable],
             "unanswerable": [q["qid"] for q in unanswerable]}, indent=0))
        kb, _, _ = open_or_build_kb(f"lookalike-{name}", kept, embedder, *chunking)
        systems = [x for x in ("ours", "naive") if x in args.systems and (x == "ours" or part == "report")]
        for system in systems:
            path = answers_path(name, system)
            have = done(path)
            todo = [("answerable", q) for q in answerable] + [("unanswerable", q) for q in unanswerable]
            if system == "naive":
                todo = ([("answerable", q) for q in answerable[:args.naive_size]]
                        + [("unanswerable", q) for q in unanswerable[:args.naive_size]])
                from retrieval import naive_baseline

                rank = naive_baseline(kept, embedder)[0] if any(q["qid"] not in have for _, q in todo) else None
            for kind, q in todo:
                if q["qid"] in have:
                    continue
                a = ask_ours(kb, llm, q) if system == "ours" else ask_naive(rank, llm, q)
                row = {"qid": q["qid"], "kind": kind, "question": q["question"], "answers": q["answers"],
                       "gold_pid": q["gold_pid"], "lookalikes": q["lookalikes"], **a}
                with open(path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
                print(f"  {name}/{system} {kind} {q['qid']} p={a['p']} ttft={a['ttft']} "
                      f"{'NOT FOUND' if a['not_found'] else a['text'][:60]!r}", flush=True)
        kb.close()


def read_rows(name: str, system: str) -> list[dict]:
    """The saved answers of a set."""
    path = answers_path(name, system)
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


@dataclasses.dataclass
class _Named:
    """Stands for the chat model where only its file name matters (kb.answering.answerability.threshold_for)."""

    path: Path


def judge(row: dict, checker, llm_stem: str, leads: dict | None = None) -> dict:
    """Today's decisions on one saved answer: refused (and by what), flagged, contains gold."""
    from kb.answering.answer import Source, settle
    from kb.answering.answerability import threshold_for
    from kb.text.language import language

    out = {"kind": row["kind"], "ttft": row["ttft"]}
    if row["not_found"]:
        return dict(out, refused=True, by=row["rejected_by"], flagged=False, gold=False, checks=[])
    lang = language(row["question"])
    threshold = THRESHOLD_OVERRIDE.get(lang, threshold_for(_Named(Path(llm_stem)), lang))
    if threshold is not None and row["p"] is not None and row["p"] < threshold:
        return dict(out, refused=True, by="probe", flagged=False, gold=False, checks=[])
    sources = [Source(**dict(s, lead=leads.get(Path(s["name"]).stem, "") if leads else s.get("lead", "")))
               for s in row["sources"]]
    started = time.perf_counter()
    verdict = settle(row["text"], sources, row["question"], lang, checker)
    out["check_s"] = time.perf_counter() - started  # the wait between the last token and the verdict
    gold = contains(row["text"], row["answers"])
    return dict(out, refused=verdict.not_found, by=verdict.rejected_by, gold=gold,
                flagged=any(c.status == "unsupported" for c in verdict.checks),
                checks=[(c.status, c.text, c.reason) for c in verdict.checks])


def measures(judged: list[dict]) -> dict:
    """Each measure the issue names, as (share, low, high, k, n)."""
    a = [j for j in judged if j["kind"] == "answerable"]
    u = [j for j in judged if j["kind"] == "unanswerable"]
    u_through = [j for j in u if not j["refused"] or j["by"] == "check"]  # answers the probe let through
    a_answered = [j for j in a if not j["refused"] or j["by"] == "check"]
    correct = [j for j in a_answered if j["gold"]]
    wrong = [j for j in a_answered if not j["gold"]]
    sentences = [c for j in correct for c in j["checks"] if c[0] != "skipped"]

    def m(k, n):
        return (*wilson(k, n), k, n)
    return {
        "unanswerable_refused": m(sum(j["refused"] for j in u), len(u)),
        "unanswerable_refused_or_flagged": m(sum(j["refused"] or j["flagged"] for j in u), len(u)),
        "silent_wrong": m(sum(not j["refused"] and not j["flagged"] for j in u), len(u)),
        "through_flagged": m(sum(j["flagged"] for j in u_through), len(u_through)),
        "answerable_contains_gold": m(sum(j["gold"] and not j["refused"] for j in a), len(a)),
        "answerable_refused": m(sum(j["refused"] for j in a), len(a)),
        "answerable_silent_wrong": m(sum(not j["refused"] and not j["flagged"] and not j["gold"] for j in a), len(a)),
        "false_flags": m(sum(c[0] == "unsupported" for c in sentences), len(sentences)),
        "correct_refused_by_check": m(sum(j["by"] == "check" for j in correct), len(correct)),
        "wrong_flagged": m(sum(j["flagged"] for j in wrong), len(wrong)),
        "refused_before_check": m(sum(j["refused"] and j["by"] != "check" for j in u), len(u)),
        "check_s_median": _pct([j["check_s"] for j in judged if "check_s" in j], 50),
        "check_s_p95": _pct([j["check_s"] for j in judged if "check_s" in j], 95),
        "ttft_median_s": sorted(j["ttft"] for j in judged if j["ttft"])[len([j for j in judged if j["ttft"]]) // 2]
        if any(j["ttft"] for j in judged) else None,
    }


def _pct(values: list[float], q: float) -> float | None:
    return sorted(values)[min(len(values) - 1, int(len(values) * q / 100))] if values else None


def score(args) -> None:
    """Judge every saved answer with today's code; print and save the table."""
    ensure_models_dir()
    from kb.answering.grounding import Checker
    from models.embedder import Embedder
    from models.catalog import default_for

    checker = Checker(Embedder.default(), **({"anchor_min": args.anchor_min} if args.anchor_min else {}))
    stem = default_for("llm").entry
    table, details = [], {}
    for name in args.sets:
        # the title line the app reads as each document's lead (answers saved before it existed)
        passages, _ = load_dataset(SETS[name][0], 0, None)
        leads = {pid: t if len(t := (r.get("title") or "").strip()) <= 40 else "" for pid, r in passages.items()}
        for system in ("ours", "naive"):
            rows = read_rows(name, system)
            if not rows:
                continue
            judged = [judge(r, checker, stem, leads) if system == "ours" else naive_judge(r) for r in rows]
            details[f"{name}/{system}"] = [dict(j, qid=r["qid"], question=r["question"], text=r["text"])
                                          for j, r in zip(judged, rows)]
            table.append({"set": name, "system": system, **measures(judged)})
    cols = ["refused_before_check", "unanswerable_refused", "unanswerable_refused_or_flagged", "silent_wrong",
            "through_flagged", "answerable_contains_gold", "answerable_refused", "false_flags", "wrong_flagged"]

    def fmt(v):
        if isinstance(v, tuple):
            return "—" if not v[4] else f"{v[0]:.2f} [{v[1]:.2f}, {v[2]:.2f}] ({v[3]}/{v[4]})"
        return f"{v:.2f}" if isinstance(v, float) else ("" if v is None else str(v))
    lines = ["| set | system | " + " | ".join(cols) + " | ttft median s | check s median / p95 |",
             "|" + "---|" * (len(cols) + 4)]
    lines += [f"| {r['set']} | {r['system']} | " + " | ".join(fmt(r[c]) for c in cols)
              + f" | {fmt(r['ttft_median_s'])} | {fmt(r['check_s_median'])} / {fmt(r['check_s_p95'])} |"
              for r in table]
    print("\n".join(lines))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "score.md").write_text("\n".join(lines) + "\n")
    (OUT / "score.json").write_text(json.dumps({"table": table, "details": details}, ensure_ascii=False,
                                               indent=0, default=str))


def naive_judge(row: dict) -> dict:
    """The baseline has no checks: refused when it says it does not know."""
    return {"kind": row["kind"], "ttft": row["ttft"], "refused": row["not_found"], "by": row["rejected_by"],
            "flagged": False, "gold": contains(row["text"], row["answers"]) and not row["not_found"], "checks": []}


def main(argv=None) -> int:
    """Generate or score the look-alike sets."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("phase", choices=["generate", "score"])
    p.add_argument("--sets", nargs="+", default=["cmrc-tune", "xquad-zh-tune", "xquad-en-tune",
                                                 "cmrc", "xquad-zh", "xquad-en"], choices=list(SETS))
    p.add_argument("--answerable", type=int, help="answerable questions per set (default: 150, tune 30)")
    p.add_argument("--unanswerable", type=int, help="unanswerable questions per set (default: 100, tune 30)")
    p.add_argument("--systems", nargs="+", default=["ours", "naive"])
    p.add_argument("--naive-size", type=int, default=NAIVE_SIZE, help="questions of each kind for the baseline")
    p.add_argument("--llm", default=None, help="chat model (default: the catalog default)")
    p.add_argument("--anchor-min", type=float, help="score with another kb.answering.claims.ANCHOR_MIN (tuning sets only)")
    p.add_argument("--threshold", nargs="+", default=[], metavar="LANG=P",
                   help="score with another probe threshold per language (tuning sets only)")
    args = p.parse_args(argv)
    THRESHOLD_OVERRIDE.update({k: float(v) for k, v in (t.split("=") for t in args.threshold)})
    generate(args) if args.phase == "generate" else score(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
