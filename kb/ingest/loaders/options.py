"""What a loader may be told: OCR on or off, pictures or not, a password, where to report page progress."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass
class Options:
    """Per-job loader options; never stored (the password especially)."""

    ocr: bool = True
    pictures: bool = True  # collect the pictures inside documents for image search
    password: str | None = None
    progress: Callable[[int, int], None] | None = None  # (pages done, pages in all)

    def page_done(self, done: int, total: int) -> None:
        """Report that one more page was read (the worker's time limit counts from the last one)."""
        if self.progress is not None:
            self.progress(done, total)
