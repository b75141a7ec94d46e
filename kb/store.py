"""One knowledge base on disk: an SQLite database (the truth) and a FAISS index (a cache).

SQLite holds documents, pages, chunks, their FTS5 terms and their vectors (float16 blobs), in
WAL mode with a schema version and migrations. The FAISS file is rewritten atomically after each
committed batch and carries a stamp (generation + count); when the stamp disagrees with SQLite,
or the file is missing or damaged, the index is rebuilt from the stored vectors, never by
re-embedding.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Iterable, Iterator

import numpy as np

from kb import lexical
from kb.chunking import Chunk
from kb.document import Document
from kb.file_names import decode_stored, has_escapes, readable, to_stored
from kb.pictures import Pictures
from kb.schema import MIGRATIONS, SCHEMA_VERSION
from kb.vector_index import TRAIN_PER_LIST, VectorIndex, kind_for

# Keyword search cost grows with the posting lists of the query's words; in a big KB, words found
# in more than COMMON_SHARE of the chunks weigh almost nothing in bm25 yet cost the most
# (bench/latency.py: 570 ms -> 24 ms on a 1M-chunk KB), so they are left out of the match there.
PRUNE_FROM = 20_000
COMMON_SHARE = 0.02
KEEP_AT_LEAST = 3
DB_NAME = "kb.sqlite"
INDEX_NAME = "index.faiss"


def _boxes_json(page) -> str | None:
    if not page.boxes:
        return None
    return json.dumps([[b.start, b.end, round(b.x0, 4), round(b.y0, 4), round(b.x1, 4), round(b.y1, 4)]
                       for b in page.boxes])


class StoreError(RuntimeError):
    """The KB cannot be opened or used as asked."""


class ModelMismatch(StoreError):
    """The KB was built with another embedding model."""


@dataclass
class ChunkRecord:
    """A stored chunk with its document's name and path."""

    id: int
    doc_id: int
    path: str
    name: str
    page: int
    start: int
    end: int
    text: str


class _Connection(sqlite3.Connection):
    """An SQLite connection that stores file names that are not valid UTF-8 exactly (kb.file_names)."""

    def execute(self, sql, params=()):  # noqa: D102 (sqlite3)
        return super().execute(sql, _stored(params))

    def executemany(self, sql, rows):  # noqa: D102 (sqlite3)
        return super().executemany(sql, (_stored(r) for r in rows))


def _stored(params):
    if isinstance(params, dict):
        return params
    return tuple(to_stored(p) if isinstance(p, str) and has_escapes(p) else p for p in params)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, factory=_Connection)
    conn.text_factory = decode_stored
    return conn


class Store:
    """Access to one KB folder. Thread-safe: every operation holds the store's lock."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.db_path = self.folder / DB_NAME
        self.index_path = self.folder / INDEX_NAME
        if not self.db_path.exists():
            raise StoreError(f"{self.folder}: not a knowledge base (no {DB_NAME})")
        self._lock = threading.RLock()
        try:
            self.conn = _connect(self.db_path)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.db_path}: damaged database ({e})") from None
        self._read_lock = threading.Lock()
        self._read_conn: sqlite3.Connection | None = None
        self._index: VectorIndex | None = None
        self._df: dict[str, int] = {}  # word -> chunks containing it (for pruning; cleared on change)
        self._vocab = False
        self.pictures = Pictures(self)

    # ---- creation, schema -------------------------------------------------------------------
    @classmethod
    def create(cls, folder: Path, settings: dict) -> "Store":
        """Create an empty KB in `folder` with the given settings (embedding model id, dim, ...)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if (folder / DB_NAME).exists():
            raise StoreError(f"{folder}: a knowledge base already exists there")
        sqlite3.connect(folder / DB_NAME).close()
        store = cls(folder)
        with store.transaction():
            for key, value in dict(settings, created=time.time()).items():
                store.set_meta(key, value)
        return store

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.db_path}: made by a newer Zhiku (schema {version} > {SCHEMA_VERSION})")
        for v in range(version + 1, SCHEMA_VERSION + 1):
            with self.transaction():
                for sql in MIGRATIONS[v]:
                    self.conn.execute(sql)
                self.conn.execute(f"PRAGMA user_version = {v}")

    @property
    def schema_version(self) -> int:
        """The database's schema version."""
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of a read-only SQL statement, under the store's lock."""
        with self._lock:
            return self.conn.execute(sql, params).fetchall()

    def listing(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of a read-only SQL statement from the last commit, without waiting for a writer
        (for the window's lists: see _reader)."""
        with self._read_lock:
            return self._reader().execute(sql, params).fetchall()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work: everything in it commits together or not at all."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                self._index = None  # it may hold changes that were just rolled back: reload it
                raise
            self.conn.execute("COMMIT")

    def get_meta(self, key: str, default=None):
        """A KB setting (stored as text; numbers come back as text)."""
        with self._lock:
            row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value) -> None:
        """Set a KB setting."""
        with self._lock:
            self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, str(value)))

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self.conn.close()
        with self._read_lock:
            if self._read_conn is not None:
                self._read_conn.close()
                self._read_conn = None

    # ---- documents --------------------------------------------------------------------------
    def document(self, path: str) -> sqlite3.Row | None:
        """The document row for a path."""
        with self._lock:
            cur = self.conn.execute("SELECT * FROM documents WHERE path=?", (path,))
            cur.row_factory = sqlite3.Row
            return cur.fetchone()

    def _reader(self) -> sqlite3.Connection:
        """A second connection for listing: under WAL it reads the last commit without waiting for
        the writer's lock, so the window never stalls behind a big document being stored."""
        if self._read_conn is None:
            self._read_conn = _connect(self.db_path)
            self._read_conn.execute("PRAGMA query_only=1")
        return self._read_conn

    def documents(self) -> list[dict]:
        """All documents with their chunk counts, OCR'd pages and the paths of identical copies."""
        with self._read_lock:
            cur = self._reader().execute(
                "SELECT d.*, (SELECT COUNT(*) FROM chunks c WHERE c.doc_id=d.id) AS chunks, "
                "(SELECT group_concat(path, char(10)) FROM copies WHERE doc_id=d.id) AS copies, "
                "(SELECT COUNT(*) FROM pages p WHERE p.doc_id=d.id AND p.ocr) AS ocr_pages "
                "FROM documents d ORDER BY d.name")
            cur.row_factory = sqlite3.Row
            return [dict(r) for r in cur.fetchall()]

    def put_document(self, path: str, doc: Document, chunks: list[Chunk], sha256: str, size: int,
                     mtime: float, fts_rows: list[str] | None = None) -> int:
        """Store a document's pages, chunks and FTS terms in one transaction, replacing old content.

        The chunks are keyword-searchable as soon as this commits; vectors come later.
        """
        now = time.time()
        if fts_rows is None:  # segmented by the parser process normally; here otherwise, outside the lock
            fts_rows = [lexical.index_text(c.text) for c in chunks]
        self._df.clear()
        self.pictures.write_thumbs(doc.pictures)  # before the commit: a row never points at a missing file
        with self.transaction() as db:
            old = db.execute("SELECT id FROM documents WHERE path=?", (path,)).fetchone()
            if old:
                self._delete_content(old[0])
                db.execute("UPDATE documents SET kind=?, title=?, sha256=?, size=?, mtime=?, pages=?, "
                           "status='embedding', error=NULL, updated=? WHERE id=?",
                           (doc.kind, doc.title, sha256, size, mtime, len(doc.pages), now, old[0]))
                doc_id = old[0]
            else:
                doc_id = db.execute(
                    "INSERT INTO documents(path, name, kind, title, sha256, size, mtime, pages, status, "
                    "added, updated) VALUES (?,?,?,?,?,?,?,?, 'embedding', ?, ?)",
                    (path, readable(Path(path).name), doc.kind, doc.title, sha256, size, mtime, len(doc.pages),
                     now, now)).lastrowid
            db.executemany("INSERT INTO pages(doc_id, number, text, ocr, boxes) VALUES (?,?,?,?,?)",
                           [(doc_id, p.number, p.text, int(p.ocr), _boxes_json(p)) for p in doc.pages])
            db.execute("DELETE FROM queue WHERE path=?", (path,))
            self.pictures.insert(db, doc_id, doc.pictures)
            for c, terms in zip(chunks, fts_rows, strict=True):
                cid = db.execute("INSERT INTO chunks(doc_id, page, start, end, text, tokens) "
                                 "VALUES (?,?,?,?,?,?)",
                                 (doc_id, c.page, c.start, c.end, c.text, c.tokens)).lastrowid
                db.execute("INSERT INTO chunks_fts(rowid, terms) VALUES (?, ?)", (cid, terms))
            if not chunks:
                db.execute("UPDATE documents SET status='indexed' WHERE id=?", (doc_id,))
        if old:
            self.pictures.prune()
        return doc_id

    def put_failure(self, path: str, error: str, sha256: str | None, size: int | None,
                    mtime: float | None, kind: str = "") -> None:
        """Record that a file could not be indexed, and why (replacing any old content)."""
        now = time.time()
        with self.transaction() as db:
            old = db.execute("SELECT id FROM documents WHERE path=?", (path,)).fetchone()
            if old:
                self._delete_content(old[0])
                db.execute("UPDATE documents SET status='failed', error=?, sha256=?, size=?, mtime=?, "
                           "pages=0, updated=? WHERE id=?", (error, sha256, size, mtime, now, old[0]))
            else:
                db.execute("INSERT INTO documents(path, name, kind, sha256, size, mtime, status, error, "
                           "added, updated) VALUES (?,?,?,?,?,?, 'failed', ?, ?, ?)",
                           (path, readable(Path(path).name), kind, sha256, size, mtime, error, now, now))
            db.execute("DELETE FROM queue WHERE path=?", (path,))

    def remove_document(self, doc_id: int) -> None:
        """Delete a document with its pages, chunks, vectors and FTS rows."""
        with self.transaction():
            self.drop_document(doc_id)
        self.save_index()
        self.pictures.prune()

    def drop_document(self, doc_id: int) -> None:
        """Delete a document and its content as part of the transaction the caller holds (a path
        that now holds other content, a copy becoming a document)."""
        self._delete_content(doc_id)
        self.conn.execute("DELETE FROM documents WHERE id=?", (doc_id,))

    def _delete_content(self, doc_id: int) -> None:
        self._df.clear()
        ids = [r[0] for r in self.conn.execute("SELECT id FROM chunks WHERE doc_id=?", (doc_id,))]
        if ids:
            had_vectors = self.conn.execute(
                "SELECT COUNT(*) FROM vectors WHERE chunk_id IN (SELECT id FROM chunks WHERE doc_id=?)",
                (doc_id,)).fetchone()[0]
            self.conn.executemany("DELETE FROM chunks_fts WHERE rowid=?", [(i,) for i in ids])
            self.conn.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))  # vectors cascade
            if had_vectors:
                self._bump_generation()
                if self._index is not None:
                    self._index.remove(ids)
        self.conn.execute("DELETE FROM pages WHERE doc_id=?", (doc_id,))
        self.pictures.delete(self.conn, doc_id)

    # ---- vectors ----------------------------------------------------------------------------
    def pending_chunks(self, limit: int) -> list[tuple[int, str]]:
        """Chunks that have no vector yet, oldest first."""
        with self._lock:
            return self.conn.execute(
                "SELECT c.id, c.text FROM chunks c LEFT JOIN vectors v ON v.chunk_id=c.id "
                "WHERE v.chunk_id IS NULL ORDER BY c.id LIMIT ?", (limit,)).fetchall()

    def count_pending(self) -> int:
        """How many chunks still need a vector."""
        with self._lock:
            return self.conn.execute(
                "SELECT COUNT(*) FROM chunks c LEFT JOIN vectors v ON v.chunk_id=c.id "
                "WHERE v.chunk_id IS NULL").fetchone()[0]

    def count(self, table: str) -> int:
        """Rows in one of the KB's tables (documents, chunks, vectors, chunks_fts, pages)."""
        if table not in ("documents", "chunks", "vectors", "chunks_fts", "pages"):
            raise ValueError(table)
        with self._lock:
            return self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

    def add_vectors(self, ids: list[int], vecs: np.ndarray, save: bool = True) -> None:
        """Store one batch of vectors and finish the documents it completes; then refresh FAISS.

        With save=False the index file is left stale (its stamp no longer matches), which is safe:
        it is rebuilt from SQLite on the next open unless save_index() runs first.
        """
        half = np.asarray(vecs, np.float32).astype(np.float16)
        index = self.index  # loaded (or rebuilt) before the batch, so only the batch is added after
        with self.transaction() as db:
            present = {r[0] for r in db.execute(
                f"SELECT id FROM chunks WHERE id IN ({','.join('?' * len(ids))})", ids)}
            keep = [i for i, cid in enumerate(ids) if cid in present]  # a chunk may be gone meanwhile
            db.executemany("INSERT OR REPLACE INTO vectors(chunk_id, vec) VALUES (?, ?)",
                           [(ids[i], half[i].tobytes()) for i in keep])
            db.execute("UPDATE documents SET status='indexed' WHERE status='embedding' AND NOT EXISTS "
                       "(SELECT 1 FROM chunks c LEFT JOIN vectors v ON v.chunk_id=c.id "
                       " WHERE c.doc_id=documents.id AND v.chunk_id IS NULL)")
            self._bump_generation()
        with self._lock:
            if self._index is index and keep:
                index.add(np.asarray([ids[i] for i in keep]), half[keep].astype(np.float32))
            if save:
                self.save_index()

    def vector(self, chunk_id: int) -> np.ndarray | None:
        """The stored vector of a chunk (float32), if it has one."""
        with self._lock:
            row = self.conn.execute("SELECT vec FROM vectors WHERE chunk_id=?", (chunk_id,)).fetchone()
        return np.frombuffer(row[0], np.float16).astype(np.float32) if row else None

    def clear_vectors(self) -> None:
        """Drop every vector (before re-embedding with another model)."""
        with self.transaction() as db:
            db.execute("DELETE FROM vectors")
            db.execute("UPDATE documents SET status='embedding' WHERE status='indexed' AND EXISTS "
                       "(SELECT 1 FROM chunks c WHERE c.doc_id=documents.id)")
            self._bump_generation()
        self._index = None
        self.save_index()

    def _bump_generation(self) -> None:
        gen = int(self.get_meta("index_generation", 0)) + 1
        self.set_meta("index_generation", gen)

    # ---- the FAISS cache --------------------------------------------------------------------
    def _stamp(self) -> dict:
        return {"generation": int(self.get_meta("index_generation", 0)), "count": self.count("vectors"),
                "model": self.get_meta("embed_model_id"), "schema": SCHEMA_VERSION}

    @property
    def index(self) -> VectorIndex:
        """The FAISS index, loaded from its file if it is current, else rebuilt from SQLite."""
        with self._lock:
            if self._index is None:
                dim = int(self.get_meta("embed_dim"))
                self._index = VectorIndex.load(self.index_path, self._stamp(), dim)
                if self._index is None:
                    self.rebuild_index()
            return self._index

    def rebuild_index(self) -> VectorIndex:
        """Rebuild the FAISS index from the vectors stored in SQLite (its type chosen by size), and save it."""
        with self._lock:
            dim = int(self.get_meta("embed_dim"))
            count = self.count("vectors")
            kind = kind_for(count)
            training = None
            if kind != "flat":
                lists = int(kind[3:])
                step = max(1, count // (lists * TRAIN_PER_LIST))  # an even sample across the KB
                rows = self.conn.execute("SELECT vec FROM vectors WHERE chunk_id % ? = 0", (step,)).fetchall()
                training = np.frombuffer(b"".join(r[0] for r in rows), np.float16).reshape(len(rows), -1)
            index = VectorIndex(dim, kind, None if training is None else training.astype(np.float32))
            cur = self.conn.execute("SELECT chunk_id, vec FROM vectors ORDER BY chunk_id")
            while rows := cur.fetchmany(16384):
                ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
                vecs = np.frombuffer(b"".join(r[1] for r in rows), np.float16).reshape(len(rows), -1)
                index.add(ids, vecs.astype(np.float32))
            self._index = index
            self.save_index()
            return index

    def index_needs_rebuild(self) -> bool:
        """True when the knowledge base has grown (or shrunk) past what its index type suits."""
        with self._lock:
            return self._index is not None and self._index.kind != kind_for(self._index.count)

    def save_index(self) -> None:
        """Write the index file if it is loaded (atomically, stamped with the current generation)."""
        with self._lock:
            if self._index is not None:
                self._index.save(self.index_path, self._stamp())

    # ---- search -----------------------------------------------------------------------------
    def lexical_search(self, query: str, k: int, documents: Collection[int] | None = None) -> list[tuple[int, float]]:
        """FTS5 bm25 over segmented terms: (chunk id, score) best first; higher is better.

        With `documents`, only chunks of those documents are ranked ("ask only these documents").
        """
        words = lexical.query_words(query)
        scope, params = "", ()
        if documents is not None:
            ids = sorted(documents)
            scope = f" AND rowid IN (SELECT id FROM chunks WHERE doc_id IN ({','.join('?' * len(ids))}))"
            params = tuple(ids)
        with self._lock:
            total = self.conn.execute("SELECT max(rowid) FROM chunks").fetchone()[0] or 0
            if total >= PRUNE_FROM and len(words) > KEEP_AT_LEAST:
                words = self._drop_common(words, total)
            match = lexical.match_expression(words)
            if match is None:
                return []
            rows = self.conn.execute(
                f"SELECT rowid, bm25(chunks_fts) AS s FROM chunks_fts WHERE chunks_fts MATCH ?{scope} "
                "ORDER BY s LIMIT ?", (match, *params, k)).fetchall()
        return [(int(r[0]), -float(r[1])) for r in rows]

    def _drop_common(self, words: list[str], total: int) -> list[str]:
        if not self._vocab:
            self.conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_vocab "
                              "USING fts5vocab(main, chunks_fts, row)")
            self._vocab = True
        for w in words:
            if w not in self._df:
                row = self.conn.execute("SELECT doc FROM temp.chunks_vocab WHERE term=?", (w,)).fetchone()
                self._df[w] = row[0] if row else 0
        limit = COMMON_SHARE * total
        kept = [w for w in words if self._df[w] <= limit]
        if len(kept) < KEEP_AT_LEAST:
            kept = sorted(words, key=lambda w: self._df[w])[:KEEP_AT_LEAST]
        return kept

    def dense_search(self, query_vec: np.ndarray, k: int,
                     documents: Collection[int] | None = None) -> list[tuple[int, float]]:
        """FAISS nearest chunks: (chunk id, cosine similarity) best first.

        With `documents`, their stored vectors are compared one by one instead: an approximate
        index filtered afterwards can return nothing of a few documents in a large knowledge base,
        and a scope of even 20,000 chunks is 15 MB of half floats, read in well under a second.
        """
        if documents is None:
            return self.index.search(query_vec, k)
        ids = sorted(documents)
        rows = self.query(f"SELECT v.chunk_id, v.vec FROM vectors v JOIN chunks c ON c.id=v.chunk_id "
                          f"WHERE c.doc_id IN ({','.join('?' * len(ids))})", tuple(ids))
        if not rows:
            return []
        vecs = np.frombuffer(b"".join(r[1] for r in rows), np.float16).reshape(len(rows), -1).astype(np.float32)
        sims = vecs @ np.asarray(query_vec, np.float32)
        best = np.argsort(-sims)[:k]
        return [(int(rows[i][0]), float(sims[i])) for i in best]

    def chunks(self, ids: Iterable[int]) -> dict[int, ChunkRecord]:
        """Stored chunks by id, with their document's path and name."""
        ids = list(ids)
        if not ids:
            return {}
        with self._lock:
            rows = self.conn.execute(
                "SELECT c.id, c.doc_id, d.path, d.name, c.page, c.start, c.end, c.text FROM chunks c "
                f"JOIN documents d ON d.id=c.doc_id WHERE c.id IN ({','.join('?' * len(ids))})", ids)
            return {r[0]: ChunkRecord(*r) for r in rows}

    def doc_ids(self, ids: Iterable[int]) -> dict[int, int]:
        """Chunk id -> document id for the given chunks."""
        ids = list(ids)
        if not ids:
            return {}
        with self._lock:
            rows = self.conn.execute(
                f"SELECT id, doc_id FROM chunks WHERE id IN ({','.join('?' * len(ids))})", ids)
            return dict(rows.fetchall())

    def page_boxes(self, doc_id: int, number: int) -> list[tuple[int, int, float, float, float, float]]:
        """OCR boxes of one page: (start, end, x0, y0, x1, y1), offsets into the page text, page fractions."""
        with self._lock:
            row = self.conn.execute("SELECT boxes FROM pages WHERE doc_id=? AND number=?",
                                    (doc_id, number)).fetchone()
        return [tuple(b) for b in json.loads(row[0])] if row and row[0] else []

    def page_text(self, doc_id: int, number: int) -> str | None:
        """The full text of one page (citations' offsets point into it)."""
        with self._lock:
            row = self.conn.execute("SELECT text FROM pages WHERE doc_id=? AND number=?",
                                    (doc_id, number)).fetchone()
        return row[0] if row else None
