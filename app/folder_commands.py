"""`zhiku kb link|unlink` and `zhiku sync`: folders kept in step with a knowledge base."""

from __future__ import annotations

import argparse
import sys
import time

from app.cli_common import open_kb, print_report
from app.progress import ProgressPrinter


def cmd_link(args: argparse.Namespace) -> int:
    """Link a folder to a knowledge base and bring its files in."""
    kb = open_kb(args.kb)
    try:
        folder = kb.files.link(args.folder)
    except NotADirectoryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"linked {folder}")
    return cmd_sync(args) if not args.no_sync else 0


def cmd_unlink(args: argparse.Namespace) -> int:
    """Stop syncing a folder (its documents stay)."""
    kb = open_kb(args.kb)
    from pathlib import Path

    kb.files.unlink(str(Path(args.folder).expanduser().resolve()))
    print(f"unlinked {args.folder}")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    """Sync the linked folders once, or keep watching them with --watch."""
    kb = open_kb(args.kb)
    if not kb.files.folders():
        print(f"error: no folder is linked to {args.kb!r} (zhiku kb link {args.kb} FOLDER)", file=sys.stderr)
        return 2
    started = time.monotonic()
    print_report(kb.sync(progress=ProgressPrinter()), time.monotonic() - started)
    if not getattr(args, "watch", False):
        return 0
    import threading

    from kb.ingest.watcher import FolderWatcher

    changed = threading.Event()
    with FolderWatcher(kb.files.folders(), changed.set):
        print("watching for changes (Ctrl+C to stop)", file=sys.stderr)
        try:
            while True:
                changed.wait()
                changed.clear()
                started = time.monotonic()
                print_report(kb.sync(), time.monotonic() - started)
        except KeyboardInterrupt:
            return 0


def register(sub, ksub) -> None:
    """Add `kb link`, `kb unlink` and `sync` to the parser."""
    ln = ksub.add_parser("link", help="keep a folder in sync with a knowledge base")
    ln.add_argument("kb")
    ln.add_argument("folder")
    ln.add_argument("--no-sync", action="store_true", help="link only; sync later")
    ln.set_defaults(func=cmd_link)
    un = ksub.add_parser("unlink", help="stop syncing a folder (its documents stay)")
    un.add_argument("kb")
    un.add_argument("folder")
    un.set_defaults(func=cmd_unlink)
    sy = sub.add_parser("sync", help="pick up new, changed, moved and deleted files in linked folders")
    sy.add_argument("kb")
    sy.add_argument("--watch", action="store_true", help="keep watching and sync on every change")
    sy.set_defaults(func=cmd_sync)
