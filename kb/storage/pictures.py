"""A knowledge base's pictures, as both backends keep them: rows, thumbnails and CLIP vectors.

`images` lists each picture of each document (a picture repeated inside one document is kept once)
and its CLIP vector sits in the picture vector table (kb.storage.vectors.PICTURE_VECTORS).
Thumbnails are JPEG files named by content hash in the knowledge base's folder, shared by every
document that holds the same picture. What is written here is the work around the rows (thumbnails
first so that a row never points at a missing file, vectors copied between identical pictures);
each backend writes the rows in its own SQL (kb.storage.sqlite.pictures, kb.storage.postgres.pictures).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

THUMBS = "thumbs"
# documents whose loaders collect pictures (others have none to offer)
PICTURE_KINDS = ("pdf", "docx", "pptx", "image")


@dataclass
class PictureRow:
    """A stored picture with its document."""

    id: int
    doc_id: int
    path: str
    name: str
    page: int
    sha256: str
    width: int
    height: int
    thumb: Path


class BasePictures(ABC):
    """The pictures of one knowledge base: rows (in the backend's SQL), thumbnails and CLIP vectors."""

    def __init__(self, db, folder: Path, vectors) -> None:
        self.db = db
        self.folder = Path(folder) / THUMBS
        self.vectors = vectors

    # ---- rows, in each backend's SQL ------------------------------------------------------------
    @abstractmethod
    def insert(self, db, doc_id: int, pictures) -> None:
        """Add a document's pictures through `db`, the store's open transaction (after write_thumbs)."""

    @abstractmethod
    def _document_exists(self, db, doc_id: int) -> bool:
        """Whether the document is still stored (inside a transaction)."""

    @abstractmethod
    def _ids_of(self, db, doc_id: int) -> list[int]:
        """The document's picture ids (inside a transaction)."""

    @abstractmethod
    def _delete_rows(self, db, doc_id: int) -> None:
        """Delete the document's picture rows; their vectors cascade."""

    @abstractmethod
    def _delete_picture(self, image_id: int) -> None:
        """Delete one picture row (its thumbnail is gone)."""

    @abstractmethod
    def _used_hashes(self) -> set[str]:
        """The content hashes some picture row still holds."""

    @abstractmethod
    def count(self) -> int:
        """Pictures in the knowledge base (a picture in two documents counts twice)."""

    @abstractmethod
    def _row_tuples(self, ids: list[int]) -> list[tuple]:
        """(id, doc_id, path, name, page, sha256, width, height) of the given pictures."""

    @abstractmethod
    def _ids_on_page(self, doc_id: int, page: int) -> list[int]:
        """The ids of the pictures on one page, in order."""

    @abstractmethod
    def missing_documents(self) -> list[tuple[int, str]]:
        """Indexed documents read before pictures were collected: (id, path)."""

    @abstractmethod
    def _known(self, shas: list[str]) -> dict[str, object]:
        """Vectors already computed for the same picture in another document, by hash."""

    # ---- thumbnails -------------------------------------------------------------------------------
    def thumb_path(self, sha256: str) -> Path:
        """Where the thumbnail of a picture lives."""
        return self.folder / sha256[:2] / f"{sha256}.jpg"

    def _write_file(self, dest: Path, data: bytes) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f"{dest.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, dest)  # atomic: a reader never sees half a thumbnail

    def write_thumbs(self, pictures) -> None:
        """Write the thumbnails of freshly read pictures (an existing one is kept)."""
        for pic in pictures:
            dest = self.thumb_path(pic.sha256)
            if not dest.exists():
                self._write_file(dest, pic.thumb)

    def put(self, doc_id: int, pictures) -> None:
        """Store the pictures of an already indexed document (read again for them alone)."""
        self.write_thumbs(pictures)
        with self.db.transaction() as db:
            if not self._document_exists(db, doc_id):
                return  # removed meanwhile
            self.delete(db, doc_id)
            self.insert(db, doc_id, pictures)

    def delete(self, db, doc_id: int) -> None:
        """Drop a document's pictures and their vectors through `db`, the store's open transaction."""
        self.vectors.forget(db, self._ids_of(db, doc_id))
        self._delete_rows(db, doc_id)

    def prune(self) -> int:
        """Delete thumbnails no picture uses any more; returns how many."""
        if not self.folder.exists():
            return 0
        used = self._used_hashes()
        removed = 0
        for f in self.folder.glob("*/*.jpg"):
            if f.stem not in used:
                f.unlink(missing_ok=True)
                removed += 1
        return removed

    def rows(self, ids) -> dict[int, PictureRow]:
        """Stored pictures by id, with their document's path and name."""
        ids = list(ids)
        if not ids:
            return {}
        return {r[0]: PictureRow(*r, thumb=self.thumb_path(r[5])) for r in self._row_tuples(ids)}

    def on_pages(self, pages) -> list[PictureRow]:
        """The pictures on the given (doc_id, page) pairs, in that order."""
        out: list[PictureRow] = []
        for doc_id, page in pages:
            ids = self._ids_on_page(doc_id, page)
            found = self.rows(ids)
            out += [found[i] for i in ids if i in found]  # (removed between the two reads)
        return out

    # ---- CLIP vectors -------------------------------------------------------------------------
    @property
    def model_id(self) -> str | None:
        """The CLIP model the stored vectors come from."""
        return self.vectors.model_id

    def bind(self, model_id: str, dim: int) -> None:
        """Use this CLIP model from now on; vectors of another model are dropped (to be recomputed)."""
        if self.vectors.bind(model_id, dim):
            self.vectors.save()

    def count_pending(self) -> int:
        """Pictures that have no vector yet."""
        return self.vectors.count_pending()

    def pending(self, limit: int) -> list[tuple[int, str]]:
        """(id, sha256) of pictures without a vector, oldest first."""
        return self.vectors.pending(limit)

    def add_vectors(self, ids: list[int], vecs: np.ndarray) -> None:
        """Store one batch of CLIP vectors (ids whose picture is gone meanwhile are skipped)."""
        self.vectors.add(ids, vecs, save=False)

    def embed_pending(self, clip, progress: Callable[[int, int], None] | None = None,
                      cancel=None, batch: int = 16) -> int:
        """Compute the CLIP vectors pictures lack, one committed batch at a time; returns how many.

        A picture already embedded in another document gets that vector without running CLIP.
        """
        from PIL import Image

        self.bind(clip.model_id, clip.dim)
        total, done = self.count_pending(), 0
        while not (cancel is not None and cancel.cancelled):
            todo = self.pending(batch)
            if not todo:
                break
            known = self._known(list({sha for _, sha in todo}))
            ids, images, copied = [], [], []
            for image_id, sha in todo:
                if sha in known:
                    copied.append((image_id, known[sha]))
                    continue
                try:
                    with Image.open(self.thumb_path(sha)) as im:
                        images.append(im.convert("RGB"))
                    ids.append(image_id)
                except OSError:  # the thumbnail is gone: drop the row rather than retry forever
                    self._delete_picture(image_id)
            if copied:
                with self.db.transaction() as db:
                    self.vectors.put_blobs(db, copied)
            if ids:
                self.add_vectors(ids, clip.embed_images(images))
            done += len(todo)
            if progress:
                progress(done, total)
        self.save_index()
        return done

    @property
    def index(self):
        """The picture index (its size and type), or None before any picture has a vector."""
        return self.vectors.index if self.vectors.dim and self.vectors.count() else None

    def save_index(self) -> None:
        """Bring the index up to date with the stored vectors (the SQLite backend's file; a no-op on a server)."""
        _ = self.vectors.index
        self.vectors.save()

    def search(self, vec: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The k pictures nearest a CLIP vector: (picture id, cosine similarity) best first."""
        if not self.vectors.dim:
            return []
        return self.vectors.search(vec, k)

    def vector(self, image_id: int) -> np.ndarray | None:
        """The stored CLIP vector of a picture."""
        return self.vectors.vector(image_id)
