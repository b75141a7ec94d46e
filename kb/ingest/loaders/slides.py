"""PowerPoint .pptx: one page per slide — its title, text, tables, then the speaker notes."""

from __future__ import annotations

import zipfile
from pathlib import Path

from kb.text.document import Document, LoadError, Page
from kb.ingest.loaders.docx import check_ooxml
from kb.ingest.loaders.options import Options
from kb.ingest.loaders.pictures import PictureCollector, from_slides, text_reader


def _shape_lines(shape) -> list[str]:
    lines: list[str] = []
    if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        lines += [p.text for p in shape.text_frame.paragraphs if p.text.strip()]
    if getattr(shape, "has_table", False) and shape.has_table:
        for row in shape.table.rows:
            lines.append(" | ".join(c.text.strip().replace("\n", " ") for c in row.cells))
    for child in getattr(shape, "shapes", []):  # groups
        lines += _shape_lines(child)
    return lines


def load(path: Path, options: Options | None = None) -> Document:
    """Slide text in shape order, notes after a blank line."""
    from pptx import Presentation
    from pptx.exc import PackageNotFoundError

    check_ooxml(path, "PPTX", ".ppt")
    try:
        deck = Presentation(str(path))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise LoadError(f"damaged PPTX: {e}") from None
    pages = []
    for number, slide in enumerate(deck.slides, start=1):
        lines = []
        for shape in slide.shapes:
            lines += _shape_lines(shape)
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame.text.strip() if slide.notes_slide.notes_text_frame else ""
            if notes:
                lines += ["", notes]
        pages.append(Page(number, "\n".join(lines)))
    title = deck.core_properties.title or ""
    doc = Document(Path(path), "pptx", pages, title)
    if options is None or options.pictures:
        collector = PictureCollector(read_text=text_reader(options))
        from_slides(deck, collector)
        doc.pictures = collector.pictures
        for page in doc.pages:  # the words in a slide's pictures land on that slide
            if collector.text_of(page.number):
                page.text = "\n".join(t for t in (page.text, collector.text_of(page.number)) if t)
    return doc
