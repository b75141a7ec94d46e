"""The knowledge-base commands: kb create/list/info/delete, add, search, ask, remove, --json."""

import json
from pathlib import Path

import pytest
from fixtures import make_pdf

from app.cli import main

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def _docs(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    (d / "知库.txt").write_text("知库从不联网，文档只保存在你自己的电脑上。", encoding="utf-8")
    make_pdf(d / "report.pdf", [["Page one says nothing."], ["Page two: the chunk size is 256 tokens."]])
    (d / "broken.pdf").write_bytes(b"not a pdf")
    (d / "notes.xyz").write_text("?")
    return d


def test_add_search_info_remove_delete(tmp_path, capsys):
    d = _docs(tmp_path)
    assert main(["add", "笔记", str(d)]) == 1  # creates the KB; exit 1: one file failed
    out = capsys.readouterr().out
    assert "2 added" in out and "1 failed" in out
    assert "broken.pdf: not a PDF: starts with b'not a pd'" in out
    assert "notes.xyz: unsupported file type '.xyz'" in out

    assert main(["search", "笔记", "chunk size tokens", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["file"] == "report.pdf" and hits[0]["page"] == 2
    assert "256" in hits[0]["text"] and hits[0]["end"] > hits[0]["start"]

    assert main(["search", "笔记", "联网"]) == 0
    assert "知库.txt:1" in capsys.readouterr().out

    assert main(["kb", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    read = sum((d / n).stat().st_size for n in ("知库.txt", "report.pdf", "broken.pdf"))  # .xyz was skipped
    assert rows == [{"name": "笔记", "documents": 3, "chunks": 3, "bytes": read, "failed": 1,
                     "server": None}]  # on this computer, not on a PostgreSQL server

    assert main(["kb", "info", "笔记", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["embedding_model"].startswith("multilingual-e5-small@") and info["failed"] == 1

    assert main(["remove", "笔记", "report.pdf"]) == 0
    capsys.readouterr()
    assert main(["search", "笔记", "chunk size tokens", "--json"]) == 0
    assert all(h["file"] != "report.pdf" for h in json.loads(capsys.readouterr().out))

    assert main(["kb", "delete", "笔记"]) == 2  # no terminal to confirm on
    assert main(["kb", "delete", "笔记", "--yes"]) == 0
    capsys.readouterr()
    assert main(["search", "笔记", "x"]) == 2
    assert "no knowledge base called" in capsys.readouterr().err


def test_ask_json_cites_file_and_page(tmp_path, capsys):
    d = _docs(tmp_path)
    assert main(["add", "kb", str(d)]) == 1  # broken.pdf failed
    capsys.readouterr()
    assert main(["ask", "kb", "What is the chunk size?", "--llm", "qwen2.5-coder-0.5b-instruct-q4_k_m",
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert "256" in res["answer"] and not res["not_found"]
    assert res["sources"][0]["name"] == "report.pdf" and res["sources"][0]["page"] == 2
    assert main(["ask", "kb", "谁赢得了1998年世界杯足球赛？", "--json",
                 "--llm", "qwen2.5-coder-0.5b-instruct-q4_k_m"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["not_found"] and res["sources"] == [] and res["rejected_by"] == "floor"
    assert res["related"] and res["related"][0]["name"] in ("report.pdf", "知库.txt")  # "possibly related"


@pytest.mark.skipif(not (SHARED / "corpora" / "seeds-zh").is_dir(), reason="needs ../shared/corpora/seeds-zh")
def test_seed_documents_answer_how_clip_is_trained(capsys):
    """Acceptance: the seed articles, the default models, a cited answer about CLIP."""
    assert main(["add", "seeds", str(SHARED / "corpora" / "seeds-zh")]) == 0
    assert "5 added" in capsys.readouterr().out
    assert main(["ask", "seeds", "CLIP是如何训练的？", "--json", "--answer-tokens", "64"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["cited"], res["answer"]
    assert all("CLIP" in c["text"] for c in res["cited"])
    assert any(w in res["answer"] for w in ("对比", "图像", "图片", "文本", "配对"))
    # every sentence carries its check; a supported one names the passage that backs it
    assert res["sentences"] and all(s["status"] in ("supported", "unsupported", "skipped") for s in res["sentences"])
    assert res["checked"] == sum(s["status"] != "skipped" for s in res["sentences"])
    for s in res["sentences"]:
        assert res["answer"][s["start"]:s["end"]] == s["text"]
        if s["status"] == "supported":
            assert s["support"]["name"].endswith(".txt") and s["support"]["text"]
        if s["status"] == "unsupported":
            assert s["reason"]


def test_only_limits_search_to_named_documents_and_folders(tmp_path, capsys):
    d = _docs(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "chunks.txt").write_text("The chunk size of the old system was 512 tokens.", encoding="utf-8")
    main(["add", "笔记", str(d), str(other)])
    capsys.readouterr()

    assert main(["search", "笔记", "chunk size tokens", "--json", "--only", str(other)]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits and {h["file"] for h in hits} == {"chunks.txt"}
    assert main(["search", "笔记", "chunk size tokens", "--json", "--only", str(d / "report.pdf")]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits and {h["file"] for h in hits} == {"report.pdf"}
    # unscoped, both are found
    assert main(["search", "笔记", "chunk size tokens", "--json"]) == 0
    assert {h["file"] for h in json.loads(capsys.readouterr().out)} >= {"report.pdf", "chunks.txt"}

    assert main(["search", "笔记", "chunk size", "--only", str(tmp_path / "nowhere")]) == 1
    assert "is a document of this knowledge base" in capsys.readouterr().err
