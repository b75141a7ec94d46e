"""Pictures of a server knowledge base: thumbnails kept as rows, so every desktop can show them.

Each desktop keeps the thumbnails it has shown in its own folder (kb.storage.sqlite.pictures' layout), fetched
from the `thumbs` table the first time; the table holds one row per picture content, shared by
every document with that picture.
"""

from __future__ import annotations

import os
from pathlib import Path

from kb.storage.sqlite.pictures import Pictures


class ServerPictures(Pictures):
    """kb.storage.sqlite.pictures.Pictures whose thumbnails also live in the database."""

    def write_thumbs(self, pictures) -> None:
        """Keep the thumbnails of freshly read pictures on the server, and in this desktop's cache."""
        pictures = list(pictures)
        if not pictures:
            return
        with self.db.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO thumbs(sha256, jpeg) VALUES (?, ?)",
                           [(p.sha256, p.thumb) for p in pictures])
        super().write_thumbs(pictures)

    def thumb_path(self, sha256: str) -> Path:
        """Where this desktop keeps a picture's thumbnail (fetched from the server when missing)."""
        dest = super().thumb_path(sha256)
        if not dest.exists():
            rows = self.db.query("SELECT jpeg FROM thumbs WHERE sha256=?", (sha256,))
            if rows:
                dest.parent.mkdir(parents=True, exist_ok=True)
                tmp = dest.with_name(f"{dest.name}.{os.getpid()}.tmp")
                tmp.write_bytes(bytes(rows[0][0]))
                os.replace(tmp, dest)
        return dest

    def prune(self) -> int:
        """Delete thumbnails no picture uses any more, on the server and here."""
        with self.db.transaction() as db:
            db.execute("DELETE FROM thumbs WHERE sha256 NOT IN (SELECT sha256 FROM images)")
        return super().prune()
