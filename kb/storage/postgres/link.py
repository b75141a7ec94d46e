"""Where a team's knowledge base lives, as this desktop remembers it: a link file in its folder.

`server.json` holds the server's address without its password, and the schema; the password is kept
like a model server's API key (models.api_keys). The schema's name follows from the knowledge base's
name, so every desktop that joins "team" finds the same one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from kb.storage.contract import StoreError
from kb.storage.postgres.database import safe_url

LINK_NAME = "server.json"
MAX_SCHEMA_BYTES = 63  # PostgreSQL's identifier limit


def schema_for(name: str) -> str:
    """The schema a knowledge base called `name` lives in (the same on every desktop)."""
    schema = f"zhiku_{name}"
    if len(schema.encode()) <= MAX_SCHEMA_BYTES:
        return schema
    return "zhiku_" + hashlib.blake2b(name.encode(), digest_size=12).hexdigest()


def is_link(folder: Path) -> bool:
    """True when `folder` holds a link to a server knowledge base."""
    return (Path(folder) / LINK_NAME).is_file()


def _split_password(url: str) -> tuple[str, str | None]:
    if not url.startswith(("postgresql://", "postgres://")):
        raise StoreError(f"not a PostgreSQL address: {safe_url(url)!r} (write postgresql://user@host:5432/database)")
    return safe_url(url), urlsplit(url).password


def _with_password(url: str, password: str | None) -> str:
    if not password:
        return url
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}" if user else f":{password}@{host}"))


def write_link(folder: Path, url: str, schema: str) -> None:
    """Record, in this desktop's folder, where the knowledge base lives (its password in the key store)."""
    from models.api_keys import save_key

    address, password = _split_password(url)
    if password:
        save_key(address, password)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LINK_NAME).write_text(json.dumps({"url": address, "schema": schema}, indent=2), encoding="utf-8")


def read_link(folder: Path) -> tuple[str, str]:
    """(url with its kept password, schema) of a linked knowledge base."""
    from models.api_keys import load_key

    try:
        link = json.loads((Path(folder) / LINK_NAME).read_text(encoding="utf-8"))
        return _with_password(link["url"], load_key(link["url"])), link["schema"]
    except (OSError, ValueError, KeyError) as e:
        raise StoreError(f"{folder}: damaged link to a server knowledge base ({e}); create it again with "
                         "`zhiku kb create NAME --server postgresql://…`") from None
