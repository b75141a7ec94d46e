"""Speed against the bare parts, each as a ratio measured in one run (see bench/README.md).

- ingestion: `KnowledgeBase.add` (what `zhiku add` runs) vs a bare SentenceTransformer.encode of
  the same chunks, in chunks per second (target >= 0.9);
- first lexical hit: seconds from adding a generated 100-page PDF until a word from its last page
  is found by keyword search, polled from a second connection (target <= 2 s);
- decode: tokens per second after the first token through the answer path vs bare
  llama-cpp-python on the same GGUF, prompt and threads (target >= 0.95);
- time to first token: a typical question (system prompt primed at load), and a follow-up in the
  same conversation vs that cold question (target <= 0.5; absolute target <= 3 s); and the same
  question prefilled while typed (`Answerer.prefill`), with the CPU seconds the prefill cost;
- GUI: seconds from starting `zhiku gui` to its first paint.

- under load: prompt and decode tokens/s with one CPU-bound process beside, threads fixed vs
  chosen from the free cores (models.cpu_load).

    python bench/speed.py [--llm NAME] [--parts ingest lexical decode ttft gui load]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from retrieval import SHARED, ensure_models_dir, load_dataset  # noqa: E402

SEEDS = SHARED.parent / "corpora" / "seeds-zh"
# Questions a user of the seed articles (GPT, CLIP, multimodal models) would ask, and follow-ups.
QUESTIONS = [
    ("CLIP 模型是怎么训练的？", "它用了多少数据？"),
    ("GPT-4 Turbo 的上下文窗口有多长？", "它的价格比 GPT-4 便宜多少？"),
    ("GPT 系列模型是怎么一步步发展的？", "GPT-3 有多少参数？"),
    ("什么是多模态大模型？", "它们能做哪些视觉任务？"),
    ("GPT-4o 的架构有什么特点？", "它是端到端训练的吗？"),
]


def fresh_home() -> Path:
    """A throwaway ZHIKU_HOME (the models stay where ZHIKU_MODELS points)."""
    home = Path(tempfile.mkdtemp(prefix="zhiku-speed-"))
    os.environ["ZHIKU_HOME"] = str(home)
    return home


def ingest(embedder, passages: int, rounds: int = 3) -> dict:
    """Indexing throughput of `KnowledgeBase.add` with the float model at batch 32 (as before the
    int8 variant) and with the int8 variant, in alternating rounds (float, int8, float, ...: this
    machine's speed drifts by 10% within minutes), medians; and a bare SentenceTransformer.encode
    over the same chunks. The parser process is warm for every round (a first job, or the app's
    warm-up, starts it), so each side pays only its own work."""
    from sentence_transformers import SentenceTransformer

    from kb.knowledge_base import KnowledgeBase
    from models.embedder import Embedder

    home = fresh_home()
    docs = home / "docs"
    docs.mkdir()
    rows, _ = load_dataset("cmrc", 0, 1)
    for pid, row in list(rows.items())[:passages]:
        (docs / f"{pid}.txt").write_text(f"{row['title']}\n\n{row['text']}", encoding="utf-8")
    sides = {"float": Embedder(embedder.path, embedder.base_id, int8=False),
             "int8": Embedder(embedder.path, embedder.base_id, int8=True)}
    out: dict = {"files": passages, "rounds": rounds}
    for side in sides.values():
        side.embed_passages(["warm up"])  # every side starts with a loaded model
    warm = KnowledgeBase.create("speed-warm", sides["float"])
    warm.add([docs / f"{pid}.txt" for pid in list(rows)[:2]], embed=False)  # starts the parser process
    warm.close()
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(rounds):
        for name, side in sides.items():
            kb = KnowledgeBase.create(f"speed-{name}-{r}", side)
            t0 = time.perf_counter()
            report = kb.add([docs])
            seconds = time.perf_counter() - t0
            texts = [row[0] for row in kb.store.db.query("SELECT text FROM chunks ORDER BY id")]
            kb.close()
            out["chunks"] = report.chunks_embedded
            rates[name].append(len(texts) / seconds)
    for name, side in sides.items():
        out[f"{name}_chunks_per_s_rounds"] = [round(x, 1) for x in rates[name]]
        out[f"{name}_chunks_per_s"] = round(statistics.median(rates[name]), 1)
        questions = [q["question"] for q in load_dataset("cmrc", 1000, 50)[1]]
        times = []
        for q in questions:  # what every search pays before the index is touched
            t0 = time.perf_counter()
            side.embed_query(q)
            times.append(time.perf_counter() - t0)
        out[f"{name}_query_embed_ms_p50"] = round(1000 * statistics.median(times), 1)
    out["int8_vs_float_rounds"] = [round(i / f, 3) for f, i in zip(rates["float"], rates["int8"])]
    bare = SentenceTransformer(str(embedder.path), device="cpu", local_files_only=True)
    bare.encode(["passage: warm up"])
    prefix = sides["float"].prompts.get("passage", "")
    t0 = time.perf_counter()
    bare.encode([prefix + t for t in texts], batch_size=32, normalize_embeddings=True)
    out["bare_chunks_per_s"] = round(len(texts) / (time.perf_counter() - t0), 1)
    out["int8_vs_float"] = round(out["int8_chunks_per_s"] / out["float_chunks_per_s"], 3)
    out["float_vs_bare"] = round(out["float_chunks_per_s"] / out["bare_chunks_per_s"], 3)
    return out


def under_load(llm, runs: int = 3) -> dict:
    """Prompt and decode tokens/s with one CPU-bound process beside: threads fixed at the start
    (before models.cpu_load) vs chosen from the free cores at each answer."""
    import subprocess

    from models.cpu_load import INTERVAL_S, WINDOW

    text = sorted(SEEDS.glob("*"))[0].read_text(encoding="utf-8")[:700]
    messages = [{"role": "user", "content": f"{text}\n\n用三句话概括上文。"}]
    prompt_tokens = len(llm.tokenize_prompt(messages))
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    fitted = llm.fit_threads

    def fixed() -> tuple[int, int]:
        import llama_cpp

        llama_cpp.llama_set_n_threads(llm._llm._ctx.ctx, llm.max_threads, llm.max_threads_batch)
        llm.n_threads, llm.n_threads_batch = llm.max_threads, llm.max_threads_batch
        return llm.n_threads, llm.n_threads_batch

    out: dict = {"prompt_tokens": prompt_tokens}
    try:
        time.sleep(INTERVAL_S * (WINDOW + 2))
        for name, fit in (("fixed", fixed), ("fitted", fitted)) * runs:
            llm.fit_threads = fit
            llm._llm.reset()
            t0 = time.perf_counter()
            first, n = None, 0
            for _ in llm.stream_chat(messages, max_tokens=48, temperature=0):
                n += 1
                first = first or time.perf_counter()
            end = time.perf_counter()
            row = out.setdefault(name, {"threads": [llm.n_threads, llm.n_threads_batch], "prompt_tok_s": [],
                                        "decode_tok_s": []})
            row["prompt_tok_s"].append(prompt_tokens / (first - t0))
            row["decode_tok_s"].append((n - 1) / (end - first) if n > 1 else 0.0)
    finally:
        busy.kill()
        llm.fit_threads = fitted
    for name in ("fixed", "fitted"):
        for key in ("prompt_tok_s", "decode_tok_s"):
            out[name][key] = round(statistics.median(out[name][key]), 1)
    out["decode_ratio"] = round(out["fitted"]["decode_tok_s"] / max(out["fixed"]["decode_tok_s"], 0.01), 2)
    out["prompt_ratio"] = round(out["fitted"]["prompt_tok_s"] / max(out["fixed"]["prompt_tok_s"], 0.01), 2)
    return out


def make_long_pdf(path: Path, pages: int = 100) -> str:
    """A generated Chinese/English PDF of `pages` pages; returns a word found only on the last one."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    c = canvas.Canvas(str(path))
    for n in range(1, pages + 1):
        c.setFont("STSong-Light", 10)
        for i in range(45):
            c.drawString(50, 800 - 16 * i, f"第{n}页第{i}行：知库把文档切成小块，用关键词和向量检索。Page {n}, line {i}.")
        if n == pages:
            c.drawString(50, 60, "最后一页的暗号是 zebrafinch 斑胸草雀。")
        c.showPage()
    c.save()
    return "zebrafinch"


def first_lexical_hit(embedder) -> dict:
    """Seconds from add() until a keyword from the last page of a 100-page PDF is searchable."""
    from kb.knowledge_base import KnowledgeBase
    from kb.storage.sqlite.store import Store

    home = fresh_home()
    pdf = home / "long.pdf"
    word = make_long_pdf(pdf)
    kb = KnowledgeBase.create("speed", embedder)
    reader = Store(kb.store.folder)
    embedder.embed_passages(["warm up"])
    # the app's warm-up (app/gui/workers.warm_up) loads these before the first document arrives
    from kb.text import lexical

    lexical.terms("预热")
    kb.chunker.split_page(1, "预热 warm up")
    import pypdf  # noqa: F401

    from kb.ingest.parse_worker import ParserProcess

    ParserProcess.shared().warm(embedder.tokenizer_file)
    t0 = time.perf_counter()
    job = threading.Thread(target=kb.add, args=([pdf],))
    job.start()
    found = None
    while found is None and time.perf_counter() - t0 < 120:
        if reader.lexical_search(word, 1):
            found = time.perf_counter() - t0
        else:
            time.sleep(0.02)
    job.join()
    total = time.perf_counter() - t0
    chunks = kb.store.count("chunks")
    reader.close()
    kb.close()
    return {"pages": 100, "chunks": chunks, "first_hit_s": round(found, 2) if found else None,
            "fully_indexed_s": round(total, 1)}


def seeds_kb(embedder):
    """The five Chinese seed articles in a fresh KB."""
    from kb.knowledge_base import KnowledgeBase

    fresh_home()
    kb = KnowledgeBase.create("seeds", embedder)
    kb.add([SEEDS])
    return kb


def decode(kb, llm, bare_llama, questions) -> dict:
    """Tokens/s after the first token: the answer path vs bare llama-cpp-python, same prompt."""
    from kb.answering.answer import Answerer

    answerer = Answerer(kb, llm, temperature=0.0, reserve=160)
    ours, bare = [], []
    for question, _ in questions:
        stream = answerer.ask(question)
        if not stream.sources:
            continue
        times = []
        for _piece in stream:
            times.append(time.perf_counter())
        messages = answerer._thread[:-1]  # exactly what the answer path sent
        if len(times) > 10:
            ours.append((len(times) - 1) / (times[-1] - times[0]))
        times = []
        bare_llama.reset()
        for chunk in bare_llama.create_chat_completion(messages=messages, max_tokens=160, temperature=0.0,
                                                       stream=True):
            if chunk["choices"][0]["delta"].get("content"):
                times.append(time.perf_counter())
        if len(times) > 10:
            bare.append((len(times) - 1) / (times[-1] - times[0]))
    o, b = statistics.median(ours), statistics.median(bare)
    return {"ours_tok_per_s": round(o, 1), "bare_tok_per_s": round(b, 1), "ratio": round(o / b, 3),
            "threads": llm.n_threads}


def ttft(kb, llm, questions) -> dict:
    """Time to first token for a new question (primed system prompt) and for its follow-up."""
    from kb.answering.answer import Answerer
    from kb.answering.prompt import SYSTEM

    cold, follow, unprimed, sizes, typed, typing_cpu = [], [], [], [], [], []
    for question, follow_up in questions:
        llm.prime([{"role": "system", "content": SYSTEM["zh"]}])  # what the app does after loading
        answerer = Answerer(kb, llm, temperature=0.0, reserve=200)
        t0 = time.perf_counter()
        stream = answerer.ask(question)
        if not stream.sources:
            continue
        pieces = iter(stream)
        next(pieces)
        cold.append(time.perf_counter() - t0)
        for _ in pieces:
            pass
        sizes.append(llm.count_prompt_tokens(answerer._thread[:-1]))
        history = [{"role": "user", "content": question}, {"role": "assistant", "content": stream.result.text}]
        t0 = time.perf_counter()
        stream = answerer.ask(follow_up, history)
        pieces = iter(stream)
        next(pieces)
        follow.append(time.perf_counter() - t0)
        for _ in pieces:
            pass
        llm._llm.reset()  # nothing cached: what a first question costs without priming
        t0 = time.perf_counter()
        stream = Answerer(kb, llm, temperature=0.0, reserve=200).ask(question)
        next(iter(stream))
        unprimed.append(time.perf_counter() - t0)
        llm.stop()
        for _ in stream:
            pass
        # typed: the question's text prefilled while it was typed (what the window does after a
        # pause in typing), then sent; the CPU seconds that prefill cost this process
        llm.prime([{"role": "system", "content": SYSTEM["zh"]}])
        answerer = Answerer(kb, llm, temperature=0.0, reserve=200)
        cpu0 = time.process_time()
        answerer.prefill(question)
        typing_cpu.append(time.process_time() - cpu0)
        t0 = time.perf_counter()
        stream = answerer.ask(question)
        next(iter(stream))
        typed.append(time.perf_counter() - t0)
        llm.stop()
        for _ in stream:
            pass
    c, f = statistics.median(cold), statistics.median(follow)
    return {"questions": len(cold), "prompt_tokens_median": statistics.median(sizes),
            "cold_ttft_s": round(c, 2), "follow_up_ttft_s": round(f, 2), "follow_up_ratio": round(f / c, 3),
            "unprimed_ttft_s": round(statistics.median(unprimed), 2), "model": llm.model_name,
            "batch_threads": llm.n_threads_batch, "typed_ttft_s": round(statistics.median(typed), 2),
            "typed_vs_cold": round(statistics.median(typed) / c, 3),
            "typing_cpu_s": round(statistics.median(typing_cpu), 1)}


def gui_first_paint(runs: int = 3) -> dict:
    """Seconds from launching `zhiku gui` (offscreen) to its first paint, median of `runs`."""
    times = []
    for _ in range(runs):
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", ZHIKU_QUIT_AFTER_FIRST_PAINT="1")
        fresh_home()
        env["ZHIKU_HOME"] = os.environ["ZHIKU_HOME"]
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "gui"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for line in proc.stdout:
            if line.startswith("first paint"):
                times.append(time.perf_counter() - t0)
                break
        proc.wait(timeout=60)
    return {"first_paint_s": round(statistics.median(times), 2), "runs": len(times)}


def main(argv=None) -> int:
    """Run the chosen measurements; print and save JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", nargs="+", default=["ingest", "lexical", "decode", "ttft", "gui", "load"])
    p.add_argument("--llm", default=None, help="chat model name (default: the catalog's default)")
    p.add_argument("--passages", type=int, default=300, help="CMRC passages for the ingestion ratio")
    p.add_argument("--rounds", type=int, default=3, help="alternating float/int8 ingestion rounds")
    p.add_argument("--questions", type=int, default=len(QUESTIONS), help="questions for the LLM timings")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args(argv)
    ensure_models_dir()
    from models.embedder import Embedder
    from models.llm import LocalLLM

    embedder = Embedder.default()
    results = {}
    if "ingest" in args.parts:
        results["ingest"] = ingest(embedder, args.passages, args.rounds)
        print(json.dumps({"ingest": results["ingest"]}), flush=True)
    if "lexical" in args.parts:
        results["first_lexical_hit"] = first_lexical_hit(embedder)
        print(json.dumps({"first_lexical_hit": results["first_lexical_hit"]}), flush=True)
    if "load" in args.parts:
        llm = LocalLLM.default(args.llm)
        results["under_load"] = under_load(llm)
        print(json.dumps({"under_load": results["under_load"]}), flush=True)
        llm.close()
    if {"decode", "ttft"} & set(args.parts):
        import llama_cpp

        kb = seeds_kb(embedder)
        llm = LocalLLM.default(args.llm)
        if "ttft" in args.parts:
            key = f"ttft[{args.llm}]" if args.llm else "ttft"
            results[key] = ttft(kb, llm, QUESTIONS[: args.questions])
            print(json.dumps({key: results[key]}), flush=True)
        if "decode" in args.parts:
            bare = llama_cpp.Llama(model_path=str(llm.path), n_ctx=llm.n_ctx, n_threads=llm.n_threads,
                                   n_threads_batch=llm.n_threads_batch, n_batch=256, verbose=False)
            results["decode" + (f"[{args.llm}]" if args.llm else "")] = decode(kb, llm, bare, QUESTIONS[: min(3, args.questions)])
            print(json.dumps({k: v for k, v in results.items() if k.startswith("decode")}), flush=True)
            bare.close()
        llm.close()
    if "gui" in args.parts:
        results["gui"] = gui_first_paint()
        print(json.dumps({"gui": results["gui"]}), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"speed-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
