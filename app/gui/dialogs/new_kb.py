"""The "New knowledge base" dialog: a name, and where it lives (this computer, or a team's PostgreSQL server)."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QVBoxLayout

from app.gui.i18n import tr


class NewKnowledgeBaseDialog(QDialog):
    """Asks for a name and, optionally, a PostgreSQL address (empty: kept on this computer)."""

    def __init__(self, parent, name: str) -> None:
        super().__init__(parent)
        self.setWindowTitle(tr("New knowledge base"))
        self.name = QLineEdit(name)
        self.name.selectAll()
        self.server = QLineEdit()
        self.server.setPlaceholderText("postgresql://user:password@host:5432/database")
        self.server.setClearButtonEnabled(True)
        note = QLabel(tr("Leave empty to keep it on this computer. With a PostgreSQL server (pgvector), "
                         "everyone who creates a knowledge base of the same name there shares it; it is "
                         "only as private as that server."))
        note.setWordWrap(True)
        note.setStyleSheet("color: palette(mid);")
        form = QFormLayout()
        form.addRow(tr("Name of the new knowledge base:"), self.name)
        form.addRow(tr("Team server (optional):"), self.server)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.resize(640, self.sizeHint().height())  # a whole postgresql:// address stays in view

    def values(self) -> tuple[str, str]:
        """(name, server address or '')."""
        return self.name.text().strip(), self.server.text().strip()
