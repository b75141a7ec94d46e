"""CLIP: images and text in one vector space, from a model folder the user chose.

No package ships CLIP weights, so there is no default: the user registers a folder with
`zhiku models add PATH --role clip` (or downloads OpenAI's ViT-B/32 through the catalog).
Supported: transformers CLIPModel / ChineseCLIPModel folders (config.json + weights + tokenizer +
preprocessor_config.json), and ViT CLIPs in open_clip's folder layout or OpenAI's .pt release,
converted once into a transformers folder (models.clip_convert) cached in the data folder.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from models import offline
from models.checksum import folder_model_id
from models.model_files import TRANSFORMERS_TYPES, detect_format
from models.model_files import model_id as make_model_id

__all__ = ["ClipModel", "detect_format"]

offline.enforce()

ImageLike = Union[str, Path, "PIL.Image.Image"]  # noqa: F821
_MULTILINGUAL_WORDS = {"chinese", "multilingual", "xlm", "mclip", "altclip", "taiyi", "zh", "cn"}


class ClipModel:
    """Embeds images and text with a CLIP model into L2-normalised float32 vectors."""

    def __init__(self, path: Path, model_id: str | None = None, device: str = "cpu") -> None:
        self.path = Path(path)
        self.format = detect_format(self.path)
        self.device = device
        self._model_id = model_id
        self._lock = threading.Lock()
        self._folder = self.path if self.format == "transformers" else self._converted()
        self._load_transformers()

    @classmethod
    def default(cls, name: str | None = None, **kwargs) -> "ClipModel":
        """The registered CLIP model (or `name`), verified before use."""
        from models.inventory import resolve

        found = resolve(name=name, role="clip")
        return cls(found.path, model_id=found.model_id, **kwargs)

    def _converted(self) -> Path:
        """The transformers folder converted from an open_clip folder or OpenAI .pt file (made once)."""
        from models.clip_convert import convert
        from models.paths import data_dir

        # a cache beside the knowledge bases: derived from the checkpoint, rebuilt if deleted
        folder = data_dir() / "cache" / "clip" / self.model_id.replace("@", "-")
        if not (folder / "config.json").exists():
            convert(self.path, folder)
        return folder

    def _load_transformers(self) -> None:
        import torch
        import transformers
        from transformers import AutoConfig, AutoTokenizer, CLIPImageProcessor

        cfg = AutoConfig.from_pretrained(self._folder, local_files_only=True)
        cls = getattr(transformers, TRANSFORMERS_TYPES[cfg.model_type])
        self._model = cls.from_pretrained(self._folder, local_files_only=True).to(self.device).eval()
        self._tokenizer = AutoTokenizer.from_pretrained(self._folder, local_files_only=True)
        # the slow processor works on PIL/numpy; the fast one needs torchvision
        self._processor = CLIPImageProcessor.from_pretrained(self._folder, local_files_only=True)
        self.dim = int(cfg.projection_dim)
        self.model_type = cfg.model_type
        self.context_length = int(getattr(cfg.text_config, "max_position_embeddings", 77))
        self._torch = torch

    @property
    def multilingual(self) -> bool:
        """True for CLIP models whose text tower reads Chinese (OpenAI's and LAION's CLIPs read English).

        Chinese-CLIP says so in its config; multilingual CLIPs in the plain CLIP layout say so in
        their names (the tokenizer alone cannot tell: byte-level BPE encodes any script).
        """
        tokens = re.split(r"[^a-z0-9]+", self.path.name.lower())  # whole words: "zh", not "zhang"
        words = set(tokens) | {a + b for a, b in zip(tokens, tokens[1:])}  # "m-clip" -> "mclip"
        return self.model_type == "chinese_clip" or bool(words & _MULTILINGUAL_WORDS)

    @property
    def model_id(self) -> str:
        """Folder name + weights hash: stored with every image index."""
        if self._model_id is None:
            self._model_id = folder_model_id(self.path) if self.path.is_dir() else _file_model_id(self.path)
        return self._model_id

    @staticmethod
    def _open(image: ImageLike):
        from PIL import Image

        if isinstance(image, (str, Path)):
            with Image.open(image) as im:
                return im.convert("RGB")
        return image.convert("RGB")

    def embed_images(self, images: Sequence[ImageLike], batch_size: int = 16) -> np.ndarray:
        """L2-normalised vectors [n, dim] for images (PIL images or paths)."""
        out = []
        for i in range(0, len(images), batch_size):
            batch = [self._open(im) for im in images[i:i + batch_size]]
            with self._lock, self._torch.inference_mode():
                pixels = self._processor(images=batch, return_tensors="pt")["pixel_values"]
                feats = self._model.get_image_features(pixel_values=pixels.to(self.device))
            out.append(_normalise(_as_tensor(feats)))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised vectors [n, dim] for text queries."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock, self._torch.inference_mode():
            enc = self._tokenizer(list(texts), padding=True, truncation=True,
                                  max_length=self.context_length, return_tensors="pt")
            enc = {k: v.to(self.device) for k, v in enc.items()}
            feats = self._model.get_text_features(**enc)
        return _normalise(_as_tensor(feats))


def _file_model_id(path: Path) -> str:
    from models.checksum import cached_sha256

    return make_model_id(path.name, cached_sha256(path))  # as `zhiku models add` names it


def _as_tensor(feats):
    # transformers 5 may return a model output object instead of a bare tensor
    if hasattr(feats, "pooler_output") and not hasattr(feats, "shape"):
        feats = feats.pooler_output
    return feats


def _normalise(feats) -> np.ndarray:
    v = feats.detach().float().cpu().numpy().astype(np.float32)
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return v
