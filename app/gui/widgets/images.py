"""The Images tab: search a knowledge base's pictures by words or by a dropped image; set up CLIP."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.widgets.documents import local_paths
from app.gui.i18n import tr

THUMB = 150
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".heic", ".heif")


class ImagesPanel(QWidget):
    """Search box, drop zone and a grid of thumbnails with scores; explains CLIP when there is none."""

    search_requested = Signal(str)
    like_requested = Signal(object)  # Path
    open_requested = Signal(str, int)  # document path, page
    choose_model = Signal()
    download_model = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.hits: list = []
        self.query = QLineEdit()
        self.query.returnPressed.connect(self._search)
        self.search_btn, self.like_btn = QPushButton(), QPushButton()
        self.search_btn.clicked.connect(self._search)
        self.like_btn.clicked.connect(self._pick_image)
        row = QHBoxLayout()
        row.addWidget(self.query, 1)
        row.addWidget(self.search_btn)
        row.addWidget(self.like_btn)

        self.setup = QWidget()  # shown while no CLIP model is set up
        self.setup_text = QLabel()
        self.setup_text.setWordWrap(True)
        self.choose_btn, self.download_btn = QPushButton(), QPushButton()
        self.choose_btn.clicked.connect(self.choose_model.emit)
        self.download_btn.clicked.connect(self.download_model.emit)
        setup_buttons = QHBoxLayout()
        setup_buttons.addWidget(self.choose_btn)
        setup_buttons.addWidget(self.download_btn)
        setup_buttons.addStretch(1)
        setup_layout = QVBoxLayout(self.setup)
        setup_layout.setContentsMargins(0, 0, 0, 0)
        setup_layout.addWidget(self.setup_text)
        setup_layout.addLayout(setup_buttons)

        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("color: palette(mid);")
        self.grid = QListWidget()
        self.grid.setViewMode(QListView.IconMode)
        self.grid.setIconSize(QSize(THUMB, THUMB))
        self.grid.setGridSize(QSize(THUMB + 24, THUMB + 52))
        self.grid.setResizeMode(QListView.Adjust)
        self.grid.setMovement(QListView.Static)
        self.grid.setWordWrap(True)
        self.grid.setUniformItemSizes(True)
        self.grid.itemDoubleClicked.connect(self._open)
        self.grid.itemActivated.connect(self._open)
        self.grid.setDragEnabled(False)
        self.grid.viewport().setAcceptDrops(True)
        self.grid.viewport().installEventFilter(self)  # the grid's own drop handling would move icons

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(row)
        layout.addWidget(self.setup)
        layout.addWidget(self.notice)
        layout.addWidget(self.grid, 1)
        self.set_model(None)
        self.retranslate()

    def retranslate(self) -> None:
        """Set every visible text in the current language."""
        self.query.setPlaceholderText(tr("Describe a picture (e.g. a bar chart of revenue), or drop an image here"))
        self.search_btn.setText(tr("Search"))
        self.like_btn.setText(tr("Find similar…"))
        self.setup_text.setText(tr(
            "Image search needs a CLIP model, which no Python package ships. Choose a folder with a "
            "transformers CLIP or Chinese-CLIP model (config.json + model.safetensors), or download "
            "OpenAI's CLIP ViT-B/32 (350 MB, English queries). Without one, pictures are found by "
            "the text of their pages only."))
        self.choose_btn.setText(tr("Choose folder…"))
        self.download_btn.setText(tr("Download…"))
        self._fill()

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.type() == QEvent.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    def set_model(self, name: str | None) -> None:
        """Which CLIP model searches (None: only the pages' text)."""
        self.model_name = name
        self.setup.setVisible(name is None)
        self.like_btn.setEnabled(name is not None)

    def set_busy(self, busy: bool) -> None:
        """Searching: the buttons wait."""
        self.search_btn.setEnabled(not busy)
        self.like_btn.setEnabled(not busy and self.model_name is not None)

    def show_results(self, hits: list, warning: str = "") -> None:
        """Fill the grid with thumbnails, best first."""
        self.hits = hits
        if not hits and not warning:
            warning = tr("No pictures match. Try other words — what the picture shows, or words printed "
                         "near it on its page — or “Find similar…” with an image you have.")
        self.notice.setText(warning)
        self._fill()

    def show_error(self, message: str) -> None:
        """Say what went wrong with this search."""
        self.hits = []
        self._fill()
        self.notice.setText(message)

    def _fill(self) -> None:
        self.grid.clear()
        for n, h in enumerate(self.hits):
            pix = QPixmap(str(h.thumb))
            item = QListWidgetItem(QIcon(pix), f"{h.picture.name}\n{tr('page {n}', n=h.page)} · {h.score:.2f}")
            tip = [h.path, tr("page {n}", n=h.page), f"{h.picture.width}×{h.picture.height}"]
            if h.clip_similarity is not None:
                tip.append(f"CLIP {h.clip_similarity:.3f}")
            if h.text_rank:
                tip.append(tr("page text matches (#{n})", n=h.text_rank))
            tip += [tr("also in {name}, page {n}", name=Path(p).name, n=pg) for p, pg in h.also_in]
            item.setToolTip("\n".join(tip))
            item.setData(Qt.UserRole, n)
            self.grid.addItem(item)

    def _search(self) -> None:
        text = self.query.text().strip()
        if text:
            self.search_requested.emit(text)

    def _pick_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, tr("Find similar…"), str(Path.home()),
                                              tr("Images") + " (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ")")
        if path:
            self.like_requested.emit(Path(path))

    def _open(self, item: QListWidgetItem) -> None:
        hit = self.hits[item.data(Qt.UserRole)]
        self.open_requested.emit(hit.path, hit.page)

    # ---- the drop zone: an image dropped here is a query, not a document to add -------------
    def _images(self, event) -> list[Path]:
        return [p for p in local_paths(event.mimeData()) if p.suffix.lower() in IMAGE_SUFFIXES]

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt override)
        if event.type() in (QEvent.DragEnter, QEvent.DragMove):
            self.dragEnterEvent(event)
            return True
        if event.type() == QEvent.Drop:
            self.dropEvent(event)
            return True
        return super().eventFilter(watched, event)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if self._images(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    dragMoveEvent = dragEnterEvent

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt override)
        images = self._images(event)
        if images:
            event.acceptProposedAction()
            self.like_requested.emit(images[0])
        else:
            event.ignore()
