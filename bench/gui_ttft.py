"""Enter to first token in the real window, with questions typed into it (bench/README.md).

The window (offscreen) over the five Chinese seed articles, the default chat model loaded as the
app loads it. Each question is typed twice into a new chat, the model's cache reset to the
system prompt before each: once sent at once (Enter straight after the last key: no pause, so no
type-ahead), once sent after the pause that starts the type-ahead (retrieval and prompt processing
while the user still looks at the question). Timed from the Enter key to the first answer text on
screen; the answer is then stopped. The CPU the type-ahead cost is this process's CPU time from the
first key to the end of the prefill.

    python bench/gui_ttft.py [--questions N] [--llm NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from retrieval import ensure_models_dir  # noqa: E402
from speed import QUESTIONS, SEEDS, fresh_home  # noqa: E402


def wait_until(app, done, timeout_s: float) -> float:
    """Run the event loop until `done()`; seconds waited (TimeoutError past `timeout_s`)."""
    t0 = time.perf_counter()
    while not done():
        if time.perf_counter() - t0 > timeout_s:
            raise TimeoutError(f"not done after {timeout_s} s")
        app.processEvents()
        time.sleep(0.002)
    return time.perf_counter() - t0


def type_into(app, widget, text: str) -> None:
    """Key presses carrying each character (QTest.keyClicks knows only ASCII keys)."""
    from PySide6.QtCore import QEvent, Qt
    from PySide6.QtGui import QKeyEvent

    for ch in text:
        for kind in (QEvent.KeyPress, QEvent.KeyRelease):
            app.sendEvent(widget, QKeyEvent(kind, Qt.Key_unknown, Qt.NoModifier, ch))


def measure(questions: list[str], llm_name: str | None) -> dict:
    """Enter-to-first-token sent at once vs after a pause, and the type-ahead's CPU seconds."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    from app.gui.app import make_app
    from app.gui.main_window import MainWindow
    from app.gui.settings import AppSettings
    from kb.knowledge_base import KnowledgeBase
    from kb.answering.prompt import SYSTEM
    from models.embedder import Embedder

    fresh_home()
    kb = KnowledgeBase.create("seeds", Embedder.default())
    kb.add([SEEDS])
    kb.close()
    app = make_app()
    AppSettings(ui_language="zh_CN", **({"llm_name": llm_name} if llm_name else {})).save()
    w = MainWindow()
    w.show()
    w.select_kb("seeds")
    w.answering.load_llm()
    wait_until(app, lambda: w.answering.llm is not None and w.kb.embedder.loaded, 300)
    llm, chat = w.answering.llm, w.chat
    at_once, paused, typing_cpu = [], [], []
    for question in questions:
        for pause in (False, True):
            w.answering.new_chat()
            llm.prime([{"role": "system", "content": SYSTEM["zh"]}])  # the cache as the app leaves it after loading
            app.processEvents()
            cpu0 = time.process_time()
            type_into(app, chat.input, question)
            if pause:
                wait_until(app, lambda: w.answering.prefill_worker is not None
                           and w.answering.prefill_worker.isFinished(), 300)
                typing_cpu.append(time.process_time() - cpu0)
            t0 = time.perf_counter()
            QTest.keyClick(chat.input, Qt.Key_Return)
            wait_until(app, lambda: chat.messages and chat.messages[-1]["role"] == "assistant"
                       and chat.messages[-1]["content"].strip(), 300)
            (paused if pause else at_once).append(time.perf_counter() - t0)
            QTest.keyClick(chat.input, Qt.Key_Escape)  # stop: only the first token is measured
            wait_until(app, lambda: not chat.busy, 60)
            w.answering.prefill_worker = None
    w.close()
    a, p = statistics.median(at_once), statistics.median(paused)
    return {"questions": len(questions), "model": llm.model_name,
            "enter_to_first_token_at_once_s": round(a, 2), "enter_to_first_token_after_pause_s": round(p, 2),
            "ratio": round(p / a, 3), "typing_cpu_s": round(statistics.median(typing_cpu), 1),
            "at_once_s": [round(x, 2) for x in at_once], "after_pause_s": [round(x, 2) for x in paused]}


def main(argv=None) -> int:
    """Run the measurement; print and save JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--questions", type=int, default=len(QUESTIONS))
    p.add_argument("--llm", default=None, help="chat model name (default: the catalog's default)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args(argv)
    ensure_models_dir()
    result = measure([q for q, _ in QUESTIONS[: args.questions]], args.llm)
    print(json.dumps(result, ensure_ascii=False), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"gui-ttft-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
