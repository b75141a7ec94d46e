"""The documents of the selected knowledge base: status, failures, drop target, actions."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui.i18n import tr
from kb.text.file_names import readable


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


QUEUED_ROWS = 30  # queued files shown as rows; the progress line counts the rest
NAME_MIN_CHARS = 9  # the name column's least width, in widths of "M" (about 100 px), before others make room


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
        self.header().setStretchLastSection(False)
        self.header().setSectionResizeMode(0, QHeaderView.Stretch)  # the name takes what the others leave
        # "2023年度报告…终稿.pdf" says more than "2023年度报告…": a long name loses its middle (the
        # tooltip has the whole path)
        self.setTextElideMode(Qt.ElideMiddle)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self.fit_columns()

    def fit_columns(self) -> None:
        """In a narrow pane the name keeps room for a readable name: Type goes first, then Pages.

        With all four columns in a 300-pixel pane the name column got 40 pixels ("Nan").
        """
        header = self.header()
        room = self.viewport().width() - header.sectionSize(3)
        name_min = self.fontMetrics().horizontalAdvance("M") * NAME_MIN_CHARS
        for col in (2, 1):  # Pages is hidden last: it is the smaller one
            header.setSectionHidden(col, False)
        for col, rest in ((1, 2), (2, None)):
            wanted = header.sectionSize(col) + (header.sectionSize(rest) if rest is not None else 0)
            if room - wanted < name_min:
                header.setSectionHidden(col, True)
            else:
                break

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
    pick_files = Signal()  # "Add documents…": the window asks which
    pick_folder = Signal()  # "Add folder…"
    remove_requested = Signal(list)
    reindex_requested = Signal(list)
    scope_requested = Signal(list)  # "Ask only these documents"

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.kb = None
        self._items: dict[str, QTreeWidgetItem] = {}
        self._sized = False
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(500)
        self._refresh_timer.timeout.connect(self.refresh)
        self.title = QLabel()
        self.title.setStyleSheet("font-weight: 600;")
        self.tree = DocumentTree()
        self.tree.dropped.connect(self.add_requested.emit)
        self.tree.customContextMenuRequested.connect(self._menu)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: palette(mid);")
        self.add_btn, self.folder_btn = QPushButton(), QPushButton()
        self.add_btn.clicked.connect(lambda: self.pick_files.emit())
        self.folder_btn.clicked.connect(lambda: self.pick_folder.emit())
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
        self._sized = False
        for item in self._items.values():
            item.setData(1, Qt.UserRole, None)  # statuses are words in the old language: refill
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
        self.tree.clear()
        self._items.clear()
        self.refresh()

    def refresh_soon(self) -> None:
        """Refresh within half a second; bursts of progress coalesce into one refresh."""
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def refresh(self, indexing: set[str] | None = None) -> None:
        """Re-read the document rows from the store, updating only the rows that changed.

        A long list is never rebuilt or re-measured: during a 300-file drop, clearing the tree and
        sizing columns to their contents every few files stalled the window for 100-235 ms.
        """
        self._refresh_timer.stop()
        if self.kb is None:
            self.tree.clear()
            self._items.clear()
            return
        indexing = indexing or set()
        docs = self.kb.documents()
        self.tree.setUpdatesEnabled(False)
        try:
            seen = set()
            for d in docs:
                seen.add(d["path"])
                item = self._items.get(d["path"])
                if item is None:
                    item = self._items[d["path"]] = QTreeWidgetItem()
                    item.setData(0, Qt.UserRole, d["path"])
                    self.tree.addTopLevelItem(item)
                self._fill(item, d, indexing)
            # dropped, not read yet: listed at once — the latest few, since adding and sorting
            # hundreds of rows while a 300-file drop starts stalled the window (200 ms)
            for path in self.kb.files.waiting()[-QUEUED_ROWS:]:
                if path in seen:
                    continue
                seen.add(path)
                item = self._items.get(path)
                if item is None:
                    item = self._items[path] = QTreeWidgetItem()
                    item.setData(0, Qt.UserRole, path)
                    self.tree.addTopLevelItem(item)
                self._fill_queued(item, path)
            for path in [p for p in self._items if p not in seen]:
                gone = self._items.pop(path)
                self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(gone))
            self.tree.sortItems(0, Qt.AscendingOrder)
        finally:
            self.tree.setUpdatesEnabled(True)
        if not self._sized:
            self._size_columns()

    def _fill_queued(self, item: QTreeWidgetItem, path: str) -> None:
        name = readable(Path(path).name)
        if item.text(0) != name or item.text(3) != tr("queued"):
            item.setText(0, name)
            item.setText(1, Path(path).suffix.lstrip(".").upper())
            item.setText(2, "")
            item.setText(3, tr("queued"))
            item.setToolTip(0, readable(path))

    def _fill(self, item: QTreeWidgetItem, d: dict, indexing: set[str]) -> None:
        status = d["status"]
        if status == "embedding" or d["path"] in indexing:
            status = "indexing"
        kind = (d["kind"] or Path(d["path"]).suffix.lstrip(".")).upper()
        if d["ocr_pages"]:
            kind += " · OCR"
        texts = [d["name"], kind, str(d["pages"] or ""), tr(status)]
        error = d["error"] or "" if d["status"] == "failed" else ""
        key = (tuple(texts), error, d["copies"] or "", d["ocr_pages"])
        if item.data(1, Qt.UserRole) == key:
            return  # unchanged: touching it would only cost layout work
        item.setData(1, Qt.UserRole, key)
        for col, text in enumerate(texts):
            item.setText(col, text)
        item.setToolTip(0, f"{readable(d['path'])}\n{error}" if error else readable(d["path"]))
        item.setToolTip(1, tr("{n} pages read by OCR", n=d["ocr_pages"]) if d["ocr_pages"] else "")
        item.setToolTip(3, error)
        item.setForeground(3, Qt.red if error else self.tree.palette().text())
        item.takeChildren()
        for copy in (d["copies"] or "").split("\n"):
            if copy:  # identical content elsewhere: indexed once, listed under each path
                child = QTreeWidgetItem([Path(copy).name, tr("same file"), "", tr(status)])
                child.setData(0, Qt.UserRole, copy)
                child.setToolTip(0, copy)
                item.addChild(child)

    def _size_columns(self) -> None:
        """Size the small columns once, from their header and widest likely value."""
        metrics = self.tree.fontMetrics()
        samples = {1: ["PPTX · OCR", tr("same file")], 2: ["9999"],
                   3: [tr(s) for s in ("indexed", "indexing", "failed", "queued")]}
        header = self.tree.header()
        for col, values in samples.items():
            label = self.tree.headerItem().text(col)
            width = max(metrics.horizontalAdvance(v) for v in values + [label]) + 24
            header.resizeSection(col, width)
        self._sized = True
        self.tree.fit_columns()

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
        menu.addAction(tr("Ask only these documents") if len(paths) > 1 else tr("Ask only this document"),
                       lambda: self.scope_requested.emit(paths))
        folder = Path(paths[0]).parent
        menu.addAction(tr("Ask only the documents in “{folder}”", folder=readable(folder.name) or str(folder)),
                       lambda: self.scope_requested.emit([str(folder)]))
        menu.addSeparator()
        menu.addAction(tr("Remove"), lambda: self.remove_requested.emit(paths))
        menu.addAction(tr("Re-index"), lambda: self.reindex_requested.emit(paths))
        menu.addAction(tr("Show in folder"),
                       lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(paths[0]).parent))))
        menu.exec(self.tree.viewport().mapToGlobal(pos))
