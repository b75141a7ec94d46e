"""Watching linked folders: any change, after a quiet moment, triggers one sync."""

from __future__ import annotations

import threading
from typing import Callable, Iterable

QUIET_S = 2.0  # a copy of 3,000 files is one burst of events: sync once it has settled


class FolderWatcher:
    """Calls `on_change` (from a background thread) once changes in the folders have settled."""

    def __init__(self, folders: Iterable[str], on_change: Callable[[], None], quiet_s: float = QUIET_S) -> None:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        self.on_change, self.quiet_s = on_change, quiet_s
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:  # noqa: D102 (watchdog callback)
                if event.event_type in ("opened", "closed_no_write"):
                    return  # reads, including our own parsing, change nothing
                if event.is_directory and event.event_type == "modified":
                    return  # a folder's mtime follows its files, whose own events count
                name = str(getattr(event, "dest_path", "") or event.src_path).rsplit("/", 1)[-1]
                if name.startswith(".") or name.startswith("~$"):
                    return  # editors' temporary and lock files
                watcher._poke()

        self._observer = Observer()
        for f in folders:
            self._observer.schedule(Handler(), str(f), recursive=True)
        self._observer.daemon = True

    def _poke(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.quiet_s, self.on_change)
            self._timer.daemon = True
            self._timer.start()

    def start(self) -> "FolderWatcher":
        """Start watching."""
        self._observer.start()
        return self

    def stop(self) -> None:
        """Stop watching (pending notifications are dropped)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
        self._observer.stop()
        self._observer.join(5)

    def __enter__(self) -> "FolderWatcher":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
