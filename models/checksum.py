"""SHA-256 of files and model folders, with a cache so unchanged files are hashed once."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

_CHUNK = 4 * 1024 * 1024
_lock = threading.Lock()


class ChecksumError(ValueError):
    """A model file does not match the checksum the catalog expects."""


def sha256_file(path: Path, progress=None) -> str:
    """Hex SHA-256 of a file, reading it in 4 MiB chunks."""
    if progress is None:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    h = hashlib.sha256()
    done = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            done += len(chunk)
            if progress:
                progress(done)
    return h.hexdigest()


def _cache_path() -> Path:
    from models.paths import models_dir

    return models_dir() / ".sha256-cache.json"


def cached_sha256(path: Path) -> str:
    """SHA-256 of `path`, reusing a stored value while size and mtime are unchanged."""
    path = Path(path).resolve()
    st = path.stat()
    key = str(path)
    stamp = [st.st_size, st.st_mtime_ns]
    cache_file = _cache_path()
    with _lock:
        cache = _read_cache(cache_file)
        hit = cache.get(key)
        if hit and hit[:2] == stamp:
            return hit[2]
    digest = sha256_file(path)
    with _lock:
        cache = _read_cache(cache_file)
        cache[key] = stamp + [digest]
        _write_cache(cache_file, cache)
    return digest


def _read_cache(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def remember(path: Path, digest: str) -> None:
    """Record a SHA-256 just computed elsewhere (e.g. at install) so the next check is free."""
    path = Path(path).resolve()
    st = path.stat()
    cache_file = _cache_path()
    with _lock:
        cache = _read_cache(cache_file)
        cache[str(path)] = [st.st_size, st.st_mtime_ns, digest]
        _write_cache(cache_file, cache)


def _write_cache(cache_file: Path, cache: dict) -> None:
    for stale in [k for k in cache if not os.path.exists(k)]:
        del cache[stale]  # files that are gone (temporary copies, removed models)
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache))
        os.replace(tmp, cache_file)
    except OSError:
        pass  # a read-only models folder still verifies, just without the cache


def verify_file(path: Path, expected_sha256: str, expected_size: int | None = None) -> None:
    """Raise ChecksumError unless `path` has the expected size and SHA-256."""
    path = Path(path)
    if not path.is_file():
        raise ChecksumError(f"{path}: file is missing")
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        raise ChecksumError(
            f"{path}: size {size:,} bytes, expected {expected_size:,}; the file is incomplete or "
            "not the model the catalog lists. Reinstall it with `zhiku models install`.")
    actual = cached_sha256(path)
    if actual != expected_sha256:
        raise ChecksumError(
            f"{path}: SHA-256 {actual[:16]}... does not match the catalog's {expected_sha256[:16]}...; "
            "the file is damaged or was replaced. Refusing to load it; reinstall it with "
            "`zhiku models install`.")


def folder_model_id(folder: Path) -> str:
    """A stable id for a model folder: its name plus the hash of its largest weights file."""
    folder = Path(folder)
    weights = sorted((p for p in folder.rglob("*") if p.suffix in (".safetensors", ".bin", ".gguf")),
                     key=lambda p: p.stat().st_size, reverse=True)
    if weights:
        digest = cached_sha256(weights[0])
    else:
        cfg = folder / "config.json"
        digest = hashlib.sha256(cfg.read_bytes() if cfg.exists() else str(folder).encode()).hexdigest()
    from models.model_files import model_id

    return model_id(folder.name, digest)
