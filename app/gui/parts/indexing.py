"""The window's indexing jobs: drops, resumes, folder syncs, password prompts, one job at a time.

`Indexing` is one part of the main window (qutebrowser builds its window the same way): it owns
its jobs, its worker thread, the folder watcher and the status-bar progress widgets, and tells the
window what happened through signals; it knows nothing of the chat or the document list.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QInputDialog, QLabel, QLineEdit, QMessageBox, QProgressBar, QPushButton, QWidget

from app.gui.i18n import tr
from app.gui.workers import Worker, index_worker, settle_heap
from app.units import clock
from kb.text.file_names import readable

log = logging.getLogger("zhiku.gui")


class Indexing(QObject):
    """Everything that starts, follows and finishes an indexing job of the current knowledge base."""

    status = Signal(str)  # a line for the status bar
    queued = Signal()  # files were put in line: the document list shows them
    reading = Signal()  # a file was read: the document list may refresh (throttled by it)
    finished = Signal(object)  # kb.ingest.index_report.IndexReport of a finished job
    idle = Signal()  # the worker thread ended (a finished, cancelled or failed job)
    password_given = Signal(list, str)  # (paths, password): encrypted files to add again
    folders_changed = Signal()  # from the folder watcher's thread; handled on the UI thread

    def __init__(self, window: QWidget, settings: Callable[[], object]) -> None:
        super().__init__(window)
        self.window, self.settings = window, settings
        self.kb = None
        self.worker: Worker | None = None
        self.jobs: list[tuple[str, list, str | None]] = []  # (mode, paths, password) waiting their turn
        self.watcher = None
        self.password_dialog: QInputDialog | None = None
        self.failure_box: QMessageBox | None = None
        self.last_report = None
        self._best, self._eta = 0, None
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(220)
        self.bar.hide()
        self.text = QLabel()
        self.cancel_button = QPushButton()
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancel)
        self.folders_changed.connect(lambda: self.sync_folders())

    def retranslate(self) -> None:
        """Texts in the current language."""
        self.cancel_button.setText(tr("Cancel"))

    @property
    def busy(self) -> bool:
        """True while a job runs."""
        return self.worker is not None and self.worker.isRunning()

    # ---- starting jobs --------------------------------------------------------------------------
    def add(self, paths: list, password: str | None = None) -> None:
        """Index files and folders in the background (queued if a job is running)."""
        if self.kb is not None:
            self._run_job("add", list(paths), password)

    def sync_folders(self) -> None:
        """Bring the linked folders in (new, changed, moved, deleted files)."""
        if self.kb is not None and self.kb.files.folders():
            if not any(mode == "sync" for mode, _, _ in self.jobs):  # one pending sync covers all changes
                self._run_job("sync", [], None)

    def resume_indexing(self) -> None:
        """Finish what an interrupted job left (a crash or a quit mid-way)."""
        if self.kb is not None:
            self._run_job("resume", [], None)

    def link_folder(self, folder: str) -> None:
        """Link a folder: index it now, and again whenever its files change."""
        self.kb.files.link(folder)
        self._watch_folders()
        self.sync_folders()

    def index_pictures(self) -> None:
        """Give the pictures of the knowledge base their CLIP vectors (once; a background job)."""
        if self.kb is not None and not any(mode == "pictures" for mode, _, _ in self.jobs):
            self._run_job("pictures", [], None)

    def _run_job(self, mode: str, paths: list, password: str | None) -> None:
        if self.busy:
            self.jobs.append((mode, paths, password))
            if paths and self.kb is not None:  # listed as queued now, read when this job is done
                self.kb.queue(paths)
                self.queued.emit()
            return
        self._best, self._eta = 0, None  # this job's progress so far: never shown going back
        s = self.settings()
        worker = index_worker(self.kb, paths, self, mode=mode, password=password, ocr=bool(s.ocr),
                             time_limit_s=s.parse_time_limit)
        worker.progress.connect(self._on_progress)
        worker.finished_ok.connect(self._on_done)
        worker.failed.connect(lambda msg: QMessageBox.warning(self.window, tr("Something went wrong"), msg))
        worker.finished.connect(self._on_thread_end)
        self.worker = worker
        self.bar.setRange(0, 0)
        self.bar.show()
        self.cancel_button.show()
        self.status.emit(tr("Indexing…") if mode == "add" else tr("Bringing linked folders up to date…")
                         if mode == "sync" else tr("Finishing the interrupted indexing…"))
        worker.start()

    def cancel(self) -> None:
        """Stop the running indexing job at its next safe point (and drop the waiting ones)."""
        self.jobs.clear()
        if self.worker:
            self.worker.stop()

    def stop_for_quit(self) -> None:
        """Quitting: stop now, but keep the queue so the next start resumes."""
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        if self.busy:
            self.worker.stop(True)  # keep the queue: the job resumes at the next start
            # a step normally ends within half a second (kb/ingest/indexer.py); one that does not is left
            # to the process's end (app.gui.app.run), not waited for with the window frozen
            self.worker.wait(3000)

    # ---- following and finishing ----------------------------------------------------------------
    def _on_progress(self, p) -> None:
        done, total = (p.files_done, p.files_total) if p.phase == "reading" else (p.chunks_done, p.chunks_total)
        # one bar for the whole job: reading is the first half, embedding the second (pictures
        # last); chunk totals grow while files are read, so the bar only ever moves forward
        share = done / max(total, 1)
        part = {"reading": 0.0, "embedding": 0.5, "pictures": 0.9}.get(p.phase, 0.5)
        width = {"reading": 0.5, "embedding": 0.4, "pictures": 0.1}.get(p.phase, 0.4)
        self._best = max(self._best, int(1000 * (part + width * share)))
        self.bar.setRange(0, 1000)
        self.bar.setValue(self._best)
        phase = {"reading": tr("Reading"), "pictures": tr("Pictures")}.get(p.phase, tr("Embedding"))
        current = readable(Path(p.current).name) if p.current else ""
        self.text.setText(f"{phase} {done}/{total} · {tr('ETA')} {clock(self._smooth_eta(p.eta_seconds))}"
                          f"  {current}")
        if p.phase == "reading" and done:
            self.reading.emit()

    def _smooth_eta(self, eta: float | None) -> float | None:
        """The ETA averaged over recent updates (a single slow file made it jump, then sit)."""
        old = self._eta
        self._eta = eta if old is None or eta is None else 0.8 * old + 0.2 * eta
        return self._eta

    def _on_done(self, report) -> None:
        self.finished.emit(report)
        summary = tr("{added} added, {updated} re-indexed, {unchanged} unchanged, {failed} failed",
                     added=len(report.added), updated=len(report.updated), unchanged=len(report.unchanged),
                     failed=len(report.failed))
        if report.moved or report.removed:
            summary += " · " + tr("{moved} moved, {removed} removed", moved=len(report.moved),
                                  removed=len(report.removed))
        if report.pictures_embedded:
            summary += " · " + tr("{n} pictures ready for image search", n=report.pictures_embedded)
        self.status.emit(f"{tr('Indexing finished')}: {summary}")
        self.last_report = report
        failed = [(p, why) for p, why in report.failed if p not in report.password_needed]
        if failed:
            lines = "\n".join(f"• {Path(p).name}: {why}" for p, why in failed[:30])
            if len(failed) > 30:
                lines += "\n" + tr("…and {n} more (see the document list)", n=len(failed) - 30)
            box = QMessageBox(QMessageBox.Warning, tr("Some files could not be added"), lines, parent=self.window)
            box.setModal(False)
            box.show()
            self.failure_box = box
        if report.password_needed:
            self._ask_password(report.password_needed)

    def _ask_password(self, paths: list[str]) -> None:
        """Ask once for the encrypted files of a job; the password is used for this job only."""
        names = ", ".join(Path(p).name for p in paths[:3]) + (" …" if len(paths) > 3 else "")
        dlg = QInputDialog(self.window)
        dlg.setWindowTitle(tr("Password needed"))
        dlg.setLabelText(tr("{names} is encrypted. Password (used once, never saved):", names=names))
        dlg.setTextEchoMode(QLineEdit.Password)
        dlg.textValueSelected.connect(lambda pw, ps=list(paths): pw and self.password_given.emit(ps, pw))
        dlg.setModal(False)
        dlg.open()
        self.password_dialog = dlg

    def _on_thread_end(self) -> None:
        settle_heap()  # what the job loaded lazily (a loader's library, the FAISS index) stays
        self.end_progress()
        self.idle.emit()
        if self.jobs and self.kb is not None:
            mode, paths, password = self.jobs.pop(0)
            self._run_job(mode, paths, password)

    def end_progress(self) -> None:
        """Hide the progress widgets (a job, or a model install that borrowed them, ended)."""
        self.bar.hide()
        self.cancel_button.hide()
        self.text.clear()

    # ---- linked folders -------------------------------------------------------------------------
    def _watch_folders(self) -> None:
        """Watch the current knowledge base's linked folders (and only those)."""
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        folders = [f for f in self.kb.files.folders() if Path(f).is_dir()] if self.kb is not None else []
        if folders:
            from kb.ingest.watcher import FolderWatcher

            try:
                self.watcher = FolderWatcher(folders, self.folders_changed.emit).start()
            except OSError as e:  # e.g. the system's limit on watched folders: sync at start still works
                log.warning("cannot watch %s: %s", folders, e)

    def set_kb(self, kb) -> None:
        """A knowledge base became current: resume an interrupted job, sync and watch its folders."""
        self.kb = kb
        if kb is not None and kb.indexer().needs_resume():
            self.resume_indexing()
        self._watch_folders()
