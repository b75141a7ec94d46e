"""Sentence embeddings through sentence-transformers, from a local folder only."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from models import offline
from models.checksum import folder_model_id
from models.model_files import split_model_id, with_variant
from models.tokenizer_files import shared_tokenizer

offline.enforce()

# Models that need instruction prefixes but whose folders don't declare them.
_KNOWN_PROMPTS = {"e5": {"query": "query: ", "passage": "passage: "}}


def _resolved(name: str | None) -> tuple[Path, str]:
    from models.inventory import resolve

    found = resolve(name=name, role="embedding")
    return found.path, found.model_id


class Embedder:
    """Embeds passages and queries with a sentence-transformers model; loads it on first use."""

    def __init__(self, path: Path, model_id: str | None = None, device: str = "cpu",
                 batch_size: int = 32, int8: bool = False) -> None:
        self.path = Path(path)
        self.int8 = int8  # run the model's int8 ONNX variant (models.onnx_int8) instead of PyTorch
        if not (self.path / "modules.json").exists() and not (self.path / "config.json").exists():
            raise FileNotFoundError(f"{self.path}: not a sentence-transformers model folder")
        self.device = device
        self.batch_size = batch_size
        self._model_id = model_id
        self._model = None
        self._counter = None  # token counting from tokenizer.json, without loading the model
        self._lock = threading.Lock()

    @classmethod
    def default(cls, name: str | None = None, int8: bool | None = None, **kwargs) -> "Embedder":
        """The catalog's default embedding model (or `name`), verified before use; with `int8`, its
        int8 ONNX variant (models.onnx_int8), and with `int8` None (what new knowledge bases get)
        the variant wherever the model has a sound one, else the float model. FileNotFoundError
        when `int8` asks for a variant that is missing or damaged.

        The variant indexes 2.07x as fast on two cores (bench/README.md) at 0.2 point of answer
        recall, and the float model's similarity floor suits it (`bench/tune.py --floor --int8`).
        """
        from models import onnx_int8

        path, model_id = _resolved(name)
        why = onnx_int8.problem(path, model_id) if int8 is not False else None
        if int8 and why:
            raise FileNotFoundError(why)
        return cls(path, model_id, int8=why is None if int8 is None else int8, **kwargs)

    @classmethod
    def for_model_id(cls, model_id: str, **kwargs) -> "Embedder":
        """The embedder whose vectors carry `model_id` (as a knowledge base records it)."""
        from models import onnx_int8

        name, _, variant = split_model_id(model_id)
        if variant in onnx_int8.OLDER_VARIANTS:
            raise onnx_int8.OlderVariant(f"its vectors come from an older int8 copy of {name} ({variant}) that this "
                                         f"version no longer makes")
        return cls.default(name, int8=variant == onnx_int8.VARIANT, **kwargs)

    @property
    def model(self):
        """The underlying SentenceTransformer (loaded lazily, once)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    if self.int8:
                        from models.onnx_int8 import OnnxEncoder, variant_dir

                        m = OnnxEncoder(variant_dir(self.path))
                    else:
                        from sentence_transformers import SentenceTransformer

                        m = SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
                    if not m.prompts.get("query") and not m.prompts.get("passage"):
                        for key, prompts in _KNOWN_PROMPTS.items():
                            if key in self.path.name.lower():
                                m.prompts = dict(prompts)
                    self._model = m
        return self._model

    @property
    def loaded(self) -> bool:
        """True once the model is in memory (the first embedding or a warm-up loaded it)."""
        return self._model is not None

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        """The longest input (in model tokens) the model reads; longer text is truncated."""
        return int(self.model.max_seq_length)

    @property
    def base_id(self) -> str:
        """The float model's id (folder name + weights hash)."""
        if self._model_id is None:
            self._model_id = folder_model_id(self.path)
        return self._model_id

    @property
    def model_id(self) -> str:
        """A stable id stored with every index built by this model: the float model's, plus "+int8v2"
        for the int8 variant, whose vectors differ slightly."""
        from models.onnx_int8 import VARIANT

        return with_variant(self.base_id, VARIANT if self.int8 else "")

    @property
    def prompts(self) -> dict:
        """The prefixes the model expects for queries and passages (may be empty)."""
        return dict(self.model.prompts)

    def _encode(self, texts: Sequence[str], prompt_name: str | None) -> np.ndarray:
        if prompt_name and prompt_name not in self.model.prompts:
            prompt_name = None
        with self._lock:
            vecs = self.model.encode(list(texts), prompt_name=prompt_name, batch_size=self.batch_size,
                                     normalize_embeddings=True, convert_to_numpy=True,
                                     show_progress_bar=False)
        return np.ascontiguousarray(vecs, dtype=np.float32).reshape(len(texts), -1)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors [n, dim] for document passages."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return self._encode(texts, "passage")

    def embed_query(self, text: str) -> np.ndarray:
        """L2-normalised float32 vector [dim] for a search query."""
        return self._encode([text], "query")[0]

    def embed_symmetric(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for comparing texts with each other (e5: the query prefix on both sides)."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return self._encode(texts, "query")

    @property
    def tokenizer_file(self) -> Path | None:
        """The model's fast-tokenizer file, when it has one (chunking needs only this, not the model)."""
        f = self.path / "tokenizer.json"
        return f if f.exists() else None

    def count_tokens(self, text: str) -> int:
        """Model tokens in `text`, without special tokens or prompts (for sizing chunks)."""
        if self._counter is None and self.tokenizer_file is not None:
            self._counter = token_counter(str(self.tokenizer_file))
        if self._counter is not None:
            return self._counter(text)
        tok = self.model.tokenizer
        fast = getattr(tok, "backend_tokenizer", None)  # the Rust tokenizer, without Python wrapping
        if fast is not None:
            return len(fast.encode(text, add_special_tokens=False).ids)
        return len(tok(text, add_special_tokens=False, truncation=False)["input_ids"])


def token_counter(tokenizer_file: str):
    """A function counting a model's tokens in a text (no special tokens), from its tokenizer.json
    alone: without torch (e5's loads once per process in ~0.3 s), so parser processes can size chunks too."""
    # tokenizer.json may cap at the model's 512; chunk sizing needs real counts
    tok = shared_tokenizer(tokenizer_file, truncate=None)
    return lambda text: len(tok.encode(text, add_special_tokens=False).ids)
