"""What a loader produces: a document as a list of numbered pages of text."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class LoadError(Exception):
    """A file that cannot be read, with a reason specific to that file."""


@dataclass
class Page:
    """One page (or the whole text, for formats without pages), numbered from 1."""

    number: int
    text: str


@dataclass
class Document:
    """A loaded file: its kind, title and pages."""

    path: Path
    kind: str
    pages: list[Page] = field(default_factory=list)
    title: str = ""

    @property
    def text_chars(self) -> int:
        """Characters of text across all pages."""
        return sum(len(p.text.strip()) for p in self.pages)
