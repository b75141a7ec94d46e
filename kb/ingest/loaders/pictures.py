"""Pictures inside documents (PDF pages, DOCX, PPTX slides, image files), for CLIP image search.

Runs in the parser process with the loaders. A picture that cannot be decoded is skipped, never
the document: its text matters more than one exotic image filter.
"""

from __future__ import annotations

import hashlib
import io
import logging
from typing import Callable, Iterable

from kb.text.document import Picture

MIN_SIDE = 64  # icons, bullets and rules are smaller than this on at least one side
THUMB_SIDE = 384  # CLIP sees 224 px (336 for large models); the grid shows 160 px
MAX_PER_DOCUMENT = 500  # a 2,000-page scan is not 2,000 pictures worth searching
MAX_PIXELS = 80_000_000
# Pictures read by OCR inside DOCX and PPTX: text smaller than this is not legible anyway, and a deck
# of photos should not cost minutes (OCR takes ~1-2 s a picture on two cores).
OCR_MIN_SIDE = 100
OCR_MAX_PER_DOCUMENT = 60

log = logging.getLogger(__name__)


class PictureCollector:
    """Collects a document's pictures: skips tiny ones and repeats, makes thumbnails."""

    def __init__(self, min_side: int = MIN_SIDE, limit: int = MAX_PER_DOCUMENT,
                 read_text: Callable | None = None) -> None:
        self.min_side, self.limit = min_side, limit
        self.read_text = read_text  # OCR for pictures of text (a slide that is one screenshot of a table)
        self.texts: dict[int, list[str]] = {}  # page -> lines read from its pictures
        self._read = 0
        self.pictures: list[Picture] = []
        self._seen: set[str] = set()
        self.skipped_small = 0
        self.skipped_repeats = 0
        self.unreadable = 0

    @property
    def full(self) -> bool:
        """True once the per-document limit is reached."""
        return len(self.pictures) >= self.limit

    def add_bytes(self, page: int, data: bytes) -> None:
        """An encoded image (PNG, JPEG, ...) found on `page`."""
        if self.full or not data:
            return
        sha = hashlib.sha256(data).hexdigest()
        if sha in self._seen:
            self.skipped_repeats += 1
            return
        self._seen.add(sha)
        try:
            from PIL import Image

            Image.MAX_IMAGE_PIXELS = MAX_PIXELS
            with Image.open(io.BytesIO(data)) as im:
                self._add(page, sha, im)
        except Exception as e:  # noqa: BLE001 (any decoder error: skip this picture only)
            self.unreadable += 1
            log.debug("picture on page %s skipped: %s", page, e)

    def add_image(self, page: int, image, sha: str | None = None) -> None:
        """A decoded PIL image found on `page` (hashed by its pixels unless `sha` is given)."""
        if self.full:
            return
        if sha is None:
            sha = hashlib.sha256(f"{image.mode}{image.size}".encode() + image.tobytes()).hexdigest()
        if sha in self._seen:
            self.skipped_repeats += 1
            return
        self._seen.add(sha)
        try:
            self._add(page, sha, image)
        except Exception as e:  # noqa: BLE001
            self.unreadable += 1
            log.debug("picture on page %s skipped: %s", page, e)

    def _add(self, page: int, sha: str, image) -> None:
        w, h = image.size
        if min(w, h) < self.min_side:
            self.skipped_small += 1
            return
        if self.read_text is not None and min(w, h) >= OCR_MIN_SIDE and self._read < OCR_MAX_PER_DOCUMENT:
            self._read += 1
            lines = [t for t in self.read_text(image) if t.strip()]
            if lines:
                self.texts.setdefault(page, []).extend(lines)
        self.pictures.append(Picture(page, sha, w, h, thumbnail(image)))

    def text_of(self, page: int) -> str:
        """What OCR read in the pictures of `page`, one line per line, or ""."""
        return "\n".join(self.texts.get(page, []))


def text_reader(options) -> Callable | None:
    """OCR for the pictures inside DOCX and PPTX files when the job has OCR on (and it is installed);
    each picture read counts as progress, so the parser's time limit is not spent on a deck of them."""
    if options is None or not options.ocr:
        return None
    from models.ocr import OCR, available

    if not available():
        return None
    done = [0]

    def read(image) -> list[str]:
        lines = [text for text, _box in OCR.shared().read(image)]
        done[0] += 1
        options.page_done(done[0], 0)
        return lines

    return read


def thumbnail(image, side: int = THUMB_SIDE) -> bytes:
    """A JPEG of at most `side` px on the longer side; transparency is laid on white."""
    from PIL import Image

    image.draft("RGB", (side, side))  # JPEG: decode at a reduced scale, much faster
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        image = flat
    else:
        image = image.convert("RGB")
    image.thumbnail((side, side))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def from_pdf_pages(pages: Iterable, collector: PictureCollector) -> None:
    """The images pypdf finds on each page (page numbers from 1)."""
    for number, page in enumerate(pages, start=1):
        if collector.full:
            return
        try:
            images = list(page.images)
        except Exception as e:  # noqa: BLE001 (a broken resource dictionary costs this page's pictures)
            log.debug("pictures of page %s skipped: %s", number, e)
            continue
        for img in images:
            try:
                data = img.data
                if _encoded(data):
                    collector.add_bytes(number, data)
                else:  # raw pixels: pypdf decodes them
                    collector.add_image(number, img.image, hashlib.sha256(data).hexdigest())
            except Exception as e:  # noqa: BLE001 (JBIG2, JPX without a decoder, damaged streams)
                collector.unreadable += 1
                log.debug("picture on page %s skipped: %s", number, e)


def from_docx(document, collector: PictureCollector) -> None:
    """Every picture part a Word document embeds (Word has no fixed pages: all on page 1)."""
    for rel in document.part.rels.values():
        if "image" in rel.reltype and not rel.is_external:
            collector.add_bytes(1, rel.target_part.blob)


def from_slides(deck, collector: PictureCollector) -> None:
    """Pictures on each slide (slide number = page), including those inside groups."""
    for number, slide in enumerate(deck.slides, start=1):
        for shape in _walk(slide.shapes):
            if collector.full:
                return
            try:
                blob = shape.image.blob
            except (AttributeError, ValueError, KeyError):
                continue  # not a picture, or a linked one that is not in the file
            collector.add_bytes(number, blob)


def _walk(shapes):
    for shape in shapes:
        yield shape
        if hasattr(shape, "shapes"):
            yield from _walk(shape.shapes)


def _encoded(data: bytes) -> bool:
    return data[:3] == b"\xff\xd8\xff" or data[:8] == b"\x89PNG\r\n\x1a\n" or data[:4] in (b"II*\x00", b"MM\x00*")
