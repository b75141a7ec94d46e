"""A knowledge base's pictures: rows and CLIP vectors in SQLite, thumbnails on disk, a FAISS cache.

As for text, SQLite is the truth: `images` lists each picture of each document (a picture repeated
inside one document is kept once), `image_vectors` holds its CLIP vector (float16) for the CLIP
model named in meta `clip_model_id`. Thumbnails are JPEG files named by content hash, shared by
every document that holds the same picture. `images.faiss` is rebuilt whenever its stamp
disagrees with SQLite; image counts are small, so it is always an exact (flat) index.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from kb.vector_index import VectorIndex

THUMBS = "thumbs"
INDEX_NAME = "images.faiss"
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
    """The pictures of one store. Every method takes the store's lock (or runs inside its transaction)."""

    def __init__(self, store) -> None:
        self.store = store
        self.folder = Path(store.folder) / THUMBS
        self.index_path = Path(store.folder) / INDEX_NAME
        self._index: VectorIndex | None = None
        self._stamp: dict | None = None
        self._lock = threading.RLock()

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
        with self.store.transaction() as db:
            if db.execute("SELECT 1 FROM documents WHERE id=?", (doc_id,)).fetchone() is None:
                return  # removed meanwhile
            self.delete(db, doc_id)
            self.insert(db, doc_id, pictures)

    def delete(self, db, doc_id: int) -> None:
        """Drop a document's pictures and their vectors through `db`, the store's open transaction."""
        had = db.execute("SELECT COUNT(*) FROM image_vectors WHERE image_id IN "
                         "(SELECT id FROM images WHERE doc_id=?)", (doc_id,)).fetchone()[0]
        db.execute("DELETE FROM images WHERE doc_id=?", (doc_id,))  # vectors cascade
        if had:
            self._bump()

    def prune(self) -> int:
        """Delete thumbnails no picture uses any more; returns how many."""
        if not self.folder.exists():
            return 0
        used = {r[0] for r in self.store.query("SELECT DISTINCT sha256 FROM images")}
        removed = 0
        for f in self.folder.glob("*/*.jpg"):
            if f.stem not in used:
                f.unlink(missing_ok=True)
                removed += 1
        return removed

    def count(self) -> int:
        """Pictures in the knowledge base (a picture in two documents counts twice)."""
        return self.store.query("SELECT COUNT(*) FROM images")[0][0]

    def rows(self, ids) -> dict[int, PictureRow]:
        """Stored pictures by id, with their document's path and name."""
        ids = list(ids)
        if not ids:
            return {}
        rows = self.store.query(
            "SELECT i.id, i.doc_id, d.path, d.name, i.page, i.sha256, i.width, i.height FROM images i "
            f"JOIN documents d ON d.id=i.doc_id WHERE i.id IN ({','.join('?' * len(ids))})", tuple(ids))
        return {r[0]: PictureRow(*r, thumb=self.thumb_path(r[5])) for r in rows}

    def on_pages(self, pages) -> list[PictureRow]:
        """The pictures on the given (doc_id, page) pairs, in that order."""
        out: list[PictureRow] = []
        for doc_id, page in pages:
            ids = [r[0] for r in self.store.query(
                "SELECT id FROM images WHERE doc_id=? AND page=? ORDER BY id", (doc_id, page))]
            found = self.rows(ids)
            out += [found[i] for i in ids if i in found]  # (removed between the two reads)
        return out

    def missing_documents(self) -> list[tuple[int, str]]:
        """Indexed documents read before pictures were collected: (id, path)."""
        return self.store.query(
            "SELECT id, path FROM documents WHERE pictures IS NULL AND status!='failed' AND kind IN "
            f"({','.join('?' * len(PICTURE_KINDS))}) ORDER BY id", tuple(PICTURE_KINDS))

    # ---- CLIP vectors -------------------------------------------------------------------------
    @property
    def model_id(self) -> str | None:
        """The CLIP model the stored vectors come from."""
        return self.store.get_meta("clip_model_id")

    def bind(self, model_id: str, dim: int) -> None:
        """Use this CLIP model from now on; vectors of another model are dropped (to be recomputed)."""
        if self.model_id == model_id and int(self.store.get_meta("clip_dim", 0)) == dim:
            return
        with self.store.transaction() as db:
            db.execute("DELETE FROM image_vectors")
            self.store.set_meta("clip_model_id", model_id)
            self.store.set_meta("clip_dim", dim)
            self._bump()

    def count_pending(self) -> int:
        """Pictures that have no vector yet."""
        return self.store.query(
            "SELECT COUNT(*) FROM images i LEFT JOIN image_vectors v ON v.image_id=i.id "
            "WHERE v.image_id IS NULL")[0][0]

    def pending(self, limit: int) -> list[tuple[int, str]]:
        """(id, sha256) of pictures without a vector, oldest first."""
        return self.store.query(
            "SELECT i.id, i.sha256 FROM images i LEFT JOIN image_vectors v ON v.image_id=i.id "
            "WHERE v.image_id IS NULL ORDER BY i.id LIMIT ?", (limit,))

    def _known(self, shas: list[str]) -> dict[str, bytes]:
        """Vectors already computed for the same picture in another document, by hash."""
        if not shas:
            return {}
        rows = self.store.query(
            "SELECT i.sha256, v.vec FROM images i JOIN image_vectors v ON v.image_id=i.id "
            f"WHERE i.sha256 IN ({','.join('?' * len(shas))})", tuple(shas))
        return dict(rows)

    def add_vectors(self, ids: list[int], vecs: np.ndarray) -> None:
        """Store one batch of CLIP vectors (ids whose picture is gone meanwhile are skipped)."""
        half = np.asarray(vecs, np.float32).astype(np.float16)
        with self.store.transaction() as db:
            present = {r[0] for r in db.execute(
                f"SELECT id FROM images WHERE id IN ({','.join('?' * len(ids))})", ids)}
            db.executemany("INSERT OR REPLACE INTO image_vectors(image_id, vec) VALUES (?, ?)",
                           [(i, half[n].tobytes()) for n, i in enumerate(ids) if i in present])
            self._bump()

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
                    with self.store.transaction() as db:
                        db.execute("DELETE FROM images WHERE id=?", (image_id,))
            if copied:
                with self.store.transaction() as db:
                    db.executemany("INSERT OR REPLACE INTO image_vectors(image_id, vec) VALUES (?, ?)", copied)
                    self._bump()
            if ids:
                self.add_vectors(ids, clip.embed_images(images))
            done += len(todo)
            if progress:
                progress(done, total)
        self.save_index()
        return done

    # ---- the FAISS cache ----------------------------------------------------------------------
    def _bump(self) -> None:
        self.store.set_meta("image_generation", int(self.store.get_meta("image_generation", 0)) + 1)

    def _current_stamp(self) -> dict:
        count = self.store.query("SELECT COUNT(*) FROM image_vectors")[0][0]
        return {"generation": int(self.store.get_meta("image_generation", 0)), "count": count,
                "model": self.model_id}

    @property
    def index(self) -> VectorIndex | None:
        """The image index (None before any picture has a vector): loaded, or rebuilt from SQLite."""
        stamp = self._current_stamp()
        if stamp["count"] == 0:
            return None
        with self._lock:  # one load or rebuild at a time
            if self._index is None or self._stamp != stamp:
                dim = int(self.store.get_meta("clip_dim"))
                self._index = VectorIndex.load(self.index_path, stamp, dim)
                if self._index is None:
                    self._index = self._rebuild(dim)
                    self._index.save(self.index_path, stamp)
                self._stamp = stamp
            return self._index

    def _rebuild(self, dim: int) -> VectorIndex:
        index = VectorIndex(dim, "flat")
        rows = self.store.query("SELECT image_id, vec FROM image_vectors ORDER BY image_id")
        if rows:  # pictures number thousands, not millions: read at once
            ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
            vecs = np.frombuffer(b"".join(r[1] for r in rows), np.float16).reshape(len(rows), -1)
            index.add(ids, vecs.astype(np.float32))
        return index

    def save_index(self) -> None:
        """Bring the index file up to date with SQLite (rebuilding it if needed)."""
        _ = self.index

    def search(self, vec: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The k pictures nearest a CLIP vector: (picture id, cosine similarity) best first."""
        index = self.index
        return index.search(vec, k) if index is not None else []

    def vector(self, image_id: int) -> np.ndarray | None:
        """The stored CLIP vector of a picture."""
        rows = self.store.query("SELECT vec FROM image_vectors WHERE image_id=?", (image_id,))
        return np.frombuffer(rows[0][0], np.float16).astype(np.float32) if rows else None
