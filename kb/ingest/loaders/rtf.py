"""Rich Text Format (.rtf): the text without control words; \\uN escapes keep Chinese intact."""

from __future__ import annotations

from pathlib import Path

from kb.text.document import Document, LoadError, Page


def load(path: Path) -> Document:
    """Plain text of the document (one page)."""
    from striprtf.striprtf import rtf_to_text

    data = Path(path).read_bytes()
    if not data.lstrip().startswith(b"{\\rtf"):
        raise LoadError(f"not an RTF file: starts with {data[:8]!r}")
    # RTF is 7-bit with escapes; code-page bytes (\'xx) are decoded by striprtf per \ansicpg
    text = rtf_to_text(data.decode("latin-1"), errors="ignore")
    return Document(Path(path), "rtf", [Page(1, text)])
