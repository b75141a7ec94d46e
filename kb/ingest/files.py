"""Which paths a knowledge base knows: the persisted indexing queue, linked folders, copies, moves.

The queue lives in the KB database so that a crash or a quit mid-way resumes at the next start;
a file leaves it in the same transaction that stores its content (or its failure). Files with the
same content are indexed once: the first path owns the document, the others are its copies. A file
whose content is already indexed under a path that no longer exists was moved: the document takes
the new path and keeps its chunks and vectors.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterable

from kb.ingest import loaders
from kb.text.file_names import readable
from kb.storage.contract import KnowledgeStore

NO_SUCH_PATH = "no such file or folder"


class Files:
    """Path bookkeeping for one store."""

    def __init__(self, store: KnowledgeStore) -> None:
        self.store, self.db = store, store.db
        # several computers add to a server knowledge base: a path missing here may be on another one
        self.shared = store.shared

    # ---- the indexing queue (its SQL is the backend's: kb.storage.sqlite.queue, .postgres.queue) --
    def enqueue(self, paths: Iterable[str]) -> None:
        """Remember files to index, so that an interrupted job can be resumed."""
        self.store.queue.enqueue(paths)

    def queued(self) -> list[str]:
        """Files still waiting to be indexed, oldest first."""
        return self.store.queue.queued()

    def waiting(self) -> list[str]:
        """Queued files, read without waiting for a job that is storing a document (for the window)."""
        return self.store.queue.waiting()

    def claim(self, paths: list[str]) -> list[str]:
        """The queued files this process indexes: all of them, except on a server knowledge base,
        where files another live desktop is indexing are left to it (kb.storage.leases)."""
        return self.store.queue.claim(paths)

    def renew(self) -> None:
        """Tell the other desktops this process still works on the files it claimed."""
        self.store.queue.renew()

    def dequeue(self, paths: Iterable[str]) -> None:
        """Forget queued files (done without storing anything, or given up)."""
        self.store.queue.dequeue(paths)

    # ---- linked folders (their SQL is the backend's: kb.storage.sqlite.paths, .postgres.paths) ---
    def link(self, folder: Path) -> str:
        """Link a folder: its files are kept in sync with the knowledge base."""
        path = str(Path(folder).expanduser().resolve())
        if not Path(path).is_dir():
            raise NotADirectoryError(f"not a folder: {path}")
        self.store.paths.link_folder(path)
        return path

    def unlink(self, folder: str) -> None:
        """Stop syncing a folder (its documents stay)."""
        self.store.paths.unlink_folder(str(folder))

    def folders(self) -> list[str]:
        """The linked folders."""
        return self.store.paths.folders()

    def under_folders(self, folders: Iterable[str] | None = None) -> list[str]:
        """Every known path (documents and copies) inside the given linked folders (default: all)."""
        roots = [str(f).rstrip(os.sep) + os.sep for f in (self.folders() if folders is None else folders)]
        return [p for p in self.all_paths() if any(p.startswith(r) for r in roots)]

    # ---- documents by content -----------------------------------------------------------------
    def all_paths(self) -> list[str]:
        """Every path the KB lists: documents and their copies."""
        return self.store.paths.all_paths()

    def by_hash(self, sha256: str) -> tuple[int, str] | None:
        """The indexed document with this content: (id, path), if any."""
        return self.store.paths.by_hash(sha256)

    def copies(self, doc_id: int) -> list[str]:
        """Other paths holding the same content as this document."""
        return self.store.paths.copies(doc_id)

    def copy_owner(self, path: str) -> int | None:
        """The document a path is a copy of, if it is one."""
        return self.store.paths.copy_owner(path)

    def add_copy(self, path: str, doc_id: int) -> None:
        """List `path` under an already indexed document with the same content."""
        self.store.paths.add_copy(path, doc_id)

    def move(self, doc_id: int, new_path: str, mtime: float | None = None) -> None:
        """Give a document a new path (a moved or renamed file); chunks and vectors stay."""
        self.store.paths.move(doc_id, new_path, readable(Path(new_path).name), mtime)

    def forget(self, path: str) -> str:
        """A path is gone: drop a copy, promote a copy to owner, or remove the document.

        Returns what happened: "copy", "promoted" or "removed" ("" when the path was unknown).
        """
        # (called by the job that owns the writes: nothing changes these rows between the reads and
        # the writes below)
        if self.copy_owner(path) is not None:
            self.store.paths.drop_copy(path)
            return "copy"
        doc_id = self.store.paths.document_id(path)
        if doc_id is None:
            return ""
        if heirs := self.copies(doc_id):
            self.move(doc_id, heirs[0])
            return "promoted"
        self.store.remove_document(doc_id)
        return "removed"


def collect(paths: Iterable[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand files and folders (recursively) into supported files, and what was skipped and why."""
    files: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            skipped.append((str(p), NO_SUCH_PATH))
        elif p.is_dir():
            for root, dirs, names in os.walk(p):
                hidden = [d for d in dirs if d.startswith(".")]
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                skipped += [(str(Path(root) / d), "hidden folder") for d in hidden]
                for n in sorted(names):
                    f = Path(root) / n
                    if n.startswith("."):
                        skipped.append((str(f), "hidden file"))
                    elif (why := not_a_file(f)) is not None:
                        skipped.append((str(f), why))
                    elif not loaders.supported(f):
                        skipped.append((str(f), loaders.KNOWN_UNREADABLE.get(
                            f.suffix.lower(), f"unsupported file type '{f.suffix or n}'")))
                    else:
                        files.append(f)
        elif (why := not_a_file(p)) is not None:
            skipped.append((str(p), why))
        else:
            files.append(p)  # named explicitly: try it, and report why if it cannot be read
    seen, unique = set(), []
    for f in files:
        key = str(f.resolve())
        if key not in seen:
            seen.add(key)
            unique.append(f.resolve())
    return unique, skipped


def not_a_file(path: Path) -> str | None:
    """Why `path` is not read (a named pipe, socket or device: opening one can block forever), or
    None for a regular file (or a link to one)."""
    try:
        mode = path.stat().st_mode
    except OSError as e:
        return f"cannot read: {e.strerror or e}"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a named pipe, not a file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not a file"
    return "not a regular file"
