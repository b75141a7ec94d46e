"""The `zhiku` command: the demo end to end, and the installed console script."""

import json
import os
import subprocess
import sys
from pathlib import Path

from app.cli import main


def test_demo_builds_a_kb_and_answers_with_sources(capsys):
    assert main(["demo", "--llm", "qwen2.5-coder-0.5b-instruct-q4_k_m", "--answer-tokens", "48"]) == 0
    out = capsys.readouterr().out
    assert "Knowledge base 'demo': 3 documents" in out
    answers = [line[3:] for line in out.splitlines() if line.startswith("A: ")]
    assert len(answers) == 2 and all(a.strip() for a in answers)
    second = out[out.index("Q: What is the default chunk size"):]
    assert "demo-report.pdf, page 2" in second  # the English answer comes from page 2 of the PDF
    assert "first token after" in out


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
