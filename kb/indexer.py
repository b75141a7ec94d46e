"""Indexing: files in, chunks and vectors out, in batches that each commit on their own.

A job is a small pipeline. A reader thread hashes each file and has it parsed in a separate
process (kb.parse_worker: time and memory limits, crashes contained), then chunks it; the calling
thread commits each parsed file's chunks and FTS rows (keyword search works at once) and, while
no parsed file is waiting, embeds pending chunks one committed batch at a time, so the model is
never idle waiting for a parser. The files of a job are queued in the KB database first: a crash
or a quit resumes at the next start, losing at most the batch in flight.
"""

from __future__ import annotations

import os
import queue
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from kb.document import LoadError, PasswordNeeded
from kb.files import Files, collect, not_a_file
from kb.parse_worker import Limits, ParserProcess
from models.checksum import sha256_file

WINDOW_BATCHES = 8  # batches of pending chunks read (and sorted by length) at a time
# A batch is embedded in steps that each take about this long, looking for a cancel in between:
# a whole batch of 128 took 37-60 s beside two busy processes (tests/test_cancel.py), so Cancel
# seemed not to work; steps of 16 still took 3.8 s there. The step follows the measured time per
# chunk: ~20 chunks on two idle cores, 2-3 on a loaded machine (the embedder batches 32 at most).
CANCEL_WITHIN_S = 0.5
MAX_STEP = 32
READ_AHEAD = 256  # parsed files waiting to be committed


# reasons whose text after the first ": " names this file's particular defect
_DETAILED = ("damaged", "could not read", "cannot read", "not a ", "parser failed", "encrypted PDF: cannot")


class CancelToken:
    """Set from any thread; the indexer stops between files and between batches."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.keep_queue = False

    def cancel(self, keep_queue: bool = False) -> None:
        """Ask the running job to stop at the next safe point; keep_queue resumes it at the next start."""
        self.keep_queue = keep_queue
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """True once cancel() was called."""
        return self._event.is_set()


@dataclass
class Progress:
    """Where an indexing job is."""

    phase: str  # "reading" (files still parsed; embedding alongside), "embedding", or "pictures" (CLIP)
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
    password_needed: list[str] = field(default_factory=list)  # among failed: ask the user, try again
    moved: list[tuple[str, str]] = field(default_factory=list)  # (old path, new path): vectors kept
    copies: list[str] = field(default_factory=list)  # same content as an indexed file: listed, not re-embedded
    removed: list[str] = field(default_factory=list)  # gone from a linked folder
    notes: list[tuple[str, str]] = field(default_factory=list)  # indexed, with something to know ("a PNG named .pdf")

    def by_reason(self) -> dict[str, int]:
        """Failed and skipped files counted by reason, file-specific details folded together."""
        counts: dict[str, int] = {}
        for _path, why in self.failed + self.skipped:
            key = why
            if why.startswith(_DETAILED):
                key = why.split(": ", 1)[0]
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    chunks_added: int = 0
    chunks_embedded: int = 0
    pictures_embedded: int = 0
    cancelled: bool = False


_DONE = object()


class Indexer:
    """Adds, re-indexes and removes documents of one knowledge base."""

    # Chunks per committed batch: large enough that the embedder sorts them by length and pads
    # little (bench: ingestion vs bare encode), small enough that a crash loses seconds of work.
    BATCH = 128
    # Rewriting the FAISS file costs O(index size); a stale file is merely rebuilt on open.
    SAVE_EVERY_S = 30.0

    def __init__(self, kb, batch_size: int = BATCH, ocr: bool = True, limits: Limits | None = None) -> None:
        self.kb, self.store, self.batch_size = kb, kb.store, batch_size
        self.ocr, self.limits = ocr, limits or Limits()
        self.files = Files(kb.store)
        self._progress = None
        self._stats_ref: dict | None = None
        self._window: list[tuple[int, str]] = []
        self._cancel: CancelToken | None = None  # the running job's, checked between small embedding steps
        self._per_chunk_s = 0.05  # embedding time per chunk, measured as it goes
        tokenizer = getattr(kb.embedder, "tokenizer_file", None)
        chunker = kb.chunker
        self._chunking = (str(tokenizer), chunker.size, chunker.overlap) if tokenizer else None

    def add(self, paths: Iterable[Path], progress: Callable[[Progress], None] | None = None,
            cancel: CancelToken | None = None, password: str | None = None, embed: bool = True) -> IndexReport:
        """Index files and folders (and whatever an interrupted job left queued).

        New and changed files are (re)chunked, unchanged ones skipped, moved ones keep their
        vectors, identical copies are listed once. `password` is tried on encrypted files and
        never stored. With embed=False the files are only read (keyword search works at once);
        their vectors are computed by the next job or `embed_pending`.
        """
        found, skipped = collect(paths)
        report = IndexReport(skipped=skipped)
        self._cancel = cancel
        self.files.enqueue(found)
        todo = self.files.queued()
        reader_cancel = threading.Event()
        # Parsing runs ahead of embedding: on two cores one batch takes ~30 s, and files parsed
        # meanwhile wait here (committed, keyword-searchable, between batches) instead of stalling
        # the parser. The bound only keeps memory in check on huge folders.
        parsed: queue.Queue = queue.Queue(maxsize=READ_AHEAD)
        self._progress, self._stats_ref = progress, None
        reader = threading.Thread(target=self._read, args=(todo, parsed, reader_cancel, password),
                                  name="zhiku-reader", daemon=True)
        reader.start()
        stats = self._stats(len(todo))
        self._stats_ref = stats
        reading = True
        try:
            while True:
                if cancel and cancel.cancelled:
                    report.cancelled = True
                    break
                try:
                    item = parsed.get_nowait()
                except queue.Empty:
                    item = None
                if item is None and embed and self._embed_one_batch(report, stats, progress, reading):
                    continue  # nothing parsed was waiting: the model worked meanwhile
                if item is None:
                    try:
                        item = parsed.get(timeout=0.2)
                    except queue.Empty:
                        continue
                if item is _DONE:
                    reading = False
                    if not embed or not self._embed_one_batch(report, stats, progress, reading):
                        break
                    while self._embed_one_batch(report, stats, progress, reading):
                        if cancel and cancel.cancelled:
                            report.cancelled = True
                            break
                    break
                stats["pending"] += self._store(item, report)
                stats["files"] += 1
                if progress:
                    elapsed = time.monotonic() - stats["started"]
                    n = stats["files"]
                    progress(Progress("reading", n, len(todo), stats["embedded"],
                                      stats["embedded"] + stats["pending"], item[1],
                                      elapsed / n * (len(todo) - n)))
        finally:
            reader_cancel.set()
            while reader.is_alive():  # unblock a reader waiting to hand over a file
                try:
                    parsed.get(timeout=0.1)
                except queue.Empty:
                    pass
            reader.join()
            self._finish_index(stats["embedded"])
        if report.cancelled and not (cancel and cancel.keep_queue):
            self.files.dequeue(self.files.queued())
        if progress:
            progress(Progress("embedding", len(todo), len(todo), stats["embedded"], stats["embedded"], ""))
        if embed and not report.cancelled and getattr(self.kb, "clip", None) is not None:
            report.pictures_embedded = self.index_pictures(progress, cancel)
        return report

    # ---- pictures (CLIP) ------------------------------------------------------------------------
    def index_pictures(self, progress: Callable[[Progress], None] | None = None,
                       cancel: CancelToken | None = None) -> int:
        """Give every picture a CLIP vector with the KB's CLIP model; returns how many were embedded.

        Documents read before pictures were collected are read again for their pictures first
        (without OCR: the text is already indexed).
        """
        clip = self.kb.clip
        pictures = self.store.pictures
        missing = pictures.missing_documents()
        if missing:
            parser = ParserProcess.shared()
            for n, (doc_id, path) in enumerate(missing, start=1):
                if cancel and cancel.cancelled:
                    return 0
                if progress:
                    progress(Progress("reading", n - 1, len(missing), 0, 0, path))
                try:
                    doc, _, _ = parser.parse(Path(path), ocr=False, limits=self.limits)
                    found = doc.pictures
                except (LoadError, OSError):
                    found = []  # gone, or unreadable now: nothing to offer; not retried
                pictures.put(doc_id, found)

        def report(done: int, total: int) -> None:
            if progress:
                progress(Progress("pictures", 0, 0, done, total, ""))

        return pictures.embed_pending(clip, report, cancel)

    def _stats(self, todo: int) -> dict:
        now = time.monotonic()
        return {"files": 0, "todo": todo, "embedded": 0, "pending": self.store.count_pending(),
                "started": now, "saved": now}

    def resume(self, progress: Callable[[Progress], None] | None = None,
               cancel: CancelToken | None = None) -> IndexReport:
        """Finish what an interrupted job left: queued files and chunks without vectors."""
        return self.add([], progress, cancel)

    def needs_resume(self) -> bool:
        """True when an earlier job was interrupted (files queued or chunks not yet embedded)."""
        return bool(self.files.queued()) or self.store.count_pending() > 0

    # ---- the reader thread: hash, decide, parse, chunk -----------------------------------------
    def _read(self, todo: list[str], out: queue.Queue, stop: threading.Event, password: str | None) -> None:
        seen: dict[str, str] = {}  # sha256 -> path parsed in this job (duplicates within the job)
        parser = ParserProcess.shared()  # started and warm from the previous job (or the app's warm-up)
        try:
            for path in todo:
                if stop.is_set():
                    return
                item = self._prepare(Path(path), parser, password, seen, stop)
                while not stop.is_set():
                    try:
                        out.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
        finally:
            if not stop.is_set():
                out.put(_DONE)

    def _prepare(self, f: Path, parser: ParserProcess, password: str | None, seen: dict[str, str],
                 stop: threading.Event | None = None) -> tuple:
        path = str(f)
        try:
            st = f.stat()
            if not stat.S_ISREG(st.st_mode):  # queued by an older version, or replaced since: never opened
                return ("failed", path, not_a_file(f) or "not a regular file", None, None, False)
            sha = sha256_file(f)
        except FileNotFoundError:
            return ("gone", path)
        except OSError as e:
            return ("failed", path, f"cannot read file: {e.strerror or e}", None, None, False)
        row = self.store.document(path)
        if row is not None and row["sha256"] == sha:
            if not self._retry(row, password):
                return ("unchanged", path, row["error"] if row["status"] == "failed" else None)
        else:  # read again only if it is not the content of a file already indexed
            owner = self.files.copy_owner(path)
            if owner is not None and self._sha_of(owner) == sha:
                return ("unchanged", path, None)
            if sha in seen or self.files.by_hash(sha) is not None:
                return ("same", path, sha, st.st_mtime)
        try:
            doc, chunks, terms = parser.parse(f, ocr=self.ocr, password=password, chunking=self._chunking,
                                              progress=lambda done, total: self._page_progress(f, done, total),
                                              limits=self.limits, stop=stop)
            if chunks is None:  # a model without a tokenizer.json: chunk here, with the model
                chunks, terms = self.kb.chunker.split(doc), None
        except PasswordNeeded as e:
            return ("failed", path, str(e), sha, st, True)
        except LoadError as e:
            return ("failed", path, str(e), sha, st, False)
        seen[sha] = path
        return ("doc", path, doc, chunks, terms, sha, st)

    def _page_progress(self, f: Path, done: int, total: int) -> None:
        """Pages of a long file (a scan being OCR'd): shown as the current file, from the reader thread."""
        stats = self._stats_ref
        if self._progress is None or stats is None or total < 20 or done % 5:
            return
        self._progress(Progress("reading", stats["files"], stats["todo"], stats["embedded"],
                                stats["embedded"] + stats["pending"], f"{f} ({done}/{total})"))

    def _retry(self, row, password: str | None) -> bool:
        """A failed file with unchanged content is read again only if what failed it changed."""
        if row["status"] != "failed":
            # an image read with OCR off was kept as a picture only: read its text now that OCR is on
            return self.ocr and row["kind"] == "image" and not self._ocr_ran(row["id"])
        error = row["error"] or ""
        if error.startswith("encrypted") and password:
            return True
        return self.ocr and "OCR" in error and "turn" in error

    def _ocr_ran(self, doc_id: int) -> bool:
        return bool(self.store.query("SELECT 1 FROM pages WHERE doc_id=? AND ocr LIMIT 1", (doc_id,)))

    def _sha_of(self, doc_id: int) -> str | None:
        rows = self.store.query("SELECT sha256 FROM documents WHERE id=?", (doc_id,))
        return rows[0][0] if rows else None

    # ---- the calling thread: commit -----------------------------------------------------------
    def _store(self, item: tuple, report: IndexReport) -> int:
        """Commit one file's outcome; returns how many chunks it added."""
        kind, path = item[0], item[1]
        if kind == "gone":  # queued by an interrupted job, deleted since
            self.files.dequeue([path])
            report.skipped.append((path, "no longer exists (queued by an earlier job)"))
        elif kind == "unchanged":
            self.files.dequeue([path])
            if item[2]:
                report.failed.append((path, item[2]))
            else:
                report.unchanged.append(path)
        elif kind == "same":
            self._same_content(path, item[2], item[3], report)
        elif kind == "failed":
            _, _, reason, sha, st, password = item
            self.store.put_failure(path, reason, sha, st.st_size if st else None, st.st_mtime if st else None,
                                   Path(path).suffix.lower().lstrip("."))
            report.failed.append((path, reason))
            if password:
                report.password_needed.append(path)
        else:
            _, _, doc, chunks, terms, sha, st = item
            existed = self.store.document(path) is not None or self.files.copy_owner(path) is not None
            if self.files.copy_owner(path) is not None:
                self.files.forget(path)  # it was a copy of other content; now it has its own
            self.store.put_document(path, doc, chunks, sha, st.st_size, st.st_mtime, terms)
            (report.updated if existed else report.added).append(path)
            if doc.note:
                report.notes.append((path, doc.note))
            report.chunks_added += len(chunks)
            return len(chunks)
        return 0

    def _same_content(self, path: str, sha: str, mtime: float, report: IndexReport) -> None:
        owner = self.files.by_hash(sha)
        if owner is None:  # the first file with this content failed meanwhile
            self.files.dequeue([path])
            report.failed.append((path, "same content as a file that could not be indexed"))
            return
        doc_id, owner_path = owner
        if owner_path == path:
            self.files.dequeue([path])
            report.unchanged.append(path)
        elif not os.path.exists(owner_path):
            self.files.move(doc_id, path, mtime)
            report.moved.append((owner_path, path))
        else:
            self.files.add_copy(path, doc_id)
            report.copies.append(path)

    def _embed_one_batch(self, report: IndexReport, stats: dict, progress, reading: bool) -> bool:
        """Embed and commit one batch of pending chunks; False when none are pending."""
        if not self._window:
            # a window of pending chunks sorted by length: similar lengths pad little (bench:
            # ingestion vs bare encode); each batch still commits on its own
            self._window = sorted(self.store.pending_chunks(self.batch_size * WINDOW_BATCHES),
                                  key=lambda b: len(b[1]))
            if not self._window:
                return False
        batch, self._window = self._window[:self.batch_size], self._window[self.batch_size:]
        if progress:
            done = stats["embedded"]
            rate = done / (time.monotonic() - stats["started"]) if done else 0
            remaining = max(stats["pending"], len(batch))
            progress(Progress("reading" if reading else "embedding", stats["files"], stats["todo"], done,
                              done + remaining, "", remaining / rate if rate else None))
        parts, i = [], 0
        while i < len(batch):
            if self._cancel is not None and self._cancel.cancelled:
                self._window = batch + self._window  # not stored: still pending for the next job
                return True  # the caller sees the cancel at once
            step = max(1, min(MAX_STEP, int(CANCEL_WITHIN_S / self._per_chunk_s)))
            started = time.monotonic()
            parts.append(self.kb.embedder.embed_passages([b[1] for b in batch[i:i + step]]))
            took = (time.monotonic() - started) / len(parts[-1])
            self._per_chunk_s = 0.5 * self._per_chunk_s + 0.5 * took
            i += step
        vecs = np.concatenate(parts)
        save = time.monotonic() - stats["saved"] > self.SAVE_EVERY_S
        self.store.add_vectors([b[0] for b in batch], vecs, save=save)
        if save:
            stats["saved"] = time.monotonic()
        stats["embedded"] += len(batch)
        stats["pending"] -= len(batch)
        report.chunks_embedded += len(batch)
        return True

    def _finish_index(self, embedded: int) -> None:
        if embedded:
            if self.store.index_needs_rebuild():
                self.store.rebuild_index()  # crossed a size where another index type is faster
            else:
                self.store.save_index()

    # ---- linked folders -----------------------------------------------------------------------
    def sync(self, progress: Callable[[Progress], None] | None = None,
             cancel: CancelToken | None = None) -> IndexReport:
        """Bring the linked folders' files in: new and changed indexed, moved kept, deleted removed."""
        folders = [Path(f) for f in self.files.folders() if Path(f).is_dir()]
        report = self.add(folders, progress, cancel)
        if report.cancelled:
            return report
        for path in self.files.under_folders():
            if not os.path.exists(path):
                if self.files.forget(path):
                    report.removed.append(path)
        return report

    def embed_pending(self, progress: Callable[[Progress], None] | None = None,
                      cancel: CancelToken | None = None, report: IndexReport | None = None) -> IndexReport:
        """Embed every chunk that has no vector yet, committing one batch at a time."""
        report = report or IndexReport()
        stats = self._stats(0)
        self._cancel = cancel
        while not (cancel and cancel.cancelled) and self._embed_one_batch(report, stats, progress, False):
            pass
        report.cancelled = bool(cancel and cancel.cancelled)
        self._finish_index(stats["embedded"])
        if progress:
            progress(Progress("embedding", 0, 0, stats["embedded"], stats["embedded"], ""))
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
