"""Parsing in a separate process, with a time limit and a memory limit per file.

The worker also chunks the text (with the embedding model's tokenizer file, not the model) and
segments each chunk for the keyword index: all the CPU-heavy pure-Python work of indexing runs
outside the app's process, where it would compete with the window for Python's GIL.

A parser that loops, segfaults or eats memory takes its worker process down with it, never the
app: the worker is killed, the file is recorded as failed with the reason, and a fresh worker
takes the next file. The time limit counts from the worker's last sign of progress (each page
read or OCR'd), so a 600-page scan is not cut off while a parser stuck on one page is.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from kb.text.document import Document, LoadError, PasswordNeeded

from kb.defaults import PARSE_MEMORY_LIMIT_MB as DEFAULT_MEMORY_LIMIT_MB  # noqa: E402 (re-exported)
from kb.defaults import PARSE_TIME_LIMIT_S as DEFAULT_TIME_LIMIT_S  # noqa: E402
POLL_S = 0.2
WARM_S = 30.0  # a fresh worker's own start-up does not count against the first file's limit


@dataclass
class Limits:
    """How long (without progress) and how much memory one file's parsing may take."""

    time_s: float = DEFAULT_TIME_LIMIT_S
    memory_mb: int = DEFAULT_MEMORY_LIMIT_MB


def _serve(conn) -> None:
    """The worker's loop: receive (path, ocr, password), send progress, then the document or an error."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C in a terminal is the parent's to handle
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="parent-watch", daemon=True).start()
    for name in ("pypdf", "PIL", "fontTools"):
        logging.getLogger(name).setLevel(logging.ERROR)  # broken files make them chatty on stderr
    from kb.ingest import loaders  # noqa: F401 (imported before the first file arrives)
    from kb.text import lexical

    # what every job needs, loaded before the first file arrives (bench: first keyword hit)
    lexical.terms("预热 warm up")
    import bs4  # noqa: F401
    import docx  # noqa: F401
    import langchain_text_splitters  # noqa: F401
    import pypdf  # noqa: F401

    try:
        conn.send(("ready",))
        _jobs(conn)
    except (BrokenPipeError, ConnectionResetError, EOFError):
        return  # the app was closed or killed: nobody to answer, nothing to say


def _exit_with_parent(parent: int) -> None:
    """A killed app (kill -9) cannot stop its worker, which may be deep in a file that never ends:
    the worker notices that its parent is gone within a second and exits."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _jobs(conn) -> None:
    """Parse files as they arrive until the app says stop (None) or goes away."""
    from kb.text import lexical
    from kb.ingest import loaders

    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        if job[0] == "tokenizer":  # load a model's tokenizer ahead of its first file
            _counter(job[1])
            continue
        path, ocr, password, chunking = job
        options = loaders.Options(ocr=ocr, password=password,
                                  progress=lambda done, total: conn.send(("progress", done, total)))
        try:
            doc = loaders.load(Path(path), options)
            if chunking is None:
                conn.send(("ok", (doc, None, None)))
                continue
            chunks = _chunker(*chunking).split(doc)
            conn.send(("progress", 0, 0))
            conn.send(("ok", (doc, chunks, [lexical.index_text(c.text) for c in chunks])))
        except PasswordNeeded as e:
            conn.send(("password", str(e)))
        except LoadError as e:
            conn.send(("error", str(e)))
        except MemoryError:  # a 340-byte file can declare gigabytes: say which case it is
            small = Path(path).stat().st_size < 2**20
            conn.send(("error", "damaged file: it declares an impossible size" if small
                       else "file too large to read into memory"))
        except Exception as e:  # noqa: BLE001 (the parent records it for this file and goes on)
            conn.send(("error", f"parser failed: {type(e).__name__}: {e}"))


_chunkers: dict = {}
_counters: dict = {}


def _counter(tokenizer_file: str):
    if tokenizer_file not in _counters:
        from models.embedder import token_counter

        _counters[tokenizer_file] = token_counter(tokenizer_file)
    return _counters[tokenizer_file]


def _chunker(tokenizer_file: str, size: int, overlap: int):
    key = (tokenizer_file, size, overlap)
    if key not in _chunkers:
        from kb.text.chunking import Chunker

        _chunkers[key] = Chunker(_counter(tokenizer_file), size, overlap)
    return _chunkers[key]


def _rss_mb(pid: int) -> float:
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss / 2**20
    except Exception:  # noqa: BLE001 (gone already, or no psutil: the time limit still holds)
        return 0.0


class ParserProcess:
    """One long-lived parsing process; replaced whenever a file kills it or is killed in it."""

    _shared: "ParserProcess | None" = None
    _shared_lock = threading.Lock()

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._proc = None
        self._conn = None
        self._ready = False
        self._lock = threading.Lock()
        self.restarts = 0

    @classmethod
    def shared(cls) -> "ParserProcess":
        """The process-wide parser, kept between jobs so that each job finds it started and warm."""
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def warm(self, tokenizer_file: str | None = None, timeout_s: float = 60.0) -> None:
        """Start the worker if needed and wait until it has loaded what every job needs (and the
        tokenizer the next job's chunks are measured with)."""
        with self._lock:
            if self._proc is None or not self._proc.is_alive():
                self._start()
            if tokenizer_file:
                self._conn.send(("tokenizer", str(tokenizer_file)))
            deadline = time.monotonic() + timeout_s
            try:
                while not self._ready and time.monotonic() < deadline:
                    if self._conn.poll(POLL_S) and self._conn.recv()[0] == "ready":
                        self._ready = True
            except (EOFError, OSError):  # it died starting; the next parse starts another
                self._kill()

    def _start(self) -> None:
        ctx = mp.get_context("spawn")  # never fork a process that holds torch, Qt and threads
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child,), name="zhiku-parser", daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent
        self._ready = False

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join(5)
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None
        self.restarts += 1

    def parse(self, path: Path, ocr: bool = True, password: str | None = None, progress=None,
              chunking: tuple[str, int, int] | None = None,
              limits: Limits | None = None,
              stop: threading.Event | None = None) -> tuple[Document, list | None, list | None]:
        """Parse one file in the worker: (document, chunks, FTS terms per chunk); the last two only
        with `chunking` = (tokenizer file, chunk tokens, overlap). Raises LoadError (or
        PasswordNeeded) with the reason; setting `stop` kills the worker mid-file (Ctrl+C, cancel)."""
        limits = limits or self.limits
        with self._lock:
            if self._proc is None or not self._proc.is_alive():
                self._start()
            try:
                self._conn.send((str(path), ocr, password, chunking))
            except (BrokenPipeError, OSError):
                self._kill()
                self._start()
                self._conn.send((str(path), ocr, password, chunking))
            last = time.monotonic()
            while True:
                if stop is not None and stop.is_set():
                    self._kill()  # the next file starts a fresh worker
                    raise LoadError("stopped")
                try:
                    ready = self._conn.poll(POLL_S)
                except (EOFError, OSError):
                    ready = True
                if ready:
                    try:
                        msg = self._conn.recv()
                    except (EOFError, OSError):
                        if self._proc is not None:
                            self._proc.join(2)  # the pipe closed first; let the exit status arrive
                        code = self._proc.exitcode if self._proc else None
                        self._kill()
                        raise LoadError(f"the parser crashed on this file ({_describe_exit(code)})") from None
                    if msg[0] == "ready":
                        self._ready = True
                        last = time.monotonic()  # the file's limit starts now, not at the start-up
                        continue
                    if msg[0] == "progress":
                        last = time.monotonic()
                        if progress is not None:
                            progress(msg[1], msg[2])
                        continue
                    if msg[0] == "ok":
                        return msg[1]
                    if msg[0] == "password":
                        raise PasswordNeeded(msg[1])
                    raise LoadError(msg[1])
                if time.monotonic() - last > limits.time_s + (0 if self._ready else WARM_S):
                    self._kill()
                    raise LoadError(f"parsing took longer than {limits.time_s:g} s without progress: stopped")
                if limits.memory_mb and _rss_mb(self._proc.pid) > limits.memory_mb:
                    self._kill()
                    raise LoadError(f"parsing used more than {limits.memory_mb} MB of memory: stopped")
                if not self._proc.is_alive():
                    code = self._proc.exitcode
                    self._kill()
                    raise LoadError(f"the parser crashed on this file ({_describe_exit(code)})")

    def close(self) -> None:
        """Stop the worker process."""
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.send(None)
                except (BrokenPipeError, OSError):
                    pass
            if self._proc is not None:
                self._proc.join(2)
            self._kill()
            self.restarts -= 1

    def __enter__(self) -> "ParserProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "no exit status"
    if code < 0:
        import signal

        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


__all__ = ["Limits", "ParserProcess", "DEFAULT_TIME_LIMIT_S", "DEFAULT_MEMORY_LIMIT_MB"]
