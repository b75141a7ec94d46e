"""The app's settings, kept in an INI file in the data folder (QSettings)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from PySide6.QtCore import QSettings

from kb import defaults
from models.paths import data_dir


@dataclass
class AppSettings:
    """Everything the settings dialog can change."""

    llm_name: str = ""  # "" = the catalog default
    embed_name: str = ""
    clip_name: str = ""
    gpu_layers: int = defaults.GPU_LAYERS
    n_ctx: int = defaults.N_CTX
    threads: int = 0  # 0 = cores - 1
    top_k: int = defaults.TOP_K
    context_tokens: int = defaults.CONTEXT_TOKENS  # evidence per answer: smaller = faster first token
    answer_tokens: int = defaults.ANSWER_TOKENS  # longest answer
    chunk_tokens: int = defaults.CHUNK_TOKENS
    overlap_tokens: int = defaults.OVERLAP_TOKENS
    ocr: int = 1  # read scanned pages and images with OCR
    parse_time_limit: int = int(defaults.PARSE_TIME_LIMIT_S)  # seconds a file's parser may go without progress
    answer_language: str = "auto"  # auto / zh / en
    ui_language: str = ""  # "" = follow the system, "en", "zh_CN"
    # a chat model on the user's own OpenAI-compatible server ("" = the local model); its API
    # key is not a setting: models.api_keys keeps it in the keyring or a private file
    server_url: str = ""
    server_model: str = ""  # "" = the first model the server lists
    server_timeout: int = 120  # seconds without a word from the server before giving up

    def server(self):
        """The model server to answer through, or None for the local chat model."""
        from models.chat_model import ServerChoice

        return ServerChoice(self.server_url, self.server_model, None, self.server_timeout) if self.server_url else None

    @staticmethod
    def qsettings() -> QSettings:
        """The INI file behind the settings (and the window state)."""
        path = data_dir() / "zhiku.ini"
        path.parent.mkdir(parents=True, exist_ok=True)
        return QSettings(str(path), QSettings.IniFormat)

    @classmethod
    def load(cls) -> "AppSettings":
        """Read the saved settings (defaults for anything missing or malformed)."""
        q = cls.qsettings()
        out = cls()
        for f in fields(cls):
            raw = q.value(f"settings/{f.name}")
            if raw is None:
                continue
            try:
                setattr(out, f.name, int(raw) if f.type in ("int", int) else str(raw))
            except (TypeError, ValueError):
                pass
        return out

    def save(self) -> None:
        """Write the settings."""
        q = self.qsettings()
        for f in fields(self):
            q.setValue(f"settings/{f.name}", getattr(self, f.name))
        q.sync()
