"""PDF: text per page with pypdf, keeping the real page numbers."""

from __future__ import annotations

from pathlib import Path

from kb.document import Document, LoadError, Page


def load(path: Path, password: str | None = None) -> Document:
    """Read each page's text; encrypted files are tried with the empty password first."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    with open(path, "rb") as f:
        head = f.read(1024)
    if b"%PDF-" not in head:
        raise LoadError(f"not a PDF: starts with {head[:8]!r}")
    try:
        reader = PdfReader(str(path), strict=False)
        if reader.is_encrypted:
            try:
                ok = reader.decrypt(password or "")
            except (NotImplementedError, DependencyError) as e:
                raise LoadError(f"encrypted PDF: cannot decrypt ({e})") from None
            if not ok:
                raise LoadError("encrypted PDF: password needed")
        count = len(reader.pages)
    except FileNotDecryptedError:
        raise LoadError("encrypted PDF: password needed") from None
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise LoadError(f"damaged PDF: {e}") from None
    pages, first_error = [], None
    for i in range(count):
        try:
            text = reader.pages[i].extract_text() or ""
        except FileNotDecryptedError:
            raise LoadError("encrypted PDF: password needed") from None
        except Exception as e:  # one bad page costs that page, not the document
            text, first_error = "", first_error or e
        pages.append(Page(i + 1, text.replace("\x00", "")))
    if first_error is not None and not any(p.text.strip() for p in pages):
        raise LoadError(f"damaged PDF: {first_error}")
    try:
        title = str((reader.metadata or {}).get("/Title") or "")
    except Exception:  # metadata is optional; a broken info dict must not cost the text
        title = ""
    return Document(Path(path), "pdf", pages, title)
