"""Knowledge bases by name: create, open, list, delete; the entry point to indexing and asking."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from kb import defaults
from kb.text.chunking import Chunker
from kb.storage.contract import KnowledgeStore, ModelMismatch, StoreError
from kb.storage.sqlite.store import DB_NAME, Store
from models.paths import data_dir

_BAD_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


def kbs_dir() -> Path:
    """Where knowledge bases live: <data folder>/kbs/<name>/."""
    return data_dir() / "kbs"


def _folder(name: str) -> Path:
    # only dots ("...") would be the folder above on some systems; Windows drops a trailing dot
    if not name or _BAD_NAME.search(name) or name.strip() != name or name.endswith(".") or len(name) > 80:
        raise StoreError(f"invalid knowledge base name {name!r}: use letters, digits, 中文, spaces, - or _")
    return kbs_dir() / name


def readable_suffixes() -> list[str]:
    """Every file name ending a knowledge base reads (".pdf", ".pptx", ".png", ...), sorted."""
    from kb.ingest import loaders

    return sorted(loaders.LOADERS)


def _exists(folder: Path) -> bool:
    from kb.storage.postgres.link import is_link

    return (folder / DB_NAME).exists() or is_link(folder)


def open_store(folder: Path, connect_timeout: int | None = None) -> KnowledgeStore:
    """The store of a knowledge base folder: its own SQLite database, or a link to a server (given
    up on after `connect_timeout` seconds when it does not answer)."""
    from kb.storage.postgres.store import PgStore
    from kb.storage.postgres.link import is_link

    return PgStore(folder, connect_timeout) if is_link(folder) else Store(folder)


def on_server(name: str) -> str | None:
    """Where a linked knowledge base lives (address without password, schema), or None for a local one."""
    from kb.storage.postgres.link import is_link, read_link
    from kb.storage.postgres.database import safe_url

    folder = _folder(name)
    if not is_link(folder):
        return None
    url, schema = read_link(folder)
    return f"{safe_url(url)} (schema {schema})"


def list_names() -> list[str]:
    """Names of the knowledge bases on this machine (local ones and links to server ones)."""
    root = kbs_dir()
    return sorted(p.name for p in root.iterdir() if _exists(p)) if root.exists() else []


def delete(name: str, from_server: bool = False) -> None:
    """Delete a knowledge base and everything in its folder (the user's files are not touched).

    A server knowledge base is only unlinked from this computer, unless `from_server`: then its
    schema is dropped on the server, for every desktop.
    """
    folder = _folder(name)
    if not _exists(folder):
        raise StoreError(f"no knowledge base called {name!r}")
    if from_server:
        store = open_store(folder)
        try:
            if not hasattr(store, "drop_from_server"):
                raise StoreError(f"knowledge base {name!r} is not on a server")
            store.drop_from_server()
        finally:
            store.close()
    shutil.rmtree(folder)


def rename(old: str, new: str) -> None:
    """Rename a knowledge base (its folder); the new name must be free."""
    src, dst = _folder(old), _folder(new)
    if not _exists(src):
        raise StoreError(f"no knowledge base called {old!r}")
    if dst.exists():
        raise StoreError(f"a knowledge base called {new!r} already exists")
    shutil.move(str(src), str(dst))
    if on_server(new):
        return  # the name on this desktop only: the others keep theirs
    store = Store(dst)
    store.db.set_meta("name", new)
    store.close()


def summary(name: str, connect_timeout: int | None = None) -> dict:
    """A knowledge base's counts and embedding model, read without loading any model (for lists).

    Keys: name, documents, failed, chunks, bytes, embedding_model, server. Raises StoreError for a
    damaged one, ServerGone (a StoreError) for a server that does not answer in `connect_timeout` s.
    """
    store = open_store(_folder(name), connect_timeout)
    try:
        return {"name": name, **store.totals(), "embedding_model": store.model_id,
                "server": store.host}
    finally:
        store.close()


def safe_server(url: str) -> str:
    """A server address without its password."""
    from kb.storage.postgres.database import safe_url

    return safe_url(url)


class KnowledgeBase:
    """One knowledge base: its store, its embedding model and its settings."""

    def __init__(self, name: str, store: KnowledgeStore, embedder) -> None:
        self.name, self.store, self.embedder = name, store, embedder
        self._clip = None
        self.joined = False  # created on a server by another desktop, joined by this one

    @property
    def folder(self) -> Path:
        """The knowledge base's folder (database, index files, thumbnails)."""
        return self.store.folder

    @property
    def where(self) -> str:
        """Where the knowledge base's data lives: its folder, or its server and schema."""
        return self.store.where

    @property
    def clip(self):
        """The CLIP model image search and indexing use (models.clip.ClipModel), or None."""
        return self._clip

    def use_clip(self, clip) -> None:
        """Set up image search with this CLIP model (None turns it off): from then on indexing also
        gives pictures their CLIP vectors."""
        self._clip = clip

    @classmethod
    def create(cls, name: str, embedder=None, chunk_tokens: int = defaults.CHUNK_TOKENS,
               overlap_tokens: int = defaults.OVERLAP_TOKENS, server: str | None = None) -> "KnowledgeBase":
        """Create a new, empty knowledge base bound to an embedding model (the default if None).

        With `server` (postgresql://…) it lives in that PostgreSQL database; if another desktop
        created one of that name there already, this one joins it with the embedding model it was
        built with (an `embedder` given that is another model is refused).
        """
        from models.checksum import ChecksumError
        from models.embedder import Embedder
        from models.inventory import ModelNotInstalled

        folder = _folder(name)
        if _exists(folder):
            raise StoreError(f"a knowledge base called {name!r} already exists")
        Chunker(len, chunk_tokens, overlap_tokens)  # validate the settings before creating anything
        chosen = embedder is not None
        embedder = embedder or Embedder.default()
        settings = {"name": name, "embed_model_id": embedder.model_id, "embed_dim": embedder.dim,
                    "chunk_tokens": chunk_tokens, "overlap_tokens": overlap_tokens}
        if not server:
            return cls(name, Store.create(folder, settings), embedder)
        from kb.storage.postgres.store import PgStore

        store = PgStore.create(folder, settings, server)
        if store.model_id != embedder.model_id:
            built_with, why = store.model_id, None
            if not chosen:  # nobody chose a model: join with the team's, if this computer has it
                try:
                    embedder = Embedder.for_model_id(built_with)
                except (FileNotFoundError, ModelNotInstalled, ChecksumError) as e:  # each says what to do
                    why = str(e)
            if why or store.model_id != embedder.model_id:
                store.close()
                shutil.rmtree(folder)
                raise ModelMismatch(f"knowledge base {name!r} on {safe_server(server)} was built with {built_with}"
                                    + (f": {why}" if why else f", not {embedder.model_id}; join it with that "
                                       "embedding model (--embedder, --int8 or --float)"))
        kb = cls(name, store, embedder)
        kb.joined = store.joined
        return kb

    @classmethod
    def open(cls, name: str, embedder=None) -> "KnowledgeBase":
        """Open a knowledge base; refuses an embedder other than the one it was built with."""
        from models.embedder import Embedder
        from models.onnx_int8 import OlderVariant

        folder = _folder(name)
        if not _exists(folder):
            raise StoreError(f"no knowledge base called {name!r} (see `zhiku kb list`)")
        store = open_store(folder)
        built_with = store.model_id
        if embedder is None:
            try:
                embedder = Embedder.for_model_id(built_with)
            except OlderVariant as e:
                store.close()
                raise StoreError(f"knowledge base {name!r}: {e}; re-embed it once "
                                 f"(`zhiku kb reembed {name} --int8`)") from None
            except FileNotFoundError as e:
                store.close()
                raise StoreError(f"knowledge base {name!r}: {e}") from None
        if embedder.model_id != built_with:
            store.close()
            raise ModelMismatch(
                f"knowledge base {name!r} was built with {built_with}, not {embedder.model_id}; "
                f"re-embed it to switch models (`zhiku kb reembed {name} --embedder NAME`)")
        return cls(name, store, embedder)

    @classmethod
    def reembed(cls, name: str, embedder, progress=None, cancel=None) -> "KnowledgeBase":
        """Switch a knowledge base to another embedding model, re-embedding every chunk."""
        from kb.ingest.indexer import Indexer

        store = open_store(_folder(name))
        store.rebind_vectors(embedder.model_id, embedder.dim)
        kb = cls(name, store, embedder)
        Indexer(kb).embed_pending(progress=progress, cancel=cancel)
        return kb

    @property
    def chunker(self) -> Chunker:
        """The chunker configured for this knowledge base."""
        return Chunker(self.embedder.count_tokens, int(self.store.db.get_meta("chunk_tokens")),
                       int(self.store.db.get_meta("overlap_tokens")))

    def info(self) -> dict:
        """Name, folder, model, settings and counts."""
        docs = self.store.documents()
        return {
            "name": self.name, "folder": str(self.store.folder),
            "embedding_model": self.store.model_id,
            "chunk_tokens": int(self.store.db.get_meta("chunk_tokens")),
            "overlap_tokens": int(self.store.db.get_meta("overlap_tokens")),
            "documents": len(docs), "indexed": sum(d["status"] == "indexed" for d in docs),
            # read and keyword-searchable, vectors not computed yet (--no-embed, or a job stopped)
            "embedding_pending": sum(d["status"] == "embedding" for d in docs),
            "failed": sum(d["status"] == "failed" for d in docs),
            "chunks": self.store.count("chunks"), "vectors": self.store.count("vectors"),
            "bytes": sum(d["size"] or 0 for d in docs),
            "schema_version": self.store.db.schema_version,
            "linked_folders": self.files.folders(),
            "queued": len(self.files.queued()),
            "ocr_pages": sum(d["ocr_pages"] or 0 for d in docs),
            "pictures": self.pictures.count(),
            "clip_model": self.pictures.model_id,
        }

    def indexer(self, ocr: bool = True, time_limit_s: float | None = None, memory_limit_mb: int | None = None):
        """An Indexer for this knowledge base with the given OCR setting and parser limits."""
        from kb.ingest.indexer import Indexer
        from kb.ingest.parse_worker import Limits

        limits = Limits()
        if time_limit_s:
            limits.time_s = time_limit_s
        if memory_limit_mb:
            limits.memory_mb = memory_limit_mb
        return Indexer(self, ocr=ocr, limits=limits)

    def add(self, paths, progress=None, cancel=None, password: str | None = None, ocr: bool = True,
            time_limit_s: float | None = None, embed: bool = True):
        """Index files and folders; see kb.ingest.indexer.Indexer.add."""
        return self.indexer(ocr, time_limit_s).add(paths, progress=progress, cancel=cancel, password=password,
                                                   embed=embed)

    def find_document(self, path_or_name: str) -> dict:
        """One document by its path, or by its file name when that is unique (KeyError saying why not)."""
        docs = self.store.documents()
        target = str(Path(path_or_name).expanduser().resolve()) if os.sep in path_or_name else None
        matches = [d for d in docs if d["path"] == (target or path_or_name) or d["name"] == path_or_name]
        if not matches:
            raise KeyError(f"no document {path_or_name!r} in knowledge base {self.name!r}")
        if len(matches) > 1:
            raise KeyError(f"{path_or_name!r} matches {len(matches)} documents; give the full path")
        return matches[0]

    def remove(self, path_or_name: str) -> str:
        """Remove one document (by path, or by file name when that is unique); returns its path."""
        doc = self.find_document(path_or_name)
        self.store.remove_document(doc["id"])
        return doc["path"]

    def queue(self, paths) -> int:
        """Put files and folders in line for the next job (listed as queued at once); how many files."""
        from kb.ingest.files import collect

        found, _skipped = collect(paths)
        self.files.enqueue(found)
        return len(found)

    def sync(self, progress=None, cancel=None, ocr: bool = True):
        """Bring the linked folders in: new, changed, moved and deleted files; see Indexer.sync."""
        return self.indexer(ocr).sync(progress=progress, cancel=cancel)

    @property
    def files(self):
        """Linked folders, the indexing queue, copies (kb.ingest.files.Files)."""
        from kb.ingest.files import Files

        return Files(self.store)

    @property
    def pictures(self):
        """The pictures found in the documents (kb.storage.contract.Pictures)."""
        return self.store.pictures

    @property
    def conversations(self):
        """The chats kept with this knowledge base (kb.storage.conversations.Conversations)."""
        from kb.storage.conversations import Conversations

        return Conversations(self.store.conversation_rows)

    def documents(self) -> list[dict]:
        """Every document with its status, counts and copies (read without waiting for a job)."""
        return self.store.documents()

    def count_pending(self) -> int:
        """Chunks still waiting for their vector (found by keywords only until they have one)."""
        return self.store.count_pending()

    def has_documents(self) -> bool:
        """True when the knowledge base holds a document (cheap: for the welcome panel)."""
        return self.store.has_documents()

    def document(self, path: str) -> dict | None:
        """The document stored for a path, if any."""
        return self.store.document(path)

    def page(self, doc_id: int, number: int) -> tuple[str, list]:
        """One page's full text and its OCR boxes (the viewer highlights citations in them)."""
        return self.store.page_text(doc_id, number) or "", self.store.page_boxes(doc_id, number)

    def image_search(self, clip=None):
        """Image search over this knowledge base's pictures; see kb.search.image_search.ImageSearch."""
        from kb.search.image_search import ImageSearch

        return ImageSearch(self, clip if clip is not None else self.clip)

    def search(self, query: str, k: int = defaults.TOP_K, apply_floor: bool = True, **settings):
        """Hybrid retrieval; see kb.search.retriever.Retriever."""
        from kb.search.retriever import Retriever

        return Retriever(self.store, self.embedder, **settings).search(query, k, apply_floor)

    def scope(self, paths) -> set[int]:
        """The documents a list of files and folders names: a folder stands for every document
        under it, an identical copy for the document it was indexed as; files that failed are left out."""
        wanted = [str(p) for p in paths]
        folders = [w.rstrip("/\\") + sep for w in wanted for sep in ("/", "\\")]
        ids = set()
        for d in self.store.documents():
            if d["status"] == "failed":  # nothing of it can be cited
                continue
            names = [d["path"], *(d["copies"] or "").split("\n")]
            if any(n in wanted or n.startswith(tuple(folders)) for n in names if n):
                ids.add(d["id"])
        return ids

    def as_retriever(self, k: int = defaults.TOP_K, **settings):
        """A LangChain BaseRetriever over this knowledge base."""
        from kb.search.langchain_retriever import KBRetriever

        return KBRetriever(kb=self, k=k, settings=settings)

    def close(self) -> None:
        """Close the database."""
        self.store.close()
