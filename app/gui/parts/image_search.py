"""The window's image search part: loading the CLIP model, embedding pictures, searching, opening pages.

`ImageSearch` is one part of the main window, like `Indexing` and `Answering`: it owns the Images
tab, the CLIP model, its loader and the search thread, and tells the window through signals when
the model changed (every open knowledge base gets it), when pictures wait for vectors, when a
model should be installed and which page to show.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from app.gui.i18n import tr
from app.gui.widgets.images import ImagesPanel
from app.gui.workers import Worker

log = logging.getLogger("zhiku.gui")


class ImageSearch(QObject):
    """The Images tab and everything behind it."""

    clip_changed = Signal(object)  # models.clip.ClipModel or None: every open knowledge base uses it
    pictures_pending = Signal()  # the open knowledge base has pictures without a CLIP vector
    install_requested = Signal(object)  # a models.catalog spec the user agreed to download
    page_requested = Signal(str, int, str, str, object)  # path, page, passage, page text, boxes

    def __init__(self, window: QWidget, settings: Callable[[], object]) -> None:
        super().__init__(window)
        self.window, self.settings = window, settings
        self.kb = None
        self.clip = None
        self._clip_name: str | None = None
        self.clip_loader: Worker | None = None
        self.image_worker: Worker | None = None
        self.images = ImagesPanel()
        self.images.search_requested.connect(self.search_images)
        self.images.like_requested.connect(self.search_like)
        self.images.open_requested.connect(self.open_picture)
        self.images.choose_model.connect(self.choose_clip_folder)
        self.images.download_model.connect(self.download_clip)

    def set_kb(self, kb) -> None:
        """Search this knowledge base's pictures (embedding those still waiting, when a model is loaded)."""
        self.kb = kb
        self.index_pictures_if_needed()

    # ---- the model ------------------------------------------------------------------------------
    def load_clip(self) -> None:
        """Load the CLIP model the settings name (if any) in the background."""
        name = self.settings().clip_name
        if not name:
            self._use_clip(None)
            return
        if self.clip is not None and name in (self.clip.path.name, self._clip_name):
            return
        if self.clip_loader is not None and self.clip_loader.isRunning() and self.clip_loader.what == name:
            return  # already on its way (every warm-up asks)

        def load(_w: Worker):
            from models.clip import ClipModel

            return ClipModel.default(name)

        # a moved folder or a damaged model: said in the Images tab
        loader = Worker(load, self, what=name)
        loader.finished_ok.connect(self._use_clip)
        loader.failed.connect(lambda msg: self.images.notice.setText(
            tr("The image search model could not be loaded: {error}", error=msg)))
        self.clip_loader = loader
        loader.start()

    def _use_clip(self, clip) -> None:
        self.clip = clip
        self._clip_name = self.settings().clip_name if clip is not None else None
        self.images.set_model(clip.path.name if clip is not None else None)
        self.clip_changed.emit(clip)
        self.index_pictures_if_needed()

    def index_pictures_if_needed(self) -> None:
        """Embed the current knowledge base's pictures that have no CLIP vector yet (a background job)."""
        kb = self.kb
        if kb is None or self.clip is None:
            return
        kb.use_clip(self.clip)
        if kb.pictures.count_pending() or kb.pictures.missing_documents():
            self.pictures_pending.emit()

    def choose_clip_folder(self) -> None:
        """Register a CLIP model folder the user picks, and use it."""
        folder = QFileDialog.getExistingDirectory(self.window, tr("Choose folder…"), str(Path.home()))
        if folder:
            self.use_clip_folder(folder)

    def use_clip_folder(self, folder: str) -> bool:
        """Register `folder` as the CLIP model and switch to it; False (and a message) if it is not one."""
        from models.registry import InvalidModel, add

        try:
            model = add(folder, "clip")
        except InvalidModel as e:
            QMessageBox.warning(self.window, tr("Image search model (CLIP)"), str(e))
            return False
        self.use_installed(model.name)
        return True

    def download_clip(self) -> None:
        """Offer the catalog's downloadable CLIP models (nothing is fetched unless the user confirms)."""
        from models.catalog import CATALOG, downloadable

        choices = [m for m in CATALOG if m.role == "clip" and downloadable(m)]
        if not choices:
            QMessageBox.information(self.window, tr("Download…"), tr(
                "No CLIP model can be downloaded from inside Zhiku yet: download a transformers CLIP "
                "folder yourself (for example openai/clip-vit-base-patch32, or OFA-Sys/chinese-clip-vit-"
                "base-patch16 for Chinese queries) and choose it with “Choose folder…”."))
            return
        spec = choices[0]
        answer = QMessageBox.question(self.window, tr("Download…"), tr(
            "Download {title} from {url}? Its checksum is verified before it is used.",
            title=spec.title, url=spec.source.url))
        if answer != QMessageBox.Yes:
            return
        self.install_requested.emit(spec)  # the window installs it and calls use_installed

    def use_installed(self, name: str) -> None:
        """Make the installed CLIP model `name` the one to use, and load it."""
        settings = self.settings()
        settings.clip_name = name
        settings.save()
        self.load_clip()

    # ---- searching ------------------------------------------------------------------------------
    def search_images(self, query: str) -> None:
        """Pictures matching a description."""
        self._start_image_search(query=query)

    def search_like(self, path) -> None:
        """Pictures that look like an image file."""
        self.images.query.clear()
        self._start_image_search(like=Path(path))

    def _start_image_search(self, query: str = "", like: Path | None = None) -> None:
        if self.kb is None:
            self.images.show_error(tr("Create a knowledge base first"))
            return
        if self.image_worker is not None and self.image_worker.isRunning():
            self.image_worker.wait()  # searches are short; the newest one wins
        kb, clip = self.kb, self.clip

        def search(_w: Worker) -> tuple[list, str]:  # CLIP's text or image tower, then the index
            found = kb.image_search(clip)
            hits = found.by_image(like) if like else found.by_text(query)
            # without a model the tab's setup panel already explains what is missing
            return hits, (found.warning(query) or "") if clip is not None else ""

        worker = Worker(search, self, what="image search")
        worker.finished_ok.connect(lambda result: self.images.show_results(*result))
        worker.failed.connect(self.images.show_error)
        worker.finished.connect(lambda: self.images.set_busy(False))
        self.image_worker = worker
        self.images.set_busy(True)
        worker.start()

    def open_picture(self, path: str, page: int) -> None:
        """Open the viewer on the page a picture is on."""
        row = self.kb.document(path) if self.kb is not None else None
        page_text = self.kb.page(row["id"], page)[0] if row is not None else ""
        self.page_requested.emit(path, page, "", page_text or "", None)

    def pictures_of_pages(self, sources: list[dict]) -> list[dict]:
        """Add the thumbnails of each cited page to chat sources (what the chat shows under an answer)."""
        if self.kb is None:
            return sources
        for s in sources:
            if s.get("doc_id") is not None:  # looked up again: a stored answer's page may have changed
                rows = self.kb.pictures.on_pages([(s["doc_id"], s["page"])])
                s["pictures"] = [str(r.thumb) for r in rows if r.thumb.exists()][:4]
        return sources
