"""What a model file or folder is, before any runtime opens it, and how Zhiku names a model.

A model id is `name@hash`: the model's name and the first 12 hex digits of its weights' SHA-256
(plus `+variant` for a derived form, such as the int8 embedder). Knowledge bases record it so that
vectors of two models never mix. The checks here tell the user what is wrong with a path in
words (a CLIP folder without weights, a file that is not GGUF) instead of a runtime's stack trace.
"""

from __future__ import annotations

import json
from pathlib import Path

GGUF_MAGIC = b"GGUF"
# open_clip folders keep their weights under one of these names
WEIGHT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin", "pytorch_model.bin")
TRANSFORMERS_TYPES = {"clip": "CLIPModel", "chinese_clip": "ChineseCLIPModel"}
HASH_CHARS = 12


class InvalidModel(ValueError):
    """A path the user offered is not a model of the role they named."""


class NotGGUF(InvalidModel):
    """The file is not a GGUF model; llama.cpp is never shown it."""


def model_id(name: str, sha256: str, variant: str = "") -> str:
    """`name@hash` (+`+variant`): the id a knowledge base records for the model behind its vectors."""
    return f"{name}@{sha256[:HASH_CHARS]}" + (f"+{variant}" if variant else "")


def with_variant(mid: str, variant: str) -> str:
    """The id of a derived form of the model `mid` (its vectors differ slightly from the original's)."""
    return f"{mid}+{variant}" if variant else mid


def split_model_id(mid: str) -> tuple[str, str, str]:
    """(name, hash, variant) of a model id; hash and variant are "" where the id has none."""
    rest, _, variant = mid.partition("+")
    name, _, digest = rest.partition("@")
    return name, digest, variant


def check_gguf(path: Path) -> None:
    """Raise NotGGUF unless `path` is a readable file starting with the GGUF magic bytes."""
    path = Path(path)
    if not path.is_file():
        raise NotGGUF(f"{path}: no such model file")
    with open(path, "rb") as f:
        head = f.read(4)
    if head != GGUF_MAGIC:
        raise NotGGUF(f"{path}: not a GGUF model (starts with {head!r}, expected b'GGUF'); "
                      "Zhiku runs llama.cpp GGUF files only")


def detect_format(path: Path) -> str:
    """'transformers', 'open_clip' (a folder) or 'openai' (a .pt file); InvalidModel says what is wrong."""
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() in (".pt", ".pth", ".bin", ".safetensors"):
            return "openai"
        raise InvalidModel(f"{path}: a CLIP model is a folder, or an OpenAI/open_clip .pt checkpoint")
    if not path.is_dir():
        raise InvalidModel(f"{path}: no such CLIP folder or file")
    cfg = path / "config.json"
    if cfg.exists():
        try:
            model_type = json.loads(cfg.read_text(encoding="utf-8")).get("model_type")
        except ValueError as e:
            raise InvalidModel(f"{cfg}: unreadable config ({e})") from None
        if model_type in TRANSFORMERS_TYPES:
            return "transformers"
    if (path / "open_clip_config.json").exists():
        if any((path / n).is_file() for n in WEIGHT_NAMES):
            return "open_clip"
        raise InvalidModel(f"{path}: an open_clip folder without weights ({' or '.join(WEIGHT_NAMES)})")
    raise InvalidModel(f"{path}: not a CLIP folder (expected a transformers CLIP/Chinese-CLIP "
                       "config.json, or open_clip_config.json)")
