"""A knowledge base kept on a PostgreSQL server with pgvector: the same store, another home.

Documents, pages, chunks with their keyword terms, vectors, pictures (thumbnails included) and
conversations live in one schema of the team's database; this desktop keeps only a folder with a
link file (`server.json`: the address without its password, and the schema) and a cache of
thumbnails. The password is kept like a model server's API key (models.api_keys). Everything else
is kb.storage.sqlite.store.Store's logic: the SQL it shares is translated (kb.storage.postgres.database), and what differs is
here: keyword terms in a `tsvector` column, and their ranking.

Keyword ranking: PostgreSQL has no bm25 (ts_rank knows no inverse document frequency, so a common
word weighs as much as a rare one: a first try ranking by idf × ts_rank found the answer in the top
keyword hit for 67% of 300 CMRC questions, against 94% for FTS5's bm25). So bm25 is computed in the
query as FTS5 computes it (its scores match FTS5's to 0.1%): term frequency from the tsvector (by
way of ts_rank, see lexical_search), the chunk's term count, the mean count, and each lexeme's
document frequency, counted on the server once per lexeme and process (cached for DF_TTL_S, as
other desktops add documents).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Collection
from urllib.parse import urlsplit, urlunsplit

from kb.text import lexical
from kb.text.chunking import Chunk
from kb.storage.sqlite.database import StoreError
from kb.storage.postgres.database import PgDatabase, safe_url
from kb.storage.postgres.pictures import ServerPictures
from kb.storage.postgres.conversations import ServerConversationRows
from kb.storage.postgres.paths import ServerPaths
from kb.storage.postgres.queue import ServerQueue
from kb.storage.postgres.vectors import PgVectorTable
from kb.storage.sqlite.pictures import PICTURE_VECTORS
from kb.storage.sqlite.store import CHUNK_VECTORS, COMMON_SHARE, KEEP_AT_LEAST, PRUNE_FROM, Store

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

    shared = True  # a team's: other desktops add to it at the same time

    def __init__(self, folder: Path, connect_timeout: int | None = None) -> None:
        self.folder = Path(folder)
        url, schema = read_link(self.folder)
        self.db_path = None
        self.db = PgDatabase(url, schema, **({"connect_timeout": connect_timeout} if connect_timeout else {}))
        self.where = self.db.where
        self.host = urlsplit(url).hostname or "localhost"  # for lists: "on db.office.lan"
        self.vectors = PgVectorTable(self.db, CHUNK_VECTORS)
        self.index_path = None
        self._df: dict[str, int] = {}  # lexeme -> chunks holding it
        self._df_at = 0.0
        self._size: tuple[int, float] | None = None  # chunks, mean terms per chunk
        self._lexes: dict[str, list[str]] = {}  # query word -> its lexemes
        self.pictures = ServerPictures(self.db, self.folder, PgVectorTable(self.db, PICTURE_VECTORS))
        self.queue = ServerQueue(self.db)
        self.paths = ServerPaths(self)
        self.conversation_rows = ServerConversationRows(self.db)

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
        with store.db.transaction():  # under the write lock: two computers creating at once, one creates
            store.joined = store.db.get_meta("created") is not None
            if not store.joined:
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
        """(chunks, mean terms per chunk, chunks holding each lexeme), cached for DF_TTL_S.

        In a big knowledge base a lexeme's count stops at the share that drops it from the match
        (counting 48,000 chunks for "为" would cost more than the search)."""
        if time.monotonic() - self._df_at > DF_TTL_S or self._size is None:
            self._df, self._df_at = {}, time.monotonic()
            n, avg = self.db.query_pg("SELECT COUNT(*), COALESCE(AVG(n_terms), 1) FROM chunks")[0]
            self._size = (int(n), float(avg) or 1.0)
        total = self._size[0]
        cap = int(COMMON_SHARE * total) + 1 if total >= PRUNE_FROM else None
        new = [lx for lx in lexemes if lx not in self._df]
        if new:
            limit = f" LIMIT {cap}" if cap else ""
            self._df.update((lx, int(n)) for lx, n in self.db.query_pg(
                "SELECT q, (SELECT COUNT(*) FROM (SELECT 1 FROM chunks WHERE terms @@ to_tsquery('simple', q)"
                f"{limit}) m) FROM unnest(%s::text[]) q", ([_quoted(lx) for lx in new],)))
            for lx in new:  # keyed by the quoted form above
                self._df[lx] = self._df.pop(_quoted(lx))
        return total, self._size[1], self._df

    def lexical_search(self, query: str, k: int, documents: Collection[int] | None = None) -> list[tuple[int, float]]:
        """bm25 over the chunks' terms, as FTS5 computes it (k1 1.2, b 0.75): (chunk id, score) best first.

        A lexeme's frequency in a chunk comes from ts_rank: with one lexeme, one weight and no
        normalisation, ts_rank is 0.1·H(tf)/H(∞) with H(n) = Σ 1/i², which `_TF` inverts exactly
        (checked for tf 1–200); reading the positions themselves (unnest) cost 250 ms a question
        at 100,000 chunks.
        """
        lexemes = self._lexemes(lexical.query_words(query))
        if not lexemes:
            return []
        total, avg, df = self._stats(lexemes)
        lexemes = [lx for lx in lexemes if df[lx]]
        matching = lexemes
        if total >= PRUNE_FROM:
            if len(lexemes) > KEEP_AT_LEAST:
                kept = [lx for lx in lexemes if df[lx] <= COMMON_SHARE * total]
                lexemes = kept if len(kept) >= KEEP_AT_LEAST else sorted(lexemes, key=df.get)[:KEEP_AT_LEAST]
            # a common word kept for scoring (too few rare ones) finds no candidates of its own:
            # FTS5 walks a 48,000-chunk posting list in C, here each chunk would be read (700 ms);
            # a chunk holding none of the rare words ranks below those that do anyway
            matching = [lx for lx in lexemes if df[lx] <= COMMON_SHARE * total] or lexemes
        if not lexemes:
            return []
        queries = [_quoted(lx) for lx in lexemes]
        idf = [max(math.log((total - df[lx] + 0.5) / (df[lx] + 0.5)), 1e-6) for lx in lexemes]
        tfs = ", ".join(f"{_TF} AS t{i}" for i in range(len(lexemes)))
        norm = f"{BM25_K1} * (1 - {BM25_B} + {BM25_B} * COALESCE(n_terms, 1) / %s)"
        score = " + ".join(f"%s * t{i} * {BM25_K1 + 1} / (t{i} + {norm})" for i in range(len(lexemes)))
        params: list = [p for w in idf for p in (w, avg)]  # in the order the statement reads them
        params += queries + [" | ".join(_quoted(lx) for lx in matching)]
        scope = ""
        if documents is not None:
            scope = " AND doc_id = ANY(%s)"
            params.append(sorted(documents))
        # each matching chunk's terms are read (detoasted) once, by the innermost select; OFFSET 0
        # keeps the planner from folding the selects back into one that reads them once per lexeme
        rows = self.db.query_pg(
            f"SELECT id, {score} AS s FROM (SELECT id, n_terms, {tfs} FROM ("
            f"SELECT id, n_terms, terms || ''::tsvector AS v FROM chunks WHERE terms @@ to_tsquery('simple', %s)"
            f"{scope} OFFSET 0) a OFFSET 0) x ORDER BY s DESC, id LIMIT %s", (*params, int(k)))
        return [(int(r[0]), float(r[1])) for r in rows]


# tf from ts_rank(terms, one lexeme): 1 / (H(∞) - H(tf)) - 1/2 ≈ tf (see lexical_search)
# (a chunk without the lexeme: ts_rank 1e-20, so round(0.108) = 0)
_TF = "round(1 / (1.6449340668 - 16.449340668 * ts_rank(v, to_tsquery('simple', %s), 0)) - 0.5)"


def _quoted(lexeme: str) -> str:
    """A lexeme as a tsquery operand ('it''s' stays one word)."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"
