"""Pictures of a server knowledge base: the rows of kb.storage.pictures in PostgreSQL's dialect,
with the thumbnails kept as rows too, so every desktop can show them.

Each desktop keeps the thumbnails it has shown in its own folder (the layout of kb.storage.pictures),
fetched from the `thumbs` table the first time; the table holds one row per picture content, shared
by every document with that picture.
"""

from __future__ import annotations

from pathlib import Path

from kb.storage.pictures import PICTURE_KINDS, BasePictures
from kb.storage.postgres.vectors import PgVectorTable
from kb.storage.vectors import PICTURE_VECTORS


class ServerPictures(BasePictures):
    """The pictures of one server knowledge base, their thumbnails in the database and cached here."""

    def __init__(self, db, folder: Path) -> None:
        super().__init__(db, folder, PgVectorTable(db, PICTURE_VECTORS))

    def write_thumbs(self, pictures) -> None:
        """Keep the thumbnails of freshly read pictures on the server, and in this desktop's cache."""
        pictures = list(pictures)
        if not pictures:
            return
        with self.db.transaction() as db:
            db.executemany("INSERT INTO thumbs(sha256, jpeg) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                           [(p.sha256, p.thumb) for p in pictures])
        super().write_thumbs(pictures)

    def thumb_path(self, sha256: str) -> Path:
        """Where this desktop keeps a picture's thumbnail (fetched from the server when missing)."""
        dest = super().thumb_path(sha256)
        if not dest.exists():
            rows = self.db.query("SELECT jpeg FROM thumbs WHERE sha256=%s", (sha256,))
            if rows:
                self._write_file(dest, bytes(rows[0][0]))
        return dest

    def prune(self) -> int:
        """Delete thumbnails no picture uses any more, on the server and here."""
        with self.db.transaction() as db:
            db.execute("DELETE FROM thumbs WHERE sha256 NOT IN (SELECT sha256 FROM images)")
        return super().prune()

    def insert(self, db, doc_id: int, pictures) -> None:
        """Add a document's pictures through `db`, the store's open transaction (after write_thumbs)."""
        db.executemany("INSERT INTO images(doc_id, page, sha256, width, height) VALUES (%s, %s, %s, %s, %s) "
                       "ON CONFLICT (doc_id, sha256) DO NOTHING",
                       [(doc_id, p.page, p.sha256, p.width, p.height) for p in pictures])
        db.execute("UPDATE documents SET pictures=%s WHERE id=%s", (len(pictures), doc_id))

    def _document_exists(self, db, doc_id: int) -> bool:
        return db.execute("SELECT 1 FROM documents WHERE id=%s", (doc_id,)).fetchone() is not None

    def _ids_of(self, db, doc_id: int) -> list[int]:
        return [r[0] for r in db.execute("SELECT id FROM images WHERE doc_id=%s", (doc_id,))]

    def _delete_rows(self, db, doc_id: int) -> None:
        db.execute("DELETE FROM images WHERE doc_id=%s", (doc_id,))

    def _delete_picture(self, image_id: int) -> None:
        with self.db.transaction() as db:
            db.execute("DELETE FROM images WHERE id=%s", (image_id,))

    def _used_hashes(self) -> set[str]:
        return {r[0] for r in self.db.query("SELECT DISTINCT sha256 FROM images")}

    def count(self) -> int:
        """Pictures in the knowledge base (a picture in two documents counts twice)."""
        return int(self.db.query("SELECT COUNT(*) FROM images")[0][0])

    def _row_tuples(self, ids: list[int]) -> list[tuple]:
        return self.db.query(
            "SELECT i.id, i.doc_id, d.path, d.name, i.page, i.sha256, i.width, i.height FROM images i "
            "JOIN documents d ON d.id=i.doc_id WHERE i.id = ANY(%s)", (ids,))

    def _ids_on_page(self, doc_id: int, page: int) -> list[int]:
        return [r[0] for r in self.db.query("SELECT id FROM images WHERE doc_id=%s AND page=%s ORDER BY id",
                                            (doc_id, page))]

    def missing_documents(self) -> list[tuple[int, str]]:
        """Indexed documents read before pictures were collected: (id, path)."""
        return self.db.query("SELECT id, path FROM documents WHERE pictures IS NULL AND status!='failed' "
                             "AND kind = ANY(%s) ORDER BY id", (list(PICTURE_KINDS),))

    def _known(self, shas: list[str]) -> dict[str, object]:
        if not shas:
            return {}
        return dict(self.db.query("SELECT i.sha256, v.vec FROM images i JOIN image_vectors v ON v.image_id=i.id "
                                  "WHERE i.sha256 = ANY(%s)", (shas,)))
