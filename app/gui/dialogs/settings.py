"""The settings dialog: models, performance, retrieval, languages, the data folder."""

from __future__ import annotations

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from app.gui.i18n import LANGUAGES, tr
from app.gui.settings import AppSettings
from models.paths import data_dir


def _model_choices(role: str) -> list[tuple[str, str]]:
    """(name, label with install/verify state) for every catalog or registered model of a role."""
    from models.inventory import statuses

    out = []
    for st in statuses(check=True):
        if st.role != role:
            continue
        state = tr("verified") if st.verified else (tr("not installed") if not st.installed else tr("damaged"))
        out.append((st.name, f"{st.name} — {state}"))
    return out


class SettingsDialog(QDialog):
    """Edits AppSettings; the caller applies and saves them on accept."""

    def __init__(self, settings: AppSettings, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(tr("Settings"))
        self.settings = settings
        form = QFormLayout()
        self.llm = self._combo("llm", settings.llm_name)
        add_llm = QPushButton(tr("Add model file…"))
        add_llm.clicked.connect(self._add_gguf)
        row = QHBoxLayout()
        row.addWidget(self.llm, 1)
        row.addWidget(add_llm)
        form.addRow(tr("Chat model"), row)
        # a model on the user's own OpenAI-compatible server answers instead of the local one
        self.server_url = QLineEdit(settings.server_url)
        self.server_url.setPlaceholderText(tr("empty: the chat model above, on this computer"))
        self.server_url.setToolTip(tr("An OpenAI-compatible server (vLLM, llama.cpp, Ollama, LM Studio), e.g. "
                                      "http://gpu-box:8000/v1. Questions and their sources are sent to it."))
        form.addRow(tr("Model server"), self.server_url)
        self.server_model = QLineEdit(settings.server_model)
        self.server_model.setPlaceholderText(tr("the first model the server lists"))
        form.addRow(tr("Model on the server"), self.server_model)
        self.api_key = QLineEdit()
        self.api_key.setEchoMode(QLineEdit.Password)
        from models.api_keys import load_key, where
        from models.remote_llm import root_of

        kept = bool(settings.server_url) and load_key(root_of(settings.server_url)) is not None
        self.api_key.setPlaceholderText(tr("unchanged (kept in {where})", where=where()) if kept
                                        else tr("none; a key entered here is kept in {where}", where=where()))
        self.api_key.setToolTip(self.api_key.placeholderText())  # a long path does not fit the field
        form.addRow(tr("API key"), self.api_key)
        self.server_timeout = self._spin(5, 3600, settings.server_timeout, step=5)
        self.server_timeout.setSuffix(" s")
        self.server_timeout.setToolTip(tr("How long to wait for the server's next word before giving up."))
        form.addRow(tr("Server time-out"), self.server_timeout)
        self.embed = self._combo("embedding", settings.embed_name)
        form.addRow(tr("Embedding model (new knowledge bases)"), self._with_folder_button(self.embed, "embedding"))
        self.clip = self._combo("clip", settings.clip_name, none_label=tr("none — add one with “zhiku models add”"))
        form.addRow(tr("Image search model (CLIP)"), self._with_folder_button(self.clip, "clip"))
        self.gpu = self._spin(0, 999, settings.gpu_layers)
        form.addRow(tr("GPU layers"), self.gpu)
        self.ctx = self._spin(512, 131072, settings.n_ctx, step=512)
        form.addRow(tr("Context length"), self.ctx)
        self.threads = self._spin(0, 256, settings.threads)
        self.threads.setSpecialValueText(tr("Automatic"))
        form.addRow(tr("Threads"), self.threads)
        self.top_k = self._spin(1, 20, settings.top_k)
        form.addRow(tr("Sources per answer (top-K)"), self.top_k)
        self.context_tokens = self._spin(100, 4000, settings.context_tokens, step=50)
        self.context_tokens.setToolTip(tr("Less evidence gives a faster first word; more finds more answers."))
        form.addRow(tr("Evidence per answer (tokens)"), self.context_tokens)
        self.chunk = self._spin(32, 512, settings.chunk_tokens, step=16)
        form.addRow(tr("Chunk size (tokens, new knowledge bases)"), self.chunk)
        self.overlap = self._spin(0, 256, settings.overlap_tokens)
        form.addRow(tr("Chunk overlap (tokens)"), self.overlap)
        self.ocr = QCheckBox(tr("Read scanned pages and images (OCR)"))
        self.ocr.setChecked(bool(settings.ocr))
        form.addRow(tr("OCR"), self.ocr)
        self.parse_limit = self._spin(10, 3600, settings.parse_time_limit, step=10)
        self.parse_limit.setSuffix(" s")
        self.parse_limit.setToolTip(tr("A file whose reading makes no progress for this long is skipped with a reason."))
        form.addRow(tr("Time limit per file"), self.parse_limit)
        self.answer_lang = QComboBox()
        for code, label in (("auto", tr("Automatic")), ("zh", "中文"), ("en", "English")):
            self.answer_lang.addItem(label, code)
        self.answer_lang.setCurrentIndex(max(0, self.answer_lang.findData(settings.answer_language)))
        form.addRow(tr("Answer language"), self.answer_lang)
        self.ui_lang = QComboBox()
        for code, label in LANGUAGES:
            self.ui_lang.addItem(tr(label), code)
        self.ui_lang.setCurrentIndex(max(0, self.ui_lang.findData(settings.ui_language)))
        form.addRow(tr("Interface language"), self.ui_lang)
        folder = QLabel(str(data_dir()))
        folder.setTextInteractionFlags(Qt.TextSelectableByMouse)
        open_btn = QPushButton(tr("Open"))
        open_btn.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(data_dir()))))
        row = QHBoxLayout()
        row.addWidget(folder, 1)
        row.addWidget(open_btn)
        form.addRow(tr("Data folder"), row)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def _combo(self, role: str, current: str, none_label: str | None = None) -> QComboBox:
        from models.catalog import default_for

        box = QComboBox()
        default = default_for(role)
        box.addItem(none_label if default is None and none_label else
                    f"{tr('Automatic')} ({default.name})" if default else tr("Automatic"), "")
        for name, label in _model_choices(role):
            box.addItem(label, name)
        box.setCurrentIndex(max(0, box.findData(current)))
        return box

    @staticmethod
    def _spin(lo: int, hi: int, value: int, step: int = 1) -> QSpinBox:
        s = QSpinBox()
        s.setRange(lo, hi)
        s.setSingleStep(step)
        s.setValue(value)
        return s

    def _with_folder_button(self, combo: QComboBox, role: str) -> QHBoxLayout:
        button = QPushButton(tr("Add model folder…"))
        button.clicked.connect(lambda: self._add_folder(combo, role))
        row = QHBoxLayout()
        row.addWidget(combo, 1)
        row.addWidget(button)
        return row

    def _add_folder(self, combo: QComboBox, role: str) -> None:
        from models.registry import InvalidModel, add

        folder = QFileDialog.getExistingDirectory(self, tr("Add model folder…"))
        if not folder:
            return
        try:
            m = add(folder, role)
        except InvalidModel as e:
            QMessageBox.warning(self, tr("Settings"), str(e))
            return
        combo.addItem(f"{m.name} — {tr('verified')}", m.name)
        combo.setCurrentIndex(combo.count() - 1)

    def _add_gguf(self) -> None:
        from models.registry import InvalidModel, add

        path, _ = QFileDialog.getOpenFileName(self, tr("Add model file…"), "", "GGUF (*.gguf)")
        if not path:
            return
        try:
            m = add(path, "llm")
        except InvalidModel as e:
            QMessageBox.warning(self, tr("Settings"), str(e))
            return
        self.llm.addItem(f"{m.name} — {tr('verified')}", m.name)
        self.llm.setCurrentIndex(self.llm.count() - 1)

    def result_settings(self) -> AppSettings:
        """The settings as edited."""
        return AppSettings(
            llm_name=self.llm.currentData(), embed_name=self.embed.currentData(), clip_name=self.clip.currentData(),
            gpu_layers=self.gpu.value(), n_ctx=self.ctx.value(), threads=self.threads.value(),
            top_k=self.top_k.value(), context_tokens=self.context_tokens.value(), chunk_tokens=self.chunk.value(), overlap_tokens=self.overlap.value(),
            ocr=int(self.ocr.isChecked()), parse_time_limit=self.parse_limit.value(),
            answer_language=self.answer_lang.currentData(), ui_language=self.ui_lang.currentData(),
            server_url=self.server_url.text().strip(), server_model=self.server_model.text().strip(),
            server_timeout=self.server_timeout.value())

    def accept(self) -> None:  # noqa: D102 (Qt override)
        # the key goes to the keyring (or a private file), never into the settings file
        if self.api_key.text().strip() and self.server_url.text().strip():
            from models.api_keys import save_key
            from models.remote_llm import root_of

            save_key(root_of(self.server_url.text()), self.api_key.text().strip())
        super().accept()
