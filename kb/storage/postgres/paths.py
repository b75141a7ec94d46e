"""Which paths a knowledge base on a server knows besides its documents: linked folders, and
copies (another path holding a document's content, indexed once). PostgreSQL's dialect."""

from __future__ import annotations

import time


class ServerPaths:
    """Linked folders, copies and moves (kb.storage.contract.Paths)."""

    def __init__(self, store) -> None:
        self.store, self.db = store, store.db

    def link_folder(self, path: str) -> None:
        """Remember a linked folder (again: nothing changes)."""
        with self.db.transaction() as db:
            db.execute("INSERT INTO folders(path, added) VALUES (%s, %s) ON CONFLICT (path) DO NOTHING",
                   (path, time.time()))

    def unlink_folder(self, path: str) -> None:
        """Forget a linked folder (its documents stay)."""
        with self.db.transaction() as db:
            db.execute("DELETE FROM folders WHERE path=%s", (path,))

    def folders(self) -> list[str]:
        """The linked folders, in order."""
        return [r[0] for r in self.db.query("SELECT path FROM folders ORDER BY path")]

    def all_paths(self) -> list[str]:
        """Every path the knowledge base lists: documents and their copies."""
        return [r[0] for r in self.db.query("SELECT path FROM documents UNION SELECT path FROM copies")]

    def document_id(self, path: str) -> int | None:
        """The document stored under `path`, if any."""
        rows = self.db.query("SELECT id FROM documents WHERE path=%s", (path,))
        return rows[0][0] if rows else None

    def by_hash(self, sha256: str) -> tuple[int, str] | None:
        """The indexed document with this content: (id, path), if any."""
        rows = self.db.query(
            "SELECT id, path FROM documents WHERE sha256=%s AND status!='failed' ORDER BY id LIMIT 1", (sha256,))
        return (rows[0][0], rows[0][1]) if rows else None

    def copies(self, doc_id: int) -> list[str]:
        """Other paths holding the same content as this document."""
        return [r[0] for r in self.db.query("SELECT path FROM copies WHERE doc_id=%s ORDER BY path", (doc_id,))]

    def copy_owner(self, path: str) -> int | None:
        """The document a path is a copy of, if it is one."""
        rows = self.db.query("SELECT doc_id FROM copies WHERE path=%s", (path,))
        return rows[0][0] if rows else None

    def add_copy(self, path: str, doc_id: int) -> None:
        """List `path` under a document with the same content (a document it held before goes)."""
        with self.db.transaction() as db:
            old = db.execute("SELECT id FROM documents WHERE path=%s", (path,)).fetchone()
            if old:
                self.store.drop_document(db, old[0])
            db.execute("INSERT INTO copies(path, doc_id) VALUES (%s, %s) "
                   "ON CONFLICT (path) DO UPDATE SET doc_id=EXCLUDED.doc_id", (path, doc_id))
            db.execute("DELETE FROM queue WHERE path=%s", (path,))

    def drop_copy(self, path: str) -> None:
        """A copy's path is gone."""
        with self.db.transaction() as db:
            db.execute("DELETE FROM copies WHERE path=%s", (path,))

    def move(self, doc_id: int, new_path: str, name: str, mtime: float | None) -> None:
        """Give a document a new path; chunks and vectors stay (a document there before goes)."""
        with self.db.transaction() as db:
            old = db.execute("SELECT id FROM documents WHERE path=%s AND id!=%s", (new_path, doc_id)).fetchone()
            if old:
                self.store.drop_document(db, old[0])
            db.execute("DELETE FROM copies WHERE path=%s", (new_path,))
            db.execute("UPDATE documents SET path=%s, name=%s, mtime=COALESCE(%s::double precision, mtime), "
                   "updated=%s WHERE id=%s", (new_path, name, mtime, time.time(), doc_id))
            db.execute("DELETE FROM queue WHERE path=%s", (new_path,))

