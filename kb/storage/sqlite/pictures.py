"""A knowledge base's pictures in SQLite: the rows of kb.storage.pictures in SQLite's dialect.

Picture vectors sit in `image_vectors`, kept by the same kb.storage.sqlite.vectors.VectorTable as
chunk vectors, with an `images.faiss` cache beside them (always exact: picture counts are small).
"""

from __future__ import annotations

from pathlib import Path

from kb.storage.pictures import PICTURE_KINDS, BasePictures
from kb.storage.sqlite.database import Database
from kb.storage.sqlite.vectors import VectorTable
from kb.storage.vectors import PICTURE_VECTORS


def _marks(n: int) -> str:
    return ",".join("?" * n)


class Pictures(BasePictures):
    """The pictures of one SQLite knowledge base: rows, thumbnails and CLIP vectors."""

    def __init__(self, db: Database, folder: Path) -> None:
        super().__init__(db, folder, VectorTable(db, folder, PICTURE_VECTORS))

    def insert(self, db, doc_id: int, pictures) -> None:
        """Add a document's pictures through `db`, the store's open transaction (after write_thumbs)."""
        db.executemany("INSERT OR IGNORE INTO images(doc_id, page, sha256, width, height) VALUES (?,?,?,?,?)",
                       [(doc_id, p.page, p.sha256, p.width, p.height) for p in pictures])
        db.execute("UPDATE documents SET pictures=? WHERE id=?", (len(pictures), doc_id))

    def _document_exists(self, db, doc_id: int) -> bool:
        return db.execute("SELECT 1 FROM documents WHERE id=?", (doc_id,)).fetchone() is not None

    def _ids_of(self, db, doc_id: int) -> list[int]:
        return [r[0] for r in db.execute("SELECT id FROM images WHERE doc_id=?", (doc_id,))]

    def _delete_rows(self, db, doc_id: int) -> None:
        db.execute("DELETE FROM images WHERE doc_id=?", (doc_id,))

    def _delete_picture(self, image_id: int) -> None:
        with self.db.transaction() as db:
            db.execute("DELETE FROM images WHERE id=?", (image_id,))

    def _used_hashes(self) -> set[str]:
        return {r[0] for r in self.db.query("SELECT DISTINCT sha256 FROM images")}

    def count(self) -> int:
        """Pictures in the knowledge base (a picture in two documents counts twice)."""
        return self.db.query("SELECT COUNT(*) FROM images")[0][0]

    def _row_tuples(self, ids: list[int]) -> list[tuple]:
        return self.db.query(
            "SELECT i.id, i.doc_id, d.path, d.name, i.page, i.sha256, i.width, i.height FROM images i "
            f"JOIN documents d ON d.id=i.doc_id WHERE i.id IN ({_marks(len(ids))})", tuple(ids))

    def _ids_on_page(self, doc_id: int, page: int) -> list[int]:
        return [r[0] for r in self.db.query("SELECT id FROM images WHERE doc_id=? AND page=? ORDER BY id",
                                            (doc_id, page))]

    def missing_documents(self) -> list[tuple[int, str]]:
        """Indexed documents read before pictures were collected: (id, path)."""
        return self.db.query(
            "SELECT id, path FROM documents WHERE pictures IS NULL AND status!='failed' AND kind IN "
            f"({_marks(len(PICTURE_KINDS))}) ORDER BY id", PICTURE_KINDS)

    def _known(self, shas: list[str]) -> dict[str, bytes]:
        if not shas:
            return {}
        return dict(self.db.query(
            "SELECT i.sha256, v.vec FROM images i JOIN image_vectors v ON v.image_id=i.id "
            f"WHERE i.sha256 IN ({_marks(len(shas))})", tuple(shas)))
