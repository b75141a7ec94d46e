"""The FAISS index: a cache of the vectors SQLite keeps, rebuilt whenever it is in doubt."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


class VectorIndex:
    """Inner-product search over L2-normalised vectors, keyed by chunk id (IndexIDMap2)."""

    def __init__(self, dim: int) -> None:
        import faiss

        self.dim = dim
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    @property
    def count(self) -> int:
        """Vectors in the index."""
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        """Add vectors under their chunk ids."""
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(vecs, np.float32), np.asarray(ids, np.int64))

    def remove(self, ids) -> None:
        """Drop the given chunk ids (missing ids are ignored)."""
        import faiss

        ids = np.asarray(list(ids), np.int64)
        if len(ids):
            self._index.remove_ids(faiss.IDSelectorBatch(ids))

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The k nearest chunk ids with their cosine similarity."""
        if self.count == 0 or k <= 0:
            return []
        scores, ids = self._index.search(np.ascontiguousarray(query, np.float32).reshape(1, -1), min(k, self.count))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i != -1]

    def save(self, path: Path, stamp: dict) -> None:
        """Write the index and its stamp atomically (temp file + rename), index first."""
        import faiss

        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        faiss.write_index(self._index, str(tmp))
        os.replace(tmp, path)
        stamp_path = path.with_suffix(".json")
        tmp = stamp_path.with_name(stamp_path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(stamp))
        os.replace(tmp, stamp_path)

    @classmethod
    def load(cls, path: Path, stamp: dict, dim: int) -> "VectorIndex | None":
        """The saved index if its stamp matches `stamp` exactly and it reads cleanly; else None."""
        import faiss

        try:
            saved = json.loads(path.with_suffix(".json").read_text())
            if saved != stamp:
                return None
            index = faiss.read_index(str(path))
        except (OSError, ValueError, RuntimeError):
            return None  # missing, truncated or corrupt: the caller rebuilds from SQLite
        if index.d != dim or index.ntotal != stamp.get("count"):
            return None
        out = cls.__new__(cls)
        out.dim = dim
        out._index = index
        return out
