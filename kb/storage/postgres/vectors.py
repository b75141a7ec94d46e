"""Vectors in PostgreSQL: pgvector half-precision columns with an HNSW index (the interface of kb.storage.sqlite.vectors).

On a server there is no FAISS file to keep in step: the HNSW index lives in the database and every
desktop searches the same one. `halfvec` halves the storage as the SQLite store's float16 blobs do;
its dimension is set when a model is bound (an HNSW index needs it). The approximate index serves
whole-knowledge-base searches (ef_search widened to the candidates asked for); a search within a few
documents compares exactly, as the SQLite store does. Rows waiting for a vector are leased
(kb.storage.leases), so desktops embedding at once split them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Collection

import numpy as np

from kb.storage import leases
from kb.storage.vectors import BoundModel, VectorKind

# pgvector's default ef_search is 40; at 100,000 synthetic chunks (bench/latency.py) it found 0.926
# of the exact top 10, and a search took 2.4 ms: a wider search costs little
MIN_EF_SEARCH = 100


@dataclass
class ServerIndex:
    """What callers read of an index (its size and type) when it lives on the server."""

    count: int
    kind: str = "hnsw"


class PgVectorTable(BoundModel):
    """One kind of vector of one server knowledge base."""

    def __init__(self, db, kind: VectorKind) -> None:
        self.db, self.kind = db, kind
        self.index_path = None

    # ---- settings ---------------------------------------------------------------------------
    def bind(self, model_id: str, dim: int) -> bool:
        """Use this model from now on; vectors of another model are dropped. True if they were."""
        if self.model_id == model_id and self.dim == dim and self._typed():
            return False
        k = self.kind
        with self.db.transaction() as db:
            db.execute(f"DELETE FROM {k.table}")
            db.execute(f"DROP INDEX IF EXISTS {k.table}_hnsw")
            db.execute(f"ALTER TABLE {k.table} ALTER COLUMN vec TYPE halfvec({int(dim)})")
            db.execute(f"CREATE INDEX {k.table}_hnsw ON {k.table} USING hnsw (vec halfvec_cosine_ops)")
            db.executemany("INSERT INTO meta(key, value) VALUES (%s, %s) "
                           "ON CONFLICT (key) DO UPDATE SET value=EXCLUDED.value",
                           [(k.model, model_id), (k.dim, str(dim))])
        return True

    def _typed(self) -> bool:
        return bool(self.db.query("SELECT 1 FROM pg_indexes WHERE schemaname=%s AND indexname=%s",
                                     (self.db.schema, f"{self.kind.table}_hnsw")))

    # ---- rows -------------------------------------------------------------------------------
    def has_any(self) -> bool:
        """True when a vector is stored (COUNT(*) would read 100,000 rows before every search)."""
        return bool(self.db.query(f"SELECT EXISTS (SELECT 1 FROM {self.kind.table})")[0][0])

    def count(self) -> int:
        """Stored vectors."""
        return int(self.db.query(f"SELECT COUNT(*) FROM {self.kind.table}")[0][0])

    def _missing(self) -> str:
        k = self.kind
        return f"FROM {k.owner} o LEFT JOIN {k.table} v ON v.{k.key}=o.id WHERE v.{k.key} IS NULL"

    def pending(self, limit: int) -> list[tuple[int, str]]:
        """(owner id, payload) of rows without a vector that no other live process is embedding,
        oldest first; they are leased to this process."""
        k, now, owner = self.kind, time.time(), leases.me()
        with self.db.transaction() as db:
            holders = [r[0] for r in db.execute(
                f"SELECT DISTINCT o.leased_by {self._missing()} AND o.lease_until >= %s", (now,))]
            rows = db.execute(
                f"UPDATE {k.owner} SET lease_until=%s, leased_by=%s WHERE id IN ("
                f"SELECT o.id {self._missing()} AND (o.lease_until IS NULL OR o.lease_until < %s "
                f"OR o.leased_by = %s OR o.leased_by = ANY(%s)) ORDER BY o.id LIMIT %s) "
                f"RETURNING id, {k.payload}",
                (now + leases.LEASE_S, owner, now, owner, leases.dead(holders), limit)).fetchall()
        return sorted((int(r[0]), r[1]) for r in rows)

    def count_pending(self) -> int:
        """Rows that still need a vector (whoever embeds them)."""
        return int(self.db.query(f"SELECT COUNT(*) {self._missing()}")[0][0])

    def vector(self, key: int) -> np.ndarray | None:
        """The stored vector of one row (float32), if it has one."""
        rows = self.db.query(f"SELECT vec FROM {self.kind.table} WHERE {self.kind.key}=%s", (key,))
        return np.asarray(rows[0][0].to_numpy(), np.float32) if rows else None

    def add(self, ids: list[int], vecs: np.ndarray, save: bool = True,
            also: Callable[[object], None] | None = None) -> int:
        """Store one batch (rows gone meanwhile are skipped) and run `also` in the same transaction."""
        from pgvector import HalfVector

        half = np.asarray(vecs, np.float32).astype(np.float16)
        k = self.kind
        with self.db.transaction() as db:
            present = {r[0] for r in db.execute(f"SELECT id FROM {k.owner} WHERE id = ANY(%s)", (list(ids),))}
            keep = [i for i, key in enumerate(ids) if key in present]
            db.executemany(self._upsert(), [(ids[i], HalfVector(half[i])) for i in keep])
            if also is not None:
                also(db)
        return len(keep)

    def put_blobs(self, db, pairs: list[tuple[int, object]]) -> None:
        """Store vectors already computed (as read from this table) inside the caller's transaction."""
        if pairs:
            db.executemany(self._upsert(), pairs)

    def _upsert(self) -> str:
        k = self.kind
        return (f"INSERT INTO {k.table}({k.key}, vec) VALUES (%s, %s) "
                f"ON CONFLICT ({k.key}) DO UPDATE SET vec=EXCLUDED.vec")

    def forget(self, db, keys: list[int]) -> None:
        """Nothing to tell: the vectors go with their rows, and the server's index with them."""

    def clear(self) -> None:
        """Drop every vector (before computing them again with another model)."""
        with self.db.transaction() as db:
            db.execute(f"DELETE FROM {self.kind.table}")

    def bump(self) -> None:
        """No cache to invalidate on a server."""

    # ---- the index (the server's) -------------------------------------------------------------
    @property
    def index(self) -> ServerIndex:
        """The index's size and type."""
        return ServerIndex(self.count())

    def rebuild(self) -> ServerIndex:
        """Nothing to rebuild: the server's HNSW index follows every insert and delete."""
        return self.index

    def needs_rebuild(self) -> bool:
        """Never: HNSW grows with the table."""
        return False

    def save(self) -> None:
        """Nothing to write: the server keeps the index."""

    # ---- search -----------------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The k nearest rows by the HNSW index: (key, cosine similarity) best first."""
        from pgvector import HalfVector

        kd = self.kind
        q = HalfVector(np.asarray(query, np.float32).astype(np.float16))
        with self.db.lock:  # a read: no write lock, but the setting and the query on one connection in turn
            self.db.query(f"SET hnsw.ef_search = {max(MIN_EF_SEARCH, int(k))}")
            rows = self.db.query(
                f"SELECT {kd.key}, 1 - (vec <=> %s) FROM {kd.table} ORDER BY vec <=> %s LIMIT %s", (q, q, int(k)))
        return [(int(r[0]), float(r[1])) for r in rows]

    def search_within(self, query: np.ndarray, k: int, column: str, values: Collection[int]) -> list[tuple[int, float]]:
        """The k nearest among rows whose owner's `column` is in `values`, compared exactly."""
        from pgvector import HalfVector

        values = sorted(values)
        if not values:
            return []
        kd = self.kind
        q = HalfVector(np.asarray(query, np.float32).astype(np.float16))
        rows = self.db.query(
            f"SELECT v.{kd.key}, 1 - (v.vec <=> %s) AS s FROM {kd.table} v JOIN {kd.owner} o ON o.id=v.{kd.key} "
            f"WHERE o.{column} = ANY(%s) ORDER BY s DESC LIMIT %s", (q, values, int(k)))
        return [(int(r[0]), float(r[1])) for r in rows]
