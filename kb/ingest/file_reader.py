"""The indexer's reader thread: hash each queued file, decide what it needs, parse and chunk it.

It runs beside the thread that commits and embeds (kb.ingest.indexer), so the parser is never idle while
the model works. What it decides for a file is handed over as one small dataclass (an outcome);
the committing thread stores it. The reader only reads the database (document rows, copies).
"""

from __future__ import annotations

import queue
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

from kb.text.chunking import Chunk
from kb.text.document import Document, LoadError, PasswordNeeded
from kb.ingest.files import Files, not_a_file
from kb.ingest.parse_worker import Limits, ParserProcess
from models.checksum import sha256_file


@dataclass
class Gone:
    """Queued by an interrupted job, deleted since."""

    path: str


@dataclass
class Unchanged:
    """Content already stored (or already failed, with the same reason)."""

    path: str
    error: str | None = None


@dataclass
class SameContent:
    """The content of a file already indexed under another path: a copy, or a move."""

    path: str
    sha256: str
    mtime: float


@dataclass
class Failed:
    """Could not be read; `password_needed` when asking the user for one may help."""

    path: str
    reason: str
    sha256: str | None = None
    size: int | None = None
    mtime: float | None = None
    password_needed: bool = False


@dataclass
class Parsed:
    """Read and chunked: ready to store."""

    path: str
    doc: Document
    chunks: list[Chunk]
    terms: list[str] | None  # FTS rows from the parser process (None: segmented when stored)
    sha256: str
    size: int
    mtime: float


Outcome = Union[Gone, Unchanged, SameContent, Failed, Parsed]
DONE = object()  # put after the last outcome


class FileReader:
    """Decides and reads files for one indexing job."""

    def __init__(self, kb, files: Files, ocr: bool, limits: Limits, password: str | None,
                 page_progress: Callable[[str, int, int], None]) -> None:
        self.kb, self.store, self.files = kb, kb.store, files
        self.ocr, self.limits, self.password = ocr, limits, password
        self.page_progress = page_progress
        self.seen: dict[str, str] = {}  # sha256 -> path parsed in this job (duplicates within the job)
        tokenizer = getattr(kb.embedder, "tokenizer_file", None)
        chunker = kb.chunker
        self.chunking = (str(tokenizer), chunker.size, chunker.overlap) if tokenizer else None

    def run(self, todo: list[str], out: queue.Queue, stop: threading.Event) -> None:
        """The thread's body: one outcome per file into `out`, then DONE (unless stopped)."""
        parser = ParserProcess.shared()  # started and warm from the previous job (or the app's warm-up)
        try:
            for path in todo:
                if stop.is_set():
                    return
                item = self.prepare(Path(path), parser, stop)
                while not stop.is_set():
                    try:
                        out.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
        finally:
            if not stop.is_set():
                out.put(DONE)

    def prepare(self, f: Path, parser: ParserProcess, stop: threading.Event | None = None) -> Outcome:
        """What one file needs, parsed if it must be read."""
        path = str(f)
        try:
            st = f.stat()
            if not stat.S_ISREG(st.st_mode):  # queued by an older version, or replaced since: never opened
                return Failed(path, not_a_file(f) or "not a regular file")
            sha = sha256_file(f)
        except FileNotFoundError:
            return Gone(path)
        except OSError as e:
            return Failed(path, f"cannot read file: {e.strerror or e}")
        row = self.store.document(path)
        if row is not None and row["sha256"] == sha:
            if not self._retry(row):
                return Unchanged(path, row["error"] if row["status"] == "failed" else None)
        else:  # read again only if it is not the content of a file already indexed
            owner = self.files.copy_owner(path)
            if owner is not None and self.store.document_sha(owner) == sha:
                return Unchanged(path)
            if sha in self.seen or self.files.by_hash(sha) is not None:
                return SameContent(path, sha, st.st_mtime)
        try:
            doc, chunks, terms = parser.parse(f, ocr=self.ocr, password=self.password, chunking=self.chunking,
                                              progress=lambda done, total: self.page_progress(path, done, total),
                                              limits=self.limits, stop=stop)
            if chunks is None:  # a model without a tokenizer.json: chunk here, with the model
                chunks, terms = self.kb.chunker.split(doc), None
        except PasswordNeeded as e:
            return Failed(path, str(e), sha, st.st_size, st.st_mtime, password_needed=True)
        except LoadError as e:
            return Failed(path, str(e), sha, st.st_size, st.st_mtime)
        self.seen[sha] = path
        return Parsed(path, doc, chunks, terms, sha, st.st_size, st.st_mtime)

    def _retry(self, row: dict) -> bool:
        """A failed file with unchanged content is read again only if what failed it changed."""
        if row["status"] != "failed":
            # an image read with OCR off was kept as a picture only: read its text now that OCR is on
            return self.ocr and row["kind"] == "image" and not self.store.ocr_ran(row["id"])
        error = row["error"] or ""
        if error.startswith("encrypted") and self.password:
            return True
        return self.ocr and "OCR" in error and "turn" in error
