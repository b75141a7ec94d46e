"""Indexing: files in, chunks and vectors out, in batches that each commit on their own.

A job is a small pipeline. A reader thread (kb.ingest.file_reader) hashes each file and has it parsed in a
separate process (kb.ingest.parse_worker: time and memory limits, crashes contained), then chunks it; the
calling thread commits each parsed file's chunks and FTS rows (keyword search works at once) and,
while no parsed file is waiting, embeds pending chunks one committed batch at a time, so the model
is never idle waiting for a parser. The files of a job are queued in the KB database first: a crash
or a quit resumes at the next start, losing at most the batch in flight.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from kb.text.document import LoadError
from kb.ingest.file_reader import DONE, Failed, FileReader, Gone, Outcome, Parsed, SameContent, Unchanged
from kb.ingest.files import Files, collect
from kb.ingest.index_report import CancelToken, IndexReport, Progress
from kb.ingest.parse_worker import Limits, ParserProcess

__all__ = ["CancelToken", "IndexReport", "Indexer", "Progress"]

WINDOW_BATCHES = 8  # batches of pending chunks read (and sorted by length) at a time
# A batch is embedded in steps that each take about this long, looking for a cancel in between:
# a whole batch of 128 took 37-60 s beside two busy processes (tests/test_cancel.py), so Cancel
# seemed not to work; steps of 16 still took 3.8 s there. The step follows the measured time per
# chunk: ~20 chunks on two idle cores, 2-3 on a loaded machine (the embedder batches 32 at most).
CANCEL_WITHIN_S = 0.5
MAX_STEP = 32
READ_AHEAD = 256  # parsed files waiting to be committed


@dataclass
class Job:
    """One run of add / embed_pending: its counts, its progress callback and its cancel token."""

    report: IndexReport
    todo: int = 0  # files to read
    files: int = 0  # files read so far
    embedded: int = 0
    pending: int = 0  # chunks without a vector
    reading: bool = False
    progress: Callable[[Progress], None] | None = None
    cancel: CancelToken | None = None
    started: float = field(default_factory=time.monotonic)
    saved: float = field(default_factory=time.monotonic)  # the FAISS file was last written
    window: list[tuple[int, str]] = field(default_factory=list)  # pending chunks, sorted by length

    @property
    def cancelled(self) -> bool:
        """True once the job's cancel token fired."""
        return self.cancel is not None and self.cancel.cancelled

    def tell(self, phase: str, current: str = "", eta: float | None = None) -> None:
        """Report progress (if anyone listens)."""
        if self.progress:
            self.progress(Progress(phase, self.files, self.todo, self.embedded, self.embedded + self.pending,
                                   current, eta))


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
        self._per_chunk_s = 0.05  # embedding time per chunk, measured as it goes (across jobs)

    def _job(self, todo: int, progress, cancel) -> Job:
        return Job(IndexReport(), todo=todo, pending=self.store.count_pending(), progress=progress, cancel=cancel)

    def add(self, paths: Iterable[Path], progress: Callable[[Progress], None] | None = None,
            cancel: CancelToken | None = None, password: str | None = None, embed: bool = True) -> IndexReport:
        """Index files and folders (and whatever an interrupted job left queued).

        New and changed files are (re)chunked, unchanged ones skipped, moved ones keep their
        vectors, identical copies are listed once. `password` is tried on encrypted files and
        never stored. With embed=False the files are only read (keyword search works at once);
        their vectors are computed by the next job or `embed_pending`.
        """
        found, skipped = collect(paths)
        self.files.enqueue(found)
        todo = self.files.claim(self.files.queued())
        job = self._job(len(todo), progress, cancel)
        job.report.skipped, job.reading = skipped, True

        def pages(path: str, done: int, total: int) -> None:  # a long file (a scan being OCR'd), from the reader
            if total >= 20 and not done % 5:
                job.tell("reading", f"{path} ({done}/{total})")

        reader = FileReader(self.kb, self.files, self.ocr, self.limits, password, pages)
        stop = threading.Event()
        # Parsing runs ahead of embedding: on two cores one batch takes ~30 s, and files parsed
        # meanwhile wait here (committed, keyword-searchable, between batches) instead of stalling
        # the parser. The bound only keeps memory in check on huge folders.
        parsed: queue.Queue = queue.Queue(maxsize=READ_AHEAD)
        thread = threading.Thread(target=reader.run, args=(todo, parsed, stop), name="zhiku-reader", daemon=True)
        thread.start()
        try:
            self._commit_and_embed(job, parsed, embed)
        finally:
            stop.set()
            while thread.is_alive():  # unblock a reader waiting to hand over a file
                try:
                    parsed.get(timeout=0.1)
                except queue.Empty:
                    pass
            thread.join()
            self._finish_index(job.embedded)
        report = job.report
        if report.cancelled and not (cancel and cancel.keep_queue):
            self.files.dequeue(todo)
        job.files, job.pending = job.todo, 0
        job.tell("embedding")
        if embed and not report.cancelled and self.kb.clip is not None:
            report.pictures_embedded = self.index_pictures(progress, cancel)
        return report

    def _commit_and_embed(self, job: Job, parsed: queue.Queue, embed: bool) -> None:
        """Store what the reader hands over; embed a batch whenever nothing waits."""
        while True:
            if job.cancelled:
                job.report.cancelled = True
                return
            try:
                item = parsed.get_nowait()
            except queue.Empty:
                item = None
            if item is None and embed and self._embed_one_batch(job):
                continue  # nothing parsed was waiting: the model worked meanwhile
            if item is None:
                try:
                    item = parsed.get(timeout=0.2)
                except queue.Empty:
                    continue
            if item is DONE:
                job.reading = False
                while embed and self._embed_one_batch(job):
                    if job.cancelled:
                        job.report.cancelled = True
                        break
                return
            job.pending += self._store(item, job.report)
            job.files += 1
            elapsed = time.monotonic() - job.started
            job.tell("reading", item.path, elapsed / job.files * (job.todo - job.files))

    # ---- pictures (CLIP) ------------------------------------------------------------------------
    def index_pictures(self, progress: Callable[[Progress], None] | None = None,
                       cancel: CancelToken | None = None) -> int:
        """Give every picture a CLIP vector with the KB's CLIP model; returns how many were embedded.

        Documents read before pictures were collected are read again for their pictures first
        (without OCR: the text is already indexed).
        """
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

        return pictures.embed_pending(self.kb.clip, report, cancel)

    def resume(self, progress: Callable[[Progress], None] | None = None,
               cancel: CancelToken | None = None) -> IndexReport:
        """Finish what an interrupted job left: queued files and chunks without vectors."""
        return self.add([], progress, cancel)

    def needs_resume(self) -> bool:
        """True when an earlier job was interrupted (files queued or chunks not yet embedded)."""
        return bool(self.files.queued()) or self.store.count_pending() > 0

    # ---- the calling thread: commit -----------------------------------------------------------
    def _store(self, item: Outcome, report: IndexReport) -> int:
        """Commit one file's outcome; returns how many of its chunks need a vector."""
        path = item.path
        self.files.renew()
        if isinstance(item, Gone):
            self.files.dequeue([path])
            report.skipped.append((path, "no longer exists (queued by an earlier job)"))
        elif isinstance(item, Unchanged):
            self.files.dequeue([path])
            if item.error:
                report.failed.append((path, item.error))
            else:
                report.unchanged.append(path)
        elif isinstance(item, SameContent):
            self._same_content(item, report)
        elif isinstance(item, Failed):
            self.store.put_failure(path, item.reason, item.sha256, item.size, item.mtime,
                                   Path(path).suffix.lower().lstrip("."))
            report.failed.append((path, item.reason))
            if item.password_needed:
                report.password_needed.append(path)
        elif isinstance(item, Parsed):
            existed = self.store.document(path) is not None or self.files.copy_owner(path) is not None
            if self.files.copy_owner(path) is not None:
                self.files.forget(path)  # it was a copy of other content; now it has its own
            _, pending = self.store.put_document(path, item.doc, item.chunks, item.sha256, item.size,
                                                 item.mtime, item.terms)
            (report.updated if existed else report.added).append(path)
            if item.doc.note:
                report.notes.append((path, item.doc.note))
            report.chunks_added += len(item.chunks)
            report.chunks_reused += len(item.chunks) - pending
            return pending
        return 0

    def _same_content(self, item: SameContent, report: IndexReport) -> None:
        path = item.path
        owner = self.files.by_hash(item.sha256)
        if owner is None:  # the first file with this content failed meanwhile
            self.files.dequeue([path])
            report.failed.append((path, "same content as a file that could not be indexed"))
            return
        doc_id, owner_path = owner
        if owner_path == path:
            self.files.dequeue([path])
            report.unchanged.append(path)
        elif not os.path.exists(owner_path) and not self.files.shared:  # (shared: on another computer)
            self.files.move(doc_id, path, item.mtime)
            report.moved.append((owner_path, path))
        else:
            self.files.add_copy(path, doc_id)
            report.copies.append(path)

    def _embed_one_batch(self, job: Job) -> bool:
        """Embed and commit one batch of pending chunks; False when none are pending."""
        if not job.window:
            # a window of pending chunks sorted by length: similar lengths pad little (bench:
            # ingestion vs bare encode); each batch still commits on its own
            job.window = sorted(self.store.pending_chunks(self.batch_size * WINDOW_BATCHES), key=lambda b: len(b[1]))
            if not job.window:
                return False
        batch, job.window = job.window[:self.batch_size], job.window[self.batch_size:]
        rate = job.embedded / (time.monotonic() - job.started) if job.embedded else 0
        job.pending = max(job.pending, len(batch))
        job.tell("reading" if job.reading else "embedding", "", job.pending / rate if rate else None)
        parts, i = [], 0
        while i < len(batch):
            if job.cancelled:
                job.window = batch + job.window  # not stored: still pending for the next job
                return True  # the caller sees the cancel at once
            step = max(1, min(MAX_STEP, int(CANCEL_WITHIN_S / self._per_chunk_s)))
            started = time.monotonic()
            parts.append(self.kb.embedder.embed_passages([b[1] for b in batch[i:i + step]]))
            took = (time.monotonic() - started) / len(parts[-1])
            self._per_chunk_s = 0.5 * self._per_chunk_s + 0.5 * took
            i += step
        save = time.monotonic() - job.saved > self.SAVE_EVERY_S
        self.store.add_vectors([b[0] for b in batch], np.concatenate(parts), save=save)
        if save:
            job.saved = time.monotonic()
        job.embedded += len(batch)
        job.pending -= len(batch)
        job.report.chunks_embedded += len(batch)
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
        # only folders this computer sees: a drive not mounted, or another computer's folder on a
        # server knowledge base, is not a folder whose files were all deleted
        for path in self.files.under_folders(folders):
            if not os.path.exists(path):
                if self.files.forget(path):
                    report.removed.append(path)
        return report

    def embed_pending(self, progress: Callable[[Progress], None] | None = None,
                      cancel: CancelToken | None = None, report: IndexReport | None = None) -> IndexReport:
        """Embed every chunk that has no vector yet, committing one batch at a time."""
        job = self._job(0, progress, cancel)
        if report is not None:
            job.report = report
        while not job.cancelled and self._embed_one_batch(job):
            pass
        job.report.cancelled = job.cancelled
        self._finish_index(job.embedded)
        job.pending = 0
        job.tell("embedding")
        return job.report
