"""The window's chat part: the chat model, conversations, streaming answers, opening their sources.

`Answering` is one part of the main window, like `Indexing`: it owns the chat panel, the chat
model and its loader, the open conversation, the "ask only these documents" scope and the answer
and prefill threads. It tells the window what it needs through signals (a knowledge base to ask,
documents to index, a page to show) and knows nothing of the document list or the Images tab.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from app.gui.widgets.chat import ChatPanel
from app.gui.i18n import tr
from app.gui.workers import Worker, answer_worker, model_loader, prefill_worker
from kb.storage.contract import StoreError

# Regenerate samples more freely than a first answer (0.2): at 0.2 the 1.5B model gave the
# same answer again, word for word, so the button looked broken.
REGENERATE_TEMPERATURE = 0.7


class Answering(QObject):
    """Everything between a question typed and a cited answer shown."""

    status = Signal(str)  # a line for the status bar
    kb_wanted = Signal()  # a question came with no knowledge base open: the window opens or makes one
    index_requested = Signal(list)  # paths to add (the sample documents)
    page_requested = Signal(str, int, str, str, object)  # path, page, passage, page text, boxes

    def __init__(self, window: QWidget, settings: Callable[[], object]) -> None:
        super().__init__(window)
        self.window, self.settings = window, settings
        self.kb = None
        self.llm = None
        self.loader: Worker | None = None
        self.answerer = None
        self.answerer_key: tuple | None = None
        self.answer_worker: Worker | None = None
        self.answer_started: float | None = None
        self.pending_question: str | None = None
        self.conversation: int | None = None
        self.scope: set[int] | None = None  # "ask only these documents" (None: all of them)
        self.temperature: float | None = None  # of the next answer only (Regenerate)
        self.prefill_worker: Worker | None = None
        self.typed: str | None = None  # text typed while a prefill ran: prefilled next
        self.chat = chat = ChatPanel()
        chat.ask.connect(self.ask)
        chat.stop.connect(self.stop_answer)
        chat.open_source.connect(self.open_source)
        chat.open_support.connect(self.open_support)
        chat.new_chat.connect(self.new_chat)
        chat.delete_chat.connect(self.delete_chat)
        chat.export_chat.connect(self.export_chat_dialog)
        chat.try_samples.connect(lambda: self.index_requested.emit(self._sample_documents()))
        chat.chat_selected.connect(self.show_conversation)
        chat.regenerate.connect(self.regenerate)
        chat.typing.connect(self.prefill)
        chat.resend.connect(self.resend)
        chat.clear_scope.connect(self.clear_scope)

    @property
    def busy(self) -> bool:
        """True while an answer is being written."""
        return self.answer_worker is not None and self.answer_worker.isRunning()

    @property
    def model_name(self) -> str | None:
        """The loaded chat model's name (None before it is loaded)."""
        return self.llm.model_name if self.llm is not None else None

    def set_kb(self, kb) -> None:
        """Switch to a knowledge base: its last conversation is shown where it was left."""
        self.kb = kb
        self.conversation = None
        self.clear_scope()
        self._reload_chats()
        self.chat.set_messages([])
        self._restore_last_conversation()
        self.update_welcome()

    def release_model(self) -> None:
        """Unload the chat model (its settings changed): the next question loads it again."""
        if self.llm is not None and not self.busy:
            self.llm.close()
            self.llm = None

    def stop_for_quit(self) -> None:
        """Stop the answer and the prefill threads and close the chat model (the window is closing)."""
        for worker in (self.answer_worker, self.prefill_worker):
            if worker is not None and worker.isRunning():
                worker.stop()
                worker.wait(2000)
        if self.llm is not None:  # one still loading is closed at exit (models.llm.close_all)
            self.llm.close(2.0)  # an answer thread that did not let go is left to the process's end
            self.llm = None

    def _has_kb(self) -> bool:
        if self.kb is None:
            self.kb_wanted.emit()  # connected directly: the window has called set_kb when this returns
        return self.kb is not None

    @staticmethod
    def _sample_documents() -> list:
        from app.demo import write_documents
        from models.paths import data_dir

        return write_documents(data_dir() / "samples")

    def load_llm(self) -> None:
        """Start loading the chat model in the background (once)."""
        if self.llm is not None or (self.loader and self.loader.isRunning()):
            return
        s = self.settings()
        self.status.emit(tr("Loading models…"))
        lang = s.answer_language if s.answer_language in ("zh", "en") else (
            "en" if s.ui_language == "en" else "zh")
        self.loader = model_loader(s.llm_name or None, s.n_ctx, s.threads or None, s.gpu_layers,
                                   self.kb.embedder if self.kb else None, self, lang=lang, server=s.server())
        self.loader.finished_ok.connect(self._on_llm_loaded)
        self.loader.failed.connect(self._on_llm_failed)
        self.loader.start()

    def _on_llm_loaded(self, llm) -> None:
        self.llm = llm
        self.status.emit(f"{tr('Ready')} · {llm.model_name}")
        if self.pending_question:
            q, self.pending_question = self.pending_question, None
            self._start_answer(q)

    def _on_llm_failed(self, message: str) -> None:
        self.pending_question = None
        self.chat.set_busy(False)
        self.chat.finish(f"**{tr('Could not load the chat model')}**: {message}")
        self.status.emit(tr("Could not load the chat model"))

    # ---- chat -------------------------------------------------------------------------------
    def _reload_chats(self) -> None:
        chats = [(c.id, c.title) for c in self.kb.conversations.list()] if self.kb else []
        self.chat.set_chats(chats, self.conversation)

    def update_welcome(self) -> None:
        """Show the three steps while the open knowledge base (or none) holds no documents."""
        empty = self.kb is None or not self.kb.has_documents()
        if self.chat.welcome != empty:
            self.chat.welcome = empty
            self.chat.render()

    def _restore_last_conversation(self) -> None:
        """Reopening a knowledge base shows the conversation used last, where it was left."""
        latest = self.kb.conversations.list()[:1] if self.kb is not None else []
        if latest:
            self.show_conversation(latest[0].id)
            self._reload_chats()

    def new_chat(self) -> None:
        """Start an empty conversation."""
        self.conversation = None
        self.chat.set_messages([])
        self._reload_chats()
        self.chat.input.setFocus()

    def delete_chat(self) -> None:
        """Delete the current conversation."""
        if self.kb and self.conversation is not None:
            self.kb.conversations.delete(self.conversation)
        self.new_chat()

    def export_chat_dialog(self) -> None:
        """Ask where to save the current conversation as Markdown."""
        from PySide6.QtWidgets import QFileDialog

        if self.kb is None or self.conversation is None:
            return
        title = self.chat.chats.currentText().strip() or "conversation"
        safe = "".join(c if c.isalnum() or c in " -_" else "_" for c in title)[:60].strip() or "conversation"
        path, _ = QFileDialog.getSaveFileName(self.window, tr("Export…"), str(Path.home() / f"{safe}.md"),
                                              "Markdown (*.md)")
        if path:
            self.export_conversation(Path(path))

    def export_conversation(self, path: Path) -> None:
        """Write the current conversation, with its sources, as Markdown to `path`."""
        path.write_text(self.kb.conversations.markdown(self.conversation), encoding="utf-8")
        self.status.emit(tr("Saved {path}", path=str(path)))

    def show_conversation(self, conversation_id: int) -> None:
        """Show a stored conversation."""
        if self.kb is None:
            return
        self.conversation = conversation_id
        msgs = self.kb.conversations.messages(conversation_id)
        self.chat.set_messages([{"id": m.id, "role": m.role, "content": m.content, "sources": m.sources,
                                 "checks": m.checks, "related": m.related, "attempt": m.attempt} for m in msgs])
        self.chat.del_btn.setEnabled(True)

    def prefill(self, text: str) -> None:
        """Start on the question being typed: retrieve and process its prompt into the model's cache."""
        if self.kb is None or self.llm is None or self.chat.busy:
            return
        if self.prefill_worker is not None and self.prefill_worker.isRunning():
            self.typed = text  # one at a time; the latest text goes next
            return

        history = self.kb.conversations.history(self.conversation) if self.conversation is not None else []
        worker = prefill_worker(self._answerer(), text, history, self._answer_language(), self)
        worker.finished.connect(self._prefill_done)
        self.prefill_worker = worker
        worker.start()

    def _prefill_done(self) -> None:
        text, self.typed = self.typed, None
        if text and not self.chat.busy:
            self.prefill(text)

    def _answer_language(self) -> str | None:
        return None if self.settings().answer_language == "auto" else self.settings().answer_language

    def _answerer(self):
        """The answerer of the open conversation (one per conversation: a follow-up then extends
        the prompt llama.cpp has cached)."""
        from kb.answering.answer import Answerer

        s = self.settings()
        key = (id(self.kb), id(self.llm), self.conversation, s.top_k, s.context_tokens, s.answer_tokens,
               frozenset(self.scope or ()))
        if self.answerer is None or self.answerer_key != key:
            self.answerer = Answerer(self.kb, self.llm, top_k=s.top_k, context_tokens=s.context_tokens,
                                     reserve=s.answer_tokens, documents=self.scope)
            self.answerer_key = key
        return self.answerer

    def ask_only(self, paths: list[str]) -> None:
        """Limit questions to these documents (and those under these folders) until cleared."""
        if self.kb is None:
            return
        self.scope = self.kb.scope(paths) or None
        names = sorted(d["name"] for d in self.kb.documents() if self.scope and d["id"] in self.scope)
        self.chat.set_scope(names)
        self.chat.input.setFocus()

    def clear_scope(self) -> None:
        """Ask the whole knowledge base again."""
        self.scope = None
        self.chat.set_scope([])

    def regenerate(self) -> None:
        """Answer the last question again (a little more freely), replacing the last answer."""
        msgs = self.chat.messages
        if self.chat.busy or len(msgs) < 2 or msgs[-1]["role"] != "assistant":
            return
        self.temperature = REGENERATE_TEMPERATURE
        self.resend(len(msgs) - 2, msgs[-2]["content"])

    def resend(self, index: int, question: str) -> None:
        """Replace question `index` and everything after it with `question`, and answer it."""
        msgs = self.chat.messages
        if self.chat.busy or not (0 <= index < len(msgs)):
            return
        if self.kb is not None and self.conversation is not None:
            conv = self.kb.conversations
            if msgs[index].get("id") is not None:
                conv.truncate(self.conversation, msgs[index]["id"])
            if index == 0:
                conv.rename(self.conversation, question)
        self.chat.messages = msgs[:index]
        self.ask(question)
        self._reload_chats()

    def ask(self, question: str) -> None:
        """Answer a question from the current knowledge base (loading the model first if needed)."""
        if not self._has_kb():
            return
        self.chat.add_question(question)
        self.chat.set_busy(True)
        if self.llm is None:
            self.pending_question = question
            self.load_llm()
            return
        self._start_answer(question)

    def _start_answer(self, question: str) -> None:
        conv = self.kb.conversations
        try:  # a knowledge base on a server that stopped answering: say so, ask again later
            history = conv.history(self.conversation) if self.conversation is not None else []
            if self.conversation is None:
                self.conversation = conv.create(question).id
            asked = conv.add(self.conversation, "user", question)
        except StoreError as e:
            self.chat.set_busy(False)
            self.chat.finish(f"**{tr('Something went wrong')}**: {e}")
            return
        if len(self.chat.messages) >= 2:
            self.chat.messages[-2]["id"] = asked.id  # so Edit can cut the conversation from here
        lang = self._answer_language()
        worker = answer_worker(self._answerer(), question, history, lang, self, temperature=self.temperature)
        self.temperature = None
        worker.progress.connect(self._streamed)
        worker.finished_ok.connect(self._on_answer_done)
        worker.failed.connect(lambda msg: self._on_answer_done(None, msg))
        self.answer_worker = worker
        self.answer_started = time.monotonic()
        worker.start()

    def _streamed(self, item) -> None:
        if isinstance(item, list):  # the sources, before the first token
            self.chat.set_sources([dataclasses.asdict(s) for s in item])
        else:
            self.chat.append_token(item)

    def stop_answer(self) -> None:
        """Stop the running answer (Esc or the Stop button)."""
        if self.answer_worker and self.answer_worker.isRunning():
            self.answer_worker.stop()

    def _on_answer_done(self, result, error: str | None = None) -> None:
        self.chat.set_busy(False)
        if result is None:  # what streamed before the failure stays, in the window and the conversation
            came = self.chat.last_answer().strip() if self.chat.messages[-1:] and \
                self.chat.messages[-1]["role"] == "assistant" else ""
            note = f"**{tr('Something went wrong')}**: {error}"
            self.chat.finish(f"{came}\n\n{note}" if came else note)
            if came:
                self._keep_last_answer([], False)
            return
        checks = [dataclasses.asdict(c) for c in result.checks]
        related = [dataclasses.asdict(s) for s in result.related] if result.not_found else None
        attempt = None if result.attempt is None else {
            "text": result.attempt.text, "checks": [dataclasses.asdict(c) for c in result.attempt.checks]}
        self.chat.finish(result.text, stopped=result.stopped, checks=checks, related=related, attempt=attempt)
        self._keep_last_answer(checks, bool(related), attempt)

    def _keep_last_answer(self, checks: list[dict], related: bool, attempt: dict | None = None) -> None:
        if self.kb is not None and self.conversation is not None and self.chat.messages:
            last = self.chat.messages[-1]
            try:
                last["id"] = self.kb.conversations.add(self.conversation, "assistant", self.chat.last_answer(),
                                                       last.get("sources") or [], checks, related, attempt).id
            except StoreError as e:  # the answer stays on screen; only keeping it failed
                self.status.emit(tr("This answer could not be kept in the conversation: {error}").format(error=e))
                return
            self._reload_chats()

    def open_support(self, message: int, sentence: int) -> None:
        """Open the viewer at the passage that backs sentence `sentence` of message `message`."""
        check = self.chat.check_at(message, sentence)
        span = (check or {}).get("support")
        if not span or self.kb is None:
            return
        page_text, boxes = self.kb.page(span["doc_id"], span["page"])
        self.page_requested.emit(span["path"], span["page"], span["text"], page_text or "", boxes)

    def open_source(self, message: int, number: int) -> None:
        """Open the viewer on source `number` of message `message`."""
        sources = self.chat.messages[message]["sources"] if 0 <= message < len(self.chat.messages) else []
        src = next((s for s in sources if s["number"] == number), None)
        if src is None:
            return
        page_text, boxes = self.kb.page(src["doc_id"], src["page"]) if self.kb else ("", [])
        self.page_requested.emit(src["path"], src["page"], src["text"], page_text or "", boxes)
