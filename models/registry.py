"""Models the user registered themselves: a GGUF file or a model folder, used in place."""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from models.catalog import CATALOG, ROLES
from models.checksum import cached_sha256
from models.paths import data_dir

from models.model_files import InvalidModel, NotGGUF, check_gguf, detect_format

__all__ = ["InvalidModel", "UserModel", "add", "check_role", "find", "load", "remove"]


@dataclass
class UserModel:
    """A registered model: where it is and what its files hashed to when it was added."""

    name: str
    role: str
    path: str
    files: dict  # relative path ("" for a single file) -> {"sha256", "size"}
    added: str = ""


def _registry_file() -> Path:
    # user settings live with the user's data, not inside the (shareable) models folder
    return data_dir() / "user-models.json"


def load() -> list[UserModel]:
    """All registered models (an unreadable registry counts as empty, never as a crash)."""
    try:
        raw = json.loads(_registry_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [UserModel(**r) for r in raw if isinstance(r, dict) and {"name", "role", "path", "files"} <= r.keys()]


def _save(models: list[UserModel]) -> None:
    path = _registry_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([m.__dict__ for m in models], indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def find(name: str) -> UserModel | None:
    """The registered model called `name`, if any."""
    return next((m for m in load() if m.name == name), None)


def check_role(path: Path, role: str) -> None:
    """Raise InvalidModel unless `path` looks like a model for `role`."""
    if role not in ROLES:
        raise InvalidModel(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if not path.exists():
        raise InvalidModel(f"{path}: no such file or folder")
    if role == "llm":
        if not path.is_file():
            raise InvalidModel(f"{path}: a chat model must be a single .gguf file")
        try:
            check_gguf(path)
        except NotGGUF as e:
            raise InvalidModel(str(e)) from None
    elif role == "embedding":
        if not (path.is_dir() and ((path / "modules.json").exists() or (path / "config.json").exists())):
            raise InvalidModel(f"{path}: an embedding model must be a sentence-transformers or "
                               "transformers folder (with modules.json or config.json)")
    elif role == "clip":
        detect_format(path)  # raises InvalidModel with the reason


def add(path: Path, role: str, name: str | None = None) -> UserModel:
    """Register `path` as a model for `role`, recording checksums of its files."""
    path = Path(path).expanduser().resolve()
    check_role(path, role)
    name = name or re.sub(r"\.gguf$", "", path.name, flags=re.I)
    if any(s.name == name for s in CATALOG):
        raise InvalidModel(f"{name!r} is a catalog model's name; pass --name to choose another")
    files = {}
    items = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in items:
        rel = "" if p == path else p.relative_to(path).as_posix()
        files[rel] = {"sha256": cached_sha256(p), "size": p.stat().st_size}
    model = UserModel(name, role, str(path), files, time.strftime("%Y-%m-%dT%H:%M:%S"))
    _save([m for m in load() if m.name != name] + [model])
    return model


def remove(name: str) -> bool:
    """Forget a registered model (its files are left alone); True if it was registered."""
    models = load()
    kept = [m for m in models if m.name != name]
    _save(kept)
    return len(kept) != len(models)
