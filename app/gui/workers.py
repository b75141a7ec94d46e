"""Background work for the GUI: indexing, model loading, answering. The UI thread never waits."""

from __future__ import annotations

import gc
import logging
import os
import sys
import traceback

from PySide6.QtCore import QThread, Signal

log = logging.getLogger("zhiku.gui")


def settle_heap() -> None:
    """Hide the objects alive now (libraries, models) from Python's full garbage collections.

    With torch, transformers and Qt loaded a full collection scans ~470k objects: 250 ms during
    which no thread runs Python, so the window froze mid-indexing (a 297 ms stall in the robustness
    run). Frozen objects are never scanned again; what is allocated later is collected as usual.
    """
    gc.freeze()


def background_priority() -> None:
    """Lower this thread's CPU priority, and so that of the threads and processes it starts.

    On Linux nice values are per thread and inherited: the embedder's workers (PyTorch's are
    created by the thread that first runs a model op, ONNX Runtime's by the thread that loads the
    model) and the parser process all yield to the window's thread, which otherwise waits up to
    half a second for a core on a two-core machine.
    """
    import threading

    if hasattr(os, "setpriority") and sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except OSError:  # not allowed: the work is the same, only less polite
            pass


def at_background_priority(load) -> None:
    """Call `load` in a short-lived thread of background priority and wait for it: the threads a
    model starts while loading (ONNX Runtime's workers) keep that priority for good."""
    import threading

    errors: list[BaseException] = []

    def run() -> None:
        background_priority()
        try:
            load()
        except BaseException as e:  # raised again in the caller's thread
            errors.append(e)

    t = threading.Thread(target=run, name="zhiku-load", daemon=True)
    t.start()
    t.join()
    if errors:
        raise errors[0]


def load_embedder_in_background(answerer) -> None:
    """Load the knowledge base's embedder at background priority if nothing has loaded it yet."""
    embedder = getattr(answerer.kb, "embedder", None)
    if embedder is not None and not embedder.loaded:
        at_background_priority(lambda: embedder.model)


class IndexWorker(QThread):
    """Runs one indexing job (add, sync or resume), reporting progress; cancellable between files and batches."""

    progress = Signal(object)  # kb.indexer.Progress
    finished_ok = Signal(object)  # kb.indexer.IndexReport
    failed = Signal(str)

    def __init__(self, kb, paths, parent=None, mode: str = "add", password: str | None = None,
                 ocr: bool = True, time_limit_s: float | None = None) -> None:
        super().__init__(parent)
        from kb.indexer import CancelToken

        self.kb, self.paths, self.token = kb, list(paths), CancelToken()
        self.mode, self.password, self.ocr, self.time_limit_s = mode, password, ocr, time_limit_s

    def cancel(self, keep_queue: bool = False) -> None:
        """Stop at the next safe point (between files or batches); keep_queue resumes at the next start."""
        self.token.cancel(keep_queue)

    def run(self) -> None:  # noqa: D102 (QThread)
        background_priority()
        try:
            indexer = self.kb.indexer(self.ocr, self.time_limit_s)
            if self.mode == "sync":
                report = indexer.sync(progress=self.progress.emit, cancel=self.token)
            elif self.mode == "pictures":
                from kb.indexer import IndexReport

                report = IndexReport()
                report.pictures_embedded = indexer.index_pictures(progress=self.progress.emit, cancel=self.token)
            else:
                report = indexer.add(self.paths, progress=self.progress.emit, cancel=self.token,
                                     password=self.password)
            self.password = None
            self.finished_ok.emit(report)
        except Exception as e:  # reported to the user, never a silent dead thread
            log.exception("indexing failed")
            self.failed.emit(f"{type(e).__name__}: {e}")


class ModelLoader(QThread):
    """Loads the chat model (and warms the embedder) off the UI thread."""

    loaded = Signal(object)  # LocalLLM or RemoteLLM
    failed = Signal(str)

    def __init__(self, llm_name: str | None, n_ctx: int, n_threads: int | None, n_gpu_layers: int,
                 embedder=None, parent=None, lang: str = "zh", server=None) -> None:
        super().__init__(parent)
        self.args = (llm_name, n_ctx, n_threads, n_gpu_layers)
        self.server = server  # models.chat_model.ServerChoice: answer through the user's server
        self.lang = lang if lang in ("zh", "en") else "zh"
        self.embedder = embedder

    def run(self) -> None:  # noqa: D102 (QThread)
        try:
            from kb.prompt import SYSTEM
            from models.chat_model import open_chat_model

            name, n_ctx, threads, gpu = self.args
            llm = open_chat_model(name, n_ctx=n_ctx, n_threads=threads, n_gpu_layers=gpu, server=self.server)
            # every prompt starts with the system message: process it now, not at the first question
            llm.prime([{"role": "system", "content": SYSTEM[self.lang]}])
            if self.embedder is not None:  # now, not at the first question (unless warm-up loaded it)
                at_background_priority(lambda: self.embedder.model)
            settle_heap()
            self.loaded.emit(llm)
        except Exception as e:
            log.exception("model loading failed")
            self.failed.emit(str(e))


class AnswerWorker(QThread):
    """Retrieves and streams one answer; stop() aborts generation within a token."""

    sources = Signal(list)  # kb.answer.Source, known before the first token
    token = Signal(str)
    done = Signal(object)  # kb.answer.AnswerResult
    failed = Signal(str)

    def __init__(self, answerer, question: str, history: list[dict], lang: str | None, parent=None,
                 temperature: float | None = None) -> None:
        super().__init__(parent)
        self.answerer, self.question, self.history, self.lang = answerer, question, history, lang
        self.temperature = temperature

    def stop(self) -> None:
        """End the generation now (llama.cpp aborts mid-decode)."""
        self.answerer.llm.stop()

    def run(self) -> None:  # noqa: D102 (QThread)
        try:
            load_embedder_in_background(self.answerer)
            stream = self.answerer.ask(self.question, self.history, self.lang, temperature=self.temperature)
            self.sources.emit(stream.sources)
            for piece in stream:
                self.token.emit(piece)
            self.done.emit(stream.result)
        except Exception as e:
            from models.server_errors import ServerError

            log.error("answer failed: %s", traceback.format_exc())
            self.failed.emit(str(e) if isinstance(e, ServerError) else f"{type(e).__name__}: {e}")


class PrefillWorker(QThread):
    """Processes the question typed so far into the model's cache (kb.answer.Answerer.prefill)."""

    def __init__(self, answerer, text: str, history: list[dict], lang: str | None, parent=None) -> None:
        super().__init__(parent)
        self.answerer, self.text, self.history, self.lang = answerer, text, history, lang
        self.tokens = 0

    def stop(self) -> None:
        """Abandon the prefill (llama.cpp aborts within a graph node)."""
        self.answerer.llm.stop()

    def run(self) -> None:  # noqa: D102 (QThread)
        try:
            load_embedder_in_background(self.answerer)
            self.tokens = self.answerer.prefill(self.text, self.history, self.lang)
        except Exception:  # type-ahead is an optimisation: a failure only costs the saving
            log.warning("prefill failed: %s", traceback.format_exc())


class InstallWorker(QThread):
    """Installs models from their packages, a download or a models bundle, with progress."""

    progress = Signal(str, int, int)
    finished_ok = Signal()
    failed = Signal(str)

    def __init__(self, specs, parent=None, bundle: str | None = None) -> None:
        super().__init__(parent)
        self.specs, self.bundle = specs, bundle

    def run(self) -> None:  # noqa: D102 (QThread)
        from models.installer import install

        try:
            if self.bundle:  # a models bundle (packaged app): every file verified before it is used
                from models.bundle import import_bundle

                import_bundle(self.bundle, progress=self.progress.emit)
            for spec in self.specs:
                install(spec, progress=self.progress.emit)
            self.finished_ok.emit()
        except Exception as e:
            log.exception("model install failed")
            self.failed.emit(str(e))


class WarmUp(QThread):
    """Imports the heavy libraries and loads the embedding model right after the window shows.

    Importing torch and loading the 250k-word tokenizer hold Python's GIL for up to ~0.9 s at a
    time (native code that does not release it); done here, while the status bar says models are
    loading, those hitches never land in the middle of indexing or an answer.
    """

    ready = Signal()

    def __init__(self, embedders, parent=None) -> None:
        super().__init__(parent)
        self.embedders = [e for e in embedders if e is not None]

    def run(self) -> None:  # noqa: D102 (QThread)
        # the int8 encoder's workers and the parser process are born here and keep this priority:
        # at the window's priority they stalled its event loop 156-301 ms while indexing
        background_priority()
        try:
            import importlib

            # everything indexing and answering import lazily, so no import lands mid-job
            for name in ("llama_cpp", "sentence_transformers", "faiss", "pypdf", "docx", "bs4",
                         "charset_normalizer", "langchain_text_splitters", "kb.loaders", "kb.indexer"):
                importlib.import_module(name)

            from kb import lexical
            from kb.parse_worker import ParserProcess

            lexical.terms("预热")
            tokenizer = next((e.tokenizer_file for e in self.embedders if e.tokenizer_file), None)
            ParserProcess.shared().warm(tokenizer)  # the first dropped file finds its parser ready
            for e in self.embedders:
                _ = e.model
        except Exception:  # warming up is an optimisation; real errors surface when used
            log.exception("warm-up failed")
        settle_heap()
        self.ready.emit()
