"""Images as documents: their text read by OCR (PNG, JPEG, WebP, TIFF pages, HEIC where supported)."""

from __future__ import annotations

from pathlib import Path

from kb.text.document import Document, LoadError, Page
from kb.ingest.loaders.options import Options
from kb.ingest.loaders.pictures import PictureCollector
from models.checksum import sha256_file

SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".heic", ".heif")
MAX_PIXELS = 80_000_000  # a decompression bomb is refused, not decoded


def heif_supported() -> bool:
    """True when HEIC/HEIF images can be opened (pillow-heif installed)."""
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        return True
    except ImportError:
        return False


def load(path: Path, options: Options) -> Document:
    """Each frame (TIFF pages) is a page: its OCR text with line boxes, and the frame as a picture.

    An image with no text (a photo) is still a document: image search finds it by its picture.
    """
    from PIL import Image, ImageSequence, UnidentifiedImageError

    if Path(path).suffix.lower() in (".heic", ".heif") and not heif_supported():
        raise LoadError("HEIC images need pillow-heif, which is not installed")
    if not options.ocr and not options.pictures:
        raise LoadError("image without a text layer: turn OCR on to index it")
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        img = Image.open(path)
        frames = [f.copy() for f in ImageSequence.Iterator(img)][:200]
    except UnidentifiedImageError:
        raise LoadError("not an image Pillow can read (damaged or unknown format)") from None
    except Image.DecompressionBombError as e:
        raise LoadError(f"image too large: {e}") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise LoadError(f"damaged image: {e}") from None
    pages = []
    if options.ocr:
        from models.ocr import OCR

        ocr = OCR.shared()
        for i, frame in enumerate(frames, start=1):
            pages.append(Page.from_lines(i, ocr.read(frame)))
            options.page_done(i, len(frames))
    else:
        pages = [Page(i, "") for i in range(1, len(frames) + 1)]
    doc = Document(Path(path), "image", pages)
    if options.pictures:
        collector = PictureCollector()
        whole = sha256_file(Path(path)) if len(frames) == 1 else None  # the same bytes inside a DOCX match
        for i, frame in enumerate(frames, start=1):
            collector.add_image(i, frame, whole)
        doc.pictures = collector.pictures
    if doc.text_chars == 0 and not doc.pictures:
        if not options.ocr:
            raise LoadError("image without a text layer: turn OCR on to index it")
        raise LoadError("no text found in the image (OCR), and it is too small to search as a picture"
                        if options.pictures else "no text found in the image (OCR)")
    return doc
