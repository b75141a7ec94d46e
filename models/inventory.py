"""What is installed, whether it verifies, and which path to load for a name or role."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from models import registry
from models.catalog import CATALOG, ModelSpec, by_name, default_for
from models.checksum import ChecksumError, cached_sha256
from models.installer import MANIFEST, model_dir, model_path


class ModelNotInstalled(RuntimeError):
    """The requested model is not on this machine."""


@dataclass
class ModelStatus:
    """One row of `zhiku models list`."""

    name: str
    role: str
    size: int
    installed: bool
    verified: bool | None  # None: not checked (not installed)
    path: Path | None
    origin: str  # "catalog" or "user"
    problem: str = ""
    title: str = ""


@dataclass
class ResolvedModel:
    """A verified model ready to load."""

    name: str
    role: str
    path: Path
    model_id: str


def problems(spec: ModelSpec) -> list[str]:
    """Why an installed catalog model fails verification (empty list: it verifies)."""
    folder = model_dir(spec)
    if not folder.exists():
        return [f"{spec.name} is not installed"]
    out = []
    for f in spec.files:
        p = folder / f.name
        if not p.is_file():
            out.append(f"{p}: missing")
        elif f.size is not None and p.stat().st_size != f.size:
            out.append(f"{p}: size {p.stat().st_size:,} bytes, expected {f.size:,}")
        elif cached_sha256(p) != f.sha256:
            out.append(f"{p}: SHA-256 does not match the catalog")
    out += _manifest_problems(folder, skip={f.name for f in spec.files})
    return out


def _manifest_problems(folder: Path, skip: set[str]) -> list[str]:
    try:
        files = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError):
        return [f"{folder}: install manifest missing or unreadable (interrupted install?)"]
    return _file_problems(folder, {k: v for k, v in files.items() if k not in skip})


def _file_problems(base: Path, files: dict) -> list[str]:
    out = []
    for rel, info in files.items():
        p = base / rel if rel else base
        if not p.is_file():
            out.append(f"{p}: missing")
        elif p.stat().st_size != info["size"] or cached_sha256(p) != info["sha256"]:
            out.append(f"{p}: changed since it was installed (size or SHA-256 differs)")
    return out


def user_problems(model: registry.UserModel) -> list[str]:
    """Why a registered model no longer matches what was registered."""
    return _file_problems(Path(model.path), model.files)


def statuses(check: bool = True) -> list[ModelStatus]:
    """Every catalog and registered model with its install and verification state."""
    rows = []
    for spec in CATALOG:
        installed = model_dir(spec).exists()
        found = problems(spec) if installed and check else []
        rows.append(ModelStatus(spec.name, spec.role, spec.size, installed,
                                (not found) if installed and check else None,
                                model_path(spec) if installed else None, "catalog",
                                "; ".join(found), spec.title))
    for m in registry.load():
        found = user_problems(m) if check else []
        exists = Path(m.path).exists()
        rows.append(ModelStatus(m.name, m.role, sum(f["size"] for f in m.files.values()), exists,
                                (not found) if exists and check else None, Path(m.path), "user",
                                "; ".join(found), "registered by you"))
    return rows


def resolve(name: str | None = None, role: str | None = None) -> ResolvedModel:
    """The verified model to load, by name, or the default for a role; raises with what to do."""
    if name is None:
        if role is None:
            raise ValueError("give a model name or a role")
        spec = default_for(role)
        if spec is None:
            user = next((m for m in registry.load() if m.role == role), None)
            installed = next((s for s in CATALOG if s.role == role and model_dir(s).exists()), None)
            if user is None and installed is None:
                raise ModelNotInstalled(
                    f"no {role} model installed — add one with `zhiku models add PATH --role {role}`")
            name = user.name if user is not None else installed.name
        else:
            name = spec.name
    user = registry.find(name)
    if user is not None:
        found = user_problems(user)
        if found:
            raise ChecksumError("; ".join(found) + f" — re-register it with `zhiku models add {user.path}`")
        weights = max(user.files.items(), key=lambda kv: kv[1]["size"])[1]["sha256"]
        return ResolvedModel(user.name, user.role, Path(user.path), f"{user.name}@{weights[:12]}")
    try:
        spec = by_name(name)
    except KeyError as e:
        raise ModelNotInstalled(str(e).strip('"')) from None
    if not model_dir(spec).exists():
        raise ModelNotInstalled(f"{spec.name} is not installed — run `zhiku models install {spec.name}`")
    found = problems(spec)
    if found:
        raise ChecksumError("; ".join(found) + f" — refusing to load it; reinstall with "
                            f"`zhiku models install --force {spec.name}`")
    return ResolvedModel(spec.name, spec.role, model_path(spec), f"{spec.name}@{spec.files[0].sha256[:12]}")
