"""A knowledge base kept on a PostgreSQL server with pgvector: the same store, another home.

Documents, pages, chunks with their keyword terms, vectors, pictures (thumbnails included) and
conversations live in one schema of the team's database; this desktop keeps only a folder with a
link file (`server.json`: the address without its password, and the schema) and a cache of
thumbnails. The password is kept like a model server's API key (models.api_keys). Everything else
is kb.store.Store's logic: the SQL it shares is translated (kb.pg_database), and what differs is
here: keyword terms in a `tsvector` column, and their ranking.

Keyword ranking: PostgreSQL has no bm25 (ts_rank knows no inverse document frequency, so a common
word weighs as much as a rare one: a first try ranking by idf × ts_rank found the answer in the top
keyword hit for 67% of 300 CMRC questions, against 94% for FTS5's bm25). So bm25 is computed in the
query as FTS5 computes it: term frequency from the tsvector's positions, the chunk's term count, the
mean count and each lexeme's document frequency, counted on the server once per lexeme and process
(cached for DF_TTL_S, as other desktops add documents).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Collection
from urllib.parse import urlsplit, urlunsplit

from kb import lexical
from kb.chunking import Chunk
from kb.database import StoreError
from kb.pg_database import PgDatabase, safe_url
from kb.pg_pictures import ServerPictures
from kb.pg_vectors import PgVectorTable
from kb.pictures import PICTURE_VECTORS
from kb.store import CHUNK_VECTORS, COMMON_SHARE, KEEP_AT_LEAST, PRUNE_FROM, Store

LINK_NAME = "server.json"
DF_TTL_S = 300.0
BM25_K1, BM25_B = 1.2, 0.75  # FTS5's bm25 constants
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


class PgStore(Store):
    """A knowledge base in a PostgreSQL schema, with this desktop's folder for its link and thumbnails."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        url, schema = read_link(self.folder)
        self.db_path = None
        self.db = PgDatabase(url, schema)
        self.where = self.db.where
        self.host = urlsplit(url).hostname or "localhost"  # for lists: "on db.office.lan"
        self.vectors = PgVectorTable(self.db, CHUNK_VECTORS)
        self.index_path = None
        self._df: dict[str, int] = {}  # lexeme -> chunks holding it
        self._df_at = 0.0
        self._size: tuple[int, float] | None = None  # chunks, mean terms per chunk
        self._lexes: dict[str, list[str]] = {}  # query word -> its lexemes
        self.pictures = ServerPictures(self.db, self.folder, PgVectorTable(self.db, PICTURE_VECTORS))

    @classmethod
    def create(cls, folder: Path, settings: dict, url: str = "") -> "PgStore":
        """Link `folder` to the knowledge base on the server, creating it there with `settings` if it
        is new; joining one that exists keeps its settings (the caller checks the embedding model)."""
        folder = Path(folder)
        if (folder / LINK_NAME).exists() or (folder / "kb.sqlite").exists():
            raise StoreError(f"{folder}: a knowledge base already exists there")
        write_link(folder, url, schema_for(settings["name"]))
        try:
            store = cls(folder)
        except BaseException:
            (folder / LINK_NAME).unlink(missing_ok=True)
            raise
        store.joined = store.db.get_meta("created") is not None
        if not store.joined:
            with store.db.transaction():
                for key, value in dict(settings, created=time.time()).items():
                    store.db.set_meta(key, value)
            store.vectors.bind(settings["embed_model_id"], int(settings["embed_dim"]))
        return store

    def drop_from_server(self) -> None:
        """Delete the knowledge base's schema and everything in it from the server."""
        with self.db.lock:
            self.db.query_pg(f'DROP SCHEMA IF EXISTS "{self.db.schema}" CASCADE')

    # ---- keyword terms ------------------------------------------------------------------------
    def _insert_chunk(self, db, doc_id: int, c: Chunk, terms: str) -> int:
        return db.execute('INSERT INTO chunks(doc_id, page, start, "end", text, tokens, terms, n_terms) '
                          "VALUES (?,?,?,?,?,?, to_tsvector('simple', ?), ?)",
                          (doc_id, c.page, c.start, c.end, c.text, c.tokens, terms, len(terms.split()))).lastrowid

    def _delete_terms(self, db, ids: list[int]) -> None:
        """The terms go with their chunks."""

    def _lexemes(self, words: list[str]) -> list[str]:
        """The index's lexemes for the query words (PostgreSQL's parser splits "gpt-3" as FTS5 does)."""
        new = [w for w in words if w not in self._lexes]
        if new:
            found: dict[str, list[str]] = {w: [] for w in new}
            for w, lexeme in self.db.query_pg("SELECT w, t.lexeme FROM unnest(%s::text[]) w, "
                                              "unnest(to_tsvector('simple', w)) t", (new,)):
                found[w].append(lexeme)
            self._lexes.update(found)
        return list(dict.fromkeys(lx for w in words for lx in self._lexes[w]))

    def _stats(self, lexemes: list[str]) -> tuple[int, float, dict[str, int]]:
        """(chunks, mean terms per chunk, chunks holding each lexeme), cached for DF_TTL_S."""
        if time.monotonic() - self._df_at > DF_TTL_S or self._size is None:
            self._df, self._df_at = {}, time.monotonic()
            n, avg = self.db.query_pg("SELECT COUNT(*), COALESCE(AVG(n_terms), 1) FROM chunks")[0]
            self._size = (int(n), float(avg) or 1.0)
        for lx in lexemes:
            if lx not in self._df:
                self._df[lx] = int(self.db.query_pg(
                    "SELECT COUNT(*) FROM chunks WHERE terms @@ to_tsquery('simple', %s)", (_quoted(lx),))[0][0])
        return self._size[0], self._size[1], self._df

    def lexical_search(self, query: str, k: int, documents: Collection[int] | None = None) -> list[tuple[int, float]]:
        """bm25 over the chunks' terms, as FTS5 computes it (k1 1.2, b 0.75): (chunk id, score) best first."""
        lexemes = self._lexemes(lexical.query_words(query))
        if not lexemes:
            return []
        total, avg, df = self._stats(lexemes)
        lexemes = [lx for lx in lexemes if df[lx]]
        if total >= PRUNE_FROM and len(lexemes) > KEEP_AT_LEAST:
            kept = [lx for lx in lexemes if df[lx] <= COMMON_SHARE * total]
            lexemes = kept if len(kept) >= KEEP_AT_LEAST else sorted(lexemes, key=df.get)[:KEEP_AT_LEAST]
        if not lexemes:
            return []
        idf = [max(math.log((total - df[lx] + 0.5) / (df[lx] + 0.5)), 1e-6) for lx in lexemes]
        scope, params = "", [lexemes, idf, " | ".join(_quoted(lx) for lx in lexemes)]
        if documents is not None:
            scope = " AND c.doc_id = ANY(%s)"
            params.append(sorted(documents))
        rows = self.db.query_pg(
            "SELECT c.id, SUM(w.idf * cardinality(u.positions) * (%s + 1) / (cardinality(u.positions) + "
            "%s * (1 - %s + %s * COALESCE(c.n_terms, 1) / %s))) AS s "
            "FROM chunks c CROSS JOIN LATERAL unnest(c.terms) u "
            "JOIN unnest(%s::text[], %s::float8[]) AS w(lexeme, idf) ON w.lexeme = u.lexeme "
            f"WHERE c.terms @@ to_tsquery('simple', %s){scope} GROUP BY c.id ORDER BY s DESC, c.id LIMIT %s",
            (BM25_K1, BM25_K1, BM25_B, BM25_B, avg, *params, int(k)))
        return [(int(r[0]), float(r[1])) for r in rows]


def _quoted(lexeme: str) -> str:
    """A lexeme as a tsquery operand ('it''s' stays one word)."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"
