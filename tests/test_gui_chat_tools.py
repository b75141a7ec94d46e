"""The chat tools people expect: regenerate, edit and resend, ask only some documents; and a narrow
Documents pane that keeps names readable."""

import pytest

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.gui

from PySide6.QtCore import Qt, QUrl  # noqa: E402
from test_gui import _docs, _index, window  # noqa: E402,F401 (the fixture)


def _ask(qtbot, win, question):
    win.chat.input.setPlainText(question)
    qtbot.keyClick(win.chat.input, Qt.Key_Return)
    qtbot.waitUntil(lambda: not win.chat.busy and bool(win.chat.messages[-1]["content"]), timeout=180_000)


def _stored(win):
    return [(m.role, m.content) for m in win.kb.conversations.messages(win.answering.conversation)]


def test_an_edited_question_replaces_itself_and_what_followed_and_regenerate_answers_again(
        qtbot, window, tmp_path):  # noqa: F811
    _index(qtbot, window, [_docs(tmp_path)])
    _ask(qtbot, window, "What is the default chunk size?")
    _ask(qtbot, window, "Where does Zhiku keep its vectors?")
    assert [r for r, _ in _stored(window)] == ["user", "assistant"] * 2
    assert window.chat.view.toPlainText().count("Regenerate") == 1  # under the last answer only

    window.chat.view.anchorClicked.emit(QUrl("edit:0"))
    assert window.chat.input.toPlainText() == "What is the default chunk size?"
    assert window.chat.edit_bar.isVisible()
    window.chat.input.setPlainText("知库会联网吗？")
    qtbot.keyClick(window.chat.input, Qt.Key_Return)
    qtbot.waitUntil(lambda: not window.chat.busy and bool(window.chat.messages[-1]["content"]), timeout=180_000)
    assert not window.chat.edit_bar.isVisible()
    stored = _stored(window)
    assert [r for r, _ in stored] == ["user", "assistant"] and stored[0][1] == "知库会联网吗？"
    assert [m["role"] for m in window.chat.messages] == ["user", "assistant"]
    assert window.chat.chats.currentText() == "知库会联网吗？"  # the first question names the chat
    assert any(s["name"] == "隐私.txt" for s in window.chat.messages[-1]["sources"])

    old = window.kb.conversations.messages(window.answering.conversation)[-1].created
    window.chat.view.anchorClicked.emit(QUrl("regenerate:"))
    assert window.chat.busy and window.chat.messages[-1]["content"] == ""
    qtbot.waitUntil(lambda: not window.chat.busy and bool(window.chat.messages[-1]["content"]), timeout=180_000)
    stored = _stored(window)
    assert [r for r, _ in stored] == ["user", "assistant"] and stored[1][1] == window.chat.last_answer()
    # a new answer replaced the old one (its text may match)
    assert window.kb.conversations.messages(window.answering.conversation)[-1].created > old

    # Esc leaves an edit without sending it
    window.chat.view.anchorClicked.emit(QUrl("edit:0"))
    qtbot.keyClick(window.chat.input, Qt.Key_Escape)
    assert window.chat.editing is None and not window.chat.edit_bar.isVisible()
    assert window.chat.input.toPlainText() == ""


def test_asking_only_some_documents_cites_only_them_until_cleared(qtbot, window, tmp_path):  # noqa: F811
    d = _docs(tmp_path)
    _index(qtbot, window, [d])
    window.docs.scope_requested.emit([str(d / "隐私.txt")])
    assert window.chat.scope_bar.isVisible() and "隐私.txt" in window.chat.scope_text.text()
    _ask(qtbot, window, "What is the default chunk size?")  # only report.pdf says
    names = {s["name"] for s in window.chat.messages[-1]["sources"]}
    assert names == {"隐私.txt"}  # sources or "possibly related" passages: only the chosen document's

    window.chat.scope_all.click()
    assert not window.chat.scope_bar.isVisible() and window.answering.scope is None
    window.answering.new_chat()
    _ask(qtbot, window, "What is the default chunk size?")
    assert "report.pdf" in {s["name"] for s in window.chat.messages[-1]["sources"]}

    # a folder stands for every document under it
    window.answering.ask_only([str(d)])
    assert window.chat.scope_text.text().startswith("Asking only 2 documents")


def test_a_narrow_documents_pane_gives_the_name_room_first(qtbot, window, tmp_path):  # noqa: F811
    _index(qtbot, window, [_docs(tmp_path)])
    window.resize(1300, 800)
    tree, header = window.docs.tree, window.docs.tree.header()

    def pane(width):
        window.splitter.setSizes([200, width, 1300 - 200 - width])
        qtbot.wait(30)

    pane(600)
    assert not header.isSectionHidden(1) and not header.isSectionHidden(2)
    pane(280)
    assert header.isSectionHidden(1)  # Type made room
    assert header.sectionSize(0) >= tree.fontMetrics().horizontalAdvance("report.pdf")
    pane(600)
    assert not header.isSectionHidden(1)


def test_a_pause_in_typing_prefills_the_prompt_so_enter_only_processes_the_question(
        qtbot, window, tmp_path):  # noqa: F811
    _index(qtbot, window, [_docs(tmp_path)])
    window.answering.load_llm()
    qtbot.waitUntil(lambda: window.answering.llm is not None, timeout=120_000)
    question = "What is the default chunk size?"
    qtbot.keyClicks(window.chat.input, question)  # typed, then a pause
    qtbot.waitUntil(lambda: window.answering.prefill_worker is not None, timeout=5_000)
    qtbot.waitUntil(lambda: window.answering.prefill_worker.isFinished(), timeout=120_000)
    assert window.answering.prefill_worker.result > 50  # tokens: the system prompt and the evidence
    before = len(window.answering.llm.reuse_log)
    qtbot.keyClick(window.chat.input, Qt.Key_Return)
    qtbot.waitUntil(lambda: not window.chat.busy and bool(window.chat.messages[-1]["content"]), timeout=180_000)
    reused, total = list(window.answering.llm.reuse_log)[before]  # the answer's first prompt
    assert total - reused < 60  # only the question and the reminder were left to process
    assert "256" in window.chat.messages[-1]["content"]
