"""The chat: a Markdown transcript with citation links and source cards, and the question box."""

from __future__ import annotations

import html
import re
import time

from PySide6.QtCore import QEvent, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QCursor, QGuiApplication, QTextDocument
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTextBrowser,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from app.gui.widgets.checked_answer import attempt_html, checked_html, summary_line, tooltip
from app.gui.i18n import place, tr

_CITE = re.compile(r"[\[【](\d+)[\]】]")
_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.S)
PICTURE_HEIGHT = 72
# Prefill after this pause: shorter starts retrieval and prompt processing on every word (each
# costs ~0.1 s of retrieval and cancels the prompt work before), longer misses the pause before Enter.
TYPING_PAUSE_MS = 600
MIN_TYPED_CHARS = 4


def markdown_html(text: str) -> str:
    """Markdown to an HTML fragment, as QTextBrowser renders it."""
    doc = QTextDocument()
    doc.setMarkdown(text)
    m = _BODY.search(doc.toHtml())
    return m.group(1) if m else html.escape(text)


def link_citations(text: str, message: int) -> str:
    """[n] becomes a link to source n of this message."""
    return _CITE.sub(lambda m: f"[\\[{m.group(1)}\\]](cite:{message}:{m.group(1)})", text)


class QuestionBox(QPlainTextEdit):
    """Enter sends, Shift+Enter adds a line; Esc stops a running answer."""

    submitted = Signal()
    escape = Signal()

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.key() in (Qt.Key_Return, Qt.Key_Enter) and not event.modifiers() & Qt.ShiftModifier:
            self.submitted.emit()
            return
        if event.key() == Qt.Key_Escape:
            self.escape.emit()
            return
        super().keyPressEvent(event)


class ChatPanel(QWidget):
    """Shows one conversation; emits `ask(question)`, `stop()`, `open_source(message, n)`."""

    ask = Signal(str)
    stop = Signal()
    open_source = Signal(int, int)
    open_support = Signal(int, int)  # message, sentence: the passage that backs a checked sentence
    new_chat = Signal()
    delete_chat = Signal()
    export_chat = Signal()
    try_samples = Signal()
    chat_selected = Signal(int)
    regenerate = Signal()  # answer the last question again
    resend = Signal(int, str)  # message index of an edited question, its new text
    clear_scope = Signal()  # "Ask all documents"
    typing = Signal(str)  # the question so far, after a pause in typing (the model may prefill it)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.messages: list[dict] = []  # {"role", "content", "sources": [dict], "streaming": bool}
        self.busy = False
        self.pictures_for = None  # sources -> sources with "pictures" (thumbnail paths of the cited pages)
        self.welcome = False  # an empty knowledge base: the transcript explains the three steps
        self.editing: int | None = None  # the message index of a question being edited
        self.chats = QComboBox()
        self.chats.currentIndexChanged.connect(self._chat_changed)
        self.new_btn, self.del_btn, self.export_btn = QPushButton(), QPushButton(), QPushButton()
        self.new_btn.clicked.connect(self.new_chat.emit)
        self.del_btn.clicked.connect(self.delete_chat.emit)
        self.export_btn.clicked.connect(self.export_chat.emit)
        self.chats_label = QLabel()
        top = QHBoxLayout()
        top.addWidget(self.chats_label)
        top.addWidget(self.chats, 1)
        top.addWidget(self.new_btn)
        top.addWidget(self.export_btn)
        top.addWidget(self.del_btn)

        self.banner = QFrame()  # first-run and model problems
        self.banner.setFrameShape(QFrame.StyledPanel)
        self.banner_text = QLabel()
        self.banner_text.setWordWrap(True)
        self.banner_button = QPushButton()
        self.banner_import = QPushButton()  # a models bundle: how a packaged app gets its models
        b = QHBoxLayout(self.banner)
        b.addWidget(self.banner_text, 1)
        b.addWidget(self.banner_import)
        b.addWidget(self.banner_button)
        self.banner.hide()

        self.view = QTextBrowser()
        self.view.setOpenLinks(False)
        self.view.anchorClicked.connect(self._link)
        self.view.highlighted.connect(self._hover)
        self.input = QuestionBox()
        self.input.setAcceptDrops(False)  # dropped files go to the window, not into the question
        self.input.setFixedHeight(72)
        self.input.submitted.connect(self.submit)
        # a pause in typing lets the window start on the question before Enter (kb.answering.answer.prefill)
        self._typing_timer = QTimer(self, singleShot=True, interval=TYPING_PAUSE_MS)
        self._typing_timer.timeout.connect(self._typed)
        self.input.textChanged.connect(self._typing_timer.start)
        self.input.escape.connect(self._escape)
        self.send_btn = QPushButton()
        self.send_btn.clicked.connect(self._send_or_stop)
        # "ask only these documents": what the questions are limited to, and the way back
        self.scope_bar = QFrame()
        self.scope_text = QLabel()
        self.scope_text.setTextFormat(Qt.PlainText)
        self.scope_all = QPushButton()
        self.scope_all.clicked.connect(self.clear_scope.emit)
        sb = QHBoxLayout(self.scope_bar)
        sb.setContentsMargins(0, 0, 0, 0)
        sb.addWidget(self.scope_text, 1)
        sb.addWidget(self.scope_all)
        self.scope_bar.hide()
        self.scope_names: list[str] = []
        self.edit_bar = QFrame()  # shown while a question is being edited
        self.edit_text = QLabel()
        self.edit_cancel = QPushButton()
        self.edit_cancel.clicked.connect(self.cancel_edit)
        eb = QHBoxLayout(self.edit_bar)
        eb.setContentsMargins(0, 0, 0, 0)
        eb.addWidget(self.edit_text, 1)
        eb.addWidget(self.edit_cancel)
        self.edit_bar.hide()
        bottom = QHBoxLayout()
        bottom.addWidget(self.input, 1)
        bottom.addWidget(self.send_btn)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addWidget(self.banner)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.scope_bar)
        layout.addWidget(self.edit_bar)
        layout.addLayout(bottom)
        self._render_timer = QTimer(self, singleShot=True, interval=50)
        self._render_timer.timeout.connect(self.render)
        self.retranslate()

    # ---- language ---------------------------------------------------------------------------
    def retranslate(self) -> None:
        """Set every visible text in the current language."""
        self.chats_label.setText(tr("Chats"))
        self.new_btn.setText(tr("New chat"))
        self.del_btn.setText(tr("Delete chat"))
        self.export_btn.setText(tr("Export…"))
        self.export_btn.setToolTip(tr("Save this conversation as Markdown, with its sources"))
        self.send_btn.setText(tr("Stop") if self.busy else tr("Send"))
        self.edit_text.setText(tr("Editing your question: sending it replaces it and everything after it."))
        self.edit_cancel.setText(tr("Cancel"))
        self.scope_all.setText(tr("Ask all documents"))
        self.set_scope(self.scope_names)
        self.render()

    def set_scope(self, names: list[str]) -> None:
        """Show which documents questions are limited to (none: the whole knowledge base)."""
        self.scope_names = list(names)
        self.scope_bar.setVisible(bool(names))
        if names:
            shown = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
            self.scope_text.setText(tr("Asking only {n} documents: {names}", n=len(names), names=shown))
            self.scope_text.setToolTip("\n".join(names))
            self.input.setPlaceholderText(tr("Ask a question about the selected documents…"))
        else:
            self.input.setPlaceholderText(tr("Ask a question about your documents…"))

    def edit(self, index: int) -> None:
        """Put question `index` back in the box; sending it replaces it and what came after."""
        if self.busy or not (0 <= index < len(self.messages)) or self.messages[index]["role"] != "user":
            return
        self.editing = index
        self.input.setPlainText(self.messages[index]["content"])
        self.input.moveCursor(self.input.textCursor().MoveOperation.End)
        self.input.setFocus()
        self.edit_bar.show()

    def cancel_edit(self) -> None:
        """Leave editing; the question box is emptied."""
        if self.editing is not None:
            self.editing = None
            self.input.clear()
        self.edit_bar.hide()

    def _typed(self) -> None:
        text = self.input.toPlainText().strip()
        if len(text) >= MIN_TYPED_CHARS and not self.busy:
            self.typing.emit(text)

    def _escape(self) -> None:
        if self.editing is not None:
            self.cancel_edit()
        else:
            self.stop.emit()

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.type() == QEvent.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    # ---- conversations ----------------------------------------------------------------------
    def set_chats(self, chats: list, current: int | None) -> None:
        """Fill the conversation picker: (id, title) pairs."""
        self.chats.blockSignals(True)
        self.chats.clear()
        for cid, title in chats:
            self.chats.addItem(title, cid)
        idx = self.chats.findData(current) if current is not None else -1
        self.chats.setCurrentIndex(idx)
        self.chats.blockSignals(False)
        self.del_btn.setEnabled(current is not None)
        self.export_btn.setEnabled(current is not None)

    def _chat_changed(self, index: int) -> None:
        if index >= 0:
            self.chat_selected.emit(self.chats.itemData(index))

    # ---- messages ---------------------------------------------------------------------------
    def set_messages(self, messages: list[dict]) -> None:
        """Show a stored conversation."""
        self.cancel_edit()
        self.messages = [dict(m, streaming=False) for m in messages]
        if self.pictures_for is not None:
            for m in self.messages:
                m["sources"] = self.pictures_for(m.get("sources") or [])
        self.render()

    def add_question(self, text: str) -> None:
        """Show the user's question and an empty, streaming answer under it."""
        self.messages.append({"role": "user", "content": text, "sources": []})
        self.messages.append({"role": "assistant", "content": "", "sources": [], "streaming": True,
                              "asked": time.monotonic(), "tokens": 0})
        self.render()

    def set_sources(self, sources: list[dict]) -> None:
        """The running answer's sources (shown before its first token)."""
        if not self._answering():
            return
        self.messages[-1]["sources"] = self.pictures_for(sources) if self.pictures_for is not None else sources
        self.render()

    def append_token(self, piece: str) -> None:
        """Add streamed text to the running answer (redrawn at most every 50 ms)."""
        if not self._answering():
            return
        last = self.messages[-1]
        last["content"] += piece
        last.setdefault("first", time.monotonic())
        last["tokens"] = last.get("tokens", 0) + 1
        if not self._render_timer.isActive():
            self._render_timer.start()

    def finish(self, text: str | None = None, stopped: bool = False, checks: list[dict] | None = None,
               related: list[dict] | None = None, attempt: dict | None = None) -> None:
        """The running answer is complete: its final text, each sentence's check, and, for a
        not-found answer, the passages that came closest ("possibly related") and the attempt
        the checks turned away (shown folded)."""
        if not self._answering():
            return
        last = self.messages[-1]
        if text is not None:
            last["content"] = text
        last["checks"] = checks or []
        last["attempt"] = attempt
        if related:
            last["sources"] = self.pictures_for(related) if self.pictures_for is not None else related
            last["related"] = True
        if stopped:
            last["content"] += " " + tr("(stopped)")
        last["streaming"] = False
        last["ended"] = time.monotonic()
        self.render()

    def _answering(self) -> bool:
        # the user may have switched conversation or knowledge base while an answer streamed
        return bool(self.messages) and self.messages[-1]["role"] == "assistant"

    def set_busy(self, busy: bool) -> None:
        """Switch the Send button into Stop while an answer runs."""
        self.busy = busy
        self.send_btn.setText(tr("Stop") if busy else tr("Send"))
        self.render()  # Edit and Regenerate are offered only between answers

    def last_answer(self) -> str:
        """The text of the latest answer."""
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "assistant"), "")

    def submit(self) -> None:
        """Send the question in the box."""
        text = self.input.toPlainText().strip()
        if text and not self.busy:
            self._typing_timer.stop()
            editing, self.editing = self.editing, None
            self.input.clear()
            self.edit_bar.hide()
            if editing is not None:
                self.resend.emit(editing, text)
            else:
                self.ask.emit(text)

    def _send_or_stop(self) -> None:
        if self.busy:
            self.stop.emit()
        else:
            self.submit()

    def _link(self, url: QUrl) -> None:
        scheme, rest = url.scheme(), url.path()
        if scheme in ("cite", "source"):
            message, n = (int(x) for x in rest.split(":"))
            self.open_source.emit(message, n)
        elif scheme == "check":
            message, j = (int(x) for x in rest.split(":"))
            check = self.check_at(message, j)
            if check and check["status"] == "supported" and check.get("support"):
                self.open_support.emit(message, j)
        elif scheme == "attempt":  # unfold / fold the answer the checks turned away
            m = self.messages[int(rest)]
            m["attempt_open"] = not m.get("attempt_open")
            self.render()
        elif scheme == "samples":
            self.try_samples.emit()
        elif scheme == "copy":
            QGuiApplication.clipboard().setText(self.messages[int(rest)]["content"])
        elif scheme == "edit":
            self.edit(int(rest))
        elif scheme == "regenerate" and not self.busy:
            self.regenerate.emit()

    def check_at(self, message: int, j: int) -> dict | None:
        """Sentence `j`'s check in message `message`, if there is one."""
        checks = self.messages[message].get("checks") or [] if 0 <= message < len(self.messages) else []
        return checks[j] if 0 <= j < len(checks) else None

    def _hover(self, url: QUrl) -> None:
        if url.scheme() == "check":
            message, j = (int(x) for x in url.path().split(":"))
            check = self.check_at(message, j)
            if check:
                QToolTip.showText(QCursor.pos(), tooltip(check), self.view)
                return
        QToolTip.hideText()

    def render(self) -> None:
        """Redraw the transcript."""
        parts = []
        pal = self.palette()
        muted = pal.color(pal.ColorRole.PlaceholderText).name()
        card = pal.color(pal.ColorRole.AlternateBase).name()
        if not self.messages and self.welcome:
            parts.append(welcome_html(muted))
        for i, m in enumerate(self.messages):
            if m["role"] == "user":
                edit = "" if self.busy else (f" &nbsp; <a href='edit:{i}' style='font-weight:normal'>"
                                             f"{tr('Edit')}</a>")
                parts.append(f"<p style='margin-top:14px'><b>{tr('You')}</b>{edit}</p>"
                             f"<p>{html.escape(m['content']).replace(chr(10), '<br>')}</p>")
                continue
            if m.get("checks") and not m.get("streaming"):
                text_color = pal.color(pal.ColorRole.Text).name()
                body = summary_line(m["checks"], muted) + checked_html(m["content"], m["checks"], i, text_color)
            elif m["content"]:
                body = markdown_html(link_citations(m["content"], i))
            else:
                body = f"<p style='color:{muted}'>{tr('Thinking…')}</p>"
            parts.append(f"<p style='margin-top:14px'><b>{tr('Zhiku')}</b></p>{body}")
            if m.get("attempt") and not m.get("streaming"):
                parts.append(attempt_html(m["attempt"], i, bool(m.get("attempt_open")), muted))
            if m["sources"]:
                cards = []
                for s in m["sources"]:
                    snippet = html.escape(" ".join(s["text"].split())[:140])
                    # the pictures on the cited page, each a link to that source like its title
                    thumbs = "".join(
                        f"<a href='source:{i}:{s['number']}'><img src='{QUrl.fromLocalFile(t).toString()}' "
                        f"height='{PICTURE_HEIGHT}'></a>&nbsp;" for t in s.get("pictures") or [])
                    cards.append(
                        f"<tr><td style='background:{card}; padding:6px'>"
                        f"<a href='source:{i}:{s['number']}'>[{s['number']}] {html.escape(s['name'])}</a>"
                        f" · {place(s['path'], s['page'])}<br><span style='color:{muted}'>{snippet}</span>"
                        + (f"<br>{thumbs}" if thumbs else "") + "</td></tr>")
                heading = tr("Possibly related") if m.get("related") else tr("Sources")
                parts.append(f"<p style='color:{muted}'>{heading}</p>"
                             f"<table cellspacing='4' width='100%'>{''.join(cards)}</table>")
            if not m.get("streaming") and m["content"]:
                speed = timing_line(m)
                again = (f" &nbsp; <a href='regenerate:'>{tr('Regenerate')}</a>"
                         if i == len(self.messages) - 1 and not self.busy else "")
                parts.append(f"<p><a href='copy:{i}'>{tr('Copy answer')}</a>{again}"
                             + (f" &nbsp; <span style='color:{muted}'>{speed}</span>" if speed else "") + "</p>")
        bar = self.view.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 4
        self.view.setHtml("".join(parts))
        if at_end:
            bar.setValue(bar.maximum())


def timing_line(message: dict) -> str:
    """"first word after 2.1 s · 14 tokens/s" for an answer streamed in this session, else ""."""
    if "first" not in message or "ended" not in message:
        return ""
    ttft = message["first"] - message["asked"]
    decoding = message["ended"] - message["first"]
    rate = (message["tokens"] - 1) / decoding if message["tokens"] > 1 and decoding > 0 else None
    line = tr("first word after {s} s", s=f"{ttft:.1f}")
    return line + (" · " + tr("{n} tokens/s", n=f"{rate:.0f}") if rate else "")


def welcome_html(muted: str) -> str:
    """What an empty knowledge base shows: the three steps, and a way to try it at once."""
    steps = [tr("Drop files or folders anywhere on this window, or use “Add documents…” (PDF, Word, "
                "PowerPoint, Excel, web pages, notes, e-books, images)."),
             tr("Zhiku reads and indexes them on this computer; nothing leaves it."),
             tr("Ask a question below: each answer cites the file and page it comes from.")]
    return (f"<h3>{tr('Welcome to Zhiku')}</h3><ol>" + "".join(f"<li>{html.escape(s)}</li>" for s in steps)
            + f"</ol><p><a href='samples:'>{tr('Try with sample documents')}</a>"
            f" <span style='color:{muted}'>{tr('(three short documents in Chinese and English)')}</span></p>")
