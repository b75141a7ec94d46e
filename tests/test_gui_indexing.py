"""The window's indexing jobs: password prompts, linked folders, resume at start, damaged KBs."""

import pytest

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.gui

from fixtures import make_pdf  # noqa: E402
from test_gui import _index, open_window, window  # noqa: E402,F401 (the fixture)


def test_an_encrypted_pdf_asks_for_its_password_and_opens(qtbot, window, tmp_path):  # noqa: F811
    f = make_pdf(tmp_path / "locked.pdf", [["机密：项目代号青鸟。"]], password="青鸟-2026")
    _index(qtbot, window, [f])
    assert window.docs.rows()["locked.pdf"][0] == "failed"
    dlg = window.indexing.password_dialog
    assert dlg is not None and dlg.isVisible() and "locked.pdf" in dlg.labelText()
    assert window.indexing.failure_box is None  # a password question, not a failure list
    dlg.setTextValue("青鸟-2026")
    dlg.accept()
    qtbot.waitUntil(lambda: window.indexing.worker.isFinished() and
                    window.docs.rows()["locked.pdf"][0] == "indexed", timeout=120_000)
    assert window.kb.search("项目代号", k=1)[0].name == "locked.pdf"


def test_a_linked_folder_is_indexed_and_watched(qtbot, window, tmp_path):  # noqa: F811
    d = tmp_path / "linked"
    d.mkdir()
    (d / "a.md").write_text("# 笔记甲\n\n关联文件夹里的第一份笔记。", encoding="utf-8")
    window.indexing.link_folder(str(d))
    qtbot.waitUntil(lambda: "a.md" in window.docs.rows() and window.docs.rows()["a.md"][0] == "indexed",
                    timeout=120_000)
    assert window.indexing.watcher is not None
    (d / "b.md").write_text("# 笔记乙\n\n之后放进来的第二份笔记。", encoding="utf-8")
    (d / "a.md").unlink()
    qtbot.waitUntil(lambda: set(window.docs.rows()) == {"b.md"} and window.docs.rows()["b.md"][0] == "indexed",
                    timeout=120_000)


def test_a_job_interrupted_by_quitting_resumes_at_the_next_start(qtbot, zhiku_home, tmp_path, e5):
    from kb.ingest.files import Files
    from kb.knowledge_base import KnowledgeBase

    kb = KnowledgeBase.create("resume", e5)
    files = []
    for i in range(3):
        f = tmp_path / f"n{i}.txt"
        f.write_text(f"第{i}份笔记：退出时还没读完的文件会在下次启动时继续。", encoding="utf-8")
        files.append(str(f))
    Files(kb.store).enqueue(files)  # what a quit mid-job leaves behind
    kb.close()
    w = open_window(qtbot)
    qtbot.waitUntil(lambda: w.kb is not None and w.kb.name == "resume", timeout=30_000)
    qtbot.waitUntil(lambda: w.indexing.worker is not None and w.indexing.worker.isFinished()
                    and len(w.docs.rows()) == 3, timeout=120_000)
    assert {s for s, _ in w.docs.rows().values()} == {"indexed"}
    assert not Files(w.kb.store).queued()


def test_the_app_starts_with_a_damaged_knowledge_base_and_leaves_it_untouched(qtbot, zhiku_home):
    from kb.knowledge_base import kbs_dir

    folder = kbs_dir() / "broken"
    folder.mkdir(parents=True)
    (folder / "kb.sqlite").write_bytes(b"not a database at all " * 200)
    before = (folder / "kb.sqlite").read_bytes()
    w = open_window(qtbot)
    item = w.kb_list.list.item(0)
    assert item.data(0x0100) == "broken"  # Qt.UserRole
    assert str(folder / "kb.sqlite") in item.text() and "damaged" in item.text()
    assert str(folder / "kb.sqlite") in w.status_label.text()
    assert (folder / "kb.sqlite").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["kb.sqlite"]


def test_a_citation_on_a_scanned_page_highlights_its_ocr_lines(qtbot, make_kb, tmp_path):
    from fixtures import make_scanned_pdf, text_image

    from app.gui.app import make_app
    from app.gui.widgets.viewer import SourceViewer

    make_app()
    make_scanned_pdf(tmp_path / "scan.pdf", [["第一行：封面", "第二行：无关内容", "第三行：被引用的段落在这里"]])
    text_image(["收据", "金额：一百二十元"]).save(tmp_path / "receipt.png")
    kb = make_kb()
    kb.add([tmp_path / "scan.pdf", tmp_path / "receipt.png"])
    viewer = SourceViewer()
    qtbot.addWidget(viewer)
    for name, passage, lines in (("scan.pdf", "第三行：被引用的段落在这里", 3), ("receipt.png", "金额：一百二十元", 2)):
        hit = kb.search(passage, k=1)[0]
        assert hit.name == name
        text = kb.store.page_text(hit.doc_id, hit.page)
        boxes = kb.store.page_boxes(hit.doc_id, hit.page)
        viewer.resize(700, 900)
        viewer.show_source(hit.path, hit.page, passage, text, boxes)
        assert len(viewer.highlight_rects) == 1, name  # that line, not the whole page
        rect = viewer.highlight_rects[0]
        height = viewer.image.pixmap().height()
        assert len(boxes) == lines
        mine = boxes[[b[0] for b in boxes].index(text.index(passage))]  # the box that starts the passage
        assert abs(rect.top() / height - mine[3]) < 0.01 and mine[3] > boxes[0][3]


def test_files_dropped_during_a_job_are_listed_as_queued_at_once_and_progress_only_moves_forward(
        qtbot, window, tmp_path):  # noqa: F811
    from fixtures import make_slow_pdf
    from test_gui import _drop

    first = tmp_path / "first"
    first.mkdir()
    # a second or two of parsing: the job is still running at the second drop
    make_slow_pdf(first / "slow.pdf", operators=20_000)
    for i in range(3):
        (first / f"note{i}.txt").write_text(f"第{i}篇笔记：进度条只会向前走。" * 20, encoding="utf-8")
    later = tmp_path / "later.md"
    later.write_text("# 后来拖进来的文件\n\n任务进行中拖进来的文件马上显示为排队中。", encoding="utf-8")
    values = []
    _drop(window.docs.tree.viewport(), [first])
    job = window.indexing.worker
    assert job is not None and job.isRunning()
    window.progress.valueChanged.connect(lambda v: values.append(v) if job.isRunning() else None)
    assert window.status_label.text() == "Indexing…"
    _drop(window.docs.tree.viewport(), [later])
    assert window.docs.rows()["later.md"][0] == "queued"  # at once, before the running job ends
    qtbot.waitUntil(lambda: window.indexing.worker.isFinished() and not window.indexing.jobs, timeout=300_000)
    qtbot.waitUntil(lambda: window.docs.rows().get("later.md", ("",))[0] == "indexed", timeout=300_000)
    assert values and all(b >= a for a, b in zip(values, values[1:])), values  # the first job's bar
