"""A resumable, checksummed HTTP download for models the user chose to fetch.

Only ever called on an explicit user action (`zhiku models install NAME` of a URL-sourced model,
or the GUI's Download button). A cut connection resumes with an HTTP Range request from the
bytes already on disk; the file is renamed into place only after its SHA-256 matched.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from models.checksum import ChecksumError

_CHUNK = 256 * 1024


class DownloadError(RuntimeError):
    """The download could not be completed (after retries)."""


class DownloadCancelled(DownloadError):
    """The user cancelled; the partial file is kept for a later resume."""


def download(url: str, dest: Path, sha256: str, size: int | None = None,
             progress: Callable[[int, int], None] | None = None, retries: int = 5,
             timeout: float = 30.0, cancel: threading.Event | None = None) -> Path:
    """Fetch `url` into `dest`, resuming `dest`.part if present; verify SHA-256, then rename."""
    if not url.lower().startswith(("http://", "https://")):
        raise DownloadError(f"{url}: only http(s) URLs can be downloaded")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    attempt = 0
    while True:
        try:
            _fetch(url, part, size, progress, timeout, cancel)
            break
        except DownloadCancelled:
            raise
        except (OSError, http.client.HTTPException, urllib.error.URLError) as e:
            if isinstance(e, urllib.error.HTTPError) and e.code not in (408, 429, 500, 502, 503, 504):
                raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from e
            attempt += 1
            if attempt > retries:
                have = part.stat().st_size if part.exists() else 0
                raise DownloadError(f"{url}: failed after {retries} retries ({e}); "
                                    f"{have:,} bytes kept in {part} for a later resume") from e
            time.sleep(min(0.2 * 2 ** attempt, 5.0))
    digest = _sha256(part)
    if digest != sha256:
        part.unlink(missing_ok=True)
        raise ChecksumError(f"{url}: downloaded file has SHA-256 {digest[:16]}..., expected "
                            f"{sha256[:16]}...; it was discarded")
    os.replace(part, dest)
    return dest


def _fetch(url: str, part: Path, size: int | None, progress, timeout: float, cancel) -> None:
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have == size:
        return
    req = urllib.request.Request(url, headers={"User-Agent": "zhiku"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # range beyond the end: what we have is all there is
            return
        raise
    with resp:
        if have and resp.status != 206:
            have = 0  # the server ignored the Range header: start over
        total = _total(resp, have, size)
        mode = "ab" if have else "wb"
        with open(part, mode) as out:
            done = have
            while True:
                if cancel is not None and cancel.is_set():
                    raise DownloadCancelled(f"{url}: cancelled; {done:,} bytes kept for resume")
                chunk = resp.read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
    if total and done < total:
        raise http.client.IncompleteRead(b"", total - done)


def _total(resp, have: int, size: int | None) -> int:
    rng = resp.headers.get("Content-Range", "")
    if "/" in rng and rng.rsplit("/", 1)[1].isdigit():
        return int(rng.rsplit("/", 1)[1])
    length = resp.headers.get("Content-Length")
    if length and length.isdigit():
        return have + int(length)
    return size or 0


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * 1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


__all__ = ["download", "DownloadError", "DownloadCancelled"]
