"""Checked answers in the window: unsupported sentences marked with why, supported ones open their
passage, and a question the documents cannot answer shows "possibly related" passages."""

import dataclasses

import pytest

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.gui

from PySide6.QtCore import Qt, QUrl  # noqa: E402
from PySide6.QtWidgets import QToolTip  # noqa: E402
from test_gui import _docs, _index, window  # noqa: E402,F401 (the fixture)


def _checked_answer(qtbot, win, question, answer):
    """Put a question and an answer on screen the way the window does after an answer streams,
    with the real retriever's sources and the real checker's verdicts."""
    from kb.answering.answer import Answerer, clean_answer

    win.answering.load_llm()
    qtbot.waitUntil(lambda: win.answering.llm is not None, timeout=120_000)
    answerer = Answerer(win.kb, win.answering.llm, answerable_threshold=None)
    sources = answerer.evidence(win.kb.search(question, k=3), 300, question)
    sources = [dataclasses.replace(s, number=n) for n, s in enumerate(sources, 1)]
    text = clean_answer(answer, len(sources))
    checks = answerer.checker.check(text, sources, "en", question)
    win.chat.add_question(question)
    win.chat.set_sources([dataclasses.asdict(s) for s in sources])
    win.chat.finish(text, checks=[dataclasses.asdict(c) for c in checks])
    return checks


def test_an_unsupported_sentence_is_marked_and_says_why(qtbot, window, tmp_path):  # noqa: F811
    _index(qtbot, window, [_docs(tmp_path)])
    checks = _checked_answer(qtbot, window, "What is the default chunk size?",
                             "The default chunk size is 256 tokens [1]. The default chunk size was 512 tokens "
                             "in 2019 [1].")
    assert [c.status for c in checks] == ["supported", "unsupported"]
    html = window.chat.view.toHtml()
    shown = window.chat.view.toPlainText()
    assert "1 of 2 sentences could not be checked against your documents" in shown
    assert "#b3261e" in html.lower() and "check:1:1" in html  # the unsupported sentence, marked and linked
    window.chat.view.highlighted.emit(QUrl("check:1:1"))
    assert "512" in QToolTip.text() or "2019" in QToolTip.text()

    # clicking the supported sentence opens the viewer at the passage that backs it
    window.chat.view.anchorClicked.emit(QUrl("check:1:0"))
    viewer = window.viewer
    assert viewer.isVisible() and viewer.page == 2 and viewer.highlight_rects


def test_a_checked_answer_keeps_its_marks_when_the_conversation_is_reopened(qtbot, window, tmp_path):  # noqa: F811
    _index(qtbot, window, [_docs(tmp_path)])
    checks = _checked_answer(qtbot, window, "What is the default chunk size?", "The chunk size is 1024 tokens [1].")
    conv = window.kb.conversations
    cid = conv.create("chunk size").id
    conv.add(cid, "assistant", window.chat.last_answer(), window.chat.messages[-1]["sources"],
             [dataclasses.asdict(c) for c in checks])
    window.answering.show_conversation(cid)
    assert window.chat.messages[0]["checks"][0]["status"] == "unsupported"
    assert "1 of 1 sentences could not be checked" in window.chat.view.toPlainText()


def test_a_question_the_documents_cannot_answer_shows_possibly_related_passages(qtbot, window, tmp_path):  # noqa: F811
    _index(qtbot, window, [_docs(tmp_path)])
    window.chat.input.setPlainText("Who won the 1998 football world cup?")
    qtbot.keyClick(window.chat.input, Qt.Key_Return)
    qtbot.waitUntil(lambda: not window.chat.busy, timeout=120_000)
    answer = window.chat.messages[-1]
    assert answer["content"] == "I couldn't find anything about this in your documents."
    assert answer["related"] and answer["sources"]
    assert "Possibly related" in window.chat.view.toPlainText()
    # the conversation, saved as it ran, exports with its question and the related passages
    assert window.chat.export_btn.isEnabled()
    window.answering.export_conversation(tmp_path / "chat.md")
    md = (tmp_path / "chat.md").read_text(encoding="utf-8")
    assert "## Who won the 1998 football world cup?" in md and "Possibly related:" in md
    # reopening the app shows the conversation used last
    from app.gui.main_window import MainWindow

    window.save_state()
    again = MainWindow()
    qtbot.addWidget(again)
    again.show()
    try:
        qtbot.waitUntil(lambda: bool(again.chat.messages), timeout=30_000)
        assert again.chat.messages[0]["content"] == "Who won the 1998 football world cup?"
    finally:
        qtbot.waitUntil(lambda: again.warm is None or again.warm.isFinished(), timeout=120_000)
        again.close()


@pytest.mark.parametrize("ui,question,answer", [
    ("zh_CN", "2018年上海车展什么时候开幕？", "2018年上海车展于4月25日开幕[1]。"),
    ("en", "When did the 2018 Shanghai Auto Show open?", "The 2018 Shanghai Auto Show opened on April 25.[1]"),
])
def test_an_answer_whose_direct_claim_fails_is_shown_as_not_found_with_the_attempt_folded(
        qtbot, window, tmp_path, ui, question, answer):  # noqa: F811
    """The reply the window gets when the checks turn an answer away: the not-found message, the
    passages as "possibly related", and the model's attempt folded, marked, kept and exported."""
    from test_claims import AUTOSHOWS_EN, AUTOSHOWS_ZH

    from app.gui.i18n import tr
    from app.gui.settings import AppSettings
    from kb.answering.answer import NOT_FOUND, Answerer

    window.apply_settings(AppSettings(**{**window.settings.__dict__, "ui_language": ui}))
    d = tmp_path / "news"
    d.mkdir()
    (d / "autoshows.txt").write_text(AUTOSHOWS_ZH if ui == "zh_CN" else AUTOSHOWS_EN, encoding="utf-8")
    _index(qtbot, window, [d])
    window.answering.load_llm()
    qtbot.waitUntil(lambda: window.answering.llm is not None, timeout=120_000)
    # the answer the model might give, finished by the real answerer: retrieval, cleaning, checks
    stream = Answerer(window.kb, window.answering.llm, answerable_threshold=None).ask(question)
    result = stream._finish(answer)
    assert result.not_found and result.rejected_by == "check" and result.attempt is not None

    conv = window.kb.conversations
    window.answering.conversation = conv.create(question).id
    conv.add(window.answering.conversation, "user", question)
    window.chat.add_question(question)
    window.chat.set_sources([dataclasses.asdict(s) for s in result.sources])
    window.answering._on_answer_done(result)

    lang = "zh" if ui == "zh_CN" else "en"
    shown = window.chat.view.toPlainText()
    assert NOT_FOUND[lang] in shown and tr("Possibly related") in shown
    said = "上海车展于4月25日" if lang == "zh" else "Shanghai Auto Show opened on April 25"
    assert tr("Show the model's attempt") in shown and said not in shown  # folded
    last = len(window.chat.messages) - 1
    window.chat.view.anchorClicked.emit(QUrl(f"attempt:{last}"))  # unfold
    shown = window.chat.view.toPlainText()
    assert tr("Hide the model's attempt") in shown and said in shown
    assert "#b3261e" in window.chat.view.toHtml().lower()  # its failed sentence, marked
    assert ("北京" if lang == "zh" else "Beijing") in shown  # and why: whose date it is

    # kept with the conversation and exported, folded, beside the not-found reply
    window.answering.show_conversation(window.answering.conversation)
    kept = window.chat.messages[-1]
    assert kept["content"] == NOT_FOUND[lang] and kept["related"] and kept["attempt"]["text"] == result.attempt.text
    window.answering.export_conversation(tmp_path / "chat.md")
    md = (tmp_path / "chat.md").read_text(encoding="utf-8")
    assert NOT_FOUND[lang] in md and "<details><summary>The model's attempt — not backed by your documents" in md
    assert result.attempt.text in md and "Possibly related:" in md
