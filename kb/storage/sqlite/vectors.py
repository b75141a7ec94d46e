"""Vectors kept in SQLite (the truth) with a stamped FAISS file beside them (a cache).

Chunk vectors (e5) and picture vectors (CLIP) are kept the same way (kb.storage.vectors), so both
go through this one class: a table `(key INTEGER PRIMARY KEY REFERENCES owner(id) ON DELETE CASCADE, vec BLOB)` of
float16 vectors, a generation counter in meta that every change bumps, and an index file stamped
with (generation, count, model, schema). When the stamp disagrees with SQLite, or the file is
missing or damaged, the index is rebuilt from the stored vectors, never by re-embedding. While a
process runs, its loaded index follows its own commits; a rolled-back transaction drops it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Collection

import numpy as np

from kb.storage.sqlite.database import Database
from kb.storage.vectors import BoundModel, VectorKind, blobs_to_array
from kb.storage.sqlite.schema import SCHEMA_VERSION
from kb.storage.sqlite.faiss_index import TRAIN_PER_LIST, VectorIndex, kind_for


class VectorTable(BoundModel):
    """One kind of vector of one knowledge base, and its FAISS cache."""

    def __init__(self, db: Database, folder: Path, kind: VectorKind) -> None:
        self.db, self.kind = db, kind
        self.index_path = Path(folder) / kind.index_file
        self._index: VectorIndex | None = None
        db.on_rollback(self._drop)

    def _drop(self) -> None:
        self._index = None

    # ---- settings ---------------------------------------------------------------------------
    def bind(self, model_id: str, dim: int) -> bool:
        """Use this model from now on; vectors of another model are dropped. True if they were."""
        if self.model_id == model_id and self.dim == dim:
            return False
        with self.db.transaction():
            self.clear()
            self.db.set_meta(self.kind.model, model_id)
            self.db.set_meta(self.kind.dim, dim)
        return True

    # ---- rows -------------------------------------------------------------------------------
    def has_any(self) -> bool:
        """True when a vector is stored (asked before every search: the loaded index counts)."""
        return self.index.count > 0

    def count(self) -> int:
        """Stored vectors."""
        return int(self.db.query(f"SELECT COUNT(*) FROM {self.kind.table}")[0][0])

    def _missing(self) -> str:
        k = self.kind
        return (f"FROM {k.owner} o LEFT JOIN {k.table} v ON v.{k.key}=o.id WHERE v.{k.key} IS NULL")

    def pending(self, limit: int) -> list[tuple[int, str]]:
        """(owner id, payload) of rows without a vector, oldest first."""
        return self.db.query(f"SELECT o.id, o.{self.kind.payload} {self._missing()} ORDER BY o.id LIMIT ?",
                             (limit,))

    def count_pending(self) -> int:
        """Rows that still need a vector."""
        return int(self.db.query(f"SELECT COUNT(*) {self._missing()}")[0][0])

    def vector(self, key: int) -> np.ndarray | None:
        """The stored vector of one row (float32), if it has one."""
        rows = self.db.query(f"SELECT vec FROM {self.kind.table} WHERE {self.kind.key}=?", (key,))
        return np.frombuffer(rows[0][0], np.float16).astype(np.float32) if rows else None

    def blobs(self, keys: Collection[int]) -> dict[int, bytes]:
        """Stored float16 blobs by key (to carry vectors over to rows with the same content)."""
        keys = list(keys)
        if not keys:
            return {}
        return dict(self.db.query(f"SELECT {self.kind.key}, vec FROM {self.kind.table} "
                                  f"WHERE {self.kind.key} IN ({','.join('?' * len(keys))})", tuple(keys)))

    def add(self, ids: list[int], vecs: np.ndarray, save: bool = True,
            also: Callable[[object], None] | None = None) -> int:
        """Store one batch (rows gone meanwhile are skipped) and run `also` in the same transaction;
        then add it to the loaded index. Returns how many were stored.

        With save=False the index file is left stale (its stamp no longer matches), which is safe:
        it is rebuilt from SQLite on the next open unless save() runs first.
        """
        half = np.asarray(vecs, np.float32).astype(np.float16)
        index = self.index  # loaded (or rebuilt) before the batch, so only the batch is added after
        k = self.kind
        with self.db.transaction() as db:
            present = {r[0] for r in db.execute(
                f"SELECT id FROM {k.owner} WHERE id IN ({','.join('?' * len(ids))})", ids)} if ids else set()
            keep = [i for i, key in enumerate(ids) if key in present]
            db.executemany(f"INSERT OR REPLACE INTO {k.table}({k.key}, vec) VALUES (?, ?)",
                           [(ids[i], half[i].tobytes()) for i in keep])
            if also is not None:
                also(db)
            self.bump()
        with self.db.lock:
            if self._index is index and keep:
                index.add(np.asarray([ids[i] for i in keep]), half[keep].astype(np.float32))
            if save:
                self.save()
        return len(keep)

    def put_blobs(self, db, pairs: list[tuple[int, bytes]]) -> None:
        """Store vectors already computed (float16 blobs) inside the caller's transaction `db`."""
        if not pairs:
            return
        k = self.kind
        db.executemany(f"INSERT OR REPLACE INTO {k.table}({k.key}, vec) VALUES (?, ?)", pairs)
        self.bump()
        if self._index is not None:
            self._index.add(np.asarray([p[0] for p in pairs]), blobs_to_array([p[1] for p in pairs]))

    def forget(self, db, keys: list[int]) -> None:
        """Before the caller deletes these owner rows in its transaction `db`: their vectors go
        with them (the foreign key cascades), so the cache is told."""
        if not keys:
            return
        k = self.kind
        had = db.execute(f"SELECT COUNT(*) FROM {k.table} WHERE {k.key} IN ({','.join('?' * len(keys))})",
                         keys).fetchone()[0]
        if had:
            self.bump()
            if self._index is not None:
                self._index.remove(keys)

    def clear(self) -> None:
        """Drop every vector (before computing them again with another model)."""
        with self.db.transaction() as db:
            db.execute(f"DELETE FROM {self.kind.table}")
            self.bump()
        self._index = None

    def bump(self) -> None:
        """Count one change (inside the transaction that makes it): a saved index no longer matches."""
        with self.db.lock:
            self.db.set_meta(self.kind.generation, int(self.db.get_meta(self.kind.generation, 0)) + 1)

    # ---- the FAISS cache --------------------------------------------------------------------
    def stamp(self) -> dict:
        """What the saved index must match to be used: generation, count, model, schema."""
        return {"generation": int(self.db.get_meta(self.kind.generation, 0)), "count": self.count(),
                "model": self.model_id, "schema": SCHEMA_VERSION}

    @property
    def index(self) -> VectorIndex:
        """The FAISS index, loaded from its file if it is current, else rebuilt from SQLite."""
        with self.db.lock:
            if self._index is None:
                self._index = VectorIndex.load(self.index_path, self.stamp(), self.dim, self.kind.sized)
                if self._index is None:
                    self.rebuild()
            return self._index

    def rebuild(self) -> VectorIndex:
        """Rebuild the index from the stored vectors (its type chosen by size), and save it."""
        k = self.kind
        with self.db.lock:
            count = self.count()
            kind = kind_for(count) if k.sized else "flat"
            training = None
            if kind != "flat":
                lists = int(kind[3:])
                step = max(1, count // (lists * TRAIN_PER_LIST))  # an even sample across the KB
                rows = self.db.query(f"SELECT vec FROM {k.table} WHERE {k.key} % ? = 0", (step,))
                training = blobs_to_array([r[0] for r in rows])
            index = VectorIndex(self.dim, kind, training)
            for rows in self.db.stream(f"SELECT {k.key}, vec FROM {k.table} ORDER BY {k.key}"):
                index.add(np.fromiter((r[0] for r in rows), np.int64, len(rows)), blobs_to_array([r[1] for r in rows]))
            self._index = index
            self.save()
            return index

    def needs_rebuild(self) -> bool:
        """True when the table has grown (or shrunk) past what its loaded index type suits."""
        with self.db.lock:
            return (self.kind.sized and self._index is not None
                    and self._index.kind != kind_for(self._index.count))

    def save(self) -> None:
        """Write the index file if it is loaded (atomically, stamped with the current generation)."""
        with self.db.lock:
            if self._index is not None:
                self._index.save(self.index_path, self.stamp())

    # ---- search -----------------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The k nearest rows: (key, cosine similarity) best first."""
        return self.index.search(query, k)

    def search_within(self, query: np.ndarray, k: int, column: str, values: Collection[int]) -> list[tuple[int, float]]:
        """The k nearest among rows whose owner's `column` is in `values`, compared exactly.

        An approximate index filtered afterwards can return nothing of a few documents in a large
        knowledge base; a scope of even 20,000 chunks is 15 MB of half floats, read in well under
        a second.
        """
        values = sorted(values)
        if not values:
            return []
        kd = self.kind
        rows = self.db.query(f"SELECT v.{kd.key}, v.vec FROM {kd.table} v JOIN {kd.owner} o ON o.id=v.{kd.key} "
                             f"WHERE o.{column} IN ({','.join('?' * len(values))})", tuple(values))
        if not rows:
            return []
        sims = blobs_to_array([r[1] for r in rows]) @ np.asarray(query, np.float32)
        best = np.argsort(-sims)[:k]
        return [(int(rows[i][0]), float(sims[i])) for i in best]
