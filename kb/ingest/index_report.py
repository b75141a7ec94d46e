"""What an indexing job reports: progress while it runs, a report when it ends, and its cancel token."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


# reasons whose text after the first ": " names this file's particular defect
_DETAILED = ("damaged", "could not read", "cannot read", "not a ", "parser failed", "encrypted PDF: cannot")


class CancelToken:
    """Set from any thread; the indexer stops between files and between batches."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.keep_queue = False

    def cancel(self, keep_queue: bool = False) -> None:
        """Ask the running job to stop at the next safe point; keep_queue resumes it at the next start."""
        self.keep_queue = keep_queue
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """True once cancel() was called."""
        return self._event.is_set()


@dataclass
class Progress:
    """Where an indexing job is."""

    phase: str  # "reading" (files still parsed; embedding alongside), "embedding", or "pictures" (CLIP)
    files_done: int
    files_total: int
    chunks_done: int
    chunks_total: int
    current: str = ""
    eta_seconds: float | None = None


@dataclass
class IndexReport:
    """What an indexing job did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    password_needed: list[str] = field(default_factory=list)  # among failed: ask the user, try again
    moved: list[tuple[str, str]] = field(default_factory=list)  # (old path, new path): vectors kept
    copies: list[str] = field(default_factory=list)  # same content as an indexed file: listed, not re-embedded
    removed: list[str] = field(default_factory=list)  # gone from a linked folder
    notes: list[tuple[str, str]] = field(default_factory=list)  # indexed, with something to know ("a PNG named .pdf")
    chunks_added: int = 0
    chunks_reused: int = 0  # of chunks_added: same text as before a change, vector kept
    chunks_embedded: int = 0
    pictures_embedded: int = 0
    cancelled: bool = False

    def by_reason(self) -> dict[str, int]:
        """Failed and skipped files counted by reason, file-specific details folded together."""
        counts: dict[str, int] = {}
        for _path, why in self.failed + self.skipped:
            key = why
            if why.startswith(_DETAILED):
                key = why.split(": ", 1)[0]
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
