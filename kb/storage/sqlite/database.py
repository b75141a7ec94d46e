"""The knowledge base's SQLite database: its connection, lock, transactions, migrations and settings.

One object owns the connection (rclip's pattern): the store, the vector tables, the file
bookkeeping, the pictures and the conversations all go through `transaction()`, `query()` and
`listing()`, never through the connection itself. The database runs in WAL mode, so a second,
read-only connection (`listing`) reads the last commit without waiting for a writer: the window's
lists never stall behind a big document being stored.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path
from typing import Callable, Iterator

from kb.text.file_names import decode_stored, has_escapes, to_stored
from kb.storage.contract import StoreError, storable
from kb.storage.sqlite.schema import MIGRATIONS, SCHEMA_VERSION

# tables whose rows `count` reports (the summary, tests and the bench read them)
COUNTED = ("documents", "chunks", "vectors", "chunks_fts", "pages", "images", "image_vectors")


class _Connection(sqlite3.Connection):
    """An SQLite connection that stores file names that are not valid UTF-8 exactly (kb.text.file_names)."""

    def execute(self, sql, params=()):  # noqa: D102 (sqlite3)
        return super().execute(sql, _stored(params))

    def executemany(self, sql, rows):  # noqa: D102 (sqlite3)
        return super().executemany(sql, (_stored(r) for r in rows))


def _stored(params):
    if isinstance(params, dict):
        return params
    return tuple(_text(p) if isinstance(p, str) else p for p in params)


def _text(p: str) -> str:
    p = storable(p)
    return to_stored(p) if has_escapes(p) else p


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, factory=_Connection)
    conn.text_factory = decode_stored
    return conn


def _as_dicts(cur: sqlite3.Cursor) -> list[dict]:
    names = [c[0] for c in cur.description]  # once: the window lists hundreds of documents per refresh
    return [dict(zip(names, r)) for r in cur.fetchall()]


def create_file(path: Path) -> None:
    """Create an empty database file (the schema comes with the first `Database` open)."""
    sqlite3.connect(path).close()


class Database:
    """One SQLite file. Thread-safe: every statement runs under the database's lock."""


    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        # held by every statement, and by caches (kb.storage.sqlite.vectors) across a read and an update that
        # must agree with the database: one lock, so they can never wait on each other in turn
        self.lock = threading.RLock()
        self._rollback_hooks: list[Callable[[], None]] = []
        try:
            self._conn = _connect(self.path)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: damaged database ({e})") from None
        self._read_lock = threading.Lock()
        self._read_conn: sqlite3.Connection | None = None

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: made by a newer Zhiku (schema {version} > {SCHEMA_VERSION})")
        for v in range(version + 1, SCHEMA_VERSION + 1):
            with self.transaction() as db:
                for sql in MIGRATIONS[v]:
                    db.execute(sql)
                db.execute(f"PRAGMA user_version = {v}")

    @property
    def schema_version(self) -> int:
        """The database's schema version."""
        return int(self.query("PRAGMA user_version")[0][0])

    def on_rollback(self, hook: Callable[[], None]) -> None:
        """Call `hook` after any transaction rolls back (a cache that may hold undone changes drops them)."""
        self._rollback_hooks.append(hook)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work: everything in it commits together or not at all.

        Nested use from the same thread joins the outer transaction.
        """
        with self.lock:
            if self._conn.in_transaction:
                yield self._conn
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                for hook in self._rollback_hooks:
                    hook()
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of an SQL statement, under the database's lock."""
        with self.lock:
            return self._conn.execute(sql, params).fetchall()

    def query_dicts(self, sql: str, params: tuple = (), listing: bool = False) -> list[dict]:
        """Rows as dicts keyed by column name (from the last commit, unblocked, with listing=True)."""
        if listing:
            with self._read_lock:
                return _as_dicts(self._reader().execute(sql, params))
        with self.lock:
            return _as_dicts(self._conn.execute(sql, params))

    def stream(self, sql: str, params: tuple = (), size: int = 16384) -> Iterator[list[tuple]]:
        """Rows of a large read in slices of `size`, the lock held throughout (rebuilding a cache)."""
        with self.lock:
            cur = self._conn.execute(sql, params)
            while rows := cur.fetchmany(size):
                yield rows

    def listing(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of a read-only statement from the last commit, without waiting for a writer."""
        with self._read_lock:
            return self._reader().execute(sql, params).fetchall()

    def _reader(self) -> sqlite3.Connection:
        if self._read_conn is None:
            self._read_conn = _connect(self.path)
            self._read_conn.execute("PRAGMA query_only=1")
        return self._read_conn

    def count(self, table: str) -> int:
        """Rows in one of the KB's tables."""
        if table not in COUNTED:
            raise ValueError(table)
        return int(self.query(f"SELECT COUNT(*) FROM {table}")[0][0])

    def get_meta(self, key: str, default=None):
        """A KB setting (stored as text; numbers come back as text)."""
        rows = self.query("SELECT value FROM meta WHERE key=?", (key,))
        return rows[0][0] if rows else default

    def set_meta(self, key: str, value) -> None:
        """Set a KB setting."""
        with self.lock:
            self._conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, str(value)))

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file (before copying the folder)."""
        with self.lock:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        """Close both connections."""
        with self.lock:
            self._conn.close()
        with self._read_lock:
            if self._read_conn is not None:
                self._read_conn.close()
                self._read_conn = None
