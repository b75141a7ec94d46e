"""Where Zhiku keeps its data: one user data folder, overridable with ZHIKU_HOME."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """The user data folder (ZHIKU_HOME, else the platform's per-user data directory)."""
    home = os.environ.get("ZHIKU_HOME")
    if home:
        return Path(home).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("zhiku", appauthor=False))


def models_dir() -> Path:
    """Where installed models live (ZHIKU_MODELS overrides, so tests can share real models)."""
    override = os.environ.get("ZHIKU_MODELS")
    if override:
        return Path(override).expanduser()
    return data_dir() / "models"
