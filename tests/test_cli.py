"""The `zhiku` command: the demo end to end, and the installed console script."""

import json
import os
import subprocess
import sys
from pathlib import Path

from app.cli import main


def test_demo_ranks_and_streams_two_answers(capsys):
    assert main(["demo", "--llm", "qwen2.5-coder-0.5b-instruct-q4_k_m"]) == 0
    out = capsys.readouterr().out
    ranking = [line for line in out.splitlines() if line.startswith("  ") and ". " in line]
    assert "CLIP是一种对比性语言-图像预训练模型" in ranking[0]
    answers = [line[3:] for line in out.splitlines() if line.startswith("A: ")]
    assert len(answers) == 2 and all(a.strip() for a in answers)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in answers[0])  # the Chinese question in Chinese
    assert "first after" in out


def test_console_script_lists_models_as_json(zhiku_home):
    exe = Path(sys.executable).with_name("zhiku")
    res = subprocess.run([str(exe), "models", "list", "--json", "--no-verify"], capture_output=True,
                         text=True, env=dict(os.environ), timeout=120)
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["multilingual-e5-small"]["role"] == "embedding"
    assert rows["qwen2.5-coder-1.5b-instruct-q4_k_m"]["installed"] is True


def test_version_and_unknown_model(capsys):
    try:
        main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    assert capsys.readouterr().out.startswith("zhiku ")
    assert main(["models", "verify", "no-such-model"]) == 1
    assert "unknown model" in capsys.readouterr().out
    assert main(["demo", "--llm", "no-such-model"]) == 2
    assert "unknown model" in capsys.readouterr().err
