"""One knowledge base on this computer: documents, pages, chunks and their keyword terms in SQLite,
vectors with a FAISS cache beside it (the SQLite sibling of kb.storage.store.BaseStore).

The database core (kb.storage.sqlite.database) owns the SQLite connection, transactions, migrations
and settings; chunk vectors and their FAISS cache are a kb.storage.sqlite.vectors.VectorTable, the
same class that keeps picture vectors. SQLite is the truth; the FAISS file is a cache rebuilt from
the stored vectors whenever its stamp disagrees, never by re-embedding. Keyword terms live in the
FTS5 table `chunks_fts`, ranked by its bm25.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Collection, Iterable

from kb.storage.contract import StoreError
from kb.storage.sqlite.conversations import ConversationRows
from kb.storage.sqlite.database import Database, create_file
from kb.storage.sqlite.paths import Paths
from kb.storage.sqlite.pictures import Pictures
from kb.storage.sqlite.queue import Queue
from kb.storage.sqlite.vectors import VectorTable
from kb.storage.store import COMMON_SHARE, KEEP_AT_LEAST, PRUNE_FROM, BaseStore, boxes_json
from kb.storage.vectors import CHUNK_VECTORS
from kb.text import lexical
from kb.text.chunking import Chunk
from kb.text.document import Document, Page

DB_NAME = "kb.sqlite"

__all__ = ["DB_NAME", "Store"]


def _marks(n: int) -> str:
    return ",".join("?" * n)


class Store(BaseStore):
    """Documents, pages and chunks of one KB folder in SQLite, keyword and vector search. Thread-safe."""

    shared = False  # one computer's: no other desktop adds to it

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.db_path = self.folder / DB_NAME
        if not self.db_path.exists():
            raise StoreError(f"{self.folder}: not a knowledge base (no {DB_NAME})")
        self.db = Database(self.db_path)
        self.where = str(self.folder)
        self.host = None  # on this computer
        self.vectors = VectorTable(self.db, self.folder, CHUNK_VECTORS)
        self.index_path = self.vectors.index_path
        self._vocab = False
        self.pictures = Pictures(self.db, self.folder)
        self.queue = Queue(self.db)
        self.paths = Paths(self)
        self.conversation_rows = ConversationRows(self.db)

    @classmethod
    def create(cls, folder: Path, settings: dict) -> "Store":
        """Create an empty KB in `folder` with the given settings (embedding model id, dim, ...)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if (folder / DB_NAME).exists():
            raise StoreError(f"{folder}: a knowledge base already exists there")
        create_file(folder / DB_NAME)
        store = cls(folder)
        with store.db.transaction():
            for key, value in dict(settings, created=time.time()).items():
                store.db.set_meta(key, value)
        return store

    # ---- reading ------------------------------------------------------------------------------
    def document(self, path: str) -> dict | None:
        """The document row for a path."""
        rows = self.db.query_dicts("SELECT * FROM documents WHERE path=?", (path,))
        return rows[0] if rows else None

    def document_sha(self, doc_id: int) -> str | None:
        """The content hash a document was read from."""
        rows = self.db.query("SELECT sha256 FROM documents WHERE id=?", (doc_id,))
        return rows[0][0] if rows else None

    def ocr_ran(self, doc_id: int) -> bool:
        """True when at least one page of the document was read by OCR."""
        return bool(self.db.query("SELECT 1 FROM pages WHERE doc_id=? AND ocr<>0 LIMIT 1", (doc_id,)))

    def totals(self) -> dict:
        """Counts for lists (documents, failed, bytes, chunks), from the last commit without
        waiting for a writer: the window's knowledge-base list asks at the end of every job."""
        docs, failed, size = self.db.listing(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN status='failed' THEN 1 ELSE 0 END), 0), "
            "COALESCE(SUM(size), 0) FROM documents")[0]
        chunks = self.db.listing("SELECT COUNT(*) FROM chunks")[0][0]
        return {"documents": int(docs), "failed": int(failed), "bytes": int(size), "chunks": int(chunks)}

    def has_documents(self) -> bool:
        """True when a document is stored (read without waiting for a writer)."""
        return bool(self.db.listing("SELECT EXISTS (SELECT 1 FROM documents)")[0][0])

    def documents(self) -> list[dict]:
        """All documents with their chunk counts, OCR'd pages and the paths of identical copies
        (from the last commit, without waiting for a writer: the window lists them)."""
        return self.db.query_dicts(
            "SELECT d.*, (SELECT COUNT(*) FROM chunks c WHERE c.doc_id=d.id) AS chunks, "
            "(SELECT group_concat(path, char(10)) FROM copies WHERE doc_id=d.id) AS copies, "
            "(SELECT COUNT(*) FROM pages p WHERE p.doc_id=d.id AND p.ocr<>0) AS ocr_pages "
            "FROM documents d ORDER BY d.name", listing=True)

    def _chunk_rows(self, ids: list[int]) -> list[tuple]:
        return self.db.query(
            "SELECT c.id, c.doc_id, d.path, d.name, c.page, c.start, c.\"end\", c.text FROM chunks c "
            f"JOIN documents d ON d.id=c.doc_id WHERE c.id IN ({_marks(len(ids))})", tuple(ids))

    def doc_ids(self, ids: Iterable[int]) -> dict[int, int]:
        """Chunk id -> document id for the given chunks."""
        ids = list(ids)
        if not ids:
            return {}
        return dict(self.db.query(f"SELECT id, doc_id FROM chunks WHERE id IN ({_marks(len(ids))})", tuple(ids)))

    def _page_field(self, doc_id: int, number: int, field: str):
        column = {"text": "text", "boxes": "boxes"}[field]
        rows = self.db.query(f"SELECT {column} FROM pages WHERE doc_id=? AND number=?", (doc_id, number))
        return rows[0][0] if rows else None

    # ---- writing (inside the caller's transaction `db`) -------------------------------------------
    def _document_id(self, db, path: str) -> int | None:
        row = db.execute("SELECT id FROM documents WHERE path=?", (path,)).fetchone()
        return row[0] if row else None

    def _old_vectors(self, db, doc_id: int) -> Iterable[tuple[str, bytes]]:
        return db.execute("SELECT c.text, v.vec FROM chunks c JOIN vectors v ON v.chunk_id=c.id WHERE c.doc_id=?",
                          (doc_id,)).fetchall()

    def _insert_document(self, db, path: str, doc: Document, sha256: str, size: int, mtime: float,
                         now: float) -> int:
        return db.execute(
            "INSERT INTO documents(path, name, kind, title, sha256, size, mtime, pages, status, added, updated) "
            "VALUES (?,?,?,?,?,?,?,?, 'embedding', ?, ?)",
            (path, self._name(path), doc.kind, doc.title, sha256, size, mtime, len(doc.pages), now, now)).lastrowid

    def _update_document(self, db, doc_id: int, doc: Document, sha256: str, size: int, mtime: float,
                         now: float) -> None:
        db.execute("UPDATE documents SET kind=?, title=?, sha256=?, size=?, mtime=?, pages=?, "
                   "status='embedding', error=NULL, updated=? WHERE id=?",
                   (doc.kind, doc.title, sha256, size, mtime, len(doc.pages), now, doc_id))

    def _insert_pages(self, db, doc_id: int, pages: list[Page]) -> None:
        db.executemany("INSERT INTO pages(doc_id, number, text, ocr, boxes) VALUES (?,?,?,?,?)",
                       [(doc_id, p.number, p.text, int(p.ocr), boxes_json(p)) for p in pages])

    def _insert_chunk(self, db, doc_id: int, c: Chunk, terms: str) -> int:
        cid = db.execute('INSERT INTO chunks(doc_id, page, start, "end", text, tokens) VALUES (?,?,?,?,?,?)',
                         (doc_id, c.page, c.start, c.end, c.text, c.tokens)).lastrowid
        db.execute("INSERT INTO chunks_fts(rowid, terms) VALUES (?, ?)", (cid, terms))
        return cid

    def _set_status(self, db, doc_id: int, status: str) -> None:
        db.execute("UPDATE documents SET status=? WHERE id=?", (status, doc_id))

    def _insert_failure(self, db, path: str, kind: str, error: str, sha256: str | None, size: int | None,
                        mtime: float | None, now: float) -> None:
        db.execute("INSERT INTO documents(path, name, kind, sha256, size, mtime, status, error, added, updated) "
                   "VALUES (?,?,?,?,?,?, 'failed', ?, ?, ?)",
                   (path, self._name(path), kind, sha256, size, mtime, error, now, now))

    def _update_failure(self, db, doc_id: int, error: str, sha256: str | None, size: int | None,
                        mtime: float | None, now: float) -> None:
        db.execute("UPDATE documents SET status='failed', error=?, sha256=?, size=?, mtime=?, pages=0, updated=? "
                   "WHERE id=?", (error, sha256, size, mtime, now, doc_id))

    def _forget_queued(self, db, path: str) -> None:
        db.execute("DELETE FROM queue WHERE path=?", (path,))

    def _chunk_ids(self, db, doc_id: int) -> list[int]:
        return [r[0] for r in db.execute("SELECT id FROM chunks WHERE doc_id=?", (doc_id,))]

    def _delete_chunks(self, db, doc_id: int, ids: list[int]) -> None:
        # FTS5 rows are not tied to their chunk by a foreign key: they go first, by rowid
        db.executemany("DELETE FROM chunks_fts WHERE rowid=?", [(i,) for i in ids])
        db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))

    def _delete_pages(self, db, doc_id: int) -> None:
        db.execute("DELETE FROM pages WHERE doc_id=?", (doc_id,))

    def _delete_document_row(self, db, doc_id: int) -> None:
        db.execute("DELETE FROM documents WHERE id=?", (doc_id,))

    def _finish_embedded(self, db) -> None:
        db.execute("UPDATE documents SET status='indexed' WHERE status='embedding' AND NOT EXISTS "
                   "(SELECT 1 FROM chunks c LEFT JOIN vectors v ON v.chunk_id=c.id "
                   " WHERE c.doc_id=documents.id AND v.chunk_id IS NULL)")

    def _reset_embedding(self, db) -> None:
        db.execute("UPDATE documents SET status='embedding' WHERE status='indexed' AND EXISTS "
                   "(SELECT 1 FROM chunks c WHERE c.doc_id=documents.id)")

    # ---- keyword search -----------------------------------------------------------------------
    def lexical_search(self, query: str, k: int, documents: Collection[int] | None = None) -> list[tuple[int, float]]:
        """FTS5 bm25 over segmented terms: (chunk id, score) best first; higher is better.

        With `documents`, only chunks of those documents are ranked ("ask only these documents").
        """
        words = lexical.query_words(query)
        scope, params = "", ()
        if documents is not None:
            ids = sorted(documents)
            scope = f" AND rowid IN (SELECT id FROM chunks WHERE doc_id IN ({_marks(len(ids))}))"
            params = tuple(ids)
        with self.db.lock:
            total = self.db.query("SELECT max(rowid) FROM chunks")[0][0] or 0
            if total >= PRUNE_FROM and len(words) > KEEP_AT_LEAST:
                words = self._drop_common(words, total)
            match = lexical.match_expression(words)
            if match is None:
                return []
            rows = self.db.query(
                f"SELECT rowid, bm25(chunks_fts) AS s FROM chunks_fts WHERE chunks_fts MATCH ?{scope} "
                "ORDER BY s LIMIT ?", (match, *params, k))
        return [(int(r[0]), -float(r[1])) for r in rows]

    def _drop_common(self, words: list[str], total: int) -> list[str]:
        if not self._vocab:
            self.db.query("CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_vocab USING fts5vocab(main, chunks_fts, row)")
            self._vocab = True
        for w in words:
            if w not in self._df:
                rows = self.db.query("SELECT doc FROM temp.chunks_vocab WHERE term=?", (w,))
                self._df[w] = rows[0][0] if rows else 0
        limit = COMMON_SHARE * total
        kept = [w for w in words if self._df[w] <= limit]
        if len(kept) < KEEP_AT_LEAST:
            kept = sorted(words, key=lambda w: self._df[w])[:KEEP_AT_LEAST]
        return kept
