"""Word .docx: paragraphs and tables in document order."""

from __future__ import annotations

import zipfile
from pathlib import Path

from kb.text.document import Document, LoadError, Page
from kb.ingest.loaders.options import Options
from kb.ingest.loaders.pictures import PictureCollector, from_docx, text_reader

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def check_ooxml(path: Path, kind: str, old_suffix: str) -> None:
    """Refuse what is not an Office Open XML zip, saying what it probably is."""
    if zipfile.is_zipfile(path):
        return
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\xd0\xcf\x11\xe0"):  # an OLE container: encrypted OOXML or the old format
        raise LoadError(f"password-protected {kind} (Office encryption), or an old binary "
                        f"{old_suffix} renamed: not readable")
    raise LoadError(f"not a {kind} file: starts with {head!r}")


def _table_rows(tbl) -> list[str]:
    # read the XML directly: python-docx's Table refuses rows with irregular grids
    rows = []
    for tr in tbl.iter(f"{_W}tr"):
        cells: list[str] = []
        for tc in tr.iter(f"{_W}tc"):
            t = " ".join("".join(x.text or "" for x in p.iter(f"{_W}t")) for p in tc.iter(f"{_W}p")).strip()
            if not cells or cells[-1] != t:  # merged cells repeat their text
                cells.append(t)
        rows.append(" | ".join(cells))
    return rows


def load(path: Path, options: Options | None = None) -> Document:
    """The body's paragraphs and table rows, in order, as one page (Word has no fixed pages)."""
    import docx
    from docx.text.paragraph import Paragraph

    check_ooxml(path, "DOCX", ".doc")
    try:
        d = docx.Document(str(path))
    except (KeyError, ValueError, zipfile.BadZipFile) as e:
        raise LoadError(f"damaged DOCX: {e}") from None
    lines: list[str] = []
    for child in d.element.body.iterchildren():
        if not isinstance(child.tag, str):  # comments and processing instructions
            continue
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            lines.append(Paragraph(child, d).text)
        elif tag == "tbl":
            lines += _table_rows(child)
            lines.append("")
    text = "\n".join(lines)
    title = d.core_properties.title or ""
    doc = Document(Path(path), "docx", [Page(1, text)], title)
    if options is None or options.pictures:
        collector = PictureCollector(read_text=text_reader(options))
        from_docx(d, collector)
        doc.pictures = collector.pictures
        if collector.text_of(1):  # the words in its pictures (Word has no fixed pages: page 1)
            doc.pages[0].text = "\n".join(t for t in (doc.pages[0].text, collector.text_of(1)) if t)
    return doc
