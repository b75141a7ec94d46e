"""What the engine asks of a knowledge base's storage, written down.

Two siblings implement it: kb.storage.sqlite (SQLite + FAISS, one computer's) and kb.storage.postgres
(PostgreSQL + pgvector, a team's), both built on kb.storage.store.BaseStore. The engine holds a
`KnowledgeStore` and uses nothing else: its documents, chunks, vectors and search, and the rooms it
carries (`db` for transactions and settings, `queue`, `paths`, `pictures`, `conversation_rows`).
tests/test_layers.py checks that both backends provide every method here with the same parameters;
tests/test_store_contract.py runs the same tests against both.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Iterable, Iterator, Protocol, runtime_checkable

import numpy as np


class StoreError(RuntimeError):
    """The knowledge base cannot be opened or used as asked (either backend)."""


class ServerGone(StoreError):
    """The server of a team's knowledge base does not answer."""


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


# PostgreSQL text cannot hold NUL (a damaged file's pages can carry one): both backends store it as
# U+FFFD, one character for one, so chunk offsets into a page stay right and both give back the same
# text (tests/test_store_contract.py)
NUL_STANDIN = "\ufffd"


def storable(text: str) -> str:
    """Text as every backend stores it."""
    return text.replace("\x00", NUL_STANDIN) if "\x00" in text else text


@runtime_checkable
class Database(Protocol):
    """Transactions, queries and settings of one knowledge base's database."""

    def transaction(self) -> contextlib.AbstractContextManager[Any]:
        """One atomic unit of work; yields a handle with execute()/executemany()."""

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of a statement."""

    def query_dicts(self, sql: str, params: tuple = (), listing: bool = False) -> list[dict]:
        """Rows as dicts (listing=True: from the last commit, without waiting for a writer)."""

    def stream(self, sql: str, params: tuple = (), size: int = 16384) -> Iterator[list[tuple]]:
        """A large read in slices."""

    def listing(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows from the last commit, without waiting for a writer."""

    def count(self, table: str) -> int:
        """Rows in one of the knowledge base's tables."""

    def get_meta(self, key: str, default=None):
        """A setting."""

    def set_meta(self, key: str, value) -> None:
        """Set a setting."""

    def close(self) -> None:
        """Release the connection(s)."""


@runtime_checkable
class Queue(Protocol):
    """The persisted indexing queue: files to read, kept across crashes, split between the desktops
    that share a server knowledge base (kb.storage.sqlite.queue, kb.storage.postgres.queue)."""

    def enqueue(self, paths: Iterable[str]) -> None:
        """Remember files to index, so that an interrupted job can be resumed."""

    def queued(self) -> list[str]:
        """Files still waiting to be indexed, oldest first."""

    def waiting(self) -> list[str]:
        """Queued files, read without waiting for a writer (for the window)."""

    def claim(self, paths: list[str]) -> list[str]:
        """The queued files this process indexes: those no other live desktop holds."""

    def renew(self) -> None:
        """Tell the other desktops this process still works on the files it claimed."""

    def dequeue(self, paths: Iterable[str]) -> None:
        """Forget queued files (done without storing anything, or given up)."""


@runtime_checkable
class Paths(Protocol):
    """Paths a knowledge base knows besides its documents' own: linked folders, and copies (another
    path with a document's content, indexed once) — and moves (kb.storage.sqlite.paths, .postgres.paths)."""

    def link_folder(self, path: str) -> None:
        """Remember a linked folder (again: nothing changes)."""

    def unlink_folder(self, path: str) -> None:
        """Forget a linked folder (its documents stay)."""

    def folders(self) -> list[str]:
        """The linked folders, in order."""

    def all_paths(self) -> list[str]:
        """Every path the knowledge base lists: documents and their copies."""

    def document_id(self, path: str) -> int | None:
        """The document stored under `path`, if any."""

    def by_hash(self, sha256: str) -> tuple[int, str] | None:
        """The indexed document with this content: (id, path), if any."""

    def copies(self, doc_id: int) -> list[str]:
        """Other paths holding the same content as this document."""

    def copy_owner(self, path: str) -> int | None:
        """The document a path is a copy of, if it is one."""

    def add_copy(self, path: str, doc_id: int) -> None:
        """List `path` under a document with the same content (a document it held before goes)."""

    def drop_copy(self, path: str) -> None:
        """A copy's path is gone."""

    def move(self, doc_id: int, new_path: str, name: str, mtime: float | None) -> None:
        """Give a document a new path; chunks and vectors stay (a document there before goes)."""


@runtime_checkable
class ConversationRows(Protocol):
    """Conversations and their messages as rows; kb.storage.conversations makes them Python objects."""

    def conversations(self) -> list[tuple]:
        """(id, title, created, updated) of every conversation, most recently used first."""

    def create(self, title: str, now: float) -> int:
        """A new conversation's id."""

    def rename(self, conversation_id: int, title: str) -> None:
        """Give a conversation another title."""

    def delete(self, conversation_id: int) -> None:
        """Delete a conversation; its messages go with it."""

    def add(self, conversation_id: int, role: str, content: str, sources: str, now: float, extra: str) -> int:
        """Append a message (sources and extra as JSON text); its id. The conversation is touched."""

    def truncate(self, conversation_id: int, from_message: int, now: float) -> None:
        """Delete message `from_message` and every later one."""

    def messages(self, conversation_id: int) -> list[tuple]:
        """(id, role, content, sources, created, extra) of a conversation's messages, in order."""


@runtime_checkable
class Pictures(Protocol):
    """The pictures found in a knowledge base's documents, their thumbnails and CLIP vectors
    (kb.storage.pictures; rows by kb.storage.sqlite.pictures, kb.storage.postgres.pictures)."""

    @property
    def model_id(self) -> str | None:
        """The CLIP model the stored vectors come from."""

    def thumb_path(self, sha256: str) -> Path:
        """Where this desktop keeps a picture's thumbnail."""

    def put(self, doc_id: int, pictures) -> None:
        """Store the pictures of an already indexed document."""

    def count(self) -> int:
        """Pictures in the knowledge base."""

    def rows(self, ids) -> dict:
        """Stored pictures by id (kb.storage.pictures.PictureRow)."""

    def on_pages(self, pages) -> list:
        """The pictures on the given (doc_id, page) pairs, in that order."""

    def missing_documents(self) -> list[tuple[int, str]]:
        """Indexed documents read before pictures were collected: (id, path)."""

    def count_pending(self) -> int:
        """Pictures that have no vector yet."""

    def embed_pending(self, clip, progress=None, cancel=None, batch: int = 16) -> int:
        """Compute the CLIP vectors pictures lack; returns how many."""

    def search(self, vec: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The k pictures nearest a CLIP vector: (picture id, cosine) best first."""

    def vector(self, image_id: int) -> np.ndarray | None:
        """A picture's stored CLIP vector."""


@runtime_checkable
class KnowledgeStore(Protocol):
    """Documents, pages, chunks, their vectors and search, for one knowledge base."""

    folder: Path
    db: Database
    queue: Queue
    paths: Paths
    conversation_rows: ConversationRows
    pictures: Pictures
    where: str  # where its data lives, for people: the folder, or the server (without password) and schema
    host: str | None  # the server's host name ("on db.office.lan" in lists); None on this computer
    shared: bool  # other desktops add to it at the same time (a path missing here may be on one of them)

    @property
    def model_id(self) -> str | None:
        """The embedding model the stored vectors come from."""

    def count(self, table: str) -> int:
        """Rows in one of the knowledge base's tables."""

    def close(self) -> None:
        """Release everything held open."""

    # documents
    def document(self, path: str) -> dict | None:
        """The document stored for a path."""

    def document_sha(self, doc_id: int) -> str | None:
        """The content hash a document was read from."""

    def ocr_ran(self, doc_id: int) -> bool:
        """Whether any page of the document was read by OCR."""

    def documents(self) -> list[dict]:
        """Every document with counts and copies, without waiting for a writer."""

    def totals(self) -> dict:
        """documents, failed, bytes, chunks: counts for lists, without waiting for a writer."""

    def has_documents(self) -> bool:
        """True when a document is stored."""

    def put_document(self, path: str, doc, chunks: list, sha256: str, size: int, mtime: float,
                     fts_rows: list[str] | None = None) -> tuple[int, int]:
        """Store a document's content, keeping vectors of unchanged chunks: (id, chunks needing vectors)."""

    def put_failure(self, path: str, error: str, sha256: str | None, size: int | None,
                    mtime: float | None, kind: str = "") -> None:
        """Record why a file could not be indexed."""

    def remove_document(self, doc_id: int) -> None:
        """Delete a document and everything of it."""

    def drop_document(self, db, doc_id: int) -> None:
        """Delete a document inside the caller's transaction."""

    # vectors
    def pending_chunks(self, limit: int) -> list[tuple[int, str]]:
        """(id, text) of chunks without a vector, oldest first."""

    def count_pending(self) -> int:
        """Chunks without a vector."""

    def add_vectors(self, ids: list[int], vecs: np.ndarray, save: bool = True) -> None:
        """Store one batch of vectors."""

    def has_vectors(self) -> bool:
        """True when at least one chunk has a vector."""

    def vector(self, chunk_id: int) -> np.ndarray | None:
        """A chunk's stored vector."""

    def rebind_vectors(self, model_id: str, dim: int) -> None:
        """Drop every vector; record the model that will compute them again."""

    def rebuild_index(self) -> Any:
        """Rebuild the vector index from the stored vectors."""

    def index_needs_rebuild(self) -> bool:
        """Whether the index type no longer suits the size."""

    def save_index(self) -> None:
        """Persist the vector index, if it has a file."""

    # search and reading
    def lexical_search(self, query: str, k: int, documents: Collection[int] | None = None) -> list[tuple[int, float]]:
        """Keyword search: (chunk id, score) best first."""

    def dense_search(self, query_vec: np.ndarray, k: int,
                     documents: Collection[int] | None = None) -> list[tuple[int, float]]:
        """Vector search: (chunk id, cosine) best first."""

    def chunks(self, ids: Iterable[int]) -> dict[int, ChunkRecord]:
        """Stored chunks by id with their document's path and name."""

    def doc_ids(self, ids: Iterable[int]) -> dict[int, int]:
        """Chunk id -> document id."""

    def page_boxes(self, doc_id: int, number: int) -> list[tuple]:
        """A page's OCR boxes."""

    def page_text(self, doc_id: int, number: int) -> str | None:
        """A page's full text."""
