"""The Images tab, driven through real widgets offscreen, with a tiny CLIP built at test time."""

import pytest

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.gui

from fixtures import make_picture_pdf, picture  # noqa: E402
from PySide6.QtCore import QUrl  # noqa: E402
from PySide6.QtGui import QTextDocument  # noqa: E402
from tinyclip import build_tiny_clip  # noqa: E402


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


@pytest.fixture
def window(qtbot, zhiku_home):
    from test_gui import open_window

    w = open_window(qtbot)
    w.create_kb("pictures")
    qtbot.waitUntil(lambda: w.warm is not None and w.warm.isFinished(), timeout=120_000)
    yield w
    for worker in (w.indexing.worker, w.image_search.image_worker, w.image_search.clip_loader):
        if worker is not None:
            worker.wait(30_000)


def _report(tmp_path):
    a, b = picture(1), picture(2, (160, 220))
    pdf = make_picture_pdf(tmp_path / "report.pdf", [
        (["图 1：架构图 architecture diagram"], [a]),
        (["Figure 2: bar chart of revenue by quarter"], [b]),
    ])
    return pdf, a, b


def test_without_clip_the_tab_explains_what_it_needs_then_a_chosen_folder_is_used(qtbot, window, clip_dir,
                                                                                    tmp_path):
    from test_gui import _drop

    w = window
    w.tabs.setCurrentWidget(w.images)
    assert w.image_search.clip is None and w.images.setup.isVisible()
    assert "CLIP" in w.images.setup_text.text() and w.images.choose_btn.isVisible()
    assert w.images.download_btn.isVisible() and not w.images.like_btn.isEnabled()
    pdf, _, _ = _report(tmp_path)
    _drop(w.docs.tree.viewport(), [pdf])
    qtbot.waitUntil(lambda: w.indexing.worker.isFinished(), timeout=120_000)
    assert w.kb.pictures.count() == 2 and w.kb.pictures.count_pending() == 2

    assert w.image_search.use_clip_folder(str(clip_dir))  # what "Choose folder…" does with the folder picked
    qtbot.waitUntil(lambda: w.image_search.clip is not None, timeout=60_000)
    assert not w.images.setup.isVisible() and w.settings.clip_name == "tiny-clip"
    # the pictures extracted before the model came are embedded in a background job
    qtbot.waitUntil(lambda: w.kb.pictures.count_pending() == 0, timeout=60_000)
    # the job's report reaches the window after its thread ends: wait for what the user sees
    qtbot.waitUntil(lambda: "2 pictures ready for image search" in w.status_label.text(), timeout=60_000)


@pytest.fixture
def with_clip(qtbot, window, clip_dir, tmp_path):
    from test_gui import _drop

    assert window.image_search.use_clip_folder(str(clip_dir))
    qtbot.waitUntil(lambda: window.image_search.clip is not None, timeout=60_000)
    pdf, a, b = _report(tmp_path)
    _drop(window.docs.tree.viewport(), [pdf])
    qtbot.waitUntil(lambda: window.indexing.worker.isFinished() and not window.indexing.jobs, timeout=120_000)
    qtbot.waitUntil(lambda: window.kb.pictures.count_pending() == 0, timeout=60_000)
    return window, pdf, a, b


def test_dropping_an_image_on_the_tab_lists_matches_and_double_click_opens_the_page(qtbot, with_clip, tmp_path):
    from test_gui import _drop

    w, pdf, _, b = with_clip
    w.tabs.setCurrentWidget(w.images)
    query = tmp_path / "query.png"
    b.save(query)
    _drop(w.images.grid.viewport(), [query])
    qtbot.waitUntil(lambda: w.images.grid.count() > 0, timeout=30_000)
    assert w.images.grid.count() == 2
    first = w.images.grid.item(0)
    assert first.text().startswith("report.pdf") and first.text().endswith("1.00")  # the identical picture
    assert not first.icon().isNull()
    assert w.kb.pictures.count() == 2  # a dropped query image is not added to the knowledge base
    from PySide6.QtCore import Qt

    w.images.grid.scrollToItem(first)
    qtbot.wait(50)
    rect = w.images.grid.visualItemRect(first)
    assert rect.isValid(), "the first thumbnail is not laid out"
    # a double-click as Qt sees one: the first click selects the item, the second press is the double-click
    qtbot.mouseClick(w.images.grid.viewport(), Qt.LeftButton, Qt.NoModifier, rect.center())
    qtbot.mouseDClick(w.images.grid.viewport(), Qt.LeftButton, Qt.NoModifier, rect.center())
    qtbot.waitUntil(lambda: w.viewer.isVisible(), timeout=10_000)
    assert str(w.viewer.path) == str(pdf) and w.viewer.page == 2


def test_words_in_the_search_box_return_scored_thumbnails(qtbot, with_clip):
    from PySide6.QtCore import Qt

    w, _, _, _ = with_clip
    w.tabs.setCurrentWidget(w.images)
    w.images.query.setText("bar chart of revenue")
    qtbot.keyClick(w.images.query, Qt.Key_Return)
    qtbot.waitUntil(lambda: w.images.grid.count() > 0, timeout=30_000)
    texts = [w.images.grid.item(i).text() for i in range(w.images.grid.count())]
    assert any("page 2" in t for t in texts[:2])
    assert "page text matches" in next(w.images.grid.item(i).toolTip() for i in range(len(texts))
                                       if "page 2" in texts[i])
    w.images.query.setText("架构图")
    qtbot.keyClick(w.images.query, Qt.Key_Return)
    qtbot.waitUntil(lambda: "English only" in w.images.notice.text(), timeout=30_000)


def test_answers_show_the_pictures_of_their_cited_pages(qtbot, with_clip):
    w, pdf, _, _ = with_clip
    doc_id = w.kb.store.document(str(pdf))["id"]
    w.chat.add_question("What does the revenue chart show?")
    w.chat.set_sources([{"number": 1, "name": "report.pdf", "path": str(pdf), "page": 2, "doc_id": doc_id,
                         "text": "Figure 2: bar chart of revenue by quarter", "start": 0, "end": 10}])
    thumbs = w.chat.messages[-1]["sources"][0]["pictures"]
    assert len(thumbs) == 1 and thumbs[0].endswith(".jpg")
    image = w.chat.view.document().resource(QTextDocument.ImageResource, QUrl.fromLocalFile(thumbs[0]))
    assert image is not None and not image.isNull()  # the chat really loaded the thumbnail
    assert f"source:{len(w.chat.messages) - 1}:1" in w.chat.view.toHtml()


def test_a_search_without_matches_says_so_and_what_to_try(qtbot, window):
    from PySide6.QtCore import Qt

    window.tabs.setCurrentWidget(window.images)
    window.images.query.setText("独角兽在彩虹上")
    qtbot.keyClick(window.images.query, Qt.Key_Return)
    qtbot.waitUntil(lambda: "No pictures match" in window.images.notice.text(), timeout=30_000)
    assert window.images.grid.count() == 0 and "Find similar" in window.images.notice.text()
