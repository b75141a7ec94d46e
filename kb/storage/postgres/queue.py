"""The indexing queue of a team's knowledge base on PostgreSQL: files waiting to be read, shared by
every desktop that adds to it.

Several desktops adding at once split the queue instead of each reading all of it: a desktop
claims the files it reads with a lease (kb.storage.leases) and renews it while it works; a lease
that runs out, or whose holder on this computer is no longer running (killed mid-add), is taken
over at once by the next claim. Written in PostgreSQL's own dialect.
"""

from __future__ import annotations

import time
from typing import Iterable

from kb.storage import leases
from kb.storage.postgres.database import PgDatabase


class ServerQueue:
    """Files to index, oldest first, leased to the desktop reading them (kb.storage.contract.Queue)."""

    def __init__(self, db: PgDatabase) -> None:
        self.db = db

    def enqueue(self, paths: Iterable[str]) -> None:
        """Remember files to index, so that an interrupted job (here or on another desktop) is resumed."""
        now = time.time()
        rows = [(str(p), now) for p in paths]
        with self.db.transaction() as db:
            for row in rows:
                db.execute("INSERT INTO queue(path, queued) VALUES (%s, %s) ON CONFLICT (path) DO NOTHING", row)

    def queued(self) -> list[str]:
        """Files still waiting to be indexed, oldest first."""
        return [r[0] for r in self.db.query("SELECT path FROM queue ORDER BY queued, seq")]

    def waiting(self) -> list[str]:
        """Queued files, read without waiting for a job that is storing a document (for the window)."""
        return [r[0] for r in self.db.listing("SELECT path FROM queue ORDER BY queued, seq")]

    def claim(self, paths: list[str]) -> list[str]:
        """The queued files this process indexes: those no other live desktop holds."""
        if not paths:
            return paths
        now, owner = time.time(), leases.me()
        with self.db.transaction() as db:
            holders = [r[0] for r in db.execute("SELECT DISTINCT claimed_by FROM queue WHERE claimed_at >= %s",
                                            (now - leases.LEASE_S,))]
            mine = {r[0] for r in db.execute(
                "UPDATE queue SET claimed_by=%s, claimed_at=%s WHERE path = ANY(%s) AND (claimed_by IS NULL "
                "OR claimed_by=%s OR claimed_at < %s OR claimed_by = ANY(%s)) RETURNING path",
                (owner, now, [str(p) for p in paths], owner, now - leases.LEASE_S, leases.dead(holders)))}
        return [p for p in paths if p in mine]

    def renew(self) -> None:
        """Tell the other desktops this process still works on the files it claimed."""
        with self.db.transaction() as db:
            db.execute("UPDATE queue SET claimed_at=%s WHERE claimed_by=%s", (time.time(), leases.me()))

    def dequeue(self, paths: Iterable[str]) -> None:
        """Forget queued files (done without storing anything, or given up)."""
        with self.db.transaction() as db:
            db.execute("DELETE FROM queue WHERE path = ANY(%s)", ([str(p) for p in paths],))
