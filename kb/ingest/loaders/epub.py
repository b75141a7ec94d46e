"""EPUB e-books: one page per chapter, in reading (spine) order."""

from __future__ import annotations

import zipfile
from pathlib import Path

from kb.text.document import Document, LoadError, Page
from kb.ingest.loaders.html import main_text


def load(path: Path) -> Document:
    """Chapters' main text; the book's title from its metadata."""
    import ebooklib
    from ebooklib import epub

    if not zipfile.is_zipfile(path):
        raise LoadError("not an EPUB (not a zip archive)")
    try:
        book = epub.read_epub(str(path), options={"ignore_ncx": True})
    except (epub.EpubException, KeyError, zipfile.BadZipFile) as e:
        raise LoadError(f"damaged EPUB: {e}") from None
    items = {item.get_id(): item for item in book.get_items_of_type(ebooklib.ITEM_DOCUMENT)}
    order = [items[i] for i, _linear in book.spine if i in items] or list(items.values())
    pages = []
    for item in order:
        text, _title = main_text(item.get_content())
        if text.strip():
            pages.append(Page(len(pages) + 1, text))
    titles = book.get_metadata("DC", "title")
    return Document(Path(path), "epub", pages, titles[0][0] if titles else "")
