"""OpenDocument text (.odt): headings, paragraphs and tables in order."""

from __future__ import annotations

import zipfile
from pathlib import Path

from kb.text.document import Document, LoadError, Page


def _text(node) -> str:
    out = []
    for child in node.childNodes:
        if child.nodeType == child.TEXT_NODE:
            out.append(child.data)
        elif child.qname[1] == "s":  # <text:s text:c="n"/>: n spaces
            out.append(" " * int(child.getAttribute("c") or 1))
        elif child.qname[1] in ("tab",):
            out.append("\t")
        elif child.qname[1] in ("line-break",):
            out.append("\n")
        elif child.qname[1] not in ("note", "annotation"):
            out.append(_text(child))
    return "".join(out)


def load(path: Path) -> Document:
    """The body's block text, one line per paragraph or table row."""
    from odf import dc, opendocument, table
    from odf.namespaces import TEXTNS

    if not zipfile.is_zipfile(path):
        raise LoadError("not an ODT file (not a zip archive)")
    try:
        doc = opendocument.load(str(path))
    except (KeyError, ValueError, zipfile.BadZipFile) as e:
        raise LoadError(f"damaged ODT: {e}") from None
    lines: list[str] = []

    def walk(node) -> None:
        for child in node.childNodes:
            if child.nodeType != child.ELEMENT_NODE:
                continue
            if child.qname == (TEXTNS, "p") or child.qname == (TEXTNS, "h"):
                lines.append(_text(child))
            elif child.qname == table.TableRow().qname:
                lines.append(" | ".join(_text(c).strip() for c in child.childNodes
                                        if c.nodeType == c.ELEMENT_NODE))
            else:
                walk(child)

    walk(doc.body)
    titles = doc.meta.getElementsByType(dc.Title)
    title = _text(titles[0]) if titles else ""
    return Document(Path(path), "odt", [Page(1, "\n".join(lines))], title)
