"""A knowledge base's pictures: rows and CLIP vectors in SQLite, thumbnails on disk, a FAISS cache.

As for text, SQLite is the truth: `images` lists each picture of each document (a picture repeated
inside one document is kept once), `image_vectors` holds its CLIP vector (float16) for the CLIP
model named in meta `clip_model_id`, kept by the same kb.storage.sqlite.vectors.VectorTable as chunk
vectors. Thumbnails are JPEG files named by content hash, shared by every document that holds the
same picture. Picture counts are small, so `images.faiss` is always an exact (flat) index.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from kb.storage.sqlite.database import Database
from kb.storage.sqlite.vectors import VectorKind, VectorTable

THUMBS = "thumbs"
PICTURE_VECTORS = VectorKind(table="image_vectors", key="image_id", owner="images", payload="sha256",
                             index_file="images.faiss", generation="image_generation",
                             model="clip_model_id", dim="clip_dim", sized=False)
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


class Pictures:
    """The pictures of one knowledge base: rows, thumbnails and CLIP vectors."""

    def __init__(self, db: Database, folder: Path, vectors=None) -> None:
        self.db = db
        self.folder = Path(folder) / THUMBS
        self.vectors = vectors if vectors is not None else VectorTable(db, folder, PICTURE_VECTORS)

    # ---- rows and thumbnails ------------------------------------------------------------------
    def thumb_path(self, sha256: str) -> Path:
        """Where the thumbnail of a picture lives."""
        return self.folder / sha256[:2] / f"{sha256}.jpg"

    def write_thumbs(self, pictures) -> None:
        """Write the thumbnails of freshly read pictures (atomic; an existing one is kept)."""
        for pic in pictures:
            dest = self.thumb_path(pic.sha256)
            if dest.exists():
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f"{dest.name}.{os.getpid()}.tmp")
            tmp.write_bytes(pic.thumb)
            os.replace(tmp, dest)

    def insert(self, db, doc_id: int, pictures) -> None:
        """Add a document's pictures through `db`, the store's open transaction (after write_thumbs)."""
        db.executemany("INSERT OR IGNORE INTO images(doc_id, page, sha256, width, height) VALUES (?,?,?,?,?)",
                       [(doc_id, p.page, p.sha256, p.width, p.height) for p in pictures])
        db.execute("UPDATE documents SET pictures=? WHERE id=?", (len(pictures), doc_id))

    def put(self, doc_id: int, pictures) -> None:
        """Store the pictures of an already indexed document (read again for them alone)."""
        self.write_thumbs(pictures)
        with self.db.transaction() as db:
            if db.execute("SELECT 1 FROM documents WHERE id=?", (doc_id,)).fetchone() is None:
                return  # removed meanwhile
            self.delete(db, doc_id)
            self.insert(db, doc_id, pictures)

    def delete(self, db, doc_id: int) -> None:
        """Drop a document's pictures and their vectors through `db`, the store's open transaction."""
        self.vectors.forget(db, [r[0] for r in db.execute("SELECT id FROM images WHERE doc_id=?", (doc_id,))])
        db.execute("DELETE FROM images WHERE doc_id=?", (doc_id,))  # vectors cascade

    def prune(self) -> int:
        """Delete thumbnails no picture uses any more; returns how many."""
        if not self.folder.exists():
            return 0
        used = {r[0] for r in self.db.query("SELECT DISTINCT sha256 FROM images")}
        removed = 0
        for f in self.folder.glob("*/*.jpg"):
            if f.stem not in used:
                f.unlink(missing_ok=True)
                removed += 1
        return removed

    def count(self) -> int:
        """Pictures in the knowledge base (a picture in two documents counts twice)."""
        return self.db.query("SELECT COUNT(*) FROM images")[0][0]

    def rows(self, ids) -> dict[int, PictureRow]:
        """Stored pictures by id, with their document's path and name."""
        ids = list(ids)
        if not ids:
            return {}
        rows = self.db.query(
            "SELECT i.id, i.doc_id, d.path, d.name, i.page, i.sha256, i.width, i.height FROM images i "
            f"JOIN documents d ON d.id=i.doc_id WHERE i.id IN ({','.join('?' * len(ids))})", tuple(ids))
        return {r[0]: PictureRow(*r, thumb=self.thumb_path(r[5])) for r in rows}

    def on_pages(self, pages) -> list[PictureRow]:
        """The pictures on the given (doc_id, page) pairs, in that order."""
        out: list[PictureRow] = []
        for doc_id, page in pages:
            ids = [r[0] for r in self.db.query(
                "SELECT id FROM images WHERE doc_id=? AND page=? ORDER BY id", (doc_id, page))]
            found = self.rows(ids)
            out += [found[i] for i in ids if i in found]  # (removed between the two reads)
        return out

    def missing_documents(self) -> list[tuple[int, str]]:
        """Indexed documents read before pictures were collected: (id, path)."""
        return self.db.query(
            "SELECT id, path FROM documents WHERE pictures IS NULL AND status!='failed' AND kind IN "
            f"({','.join('?' * len(PICTURE_KINDS))}) ORDER BY id", tuple(PICTURE_KINDS))

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

    def _known(self, shas: list[str]) -> dict[str, bytes]:
        """Vectors already computed for the same picture in another document, by hash."""
        if not shas:
            return {}
        rows = self.db.query(
            "SELECT i.sha256, v.vec FROM images i JOIN image_vectors v ON v.image_id=i.id "
            f"WHERE i.sha256 IN ({','.join('?' * len(shas))})", tuple(shas))
        return dict(rows)

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
                    with self.db.transaction() as db:
                        db.execute("DELETE FROM images WHERE id=?", (image_id,))
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
        """The picture index (kb.storage.sqlite.faiss_index.VectorIndex), or None before any picture has a vector."""
        return self.vectors.index if self.vectors.dim and self.vectors.count() else None

    def save_index(self) -> None:
        """Bring the index file up to date with SQLite (rebuilding it if needed)."""
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
