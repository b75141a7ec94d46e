"""One knowledge base on disk: documents, pages, chunks and their keyword terms (the store proper).

The database core (kb.storage.sqlite.database) owns the SQLite connection, transactions, migrations and settings;
chunk vectors and their FAISS cache are a kb.storage.sqlite.vectors.VectorTable, the same class that keeps
picture vectors. SQLite is the truth; the FAISS file is a cache rebuilt from the stored vectors
whenever its stamp disagrees, never by re-embedding. kb.storage.contract.KnowledgeStore writes down what
the rest of the engine may ask of a store.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Iterable

import numpy as np

from kb.text import lexical
from kb.text.chunking import Chunk
from kb.storage.sqlite.database import Database, StoreError, create_file
from kb.text.document import Document
from kb.text.file_names import readable
from kb.storage.sqlite.conversations import ConversationRows
from kb.storage.sqlite.paths import Paths
from kb.storage.sqlite.queue import Queue
from kb.storage.sqlite.pictures import Pictures
from kb.storage.sqlite.faiss_index import VectorIndex
from kb.storage.sqlite.vectors import VectorKind, VectorTable

# Keyword search cost grows with the posting lists of the query's words; in a big KB, words found
# in more than COMMON_SHARE of the chunks weigh almost nothing in bm25 yet cost the most
# (bench/latency.py: 570 ms -> 24 ms on a 1M-chunk KB), so they are left out of the match there.
PRUNE_FROM = 20_000
COMMON_SHARE = 0.02
KEEP_AT_LEAST = 3
DB_NAME = "kb.sqlite"
CHUNK_VECTORS = VectorKind(table="vectors", key="chunk_id", owner="chunks", payload="text",
                           index_file="index.faiss", generation="index_generation",
                           model="embed_model_id", dim="embed_dim")

__all__ = ["ChunkRecord", "DB_NAME", "ModelMismatch", "Store", "StoreError"]


def _boxes_json(page) -> str | None:
    if not page.boxes:
        return None
    return json.dumps([[b.start, b.end, round(b.x0, 4), round(b.y0, 4), round(b.x1, 4), round(b.y1, 4)]
                       for b in page.boxes])


def chunk_key(model_id: str | None, text: str) -> bytes:
    """What a chunk's vector depends on: its text and the embedding model (a vector is reused when
    a re-read document has a chunk with the same key)."""
    return hashlib.blake2b(f"{model_id}\0{text}".encode("utf-8", "surrogatepass"), digest_size=16).digest()


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


class Store:
    """Documents, pages and chunks of one KB folder, keyword and vector search. Thread-safe."""

    shared = False  # one computer's: no other desktop adds to it

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.db_path = self.folder / DB_NAME
        if not self.db_path.exists():
            raise StoreError(f"{self.folder}: not a knowledge base (no {DB_NAME})")
        self.db = Database(self.db_path)
        self.vectors = VectorTable(self.db, self.folder, CHUNK_VECTORS)
        self.index_path = self.vectors.index_path
        self._df: dict[str, int] = {}  # word -> chunks containing it (for pruning; cleared on change)
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

    @property
    def model_id(self) -> str | None:
        """The embedding model the KB's vectors come from."""
        return self.vectors.model_id

    def count(self, table: str) -> int:
        """Rows in one of the KB's tables (documents, chunks, vectors, chunks_fts, pages)."""
        return self.db.count(table)

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    # ---- documents --------------------------------------------------------------------------
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

    def put_document(self, path: str, doc: Document, chunks: list[Chunk], sha256: str, size: int,
                     mtime: float, fts_rows: list[str] | None = None) -> tuple[int, int]:
        """Store a document's pages, chunks and FTS terms in one transaction, replacing old content.

        A chunk whose text (and embedding model) is that of one of the old content's chunks keeps
        that vector: editing one page of a long PDF re-embeds only that page's chunks. The other
        chunks are keyword-searchable as soon as this commits; their vectors come later.
        Returns (document id, chunks still needing a vector).
        """
        now = time.time()
        if fts_rows is None:  # segmented by the parser process normally; here otherwise, outside the lock
            fts_rows = [lexical.index_text(c.text) for c in chunks]
        self._df.clear()
        self.pictures.write_thumbs(doc.pictures)  # before the commit: a row never points at a missing file
        model = self.model_id
        pending = len(chunks)
        with self.db.transaction() as db:
            old = db.execute("SELECT id FROM documents WHERE path=?", (path,)).fetchone()
            reuse: dict[bytes, bytes] = {}
            if old:
                reuse = {chunk_key(model, text): vec for text, vec in db.execute(
                    "SELECT c.text, v.vec FROM chunks c JOIN vectors v ON v.chunk_id=c.id WHERE c.doc_id=?",
                    (old[0],))}
                self._delete_content(db, old[0])
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
            kept: list[tuple[int, bytes]] = []
            for c, terms in zip(chunks, fts_rows, strict=True):
                cid = self._insert_chunk(db, doc_id, c, terms)
                vec = reuse.get(chunk_key(model, c.text)) if reuse else None
                if vec is not None:
                    kept.append((cid, vec))
            self.vectors.put_blobs(db, kept)
            pending -= len(kept)
            if not pending:
                db.execute("UPDATE documents SET status='indexed' WHERE id=?", (doc_id,))
        if old:
            self.pictures.prune()
            if kept:
                self.vectors.save()
        return doc_id, pending

    def put_failure(self, path: str, error: str, sha256: str | None, size: int | None,
                    mtime: float | None, kind: str = "") -> None:
        """Record that a file could not be indexed, and why (replacing any old content)."""
        now = time.time()
        with self.db.transaction() as db:
            old = db.execute("SELECT id FROM documents WHERE path=?", (path,)).fetchone()
            if old:
                self._delete_content(db, old[0])
                db.execute("UPDATE documents SET status='failed', error=?, sha256=?, size=?, mtime=?, "
                           "pages=0, updated=? WHERE id=?", (error, sha256, size, mtime, now, old[0]))
            else:
                db.execute("INSERT INTO documents(path, name, kind, sha256, size, mtime, status, error, "
                           "added, updated) VALUES (?,?,?,?,?,?, 'failed', ?, ?, ?)",
                           (path, readable(Path(path).name), kind, sha256, size, mtime, error, now, now))
            db.execute("DELETE FROM queue WHERE path=?", (path,))

    def remove_document(self, doc_id: int) -> None:
        """Delete a document with its pages, chunks, vectors and FTS rows."""
        with self.db.transaction() as db:
            self.drop_document(db, doc_id)
        self.vectors.save()
        self.pictures.prune()

    def drop_document(self, db, doc_id: int) -> None:
        """Delete a document and its content inside the caller's transaction `db` (a path that now
        holds other content, a copy becoming a document)."""
        self._delete_content(db, doc_id)
        db.execute("DELETE FROM documents WHERE id=?", (doc_id,))

    def _insert_chunk(self, db, doc_id: int, c: Chunk, terms: str) -> int:
        cid = db.execute('INSERT INTO chunks(doc_id, page, start, "end", text, tokens) VALUES (?,?,?,?,?,?)',
                         (doc_id, c.page, c.start, c.end, c.text, c.tokens)).lastrowid
        db.execute("INSERT INTO chunks_fts(rowid, terms) VALUES (?, ?)", (cid, terms))
        return cid

    def _delete_terms(self, db, ids: list[int]) -> None:
        db.executemany("DELETE FROM chunks_fts WHERE rowid=?", [(i,) for i in ids])

    def _delete_content(self, db, doc_id: int) -> None:
        self._df.clear()
        ids = [r[0] for r in db.execute("SELECT id FROM chunks WHERE doc_id=?", (doc_id,))]
        if ids:
            self.vectors.forget(db, ids)
            self._delete_terms(db, ids)
            db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))  # vectors cascade
        db.execute("DELETE FROM pages WHERE doc_id=?", (doc_id,))
        self.pictures.delete(db, doc_id)

    # ---- vectors ----------------------------------------------------------------------------
    def pending_chunks(self, limit: int) -> list[tuple[int, str]]:
        """Chunks that have no vector yet, oldest first: (id, text)."""
        return self.vectors.pending(limit)

    def count_pending(self) -> int:
        """How many chunks still need a vector."""
        return self.vectors.count_pending()

    def add_vectors(self, ids: list[int], vecs: np.ndarray, save: bool = True) -> None:
        """Store one batch of vectors and finish the documents it completes; then refresh FAISS."""
        self.vectors.add(ids, vecs, save, also=lambda db: db.execute(
            "UPDATE documents SET status='indexed' WHERE status='embedding' AND NOT EXISTS "
            "(SELECT 1 FROM chunks c LEFT JOIN vectors v ON v.chunk_id=c.id "
            " WHERE c.doc_id=documents.id AND v.chunk_id IS NULL)"))

    def has_vectors(self) -> bool:
        """True when at least one chunk has a vector (dense search has something to search)."""
        return self.vectors.has_any()

    def vector(self, chunk_id: int) -> np.ndarray | None:
        """The stored vector of a chunk (float32), if it has one."""
        return self.vectors.vector(chunk_id)

    def rebind_vectors(self, model_id: str, dim: int) -> None:
        """Drop every vector and record the model that will compute them again."""
        with self.db.transaction() as db:
            self.vectors.bind(model_id, dim)
            self.vectors.clear()
            db.execute("UPDATE documents SET status='embedding' WHERE status='indexed' AND EXISTS "
                       "(SELECT 1 FROM chunks c WHERE c.doc_id=documents.id)")
        self.vectors.save()

    @property
    def index(self) -> VectorIndex:
        """The chunks' FAISS index (loaded, or rebuilt from SQLite)."""
        return self.vectors.index

    def rebuild_index(self) -> VectorIndex:
        """Rebuild the FAISS index from the stored vectors, and save it."""
        return self.vectors.rebuild()

    def index_needs_rebuild(self) -> bool:
        """True when the knowledge base has grown (or shrunk) past what its index type suits."""
        return self.vectors.needs_rebuild()

    def save_index(self) -> None:
        """Write the index file if it is loaded."""
        self.vectors.save()

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

    def dense_search(self, query_vec: np.ndarray, k: int,
                     documents: Collection[int] | None = None) -> list[tuple[int, float]]:
        """Nearest chunks: (chunk id, cosine similarity) best first; with `documents`, only theirs
        (compared exactly: see VectorTable.search_within)."""
        if documents is None:
            return self.vectors.search(query_vec, k)
        return self.vectors.search_within(query_vec, k, "doc_id", documents)

    def chunks(self, ids: Iterable[int]) -> dict[int, ChunkRecord]:
        """Stored chunks by id, with their document's path and name."""
        ids = list(ids)
        if not ids:
            return {}
        rows = self.db.query(
            "SELECT c.id, c.doc_id, d.path, d.name, c.page, c.start, c.\"end\", c.text FROM chunks c "
            f"JOIN documents d ON d.id=c.doc_id WHERE c.id IN ({','.join('?' * len(ids))})", tuple(ids))
        return {r[0]: ChunkRecord(*r) for r in rows}

    def doc_ids(self, ids: Iterable[int]) -> dict[int, int]:
        """Chunk id -> document id for the given chunks."""
        ids = list(ids)
        if not ids:
            return {}
        return dict(self.db.query(f"SELECT id, doc_id FROM chunks WHERE id IN ({','.join('?' * len(ids))})",
                                  tuple(ids)))

    def page_boxes(self, doc_id: int, number: int) -> list[tuple[int, int, float, float, float, float]]:
        """OCR boxes of one page: (start, end, x0, y0, x1, y1), offsets into the page text, page fractions."""
        rows = self.db.query("SELECT boxes FROM pages WHERE doc_id=? AND number=?", (doc_id, number))
        return [tuple(b) for b in json.loads(rows[0][0])] if rows and rows[0][0] else []

    def page_text(self, doc_id: int, number: int) -> str | None:
        """The full text of one page (citations' offsets point into it)."""
        rows = self.db.query("SELECT text FROM pages WHERE doc_id=? AND number=?", (doc_id, number))
        return rows[0][0] if rows else None
