"""A knowledge base's database on a PostgreSQL server: the kb.storage.sqlite.database.Database interface over psycopg.

A team's knowledge base lives in one schema of a PostgreSQL database (several knowledge bases can
share a database). Every statement given to it is written in PostgreSQL's dialect by the postgres
backend's own modules (kb.storage.postgres.*): nothing is translated from SQLite's at run time.

Several desktops write at once. Every write transaction first takes a transaction-scoped advisory
lock of the knowledge base, as SQLite's BEGIN IMMEDIATE does for one file: writes are short (one
document, one batch of vectors) and can then never deadlock or collide on a unique path; reads never
take it. A lost server becomes `ServerGone`, whose message says what to do; the next statement
connects again.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

from kb.storage.contract import ServerGone, StoreError, storable
from kb.storage.sqlite.database import COUNTED
from kb.text.file_names import STORED_MARK, STORED_MARK_2, from_stored, has_escapes, to_stored
from kb.storage.postgres.schema import MIGRATIONS, SCHEMA_VERSION

# a server that does not answer at all (a laptop off the office network) is given up on after this
# long when a knowledge base is opened; the window's list reads its counts in the background with
# a shorter one (libpq's least: 2 s)
CONNECT_TIMEOUT_S = 5


def safe_url(url: str) -> str:
    """The server address without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _param(p):
    if isinstance(p, str):
        p = storable(p)
        return to_stored(p) if has_escapes(p) else p
    return p


def _rows(cur) -> list[tuple]:
    return cur.fetchall() if cur.description is not None else []


def _params(params):
    return tuple(_param(p) for p in params)


class _Handle:
    """What a transaction yields: execute()/executemany() of PostgreSQL statements on its connection."""

    def __init__(self, db: "PgDatabase") -> None:
        self._db = db

    def execute(self, sql: str, params=()):
        """Run one statement; the psycopg cursor (fetchone, fetchall, iteration)."""
        cur = self._db._conn.cursor()
        cur.execute(sql, _params(params))
        return cur

    def executemany(self, sql: str, rows) -> None:
        """Run one statement for each row of parameters."""
        rows = [_params(r) for r in rows]
        if rows:
            self._db._conn.cursor().executemany(sql, rows)


def _put_meta(db: _Handle, key: str, value) -> None:
    db.execute("INSERT INTO meta(key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value=EXCLUDED.value",
               (key, str(value)))


def _loaders(conn) -> None:
    from psycopg.types.string import TextLoader

    class StoredText(TextLoader):
        """Text with file names' escaped bytes turned back into the exact path (kb.text.file_names)."""

        def load(self, data):
            raw = bytes(data)
            text = raw.decode("utf-8")
            return from_stored(text) if STORED_MARK in raw or STORED_MARK_2 in raw else text

    for name in ("text", "varchar"):
        conn.adapters.register_loader(name, StoredText)


class PgDatabase:
    """One knowledge base's schema on a PostgreSQL server. Thread-safe like kb.storage.sqlite.database.Database."""


    def __init__(self, url: str, schema: str, connect_timeout: int = CONNECT_TIMEOUT_S) -> None:
        self.url, self.schema, self.connect_timeout = url, schema, connect_timeout
        self.where = f"{safe_url(url)} (schema {schema})"
        self.lock = threading.RLock()
        self._read_lock = threading.Lock()
        self._rollback_hooks: list[Callable[[], None]] = []
        self._conn = self._connect()
        self._read_conn = None
        self._migrate()

    def _connect(self):
        try:
            import psycopg
        except ImportError:
            raise StoreError("this Zhiku was installed without PostgreSQL support (pip install 'psycopg[binary]' "
                             "pgvector)") from None
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=self.connect_timeout)
        except psycopg.OperationalError as e:
            raise ServerGone(self._gone_message(e)) from None
        _loaders(conn)
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('zhiku: create extension'))")
                if not conn.execute("SELECT 1 FROM pg_extension WHERE extname='vector'").fetchone():
                    conn.execute("CREATE EXTENSION vector")
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        except psycopg.errors.FeatureNotSupported as e:  # pgvector's files are not on the server
            conn.close()
            raise StoreError(f"{safe_url(self.url)} has no pgvector ({e}); install the extension on the "
                             "server (most managed PostgreSQL services offer it), then try again") from None
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.UndefinedFile) as e:
            conn.close()
            raise StoreError(f"{safe_url(self.url)}: {str(e).strip().splitlines()[0]}; ask the database's "
                             "administrator to run CREATE EXTENSION vector there (and to let this user create "
                             "a schema), then try again") from None
        conn.execute(f'SET search_path TO "{self.schema}", public')
        from pgvector.psycopg import register_vector

        register_vector(conn)
        return conn

    def _gone_message(self, error) -> str:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return (f"The PostgreSQL server of this knowledge base, {safe_url(self.url)}, does not answer ({first}). "
                "Check that it runs and that this computer can reach it, then try again.")

    def _alive(self):
        if self._conn.closed:
            self._conn = self._connect()
        return self._conn

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        import psycopg

        try:
            yield
        except psycopg.OperationalError as e:
            with contextlib.suppress(Exception):
                self._conn.close()
            raise ServerGone(self._gone_message(e)) from None

    def _migrate(self) -> None:
        with self.transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            rows = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchall()
            version = int(rows[0][0]) if rows else 0
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.where}: made by a newer Zhiku (schema {version} > {SCHEMA_VERSION})")
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for sql in MIGRATIONS[v]:
                    db.execute(sql)
            if version < SCHEMA_VERSION:
                _put_meta(db, "schema_version", SCHEMA_VERSION)

    @property
    def schema_version(self) -> int:
        """The schema's version."""
        return int(self.get_meta("schema_version", 0))

    def on_rollback(self, hook: Callable[[], None]) -> None:
        """Call `hook` after any transaction rolls back."""
        self._rollback_hooks.append(hook)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[_Handle]:
        """One atomic unit of work, writers of every desktop taking turns; nested use joins the outer."""
        with self.lock, self._errors():
            conn = self._alive()
            if conn.info.transaction_status != 0:  # already in one (this thread holds the lock)
                yield _Handle(self)
                return
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.schema,))
                    yield _Handle(self)
            except BaseException:
                for hook in self._rollback_hooks:
                    hook()
                raise

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of a statement."""
        with self.lock, self._errors():
            return _rows(self._alive().execute(sql, _params(params)))

    def query_dicts(self, sql: str, params: tuple = (), listing: bool = False) -> list[dict]:
        """Rows as dicts keyed by column name (listing=True: on the reader connection, never waiting)."""
        from psycopg.rows import dict_row

        if listing:
            return self._read(sql, params, dict_row)
        with self.lock, self._errors():
            cur = self._alive().cursor(row_factory=dict_row)
            return cur.execute(sql, _params(params)).fetchall()

    def stream(self, sql: str, params: tuple = (), size: int = 16384) -> Iterator[list[tuple]]:
        """Rows of a large read in slices of `size`."""
        with self.lock, self._errors():
            cur = self._alive().execute(sql, _params(params))
            while rows := cur.fetchmany(size):
                yield rows

    def listing(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of a read from the last commit; on its own connection, so it never waits for a writer."""
        return self._read(sql, params)

    def _read(self, sql: str, params: tuple, row_factory=None) -> list:
        import psycopg

        with self._read_lock:
            try:
                if self._read_conn is None or self._read_conn.closed:
                    self._read_conn = psycopg.connect(self.url, autocommit=True, connect_timeout=self.connect_timeout)
                    _loaders(self._read_conn)
                    self._read_conn.execute(f'SET search_path TO "{self.schema}", public')
                cur = self._read_conn.cursor(row_factory=row_factory) if row_factory else self._read_conn.cursor()
                return cur.execute(sql, _params(params)).fetchall()
            except psycopg.OperationalError as e:
                with contextlib.suppress(Exception):
                    self._read_conn.close()
                raise ServerGone(self._gone_message(e)) from None

    def count(self, table: str) -> int:
        """Rows in one of the knowledge base's tables (chunks_fts: chunks with keyword terms)."""
        if table not in COUNTED:
            raise ValueError(table)
        if table == "chunks_fts":
            return int(self.query("SELECT COUNT(*) FROM chunks WHERE terms IS NOT NULL")[0][0])
        return int(self.query(f"SELECT COUNT(*) FROM {table}")[0][0])

    def get_meta(self, key: str, default=None):
        """A setting (text)."""
        rows = self.query("SELECT value FROM meta WHERE key=%s", (key,))
        return rows[0][0] if rows else default

    def set_meta(self, key: str, value) -> None:
        """Set a setting."""
        with self.transaction() as db:
            _put_meta(db, key, value)

    def checkpoint(self) -> None:
        """Nothing to fold: the server keeps its own log."""

    def close(self) -> None:
        """Close both connections."""
        with self.lock:
            self._conn.close()
        with self._read_lock:
            if self._read_conn is not None:
                self._read_conn.close()
                self._read_conn = None
