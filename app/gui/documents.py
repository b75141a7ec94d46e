"""The documents of the selected knowledge base: status, failures, drop target, actions."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui.i18n import tr


def local_paths(mime) -> list[Path]:
    """The local files and folders in a drag's MIME data."""
    return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []


def accept_files(event) -> list[Path]:
    """Accept a drag/drop event that carries local files (returning them); ignore any other."""
    paths = local_paths(event.mimeData())
    if paths:
        event.acceptProposedAction()
    else:
        event.ignore()
    return paths


class DocumentTree(QTreeWidget):
    """The document list; accepts dropped files and folders."""

    dropped = Signal(list)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DropOnly)
        self.setRootIsDecorated(False)
        self.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.setContextMenuPolicy(Qt.CustomContextMenu)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt override)
        accept_files(event)

    def dragMoveEvent(self, event) -> None:  # noqa: N802 (Qt override)
        accept_files(event)

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if paths := accept_files(event):
            self.dropped.emit(paths)


class DocumentsPanel(QWidget):
    """Shows a knowledge base's documents; asks the window to add, remove or re-index them."""

    add_requested = Signal(list)
    remove_requested = Signal(list)
    reindex_requested = Signal(list)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.kb = None
        self.title = QLabel()
        self.title.setStyleSheet("font-weight: 600;")
        self.tree = DocumentTree()
        self.tree.dropped.connect(self.add_requested.emit)
        self.tree.customContextMenuRequested.connect(self._menu)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: palette(mid);")
        self.add_btn, self.folder_btn = QPushButton(), QPushButton()
        self.add_btn.clicked.connect(lambda: self.window().add_documents_dialog())
        self.folder_btn.clicked.connect(lambda: self.window().add_folder_dialog())
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_btn)
        buttons.addWidget(self.folder_btn)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.title)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.hint)
        layout.addLayout(buttons)
        self.retranslate()

    def retranslate(self) -> None:
        """Set every visible text in the current language."""
        self.title.setText(tr("Documents"))
        self.tree.setHeaderLabels([tr("Name"), tr("Type"), tr("Pages"), tr("Status")])
        self.hint.setText(tr("Drop files or folders here to add them"))
        self.add_btn.setText(tr("Add documents…"))
        self.folder_btn.setText(tr("Add folder…"))
        self.refresh()

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.type() == QEvent.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    def set_kb(self, kb) -> None:
        """Show another knowledge base (or none)."""
        self.kb = kb
        self.refresh()

    def refresh(self, indexing: set[str] | None = None) -> None:
        """Re-read the document rows from the store."""
        self.tree.clear()
        if self.kb is None:
            return
        indexing = indexing or set()
        for d in self.kb.store.documents():
            status = d["status"]
            if status == "embedding" or d["path"] in indexing:
                status = "indexing"
            kind = (d["kind"] or Path(d["path"]).suffix.lstrip(".")).upper()
            if d["ocr_pages"]:
                kind += " · OCR"
            item = QTreeWidgetItem([d["name"], kind, str(d["pages"] or ""), tr(status)])
            item.setData(0, Qt.UserRole, d["path"])
            item.setToolTip(0, d["path"])
            if d["ocr_pages"]:
                item.setToolTip(1, tr("{n} pages read by OCR", n=d["ocr_pages"]))
            for copy in (d["copies"] or "").split("\n"):
                if copy:  # identical content elsewhere: indexed once, listed under each path
                    child = QTreeWidgetItem([Path(copy).name, tr("same file"), "", tr(status)])
                    child.setData(0, Qt.UserRole, copy)
                    child.setToolTip(0, copy)
                    item.addChild(child)
            if d["status"] == "failed":
                item.setToolTip(3, d["error"] or "")
                item.setToolTip(0, f"{d['path']}\n{d['error']}")
                item.setForeground(3, Qt.red)
            self.tree.addTopLevelItem(item)
        for col in range(4):
            self.tree.resizeColumnToContents(col)

    def rows(self) -> dict[str, tuple[str, str]]:
        """name -> (status text, tooltip) for every listed document (used by tests and screenshots)."""
        out = {}
        for i in range(self.tree.topLevelItemCount()):
            it = self.tree.topLevelItem(i)
            out[it.text(0)] = (it.text(3), it.toolTip(3))
        return out

    def _selected_paths(self) -> list[str]:
        return [it.data(0, Qt.UserRole) for it in self.tree.selectedItems()]

    def _menu(self, pos) -> None:
        paths = self._selected_paths()
        if not paths:
            return
        menu = QMenu(self)
        menu.addAction(tr("Remove"), lambda: self.remove_requested.emit(paths))
        menu.addAction(tr("Re-index"), lambda: self.reindex_requested.emit(paths))
        menu.addAction(tr("Show in folder"),
                       lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(paths[0]).parent))))
        menu.exec(self.tree.viewport().mapToGlobal(pos))
