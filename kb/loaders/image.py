"""Images as documents: their text read by OCR (PNG, JPEG, WebP, TIFF pages, HEIC where supported)."""

from __future__ import annotations

from pathlib import Path

from kb.document import Document, LoadError, Page
from kb.loaders.options import Options

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
    """Each frame (TIFF pages) is a page of OCR text with its line boxes."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    from models.ocr import OCR

    if Path(path).suffix.lower() in (".heic", ".heif") and not heif_supported():
        raise LoadError("HEIC images need pillow-heif, which is not installed")
    if not options.ocr:
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
    ocr = OCR.shared()
    pages = []
    for i, frame in enumerate(frames, start=1):
        pages.append(Page.from_lines(i, ocr.read(frame)))
        options.page_done(i, len(frames))
    doc = Document(Path(path), "image", pages)
    if doc.text_chars == 0:
        raise LoadError("no text found in the image (OCR)")
    return doc
