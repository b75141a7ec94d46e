"""What both stores do around their rows: a document stored, replaced, failed or removed in one
transaction, vectors reused, pictures and thumbnails kept in step.

kb.storage.sqlite.store.Store (SQLite + FAISS) and kb.storage.postgres.store.PgStore (PostgreSQL +
pgvector) are siblings under this base: each writes its rows in its own dialect (the abstract
methods below) and ranks keywords its own way (FTS5's bm25; bm25 computed over a tsvector); the
order of the writes, what a re-read document keeps and what goes with a removed one are written
once, here. kb.storage.contract.KnowledgeStore is what the rest of the engine may ask of either.
"""

from __future__ import annotations

import hashlib
import json
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Collection, Iterable

import numpy as np

from kb.storage.contract import ChunkRecord, ConversationRows, Database, Paths, Queue
from kb.storage.pictures import BasePictures
from kb.text import lexical
from kb.text.chunking import Chunk
from kb.text.document import Document, Page
from kb.text.file_names import readable

# Keyword search cost grows with the posting lists of the query's words; in a big KB, words found
# in more than COMMON_SHARE of the chunks weigh almost nothing in bm25 yet cost the most
# (bench/latency.py: 570 ms -> 24 ms on a 1M-chunk KB), so they are left out of the match there.
PRUNE_FROM = 20_000
COMMON_SHARE = 0.02
KEEP_AT_LEAST = 3


def chunk_key(model_id: str | None, text: str) -> bytes:
    """What a chunk's vector depends on: its text and the embedding model (a vector is reused when
    a re-read document has a chunk with the same key)."""
    return hashlib.blake2b(f"{model_id}\0{text}".encode("utf-8", "surrogatepass"), digest_size=16).digest()


def boxes_json(page: Page) -> str | None:
    """A page's OCR boxes as stored: [[start, end, x0, y0, x1, y1], ...] (page fractions, 4 places)."""
    if not page.boxes:
        return None
    return json.dumps([[b.start, b.end, round(b.x0, 4), round(b.y0, 4), round(b.x1, 4), round(b.y1, 4)]
                       for b in page.boxes])


class BaseStore(ABC):
    """Documents, pages and chunks of one knowledge base, keyword and vector search. Thread-safe."""

    shared = False  # other desktops add to it at the same time
    folder: Path
    db: Database
    vectors: object  # kb.storage.sqlite.vectors.VectorTable or kb.storage.postgres.vectors.PgVectorTable
    pictures: BasePictures
    queue: Queue
    paths: Paths
    conversation_rows: ConversationRows

    def __init__(self) -> None:
        self._df: dict[str, int] = {}  # keyword -> chunks holding it (cleared when this process changes chunks)

    # ---- rows, in each backend's SQL ------------------------------------------------------------
    @abstractmethod
    def document(self, path: str) -> dict | None:
        """The document row for a path."""

    @abstractmethod
    def document_sha(self, doc_id: int) -> str | None:
        """The content hash a document was read from."""

    @abstractmethod
    def ocr_ran(self, doc_id: int) -> bool:
        """True when at least one page of the document was read by OCR."""

    @abstractmethod
    def totals(self) -> dict:
        """Counts for lists (documents, failed, bytes, chunks), from the last commit without
        waiting for a writer: the window's knowledge-base list asks at the end of every job."""

    @abstractmethod
    def has_documents(self) -> bool:
        """True when a document is stored (read without waiting for a writer)."""

    @abstractmethod
    def documents(self) -> list[dict]:
        """All documents with their chunk counts, OCR'd pages and the paths of identical copies
        (from the last commit, without waiting for a writer: the window lists them)."""

    @abstractmethod
    def _chunk_rows(self, ids: list[int]) -> list[tuple]:
        """(id, doc_id, path, name, page, start, end, text) of the given chunks."""

    @abstractmethod
    def doc_ids(self, ids: Iterable[int]) -> dict[int, int]:
        """Chunk id -> document id for the given chunks."""

    @abstractmethod
    def _page_field(self, doc_id: int, number: int, field: str):
        """One column ("text" or "boxes") of one page, or None."""

    @abstractmethod
    def _document_id(self, db, path: str) -> int | None:
        """The id of the document stored under `path` (inside a transaction)."""

    @abstractmethod
    def _old_vectors(self, db, doc_id: int) -> Iterable[tuple[str, object]]:
        """(chunk text, stored vector) of a document's chunks that have one."""

    @abstractmethod
    def _insert_document(self, db, path: str, doc: Document, sha256: str, size: int, mtime: float,
                         now: float) -> int:
        """A new document row in status 'embedding'; its id."""

    @abstractmethod
    def _update_document(self, db, doc_id: int, doc: Document, sha256: str, size: int, mtime: float,
                         now: float) -> None:
        """A document row re-read (status 'embedding', error cleared); its path, name and id stay."""

    @abstractmethod
    def _insert_pages(self, db, doc_id: int, pages: list[Page]) -> None:
        """A document's pages."""

    @abstractmethod
    def _insert_chunk(self, db, doc_id: int, c: Chunk, terms: str) -> int:
        """A chunk and its keyword terms; its id."""

    @abstractmethod
    def _set_status(self, db, doc_id: int, status: str) -> None:
        """A document's status."""

    @abstractmethod
    def _insert_failure(self, db, path: str, kind: str, error: str, sha256: str | None, size: int | None,
                        mtime: float | None, now: float) -> None:
        """A new document row in status 'failed'."""

    @abstractmethod
    def _update_failure(self, db, doc_id: int, error: str, sha256: str | None, size: int | None,
                        mtime: float | None, now: float) -> None:
        """A document row now 'failed', with no pages."""

    @abstractmethod
    def _forget_queued(self, db, path: str) -> None:
        """The path is no longer waiting to be indexed."""

    @abstractmethod
    def _chunk_ids(self, db, doc_id: int) -> list[int]:
        """A document's chunk ids (inside a transaction)."""

    @abstractmethod
    def _delete_chunks(self, db, doc_id: int, ids: list[int]) -> None:
        """Delete a document's chunks (ids as _chunk_ids gave them) with their terms; vectors cascade."""

    @abstractmethod
    def _delete_pages(self, db, doc_id: int) -> None:
        """Delete a document's pages."""

    @abstractmethod
    def _delete_document_row(self, db, doc_id: int) -> None:
        """Delete the document row itself (its content gone first)."""

    @abstractmethod
    def _finish_embedded(self, db) -> None:
        """Documents in status 'embedding' whose every chunk has a vector become 'indexed'."""

    @abstractmethod
    def _reset_embedding(self, db) -> None:
        """Indexed documents with chunks go back to 'embedding' (their vectors were dropped)."""

    @abstractmethod
    def lexical_search(self, query: str, k: int, documents: Collection[int] | None = None) -> list[tuple[int, float]]:
        """bm25 over the chunks' keyword terms: (chunk id, score) best first; higher is better.

        With `documents`, only chunks of those documents are ranked ("ask only these documents").
        """

    # ---- the knowledge base -----------------------------------------------------------------------
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
    def put_document(self, path: str, doc: Document, chunks: list[Chunk], sha256: str, size: int,
                     mtime: float, fts_rows: list[str] | None = None) -> tuple[int, int]:
        """Store a document's pages, chunks and keyword terms in one transaction, replacing old content.

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
            doc_id = old = self._document_id(db, path)
            reuse: dict[bytes, object] = {}
            if old is not None:
                reuse = {chunk_key(model, text): vec for text, vec in self._old_vectors(db, old)}
                self._delete_content(db, old)
                self._update_document(db, old, doc, sha256, size, mtime, now)
            else:
                doc_id = self._insert_document(db, path, doc, sha256, size, mtime, now)
            self._insert_pages(db, doc_id, doc.pages)
            self._forget_queued(db, path)
            self.pictures.insert(db, doc_id, doc.pictures)
            kept: list[tuple[int, object]] = []
            for c, terms in zip(chunks, fts_rows, strict=True):
                cid = self._insert_chunk(db, doc_id, c, terms)
                vec = reuse.get(chunk_key(model, c.text)) if reuse else None
                if vec is not None:
                    kept.append((cid, vec))
            self.vectors.put_blobs(db, kept)
            pending -= len(kept)
            if not pending:
                self._set_status(db, doc_id, "indexed")
        if old is not None:
            self.pictures.prune()
            if kept:
                self.vectors.save()
        return doc_id, pending

    def put_failure(self, path: str, error: str, sha256: str | None, size: int | None,
                    mtime: float | None, kind: str = "") -> None:
        """Record that a file could not be indexed, and why (replacing any old content)."""
        now = time.time()
        with self.db.transaction() as db:
            old = self._document_id(db, path)
            if old is not None:
                self._delete_content(db, old)
                self._update_failure(db, old, error, sha256, size, mtime, now)
            else:
                self._insert_failure(db, path, kind, error, sha256, size, mtime, now)
            self._forget_queued(db, path)

    def remove_document(self, doc_id: int) -> None:
        """Delete a document with its pages, chunks, vectors and keyword terms."""
        with self.db.transaction() as db:
            self.drop_document(db, doc_id)
        self.vectors.save()
        self.pictures.prune()

    def drop_document(self, db, doc_id: int) -> None:
        """Delete a document and its content inside the caller's transaction `db` (a path that now
        holds other content, a copy becoming a document)."""
        self._delete_content(db, doc_id)
        self._delete_document_row(db, doc_id)

    def _delete_content(self, db, doc_id: int) -> None:
        self._df.clear()
        ids = self._chunk_ids(db, doc_id)
        if ids:
            self.vectors.forget(db, ids)
            self._delete_chunks(db, doc_id, ids)
        self._delete_pages(db, doc_id)
        self.pictures.delete(db, doc_id)

    @staticmethod
    def _name(path: str) -> str:
        return readable(Path(path).name)

    # ---- vectors ----------------------------------------------------------------------------
    def pending_chunks(self, limit: int) -> list[tuple[int, str]]:
        """Chunks that have no vector yet, oldest first: (id, text)."""
        return self.vectors.pending(limit)

    def count_pending(self) -> int:
        """How many chunks still need a vector."""
        return self.vectors.count_pending()

    def add_vectors(self, ids: list[int], vecs: np.ndarray, save: bool = True) -> None:
        """Store one batch of vectors and finish the documents it completes; then refresh the index."""
        self.vectors.add(ids, vecs, save, also=self._finish_embedded)

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
            self._reset_embedding(db)
        self.vectors.save()

    @property
    def index(self):
        """The chunks' vector index (FAISS, loaded or rebuilt; or the server's, by its size and type)."""
        return self.vectors.index

    def rebuild_index(self):
        """Rebuild the vector index from the stored vectors (nothing to do on a server)."""
        return self.vectors.rebuild()

    def index_needs_rebuild(self) -> bool:
        """True when the knowledge base has grown (or shrunk) past what its index type suits."""
        return self.vectors.needs_rebuild()

    def save_index(self) -> None:
        """Write the index file if it is loaded (nothing to write on a server)."""
        self.vectors.save()

    # ---- search and reading -----------------------------------------------------------------------
    def dense_search(self, query_vec: np.ndarray, k: int,
                     documents: Collection[int] | None = None) -> list[tuple[int, float]]:
        """Nearest chunks: (chunk id, cosine similarity) best first; with `documents`, only theirs
        (compared exactly: an approximate index filtered afterwards can miss a few documents)."""
        if documents is None:
            return self.vectors.search(query_vec, k)
        return self.vectors.search_within(query_vec, k, "doc_id", documents)

    def chunks(self, ids: Iterable[int]) -> dict[int, ChunkRecord]:
        """Stored chunks by id, with their document's path and name."""
        ids = list(ids)
        if not ids:
            return {}
        return {r[0]: ChunkRecord(*r) for r in self._chunk_rows(ids)}

    def page_boxes(self, doc_id: int, number: int) -> list[tuple[int, int, float, float, float, float]]:
        """OCR boxes of one page: (start, end, x0, y0, x1, y1), offsets into the page text, page fractions."""
        boxes = self._page_field(doc_id, number, "boxes")
        return [tuple(b) for b in json.loads(boxes)] if boxes else []

    def page_text(self, doc_id: int, number: int) -> str | None:
        """The full text of one page (citations' offsets point into it)."""
        return self._page_field(doc_id, number, "text")
