"""Indexing: files in, chunks and vectors out, in batches that each commit on their own.

Phase one parses and chunks each file and commits its chunks and FTS rows (keyword search works
at once); phase two embeds chunks without vectors, one committed batch at a time. A crash loses
at most the batch in flight; the next run picks up the chunks that still lack vectors.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from kb import loaders
from kb.document import LoadError
from models.checksum import sha256_file

WINDOW_BATCHES = 8  # batches of pending chunks read (and sorted by length) at a time


class CancelToken:
    """Set from any thread; the indexer stops between files and between batches."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the running job to stop at the next safe point."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """True once cancel() was called."""
        return self._event.is_set()


@dataclass
class Progress:
    """Where an indexing job is."""

    phase: str  # "reading" or "embedding"
    files_done: int
    files_total: int
    chunks_done: int
    chunks_total: int
    current: str = ""
    eta_seconds: float | None = None


@dataclass
class IndexReport:
    """What an indexing job did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    chunks_added: int = 0
    chunks_embedded: int = 0
    cancelled: bool = False


def collect(paths: Iterable[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand files and folders (recursively) into supported files, and what was skipped and why."""
    files: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            skipped.append((str(p), "no such file or folder"))
        elif p.is_dir():
            for root, dirs, names in os.walk(p):
                hidden = [d for d in dirs if d.startswith(".")]
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                skipped += [(str(Path(root) / d), "hidden folder") for d in hidden]
                for n in sorted(names):
                    f = Path(root) / n
                    if n.startswith("."):
                        skipped.append((str(f), "hidden file"))
                    elif not loaders.supported(f):
                        skipped.append((str(f), f"unsupported file type '{f.suffix or n}'"))
                    else:
                        files.append(f)
        else:
            files.append(p)  # named explicitly: try it, and report why if it cannot be read
    seen, unique = set(), []
    for f in files:
        key = str(f.resolve())
        if key not in seen:
            seen.add(key)
            unique.append(f.resolve())
    return unique, skipped


class Indexer:
    """Adds, re-indexes and removes documents of one knowledge base."""

    # Chunks per committed batch: large enough that the embedder sorts them by length and pads
    # little (bench: ingestion vs bare encode), small enough that a crash loses seconds of work.
    BATCH = 128
    # Rewriting the FAISS file costs O(index size); a stale file is merely rebuilt on open.
    SAVE_EVERY_S = 30.0

    def __init__(self, kb, batch_size: int = BATCH) -> None:
        self.kb, self.store, self.batch_size = kb, kb.store, batch_size

    def add(self, paths: Iterable[Path], progress: Callable[[Progress], None] | None = None,
            cancel: CancelToken | None = None) -> IndexReport:
        """Index files and folders: new and changed files are (re)chunked, unchanged ones skipped."""
        files, skipped = collect(paths)
        report = IndexReport(skipped=skipped)
        chunker = self.kb.chunker
        started = time.monotonic()
        for i, f in enumerate(files):
            if cancel and cancel.cancelled:
                report.cancelled = True
                return report
            if progress:
                elapsed = time.monotonic() - started
                eta = elapsed / i * (len(files) - i) if i else None
                progress(Progress("reading", i, len(files), 0, 0, str(f), eta))
            self._add_file(f, chunker, report)
        if progress:
            progress(Progress("reading", len(files), len(files), 0, 0, ""))
        self.embed_pending(progress, cancel, report)
        return report

    def _add_file(self, f: Path, chunker, report: IndexReport) -> None:
        path = str(f)
        try:
            st = f.stat()
            sha = sha256_file(f)
        except OSError as e:
            report.failed.append((path, f"cannot read file: {e.strerror or e}"))
            return
        row = self.store.document(path)
        if row is not None and row["sha256"] == sha:
            if row["status"] == "failed":
                report.failed.append((path, row["error"]))
            else:
                report.unchanged.append(path)
            return
        try:
            doc = loaders.load(f)
            chunks = chunker.split(doc)
        except LoadError as e:
            self.store.put_failure(path, str(e), sha, st.st_size, st.st_mtime, f.suffix.lower().lstrip("."))
            report.failed.append((path, str(e)))
            return
        self.store.put_document(path, doc, chunks, sha, st.st_size, st.st_mtime)
        (report.updated if row is not None else report.added).append(path)
        report.chunks_added += len(chunks)

    def embed_pending(self, progress: Callable[[Progress], None] | None = None,
                      cancel: CancelToken | None = None, report: IndexReport | None = None) -> IndexReport:
        """Embed every chunk that has no vector yet, committing one batch at a time."""
        report = report or IndexReport()
        total = self.store.count_pending()
        done = 0
        started = last_save = time.monotonic()
        while not report.cancelled:
            # A window of pending chunks sorted by length, embedded in committed batches: similar
            # lengths pad little (bench: ingestion vs bare encode), and a crash still loses at
            # most one batch.
            window = sorted(self.store.pending_chunks(self.batch_size * WINDOW_BATCHES), key=lambda b: len(b[1]))
            if not window:
                break
            for at in range(0, len(window), self.batch_size):
                batch = window[at:at + self.batch_size]
                if progress:
                    rate = done / (time.monotonic() - started) if done else 0
                    progress(Progress("embedding", 0, 0, done, total, "",
                                      (total - done) / rate if rate else None))
                if cancel and cancel.cancelled:
                    report.cancelled = True
                    break
                ids = [b[0] for b in batch]
                vecs = self.kb.embedder.embed_passages([b[1] for b in batch])
                save = time.monotonic() - last_save > self.SAVE_EVERY_S
                self.store.add_vectors(ids, vecs, save=save)
                if save:
                    last_save = time.monotonic()
                done += len(batch)
                report.chunks_embedded += len(batch)
        if done:
            if self.store.index_needs_rebuild():
                self.store.rebuild_index()  # crossed a size where another index type is faster
            else:
                self.store.save_index()
        if progress:
            progress(Progress("embedding", 0, 0, done, max(total, done), ""))
        return report

    def remove(self, path_or_name: str) -> str:
        """Remove one document (by path, or by file name when that is unique); returns its path."""
        docs = self.store.documents()
        target = str(Path(path_or_name).expanduser().resolve()) if os.sep in path_or_name else None
        matches = [d for d in docs if d["path"] == (target or path_or_name) or d["name"] == path_or_name]
        if not matches:
            raise KeyError(f"no document {path_or_name!r} in knowledge base {self.kb.name!r}")
        if len(matches) > 1:
            raise KeyError(f"{path_or_name!r} matches {len(matches)} documents; give the full path")
        self.store.remove_document(matches[0]["id"])
        return matches[0]["path"]
