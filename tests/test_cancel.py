"""Cancel works on a busy machine: two CPU-bound processes beside a job that is embedding."""

import subprocess
import sys
import threading
import time

import pytest


@pytest.fixture
def busy():
    """Two processes that keep a core each busy, as users' machines are."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    yield
    for p in procs:
        p.kill()
        p.wait()


def test_cancel_during_embedding_ends_the_job_within_two_seconds_beside_two_busy_processes(
        make_kb, tmp_path, busy):
    from kb.indexer import CancelToken

    d = tmp_path / "docs"
    d.mkdir()
    for i in range(40):  # ~400 chunks: minutes of embedding on a loaded machine
        (d / f"doc{i}.txt").write_text("".join(f"第{i}篇第{j}段：取消必须很快生效，即使机器很忙。" * 12 + "\n\n"
                                               for j in range(10)), encoding="utf-8")
    kb = make_kb()
    kb.add([d], embed=False)  # read first: every embedding batch is then a full one
    pending = kb.store.count("chunks")
    assert pending >= 300
    cancel = CancelToken()
    inside_a_batch = threading.Event()
    out = {}

    def progress(p):
        if p.chunks_done > 0:  # the second batch is starting
            inside_a_batch.set()

    def run():
        out["report"] = kb.indexer().embed_pending(progress=progress, cancel=cancel)
        out["ended"] = time.monotonic()

    job = threading.Thread(target=run)
    job.start()
    assert inside_a_batch.wait(600), "embedding never got to a second batch"
    time.sleep(0.5)  # well inside it
    asked = time.monotonic()
    cancel.cancel(keep_queue=True)
    job.join(120)
    assert not job.is_alive()
    took = out["ended"] - asked
    assert out["report"].cancelled and took < 2.0, f"cancel took {took:.1f} s"
    # what was not embedded stays pending for the next job, nothing half-stored
    assert 0 < kb.store.count("vectors") < pending


QUIT_SCRIPT = """
import sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from PySide6.QtCore import QTimer
from app.gui.app import make_app
from app.gui.main_window import MainWindow

app = make_app(["zhiku"])
w = MainWindow()
w.show()
w.create_kb("quit")
w.index_paths([Path({docs!r})])

def close_when_embedding():
    if w.kb is None or w.kb.store.count("vectors") == 0:
        QTimer.singleShot(100, close_when_embedding)
        return
    print("closing", time.monotonic(), flush=True)
    w.close()

QTimer.singleShot(100, close_when_embedding)
app.exec()
"""


def test_closing_the_window_mid_job_ends_the_process_within_five_seconds_beside_two_busy_processes(
        tmp_path, zhiku_home, busy):
    from pathlib import Path

    d = tmp_path / "docs"
    d.mkdir()
    for i in range(30):
        (d / f"doc{i}.txt").write_text("".join(f"第{i}篇第{j}段：关窗口之后进程必须很快退出。" * 12 + "\n\n"
                                               for j in range(10)), encoding="utf-8")
    root = str(Path(__file__).resolve().parents[1])
    proc = subprocess.Popen([sys.executable, "-c", QUIT_SCRIPT.format(root=root, docs=str(d))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    line = proc.stdout.readline()
    assert line.startswith("closing"), line + proc.stderr.read()
    closed = float(line.split()[1])
    proc.wait(120)
    took = time.monotonic() - closed
    assert took < 5.0, f"the process ended {took:.1f} s after its window closed"
