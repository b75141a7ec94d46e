"""Word .docx: paragraphs and tables in document order."""

from __future__ import annotations

import zipfile
from pathlib import Path

from kb.document import Document, LoadError, Page


def load(path: Path) -> Document:
    """The body's paragraphs and table rows, in order, as one page (Word has no fixed pages)."""
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(8)
        hint = " (an old binary .doc renamed?)" if head.startswith(b"\xd0\xcf\x11\xe0") else ""
        raise LoadError(f"not a DOCX file: starts with {head!r}{hint}")
    try:
        d = docx.Document(str(path))
    except (KeyError, ValueError, zipfile.BadZipFile) as e:
        raise LoadError(f"damaged DOCX: {e}") from None
    lines: list[str] = []
    for child in d.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            lines.append(Paragraph(child, d).text)
        elif tag == "tbl":
            for row in Table(child, d).rows:
                cells = []
                for cell in row.cells:
                    t = cell.text.strip().replace("\n", " ")
                    if not cells or cells[-1] != t:  # merged cells repeat their text
                        cells.append(t)
                lines.append(" | ".join(cells))
            lines.append("")
    text = "\n".join(lines)
    title = d.core_properties.title or ""
    return Document(Path(path), "docx", [Page(1, text)], title)
