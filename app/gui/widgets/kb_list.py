"""The sidebar: knowledge bases with their document counts; create, rename, delete.

A team's knowledge base lives on a server that may not answer (a laptop off the office network):
its counts are read in the background, given up on after LIST_TIMEOUT_S, so the list is drawn at
once whatever the servers do; one that does not answer reads "team · server not reachable", the
full message in its tooltip and, when selected, in the status bar.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.i18n import tr
from app.units import human_size


LIST_TIMEOUT_S = 2  # libpq's shortest connect time-out


class KBList(QWidget):
    """Lists knowledge bases; emits `selected(name)` ('' when none)."""

    selected = Signal(str)
    # a name and a server address ('' for this computer): the window creates it (and selects it)
    # before emit returns
    create_requested = Signal(str, str)
    releasing = Signal(str)  # a name about to be renamed or deleted: whoever holds it open closes it

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.title = QLabel()
        self.title.setStyleSheet("font-weight: 600;")
        self.list = QListWidget()
        # "3 documents · 4.0 KB" is longer in English than in Chinese: a narrow sidebar wraps it
        # rather than cutting the counts off
        self.list.setWordWrap(True)
        self.list.setTextElideMode(Qt.ElideNone)
        self.list.currentItemChanged.connect(self._changed)
        self.new_btn, self.rename_btn, self.delete_btn = QPushButton(), QPushButton(), QPushButton()
        self.new_btn.clicked.connect(self.create)
        self.rename_btn.clicked.connect(self.rename)
        self.delete_btn.clicked.connect(self.delete)
        buttons = QHBoxLayout()
        for b in (self.new_btn, self.rename_btn, self.delete_btn):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.title)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self.problems: dict[str, str] = {}  # server knowledge bases that did not answer: the full message
        self._generation = 0
        self.retranslate()
        self.reload()

    def retranslate(self) -> None:
        """Set every visible text in the current language."""
        self.title.setText(tr("Knowledge bases"))
        self.new_btn.setText("+")
        self.new_btn.setToolTip(tr("New knowledge base"))
        self.rename_btn.setText(tr("Rename"))
        self.delete_btn.setText(tr("Delete"))
        self.reload()

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.type() == QEvent.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    def current(self) -> str:
        """The selected knowledge base's name ('' when none)."""
        item = self.list.currentItem()
        return item.data(Qt.UserRole) if item else ""

    def reload(self, select: str | None = None) -> None:
        """Re-read the knowledge bases and their counts (a server's in the background)."""
        from kb.knowledge_base import list_names, on_server, summary
        from kb.storage.contract import StoreError

        keep = select if select is not None else self.current()
        self._generation += 1
        self.list.blockSignals(True)
        self.list.clear()
        for name in list_names():
            try:
                server = on_server(name)
            except (StoreError, OSError, ValueError) as e:  # an unreadable link file
                server, detail = None, str(e)
            else:
                detail = ""
            if server:
                detail = tr("reading counts from the server…")
                self._count_in_background(name)
            elif not detail:
                try:
                    detail = self._detail(summary(name))
                except StoreError as e:  # a damaged KB is listed with its problem, never crashes the app
                    detail = str(e)
            item = QListWidgetItem(f"{name}\n{detail}")
            item.setData(Qt.UserRole, name)
            item.setToolTip(f"{name}\n{detail}")
            self.list.addItem(item)
            if name == keep:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)
        if self.list.currentItem() is None and self.list.count():
            self.list.setCurrentRow(0)
        self._changed()

    @staticmethod
    def _detail(counts: dict) -> str:
        detail = tr("{n} documents · {size}", n=counts["documents"], size=human_size(counts["bytes"]))
        if counts.get("server"):
            detail += " · " + tr("on {server}", server=counts["server"])
        return detail

    def _count_in_background(self, name: str) -> None:
        from app.gui.workers import in_background
        from kb.knowledge_base import summary
        from kb.storage.contract import ServerGone

        generation = self._generation

        def show(result) -> None:
            if isinstance(result, Exception):
                self._show_counts(generation, name, None, str(result) or type(result).__name__,
                                  isinstance(result, ServerGone))
            else:
                self._show_counts(generation, name, result, "", False)

        in_background(lambda: summary(name, connect_timeout=LIST_TIMEOUT_S), show, self, f"counts {name}")

    def _show_counts(self, generation: int, name: str, counts, why: str, gone: bool) -> None:
        if generation != self._generation:
            return  # a newer reload has drawn the list again
        item = next((self.list.item(i) for i in range(self.list.count())
                     if self.list.item(i).data(Qt.UserRole) == name), None)
        if item is None:
            return
        if counts is not None:
            self.problems.pop(name, None)
            detail, tip = self._detail(counts), ""
        else:
            self.problems[name] = why
            detail = tr("server not reachable") if gone else tr("cannot be opened")
            tip = why
        item.setText(f"{name}\n{detail}")
        item.setToolTip(f"{name}\n{tip or detail}")
        if name == self.current():
            self._changed()

    def _changed(self, *_):
        name = self.current()
        self.rename_btn.setEnabled(bool(name))
        self.delete_btn.setEnabled(bool(name))
        self.selected.emit(name)

    def default_name(self) -> str:
        """A free name for a new knowledge base: "My documents", then "My documents 2", ..."""
        from kb.knowledge_base import list_names

        taken, base = set(list_names()), tr("My documents")
        return next(n for n in (base if i == 1 else f"{base} {i}" for i in range(1, 1000)) if n not in taken)

    def create(self) -> str:
        """Ask for a name (a free default filled in) and create an empty knowledge base."""
        from app.gui.dialogs.new_kb import NewKnowledgeBaseDialog

        dialog = NewKnowledgeBaseDialog(self, self.default_name())
        name, server = dialog.values() if dialog.exec() else ("", "")
        if name:
            self.create_requested.emit(name, server)
        return name

    def rename(self) -> None:
        """Rename the selected knowledge base (its folder)."""
        from kb.knowledge_base import rename
        from kb.storage.contract import StoreError

        old = self.current()
        new, ok = QInputDialog.getText(self, tr("Rename"), tr("New name:"), text=old)
        if not (ok and new.strip() and new.strip() != old):
            return
        try:
            self.releasing.emit(old)
            rename(old, new.strip())
        except (StoreError, OSError) as e:
            QMessageBox.warning(self, tr("Rename"), str(e))
            return
        self.reload(select=new.strip())

    def delete(self) -> None:
        """Delete the selected knowledge base after confirmation."""
        from kb.knowledge_base import delete

        name = self.current()
        answer = QMessageBox.question(
            self, tr("Delete"), tr("Delete knowledge base “{name}” and its index? Your files stay where they are.",
                                   name=name))
        if answer == QMessageBox.Yes:
            self.releasing.emit(name)
            delete(name)
            self.reload(select="")
