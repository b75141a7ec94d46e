"""What is installed, whether it verifies, and which path to load for a name or role."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models import registry
from models.catalog import CATALOG, by_name, default_for
from models.checksum import ChecksumError
from models.installed import file_problems, model_dir, model_path, problems
from models.model_files import model_id

__all__ = ["ModelNotInstalled", "ModelStatus", "ResolvedModel", "problems", "resolve", "statuses", "user_problems"]


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


def user_problems(model: registry.UserModel) -> list[str]:
    """Why a registered model no longer matches what was registered."""
    return file_problems(Path(model.path), model.files)


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
        return ResolvedModel(user.name, user.role, Path(user.path), model_id(user.name, weights))
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
    return ResolvedModel(spec.name, spec.role, model_path(spec), model_id(spec.name, spec.files[0].sha256))
