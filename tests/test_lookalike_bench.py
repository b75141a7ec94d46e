"""bench/lookalike.py appends each answer as it is made, so a run killed part-way continues where
it stopped: nothing asked twice, nothing lost (real dataset from ../shared, real models)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "bench" / "xquad"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/bench/xquad")]


def _run(tmp_path, env):
    return subprocess.Popen([sys.executable, str(ROOT / "bench" / "lookalike.py"), "generate", "--sets",
                             "xquad-en-tune", "--answerable", "2", "--unanswerable", "2", "--systems", "ours",
                             "--llm", "qwen2.5-coder-0.5b-instruct-q4_k_m"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_bench_run_killed_after_its_first_answer_continues_without_asking_it_again(tmp_path):
    env = dict(os.environ, ZHIKU_BENCH_CACHE=str(tmp_path / "cache"), ZHIKU_BENCH_OUT=str(tmp_path / "results"))
    answers = tmp_path / "results" / "lookalike" / "xquad-en-tune-ours.jsonl"
    first = _run(tmp_path, env)
    deadline = time.monotonic() + 900
    while first.poll() is None and not (answers.exists() and answers.read_text().count("\n") >= 1):
        assert time.monotonic() < deadline, "no answer was written"
        time.sleep(0.2)  # a poll interval: the event is the first answer on disk
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    before = answers.read_text(encoding="utf-8").splitlines()
    assert 1 <= len(before) < 4, "the kill should land before the set is done"

    second = _run(tmp_path, env)
    out, _ = second.communicate(timeout=900)
    assert second.returncode == 0, out[-2000:]
    rows = [json.loads(line) for line in answers.read_text(encoding="utf-8").splitlines()]
    qids = [r["qid"] for r in rows]
    assert len(qids) == len(set(qids)) == 4  # every question once
    assert answers.read_text(encoding="utf-8").splitlines()[:len(before)] == before  # kept, not redone
    assert sorted(r["kind"] for r in rows) == ["answerable"] * 2 + ["unanswerable"] * 2
    # and the saved answers score
    score = subprocess.run([sys.executable, str(ROOT / "bench" / "lookalike.py"), "score", "--sets", "xquad-en-tune"],
                           env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert score.returncode == 0 and "| xquad-en-tune | ours |" in score.stdout, score.stderr[-2000:]
