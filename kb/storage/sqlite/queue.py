"""The persisted indexing queue of a knowledge base on this computer: files waiting to be read.

A file is queued before it is read and leaves the queue in the transaction that stores it, so a job
killed at any point is resumed by the next (`zhiku add KB`, or the window's next start). One
computer, one job at a time: every queued file is this process's to read.
"""

from __future__ import annotations

import time
from typing import Iterable

from kb.storage.sqlite.database import Database


class Queue:
    """Files to index, oldest first (kb.storage.contract.Queue)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def enqueue(self, paths: Iterable[str]) -> None:
        """Remember files to index, so that an interrupted job can be resumed."""
        now = time.time()
        with self.db.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO queue(path, queued) VALUES (?, ?)", [(str(p), now) for p in paths])

    def queued(self) -> list[str]:
        """Files still waiting to be indexed, oldest first."""
        return [r[0] for r in self.db.query("SELECT path FROM queue ORDER BY queued, rowid")]

    def waiting(self) -> list[str]:
        """Queued files, read without waiting for a job that is storing a document (for the window)."""
        return [r[0] for r in self.db.listing("SELECT path FROM queue ORDER BY queued, rowid")]

    def claim(self, paths: list[str]) -> list[str]:
        """The queued files this process indexes: on one computer, all of them."""
        return paths

    def renew(self) -> None:
        """Nothing to renew: no other desktop shares this queue."""

    def dequeue(self, paths: Iterable[str]) -> None:
        """Forget queued files (done without storing anything, or given up)."""
        with self.db.transaction() as db:
            db.executemany("DELETE FROM queue WHERE path=?", [(str(p),) for p in paths])
