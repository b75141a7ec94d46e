"""Parsing isolation, OCR through the indexer, encrypted PDFs: one bad file never costs the rest."""

import os
import time
from pathlib import Path

from fixtures import make_pdf, make_scanned_pdf, make_slow_pdf, text_image, when_busy

from kb.text.document import LoadError
from kb.ingest.parse_worker import Limits, ParserProcess


def test_scanned_pdf_is_found_in_chinese_and_english_through_ocr(make_kb, tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    make_scanned_pdf(d / "scan.pdf", [["封面：年度报告"],
                                      ["第二页：光学字符识别把扫描件变成可检索的文字。",
                                       "Page two: the warehouse in Suzhou ships lithium batteries."]])
    (d / "other.txt").write_text("天气预报说明天有雨。The weather will be rainy tomorrow.", encoding="utf-8")
    kb = make_kb()
    report = kb.add([d])
    assert not report.failed and len(report.added) == 2
    zh = kb.search("扫描件怎样变成可检索的文字", k=3)[0]
    en = kb.search("which warehouse ships lithium batteries", k=3)[0]
    assert (zh.name, zh.page) == ("scan.pdf", 2) and (en.name, en.page) == ("scan.pdf", 2)
    doc = next(x for x in kb.store.documents() if x["name"] == "scan.pdf")
    assert doc["ocr_pages"] == 2
    boxes = kb.store.page_boxes(doc["id"], 2)
    page = kb.store.page_text(doc["id"], 2)
    assert any("光学字符识别" in page[b[0]:b[1]] for b in boxes)  # citations can highlight the line

    kb.close()


def test_ocr_off_records_why_a_scan_was_not_indexed(make_kb, tmp_path):
    make_scanned_pdf(tmp_path / "scan.pdf", [["只有图像的页面"]])
    text_image(["图片里的文字"]).save(tmp_path / "photo.png")
    kb = make_kb()
    report = kb.add([tmp_path / "scan.pdf", tmp_path / "photo.png"], ocr=False)
    failed = dict(report.failed)
    assert failed[str(tmp_path / "scan.pdf")] == "no text layer (a scan?): turn OCR on to index it"
    # the image is still a picture for image search, but its words are not read
    assert str(tmp_path / "photo.png") in report.added and kb.pictures.count() == 1
    assert not kb.search("图片里的文字", k=3, apply_floor=False)
    report = kb.add([tmp_path / "scan.pdf", tmp_path / "photo.png"])  # OCR on again: both are retried
    assert not report.failed and len(report.updated) == 2
    assert kb.search("图片里的文字", k=1)[0].name == "photo.png"


def test_a_parser_stuck_on_a_file_is_killed_at_the_time_limit_and_the_next_file_is_read(tmp_path):
    slow = make_slow_pdf(tmp_path / "loop.pdf")
    # over 20 characters, so the good file is not taken for a scan: OCR alone takes ~2 s a page here
    good = make_pdf(tmp_path / "good.pdf", [["正常的文件：这一页的文字层足够长，不会被当作扫描件。"]])
    with ParserProcess(Limits(time_s=2)) as parser:
        started = time.monotonic()
        try:
            parser.parse(slow)
            raise AssertionError("the slow PDF was parsed within the limit")
        except LoadError as e:
            assert str(e) == "parsing took longer than 2 s without progress: stopped"
        took = time.monotonic() - started
        assert 2 <= took < 60, took  # stopped at its limit, not after the minutes the file would take
        assert "正常的文件" in parser.parse(good)[0].pages[0].text  # a fresh worker took over
        assert parser.restarts == 1


def test_a_parser_that_uses_too_much_memory_is_killed(tmp_path):
    text_image(["内存限制"]).save(tmp_path / "a.png")  # OCR models alone need more than 150 MB
    with ParserProcess(Limits(memory_mb=150)) as parser:
        try:
            parser.parse(tmp_path / "a.png")
            raise AssertionError("parsed within 150 MB")
        except LoadError as e:
            assert str(e) == "parsing used more than 150 MB of memory: stopped"


def test_a_crashing_parser_is_reported_and_replaced(tmp_path):
    slow = make_slow_pdf(tmp_path / "loop.pdf")
    good = make_pdf(tmp_path / "good.pdf", [["第二个文件"]])
    with ParserProcess() as parser:
        parser.parse(good)  # the worker is up
        pid = parser._proc.pid
        # what a segfault in a native parser looks like from outside, mid-file (seen working on it)
        when_busy(pid, lambda: os.kill(pid, 11))
        try:
            parser.parse(slow)
            raise AssertionError("parsed although the worker died")
        except LoadError as e:
            assert str(e) == "the parser crashed on this file (killed by SIGSEGV)"
        assert "第二个文件" in parser.parse(good)[0].pages[0].text
        assert parser._proc.pid != pid


def test_slow_file_in_a_folder_fails_alone(make_kb, tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    make_slow_pdf(d / "a-loop.pdf")
    make_pdf(d / "b.pdf", [["知识库：本地检索，这一页的文字层足够长，不会被当作扫描件。"]])  # no OCR
    kb = make_kb()
    report = kb.add([d], time_limit_s=2)
    assert report.failed == [(str(d / "a-loop.pdf"), "parsing took longer than 2 s without progress: stopped")]
    assert report.added == [str(d / "b.pdf")]
    row = next(x for x in kb.store.documents() if x["name"] == "a-loop.pdf")
    assert row["status"] == "failed" and "took longer" in row["error"]


def test_encrypted_pdf_opens_with_the_right_password_which_is_never_stored(make_kb, tmp_path, zhiku_home):
    f = make_pdf(tmp_path / "locked.pdf", [["机密：第三季度预算为四百万。"]], password="s3cret-口令")
    kb = make_kb()
    report = kb.add([f])
    assert report.failed == [(str(f), "encrypted PDF: password needed")] and report.password_needed == [str(f)]
    report = kb.add([f], password="wrong")
    assert report.failed == [(str(f), "encrypted PDF: wrong password")]
    report = kb.add([f], password="s3cret-口令")
    assert report.updated == [str(f)] and not report.failed
    assert kb.search("第三季度预算", k=1)[0].name == "locked.pdf"
    kb.store.db.checkpoint()
    for p in Path(kb.store.folder).iterdir():
        assert "s3cret".encode() not in p.read_bytes(), p


def test_cli_add_takes_a_password(tmp_path, zhiku_home, capsys):
    from app.cli import main

    f = make_pdf(tmp_path / "locked.pdf", [["口令保护的文件"]], password="pw-1")
    code = main(["add", "cli", str(f)])
    out, err = capsys.readouterr()
    assert "encrypted PDF: password needed" in out and "--password" in out
    # nothing went in, so no knowledge base was left behind, and the exit status says so
    assert code == 1 and "not created" in err and not (zhiku_home / "kbs" / "cli").exists()
    code = main(["add", "cli", str(f), "--password", "pw-1"])
    out = capsys.readouterr().out
    assert code == 0 and "1 added" in out and "0 failed" in out, out


def test_chunks_made_in_the_parser_process_match_the_models_own(e5_float, tmp_path):
    from test_indexing import EN_FAISS, ZH_CLIP

    from kb.text import lexical
    from kb.text.chunking import Chunker

    f = tmp_path / "mixed.md"
    f.write_text((ZH_CLIP + "\n\n" + EN_FAISS + "\n\n") * 12, encoding="utf-8")
    with ParserProcess() as parser:
        doc, chunks, terms = parser.parse(f, chunking=(str(e5_float.tokenizer_file), 64, 9))
    e5_float._counter = None
    here = Chunker(lambda t: len(e5_float.model.tokenizer(t, add_special_tokens=False)["input_ids"]), 64, 9).split(doc)
    assert len(chunks) > 4
    assert [(c.start, c.end, c.tokens) for c in chunks] == [(c.start, c.end, c.tokens) for c in here]
    assert terms == [lexical.index_text(c.text) for c in here]
