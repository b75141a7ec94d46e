"""Where a catalog model is installed, and whether what is there still matches what was installed.

Each installed model folder holds a manifest (MANIFEST) of its files' sizes and SHA-256; the
catalog pins the weights' own checksums. Both the installer (skip what verifies) and the inventory
(`zhiku models list`, resolving a model to load) ask here.
"""

from __future__ import annotations

import json
from pathlib import Path

from models.catalog import ModelSpec
from models.checksum import cached_sha256
from models.paths import models_dir

MANIFEST = "zhiku-manifest.json"


def model_dir(spec: ModelSpec) -> Path:
    """The folder a catalog model is installed into."""
    return models_dir() / spec.name


def model_path(spec: ModelSpec) -> Path:
    """What a runtime loads: the GGUF file, or the model folder."""
    return model_dir(spec) / spec.entry if spec.entry else model_dir(spec)


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
    return file_problems(folder, {k: v for k, v in files.items() if k not in skip})


def file_problems(base: Path, files: dict) -> list[str]:
    """Files of a manifest that are missing or changed since they were recorded."""
    out = []
    for rel, info in files.items():
        p = base / rel if rel else base
        if not p.is_file():
            out.append(f"{p}: missing")
        elif p.stat().st_size != info["size"] or cached_sha256(p) != info["sha256"]:
            out.append(f"{p}: changed since it was installed (size or SHA-256 differs)")
    return out
