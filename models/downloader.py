"""A resumable, checksummed HTTP download for models the user chose to fetch.

Only ever called on an explicit user action (`zhiku models install NAME` of a URL-sourced model,
or the GUI's Download button). A cut connection resumes with an HTTP Range request from the
bytes already on disk; the file is renamed into place only after its SHA-256 matched.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Callable

import httpx

from models.checksum import ChecksumError, sha256_file

_RETRY = (408, 429, 500, 502, 503, 504)  # the server may answer differently in a moment


class DownloadError(RuntimeError):
    """The download could not be completed (after retries)."""


class DownloadCancelled(DownloadError):
    """The user cancelled; the partial file is kept for a later resume."""


class _Incomplete(httpx.TransportError):
    """The body ended before the length the server announced."""


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
    with httpx.Client(headers={"User-Agent": "zhiku"}, timeout=timeout, follow_redirects=True) as client:
        while True:
            try:
                _fetch(client, url, part, size, progress, cancel)
                break
            except DownloadCancelled:
                raise
            except (OSError, httpx.TransportError, httpx.HTTPStatusError) as e:
                if isinstance(e, httpx.HTTPStatusError) and e.response.status_code not in _RETRY:
                    raise DownloadError(f"{url}: HTTP {e.response.status_code} {e.response.reason_phrase}") from e
                attempt += 1
                if attempt > retries:
                    have = part.stat().st_size if part.exists() else 0
                    raise DownloadError(f"{url}: failed after {retries} retries ({e}); "
                                        f"{have:,} bytes kept in {part} for a later resume") from e
                time.sleep(min(0.2 * 2 ** attempt, 5.0))
    digest = sha256_file(part)
    if digest != sha256:
        part.unlink(missing_ok=True)
        raise ChecksumError(f"{url}: downloaded file has SHA-256 {digest[:16]}..., expected "
                            f"{sha256[:16]}...; it was discarded")
    os.replace(part, dest)
    return dest


def _fetch(client: httpx.Client, url: str, part: Path, size: int | None, progress, cancel) -> None:
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have == size:
        return
    with client.stream("GET", url, headers={"Range": f"bytes={have}-"} if have else {}) as resp:
        if resp.status_code == 416 and have:  # range beyond the end: what we have is all there is
            return
        resp.raise_for_status()
        if have and resp.status_code != 206:
            have = 0  # the server ignored the Range header: start over
        total = _total(resp, have, size)
        done = have
        with open(part, "ab" if have else "wb") as out:
            # the bytes as sent (a model file is never re-decoded), as they arrive: a fixed chunk
            # size would hold back up to a chunk that a cut connection then loses
            for chunk in resp.iter_raw():
                if cancel is not None and cancel.is_set():
                    raise DownloadCancelled(f"{url}: cancelled; {done:,} bytes kept for resume")
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
    if total and done < total:
        raise _Incomplete(f"the server sent {done:,} of {total:,} bytes")


def _total(resp: httpx.Response, have: int, size: int | None) -> int:
    rng = resp.headers.get("Content-Range", "")
    if "/" in rng and rng.rsplit("/", 1)[1].isdigit():
        return int(rng.rsplit("/", 1)[1])
    length = resp.headers.get("Content-Length")
    if length and length.isdigit():
        return have + int(length)
    return size or 0


__all__ = ["download", "DownloadError", "DownloadCancelled"]
