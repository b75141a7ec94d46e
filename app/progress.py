"""A one-line progress bar with ETA for indexing jobs on a terminal."""

from __future__ import annotations

import sys
import time

from app.units import clock
from kb.text.file_names import readable


class ProgressPrinter:
    """Callable for kb.ingest.indexer progress: redraws a bar on a terminal, prints sparse lines otherwise."""

    def __init__(self, stream=None, width: int = 24) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = self.stream.isatty()
        self._last = 0.0
        self._phase = None

    def __call__(self, p) -> None:
        done, total = (p.files_done, p.files_total) if p.phase == "reading" else (p.chunks_done, p.chunks_total)
        unit = {"reading": "files", "pictures": "pictures"}.get(p.phase, "chunks")
        now = time.monotonic()
        final = total and done >= total
        if not self.tty:
            if p.phase != self._phase or final:
                self._phase = p.phase
                if total:
                    print(f"{p.phase}: {done}/{total} {unit}", file=self.stream)
            return
        if now - self._last < 0.1 and not final:
            return
        self._last = now
        filled = int(self.width * done / total) if total else 0
        bar = "#" * filled + "." * (self.width - filled)
        current = readable(p.current).rsplit("/", 1)[-1][:40]
        line = f"\r{p.phase:9} [{bar}] {done}/{total} {unit}  ETA {clock(p.eta_seconds)}  {current}"
        self.stream.write(line.ljust(100)[:120])
        if final:
            self.stream.write("\n")
        self.stream.flush()
