"""Loaders turn a file into a Document; each failure is a LoadError naming what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from kb.text.document import TEXT_SUFFIXES, Document, LoadError, PasswordNeeded
from kb.ingest.loaders import docx, email, epub, html, image, odt, pdf, rtf, sheet, slides, text
from kb.ingest.loaders.options import Options


LOADERS: dict[str, Callable[..., Document]] = {
    ".pdf": pdf.load,
    ".docx": docx.load,
    ".html": html.load,
    ".htm": html.load,
    ".xhtml": html.load,
    ".epub": epub.load,
    ".pptx": slides.load,
    ".xlsx": sheet.load_xlsx,
    ".xlsm": sheet.load_xlsx,
    ".csv": sheet.load_csv,
    ".tsv": sheet.load_csv,
    ".odt": odt.load,
    ".rtf": rtf.load,
    ".eml": email.load,
    **{s: text.load for s in TEXT_SUFFIXES},
    **{s: image.load for s in image.SUFFIXES},
}
# loaders that take the job's options (OCR, password, page progress)
_WITH_OPTIONS = {pdf.load, image.load, docx.load, slides.load}
# Formats people have that we recognise but cannot read: a specific reason beats "unsupported".
KNOWN_UNREADABLE = {
    ".doc": "old binary Word .doc: save it as .docx to index it",
    ".ppt": "old binary PowerPoint .ppt: save it as .pptx to index it",
    ".xls": "old binary Excel .xls: save it as .xlsx to index it",
    ".msg": "Outlook .msg: save the message as .eml to index it",
}


def supported(path: Path) -> bool:
    """True if Zhiku has a loader for this file's type."""
    return Path(path).suffix.lower() in LOADERS


def load(path: Path, options: Options | None = None) -> Document:
    """Load any supported file; raise LoadError with a file-specific reason otherwise."""
    path = Path(path)
    options = options or Options()
    suffix = path.suffix.lower()
    loader = LOADERS.get(suffix)
    if loader is None:
        raise LoadError(KNOWN_UNREADABLE.get(suffix, f"unsupported file type '{path.suffix or path.name}'"))
    try:
        size = path.stat().st_size
    except OSError as e:
        raise LoadError(f"cannot read file: {e.strerror or e}") from None
    if size == 0:
        raise LoadError("empty file")
    try:
        doc = loader(path, options) if loader in _WITH_OPTIONS else loader(path)
    except LoadError:
        raise
    except MemoryError:
        raise LoadError("file too large to read into memory") from None
    except RecursionError:
        raise LoadError(f"{suffix[1:].upper()} file nested too deeply to read") from None
    except Exception as e:  # a parser bug on one odd file must not stop the batch
        raise LoadError(f"could not read {suffix[1:].upper()} file: {type(e).__name__}: {e}") from None
    if doc.text_chars == 0 and not (doc.kind == "image" and doc.pictures):
        hint = ""
        if doc.kind == "pdf":
            hint = " (OCR found none either)" if options.ocr else " (scanned pages need OCR: turn it on)"
        raise LoadError("no text found in the file" + hint)
    return doc


__all__ = ["Document", "LoadError", "LOADERS", "Options", "PasswordNeeded", "load", "supported"]
