"""What a loader produces: a document as a list of numbered pages of text."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class LoadError(Exception):
    """A file that cannot be read, with a reason specific to that file."""


class PasswordNeeded(LoadError):
    """An encrypted file that the given password (or none) does not open."""


# read as text and cut into sections (kb.ingest.loaders.text)
TEXT_SUFFIXES = (".txt", ".text", ".md", ".markdown", ".rst", ".org", ".tex", ".log", ".json", ".ndjson",
                 ".jsonl", ".xml", ".yaml", ".yml")


def part_name(path) -> str:
    """What a "page" of this file is called in a citation: page, section (text files) or slide."""
    suffix = Path(path).suffix.lower()
    return "section" if suffix in TEXT_SUFFIXES else "slide" if suffix == ".pptx" else "page"


@dataclass
class Box:
    """Where a stretch of OCR text sits on its page: character offsets, and the box as page fractions."""

    start: int
    end: int
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass
class Page:
    """One page (or the whole text, for formats without pages), numbered from 1."""

    number: int
    text: str
    ocr: bool = False  # the text was read from an image, not a text layer
    boxes: list[Box] = field(default_factory=list)
    extractor: str = ""  # set when not the format's usual reader ("pdfium": pypdf misread the page)

    @classmethod
    def from_lines(cls, number: int, lines: list[tuple[str, tuple[float, float, float, float]]]) -> "Page":
        """An OCR page: recognised lines (text, box as page fractions) joined in reading order."""
        text, boxes = "", []
        for line, (x0, y0, x1, y1) in lines:
            if text:
                text += "\n"
            boxes.append(Box(len(text), len(text) + len(line), x0, y0, x1, y1))
            text += line
        return cls(number, text, True, boxes)


@dataclass
class Picture:
    """An image found in a document: its page, content hash, pixel size and a JPEG thumbnail."""

    page: int
    sha256: str  # of the image as stored in the file: equal hashes are the same picture
    width: int
    height: int
    thumb: bytes  # JPEG, longest side at most THUMB_SIDE: shown in the grid, and what CLIP embeds


@dataclass
class Document:
    """A loaded file: its kind, title, pages and the pictures found in it."""

    path: Path
    kind: str
    pages: list[Page] = field(default_factory=list)
    title: str = ""
    pictures: list[Picture] = field(default_factory=list)
    note: str = ""  # read, but not as its name says ("this is a PNG image named .pdf — it was read as an image")

    @property
    def text_chars(self) -> int:
        """Characters of text across all pages."""
        return sum(len(p.text.strip()) for p in self.pages)
