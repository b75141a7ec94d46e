"""The kinds of vector a knowledge base keeps, and the model each comes from (both backends).

Chunk vectors (e5) and picture vectors (CLIP) are kept the same way on either backend: a table of
half-precision vectors keyed by their owner row, with the model and dimension named in meta. The
SQLite backend adds a FAISS cache (kb.storage.sqlite.vectors), the PostgreSQL one a pgvector HNSW
index (kb.storage.postgres.vectors); both read where a kind lives from a `VectorKind`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kb.storage.contract import Database


@dataclass(frozen=True)
class VectorKind:
    """Where one kind of vector lives: its table, the rows it belongs to and its meta keys."""

    table: str  # "vectors"
    key: str  # "chunk_id"
    owner: str  # "chunks": the rows that have (or lack) a vector
    payload: str  # the owner column handed out with pending rows ("text", "sha256")
    index_file: str  # "index.faiss" (the SQLite backend's cache)
    generation: str  # meta key counting changes
    model: str  # meta key naming the model the vectors come from
    dim: str  # meta key of their dimension
    sized: bool = True  # the index type follows the count (IVF when large); else always exact


CHUNK_VECTORS = VectorKind(table="vectors", key="chunk_id", owner="chunks", payload="text",
                           index_file="index.faiss", generation="index_generation",
                           model="embed_model_id", dim="embed_dim")
# picture counts are small: their index is always exact
PICTURE_VECTORS = VectorKind(table="image_vectors", key="image_id", owner="images", payload="sha256",
                             index_file="images.faiss", generation="image_generation",
                             model="clip_model_id", dim="clip_dim", sized=False)


def blobs_to_array(blobs: list[bytes]) -> np.ndarray:
    """Stored float16 blobs as one float32 matrix."""
    return np.frombuffer(b"".join(blobs), np.float16).reshape(len(blobs), -1).astype(np.float32)


class BoundModel:
    """The model a kind of vector comes from, kept in the knowledge base's meta (both backends)."""

    db: Database
    kind: VectorKind

    @property
    def model_id(self) -> str | None:
        """The model the stored vectors come from."""
        return self.db.get_meta(self.kind.model)

    @property
    def dim(self) -> int:
        """The vectors' dimension (0 before a model is bound)."""
        return int(self.db.get_meta(self.kind.dim, 0))
