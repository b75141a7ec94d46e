"""Both UI languages: a string without a translation shows its source text, never a blank."""

import pytest
from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QLabel,
    QListWidget,
    QMenuBar,
    QTabWidget,
    QToolBar,
    QTreeWidget,
    QWidget,
)
from test_gui import window  # noqa: F401 (the fixture: waits for its threads before closing)

pytestmark = pytest.mark.gui


def visible_texts(root: QWidget) -> list[tuple[str, str]]:
    """(which widget, its text) for every visible button, label, tab, menu or toolbar action,
    combo-box and list row and column header under `root`, in a fixed order."""
    out: list[tuple[str, str]] = []
    for w in [root, *root.findChildren(QWidget)]:
        if not w.isVisibleTo(root) and w is not root:
            continue
        name = f"{type(w).__name__}/{w.objectName()}"
        if isinstance(w, QAbstractButton) and w.icon().isNull():
            out.append((name, w.text()))
        elif isinstance(w, QLabel) and w.pixmap().isNull():
            out.append((name, w.text()))
        elif isinstance(w, QTabWidget):
            out += [(f"{name} tab {i}", w.tabText(i)) for i in range(w.count())]
        elif isinstance(w, (QMenuBar, QToolBar)):
            out += [(f"{name} action {i}", a.text()) for i, a in enumerate(w.actions()) if not a.isSeparator()]
        elif isinstance(w, QComboBox):
            out += [(f"{name} item {i}", w.itemText(i)) for i in range(w.count())]
        elif isinstance(w, QListWidget):
            out += [(f"{name} row {i}", w.item(i).text()) for i in range(w.count())]
        elif isinstance(w, QTreeWidget):
            header = w.headerItem()
            out += [(f"{name} column {i}", header.text(i)) for i in range(header.columnCount())]
    return out


def blanks(en: list[tuple[str, str]], zh: list[tuple[str, str]]) -> list[str]:
    """Widgets with text in one language and none in the other."""
    assert [w for w, _ in en] == [w for w, _ in zh]  # the same widgets, walked in the same order
    return [f"{w}: {a!r} / {b!r}" for (w, a), (_, b) in zip(en, zh) if bool(a.strip()) != bool(b.strip())]


def _in(window, qtbot, lang: str) -> None:
    from app.gui.settings import AppSettings

    window.apply_settings(AppSettings(**{**window.settings.__dict__, "ui_language": lang}))
    qtbot.wait(50)


def test_no_visible_string_is_blank_in_either_language(qtbot, window):  # noqa: F811
    from app.gui.dialogs.settings import SettingsDialog

    # Qt shows "<title> — Zhiku 知库": the title is the knowledge base, so Zhiku is said once
    assert window.windowTitle() == "gui"
    seen = {}
    for lang in ("en", "zh_CN"):
        _in(window, qtbot, lang)
        dialog = SettingsDialog(window.settings, window)
        dialog.show()
        qtbot.wait(20)
        seen[lang] = (visible_texts(window), visible_texts(dialog))
        dialog.close()
    for part in (0, 1):
        assert not blanks(seen["en"][part], seen["zh_CN"][part])
    # the way back to English is readable in the Chinese UI, and the dialog can be confirmed
    _in(window, qtbot, "zh_CN")
    dialog = SettingsDialog(window.settings, window)
    texts = [t for _, t in visible_texts(dialog)]
    assert "English" in texts and "简体中文" in texts and "确定" in texts
    dialog.close()


def test_the_add_documents_dialog_offers_every_type_that_is_read():
    from app.gui.main_window import file_filter

    documents = file_filter().split(";;")[0]
    for suffix in ("*.pdf", "*.docx", "*.pptx", "*.xlsx", "*.epub", "*.png", "*.jpg", "*.eml", "*.csv"):
        assert suffix in documents.split("(")[1].rstrip(")").split(), suffix


def test_a_passage_is_found_through_ligatures_hyphenation_and_spacing():
    from app.gui.widgets.viewer import locate

    page = "The e\ufb03cient retrieval algo-\nrithm of the ﬁrst   system\u00adatic study"
    at = locate(page, "efficient retrieval algorithm of the first systematic study")
    assert at is not None and page[at[0]:at[1]].startswith("e\ufb03cient") and page[at[1] - 5:at[1]] == "study"
    assert locate(page, "a sentence that is not there at all") is None


def test_a_highlight_deep_in_a_long_text_is_scrolled_into_view(qtbot, window):  # noqa: F811
    from PySide6.QtGui import QTextCursor

    lines = [f"第{i}行：普通的内容。" for i in range(600)]
    lines[420] = "被引用的段落在这里：知库把向量保存在 SQLite 里。"
    text = "\n".join(lines)
    window.viewer.show_source("/tmp/long.txt", 1, lines[420], text)
    qtbot.waitUntil(lambda: window.viewer.text.verticalScrollBar().value() > 0, timeout=5_000)
    qtbot.wait(50)
    viewer = window.viewer.text
    cursor = QTextCursor(viewer.document())
    cursor.setPosition(text.index(lines[420]))
    rect = viewer.cursorRect(cursor)
    assert 0 <= rect.top() and rect.bottom() < viewer.viewport().height() * 0.6, rect


def test_a_first_start_explains_the_three_steps_and_tries_the_sample_documents(qtbot, zhiku_home):
    from PySide6.QtCore import QUrl
    from test_gui import open_window

    from kb.knowledge_base import list_names

    w = open_window(qtbot)
    try:
        assert list_names() == []
        text = w.chat.view.toPlainText()
        assert "Welcome to Zhiku" in text and "Try with sample documents" in text
        w.chat.view.anchorClicked.emit(QUrl("samples:"))
        # no name asked for: a knowledge base under a default name, renamable later
        assert list_names() == ["My documents"] and w.kb is not None and w.kb.name == "My documents"
        qtbot.waitUntil(lambda: w.indexing.worker is not None and w.indexing.worker.isFinished(), timeout=300_000)
        qtbot.waitUntil(lambda: "Welcome to Zhiku" not in w.chat.view.toPlainText(), timeout=10_000)
        assert set(w.docs.rows()) == {"知库说明.txt", "model-notes.md", "demo-report.pdf"}
        assert w.kb_list.default_name() == "My documents 2"
    finally:
        qtbot.waitUntil(lambda: w.warm is None or w.warm.isFinished(), timeout=120_000)
