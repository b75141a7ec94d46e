"""A knowledge base kept on a PostgreSQL server with pgvector: the PostgreSQL sibling of
kb.storage.store.BaseStore.

Documents, pages, chunks with their keyword terms, vectors, pictures (thumbnails included) and
conversations live in one schema of the team's database; this desktop keeps only a folder with a
link file (kb.storage.postgres.link) and a cache of thumbnails. Every statement here is written in
PostgreSQL's dialect; keyword terms are a `tsvector` column of the chunk, so they go with it.

Keyword ranking: PostgreSQL has no bm25 (ts_rank knows no inverse document frequency, so a common
word weighs as much as a rare one: a first try ranking by idf × ts_rank found the answer in the top
keyword hit for 67% of 300 CMRC questions, against 94% for FTS5's bm25). So bm25 is computed in the
query as FTS5 computes it (its scores match FTS5's to 0.1%): term frequency from the tsvector (by
way of ts_rank, see lexical_search), the chunk's term count, the mean count, and each lexeme's
document frequency, counted on the server once per lexeme and process (cached for DF_TTL_S, as
other desktops add documents).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Collection, Iterable
from urllib.parse import urlsplit

from kb.storage.contract import StoreError
from kb.storage.postgres.conversations import ServerConversationRows
from kb.storage.postgres.database import PgDatabase
from kb.storage.postgres.link import LINK_NAME, read_link, schema_for, write_link
from kb.storage.postgres.paths import ServerPaths
from kb.storage.postgres.pictures import ServerPictures
from kb.storage.postgres.queue import ServerQueue
from kb.storage.postgres.vectors import PgVectorTable
from kb.storage.store import COMMON_SHARE, KEEP_AT_LEAST, PRUNE_FROM, BaseStore, boxes_json
from kb.storage.vectors import CHUNK_VECTORS
from kb.text import lexical
from kb.text.chunking import Chunk
from kb.text.document import Document, Page

DF_TTL_S = 300.0
BM25_K1, BM25_B = 1.2, 0.75  # FTS5's bm25 constants


class PgStore(BaseStore):
    """A knowledge base in a PostgreSQL schema, with this desktop's folder for its link and thumbnails."""

    shared = True  # a team's: other desktops add to it at the same time

    def __init__(self, folder: Path, connect_timeout: int | None = None) -> None:
        super().__init__()
        self.folder = Path(folder)
        url, schema = read_link(self.folder)
        self.db_path = None
        self.db = PgDatabase(url, schema, **({"connect_timeout": connect_timeout} if connect_timeout else {}))
        self.where = self.db.where
        self.host = urlsplit(url).hostname or "localhost"  # for lists: "on db.office.lan"
        self.vectors = PgVectorTable(self.db, CHUNK_VECTORS)
        self.index_path = None
        self._df_at = 0.0  # when the lexemes' document frequencies (self._df) were first counted
        self._size: tuple[int, float] | None = None  # chunks, mean terms per chunk
        self._lexes: dict[str, list[str]] = {}  # query word -> its lexemes
        self.pictures = ServerPictures(self.db, self.folder)
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
            self.db.query(f'DROP SCHEMA IF EXISTS "{self.db.schema}" CASCADE')

    # ---- reading ------------------------------------------------------------------------------
    def document(self, path: str) -> dict | None:
        """The document row for a path."""
        rows = self.db.query_dicts("SELECT * FROM documents WHERE path=%s", (path,))
        return rows[0] if rows else None

    def document_sha(self, doc_id: int) -> str | None:
        """The content hash a document was read from."""
        rows = self.db.query("SELECT sha256 FROM documents WHERE id=%s", (doc_id,))
        return rows[0][0] if rows else None

    def ocr_ran(self, doc_id: int) -> bool:
        """True when at least one page of the document was read by OCR."""
        return bool(self.db.query("SELECT 1 FROM pages WHERE doc_id=%s AND ocr<>0 LIMIT 1", (doc_id,)))

    def totals(self) -> dict:
        """Counts for lists (documents, failed, bytes, chunks), from the last commit without
        waiting for a writer: the window's knowledge-base list asks at the end of every job."""
        docs, failed, size, chunks = self.db.listing(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE status='failed'), COALESCE(SUM(size), 0), "
            "(SELECT COUNT(*) FROM chunks) FROM documents")[0]
        return {"documents": int(docs), "failed": int(failed), "bytes": int(size), "chunks": int(chunks)}

    def has_documents(self) -> bool:
        """True when a document is stored (read without waiting for a writer)."""
        return bool(self.db.listing("SELECT EXISTS (SELECT 1 FROM documents)")[0][0])

    def documents(self) -> list[dict]:
        """All documents with their chunk counts, OCR'd pages and the paths of identical copies
        (from the last commit, without waiting for a writer: the window lists them)."""
        return self.db.query_dicts(
            "SELECT d.*, (SELECT COUNT(*) FROM chunks c WHERE c.doc_id=d.id) AS chunks, "
            "(SELECT string_agg(path, chr(10)) FROM copies WHERE doc_id=d.id) AS copies, "
            "(SELECT COUNT(*) FROM pages p WHERE p.doc_id=d.id AND p.ocr<>0) AS ocr_pages "
            "FROM documents d ORDER BY d.name", listing=True)

    def _chunk_rows(self, ids: list[int]) -> list[tuple]:
        return self.db.query('SELECT c.id, c.doc_id, d.path, d.name, c.page, c.start, c."end", c.text FROM chunks c '
                             "JOIN documents d ON d.id=c.doc_id WHERE c.id = ANY(%s)", (ids,))

    def doc_ids(self, ids: Iterable[int]) -> dict[int, int]:
        """Chunk id -> document id for the given chunks."""
        ids = list(ids)
        if not ids:
            return {}
        return dict(self.db.query("SELECT id, doc_id FROM chunks WHERE id = ANY(%s)", (ids,)))

    def _page_field(self, doc_id: int, number: int, field: str):
        column = {"text": "text", "boxes": "boxes"}[field]
        rows = self.db.query(f"SELECT {column} FROM pages WHERE doc_id=%s AND number=%s", (doc_id, number))
        return rows[0][0] if rows else None

    # ---- writing (inside the caller's transaction `db`) -------------------------------------------
    def _document_id(self, db, path: str) -> int | None:
        row = db.execute("SELECT id FROM documents WHERE path=%s", (path,)).fetchone()
        return row[0] if row else None

    def _old_vectors(self, db, doc_id: int) -> Iterable[tuple[str, object]]:
        return db.execute("SELECT c.text, v.vec FROM chunks c JOIN vectors v ON v.chunk_id=c.id WHERE c.doc_id=%s",
                          (doc_id,)).fetchall()

    def _insert_document(self, db, path: str, doc: Document, sha256: str, size: int, mtime: float,
                         now: float) -> int:
        return db.execute(
            "INSERT INTO documents(path, name, kind, title, sha256, size, mtime, pages, status, added, updated) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'embedding', %s, %s) RETURNING id",
            (path, self._name(path), doc.kind, doc.title, sha256, size, mtime, len(doc.pages), now, now)
        ).fetchone()[0]

    def _update_document(self, db, doc_id: int, doc: Document, sha256: str, size: int, mtime: float,
                         now: float) -> None:
        db.execute("UPDATE documents SET kind=%s, title=%s, sha256=%s, size=%s, mtime=%s, pages=%s, "
                   "status='embedding', error=NULL, updated=%s WHERE id=%s",
                   (doc.kind, doc.title, sha256, size, mtime, len(doc.pages), now, doc_id))

    def _insert_pages(self, db, doc_id: int, pages: list[Page]) -> None:
        db.executemany("INSERT INTO pages(doc_id, number, text, ocr, boxes) VALUES (%s, %s, %s, %s, %s)",
                       [(doc_id, p.number, p.text, int(p.ocr), boxes_json(p)) for p in pages])

    def _insert_chunk(self, db, doc_id: int, c: Chunk, terms: str) -> int:
        return db.execute('INSERT INTO chunks(doc_id, page, start, "end", text, tokens, terms, n_terms) '
                          "VALUES (%s, %s, %s, %s, %s, %s, to_tsvector('simple', %s), %s) RETURNING id",
                          (doc_id, c.page, c.start, c.end, c.text, c.tokens, terms, len(terms.split()))
                          ).fetchone()[0]

    def _set_status(self, db, doc_id: int, status: str) -> None:
        db.execute("UPDATE documents SET status=%s WHERE id=%s", (status, doc_id))

    def _insert_failure(self, db, path: str, kind: str, error: str, sha256: str | None, size: int | None,
                        mtime: float | None, now: float) -> None:
        db.execute("INSERT INTO documents(path, name, kind, sha256, size, mtime, status, error, added, updated) "
                   "VALUES (%s, %s, %s, %s, %s, %s, 'failed', %s, %s, %s)",
                   (path, self._name(path), kind, sha256, size, mtime, error, now, now))

    def _update_failure(self, db, doc_id: int, error: str, sha256: str | None, size: int | None,
                        mtime: float | None, now: float) -> None:
        db.execute("UPDATE documents SET status='failed', error=%s, sha256=%s, size=%s, mtime=%s, pages=0, "
                   "updated=%s WHERE id=%s", (error, sha256, size, mtime, now, doc_id))

    def _forget_queued(self, db, path: str) -> None:
        db.execute("DELETE FROM queue WHERE path=%s", (path,))

    def _chunk_ids(self, db, doc_id: int) -> list[int]:
        return [r[0] for r in db.execute("SELECT id FROM chunks WHERE doc_id=%s", (doc_id,))]

    def _delete_chunks(self, db, doc_id: int, ids: list[int]) -> None:
        # the terms are a column of the chunk: they go with it, as its vectors do (cascade)
        db.execute("DELETE FROM chunks WHERE doc_id=%s", (doc_id,))

    def _delete_pages(self, db, doc_id: int) -> None:
        db.execute("DELETE FROM pages WHERE doc_id=%s", (doc_id,))

    def _delete_document_row(self, db, doc_id: int) -> None:
        db.execute("DELETE FROM documents WHERE id=%s", (doc_id,))

    def _finish_embedded(self, db) -> None:
        db.execute("UPDATE documents SET status='indexed' WHERE status='embedding' AND NOT EXISTS "
                   "(SELECT 1 FROM chunks c LEFT JOIN vectors v ON v.chunk_id=c.id "
                   " WHERE c.doc_id=documents.id AND v.chunk_id IS NULL)")

    def _reset_embedding(self, db) -> None:
        db.execute("UPDATE documents SET status='embedding' WHERE status='indexed' AND EXISTS "
                   "(SELECT 1 FROM chunks c WHERE c.doc_id=documents.id)")

    # ---- keyword search ---------------------------------------------------------------------------
    def _lexemes(self, words: list[str]) -> list[str]:
        """The index's lexemes for the query words (PostgreSQL's parser splits "gpt-3" as FTS5 does)."""
        new = [w for w in words if w not in self._lexes]
        if new:
            found: dict[str, list[str]] = {w: [] for w in new}
            for w, lexeme in self.db.query("SELECT w, t.lexeme FROM unnest(%s::text[]) w, "
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
            n, avg = self.db.query("SELECT COUNT(*), COALESCE(AVG(n_terms), 1) FROM chunks")[0]
            self._size = (int(n), float(avg) or 1.0)
        total = self._size[0]
        cap = int(COMMON_SHARE * total) + 1 if total >= PRUNE_FROM else None
        new = [lx for lx in lexemes if lx not in self._df]
        if new:
            limit = f" LIMIT {cap}" if cap else ""
            self._df.update((lx, int(n)) for lx, n in self.db.query(
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
        rows = self.db.query(
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
