"""The FAISS index: a cache of the vectors SQLite keeps, rebuilt whenever it is in doubt.

Its type follows the knowledge base's size (bench/latency.py measured why):
- up to IVF_FROM vectors, exact search (IndexFlatIP in an IndexIDMap2): needs no training and
  returns the true neighbours, but one query scans everything (7.6 ms at 100k here, linear in n);
- above, an inverted file (IVF) with float16 codes: a scan of `nprobe` of ~4*sqrt(n) lists keeps a
  million chunks well under the latency target, supports adding and removing ids like the flat
  index, and float16 codes are lossless here because SQLite stores float16 vectors anyway.
HNSW was not chosen: FAISS's HNSW cannot remove ids (every deleted document would force a full
rebuild) and its graph adds memory on top of the vectors; IVF already meets the latency target.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

IVF_FROM = 50_000
NPROBE = 24
TRAIN_PER_LIST = 40  # k-means sample size per list (FAISS warns below 39)


def kind_for(count: int) -> str:
    """The index type for a knowledge base of `count` vectors: 'flat' or 'ivf<lists>'."""
    if count < IVF_FROM:
        return "flat"
    lists = 2 ** round(math.log2(4 * math.sqrt(count)))  # powers of two: the type changes rarely
    return f"ivf{lists}"


class VectorIndex:
    """Inner-product search over L2-normalised vectors, keyed by chunk id."""

    def __init__(self, dim: int, kind: str = "flat", training: np.ndarray | None = None) -> None:
        import faiss

        self.dim, self.kind = dim, kind
        if kind == "flat":
            self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        elif kind.startswith("ivf"):
            lists = int(kind[3:])
            quantizer = faiss.IndexFlatIP(dim)
            ivf = faiss.IndexIVFScalarQuantizer(quantizer, dim, lists, faiss.ScalarQuantizer.QT_fp16,
                                                faiss.METRIC_INNER_PRODUCT)
            if training is None or len(training) < lists:
                raise ValueError(f"an IVF index with {lists} lists needs at least {lists} training vectors")
            ivf.train(np.ascontiguousarray(training, np.float32))
            ivf.nprobe = NPROBE
            self._quantizer = quantizer  # keep the Python object alive as long as the index
            self._index = ivf
        else:
            raise ValueError(f"unknown index kind {kind!r}")

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
        tmp.write_text(json.dumps(dict(stamp, kind=self.kind)))
        os.replace(tmp, stamp_path)

    @classmethod
    def load(cls, path: Path, stamp: dict, dim: int, sized: bool = True) -> "VectorIndex | None":
        """The saved index if its stamp matches `stamp` (and, if `sized`, its kind suits the size); else None."""
        import faiss

        try:
            saved = json.loads(path.with_suffix(".json").read_text())
            kind = saved.pop("kind", "flat")
            if saved != stamp or kind != (kind_for(stamp.get("count", 0)) if sized else "flat"):
                return None
            index = faiss.read_index(str(path))
        except (OSError, ValueError, RuntimeError):
            return None  # missing, truncated or corrupt: the caller rebuilds from SQLite
        if index.d != dim or index.ntotal != stamp.get("count"):
            return None
        if kind.startswith("ivf"):
            faiss.extract_index_ivf(index).nprobe = NPROBE
        out = cls.__new__(cls)
        out.dim, out.kind, out._index = dim, kind, index
        return out
