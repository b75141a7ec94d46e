"""Make the Hugging Face libraries work from local folders only, never the network."""

from __future__ import annotations

import os

_FLAGS = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}


def enforce() -> None:
    """Set the offline flags before transformers/huggingface_hub are imported."""
    for key, value in _FLAGS.items():
        os.environ.setdefault(key, value)
