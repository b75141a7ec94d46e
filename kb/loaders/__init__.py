"""Loaders turn a file into a Document; each failure is a LoadError naming what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from kb.document import Document, LoadError
from kb.loaders import docx, html, pdf, text

LOADERS: dict[str, Callable[[Path], Document]] = {
    ".pdf": pdf.load,
    ".txt": text.load,
    ".text": text.load,
    ".md": text.load,
    ".markdown": text.load,
    ".docx": docx.load,
    ".html": html.load,
    ".htm": html.load,
}


def supported(path: Path) -> bool:
    """True if Zhiku has a loader for this file's type."""
    return Path(path).suffix.lower() in LOADERS


def load(path: Path) -> Document:
    """Load any supported file; raise LoadError with a file-specific reason otherwise."""
    path = Path(path)
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise LoadError(f"unsupported file type '{path.suffix or path.name}'")
    try:
        size = path.stat().st_size
    except OSError as e:
        raise LoadError(f"cannot read file: {e.strerror or e}") from None
    if size == 0:
        raise LoadError("empty file")
    try:
        doc = loader(path)
    except LoadError:
        raise
    except MemoryError:
        raise LoadError("file too large to read into memory") from None
    except Exception as e:  # a parser bug on one odd file must not stop the batch
        raise LoadError(f"could not read {path.suffix[1:].upper()} file: {type(e).__name__}: {e}") from None
    if doc.text_chars == 0:
        raise LoadError("no text found in the file" + (" (scanned pages need OCR)" if doc.kind == "pdf" else ""))
    return doc


__all__ = ["Document", "LoadError", "LOADERS", "load", "supported"]
