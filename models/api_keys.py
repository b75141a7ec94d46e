"""API keys of model and database servers: never in a knowledge base, a settings file or a log.

A key lives in the system keyring (Secret Service, macOS Keychain, Windows Credential Locker)
when one answers; otherwise in `api-keys.json` in the data folder (beside the settings, never
inside a knowledge base), created readable by the user only (0600), as ssh and git's credential
store keep theirs. Keys are filed under the server's address, so two servers keep two keys. `ZHIKU_KEYRING=file` skips the keyring
(tests, and desktops whose keyring prompts on every read).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from models.paths import data_dir

SERVICE = "zhiku"
log = logging.getLogger("zhiku.keys")


def key_file() -> Path:
    """Where keys go when no system keyring answers."""
    return data_dir() / "api-keys.json"


def _keyring():
    """The system keyring module, or None when there is none (or ZHIKU_KEYRING=file)."""
    if os.environ.get("ZHIKU_KEYRING", "").lower() == "file":
        return None
    try:
        import keyring
        from keyring.backends import fail, null
    except ImportError:
        return None
    backend = keyring.get_keyring()
    if isinstance(backend, (fail.Keyring, null.Keyring)) or getattr(backend, "priority", 1) <= 0:
        return None
    return keyring


def where() -> str:
    """Where keys are kept, in words (for the settings dialog and `zhiku ask --api-key`)."""
    ring = _keyring()
    return f"the system keyring ({type(ring.get_keyring()).__name__})" if ring else str(key_file())


def _read_file() -> dict[str, str]:
    try:
        return json.loads(key_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_file(keys: dict[str, str]) -> None:
    path = key_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # created 0600: the key is never readable by others, not even for a moment
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(keys, f)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def save_key(server: str, key: str) -> None:
    """Keep `key` for `server` (an empty key forgets it)."""
    ring = _keyring()
    if ring is not None:
        try:
            if key:
                ring.set_password(SERVICE, server, key)
            else:
                ring.delete_password(SERVICE, server)
            return
        except Exception as e:  # a locked or broken keyring: fall back to the private file
            log.warning("system keyring unavailable (%s); keeping the key in %s", type(e).__name__, key_file())
    keys = _read_file()
    if key:
        keys[server] = key
    else:
        keys.pop(server, None)
    _write_file(keys)


def load_key(server: str) -> str | None:
    """The key kept for `server`, if any."""
    ring = _keyring()
    if ring is not None:
        try:
            found = ring.get_password(SERVICE, server)
            if found:
                return found
        except Exception as e:
            log.warning("system keyring unavailable (%s)", type(e).__name__)
    return _read_file().get(server)
