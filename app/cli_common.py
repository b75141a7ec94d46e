"""What several `zhiku` commands share: opening a knowledge base by name, and the report of an indexing job."""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

from kb.text.file_names import readable


def worded_errors() -> tuple[type[Exception], ...]:
    """The errors whose message already tells people what to do (a server that does not answer, a
    model not installed or damaged): the CLI prints them as they are, MCP returns them as tool errors."""
    from kb.storage.contract import StoreError
    from models.checksum import ChecksumError
    from models.inventory import ModelNotInstalled
    from models.llm import NotGGUF
    from models.server_errors import ServerError

    return ModelNotInstalled, ChecksumError, NotGGUF, StoreError, ServerError


def app_version() -> str:
    """Zhiku's version, as installed ("dev" from a source tree that was never installed)."""
    try:
        return version("zhiku")
    except PackageNotFoundError:
        return "dev"


def open_kb(name: str, create: bool = False, embedder_name: str | None = None):
    """Open a knowledge base by name; with create=True, make it if it does not exist yet (saying so)."""
    from kb.knowledge_base import KnowledgeBase, list_names
    from models.embedder import Embedder

    if create and name not in list_names():
        import difflib

        close = difflib.get_close_matches(name, list_names(), n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        print(f"creating a new knowledge base {name!r}{hint}", file=sys.stderr)
        return KnowledgeBase.create(name, Embedder.default(embedder_name) if embedder_name else None)
    return KnowledgeBase.open(name)


def print_report(report, took: float) -> None:
    """One summary line for an indexing job, then every failed, skipped, moved and copied file."""
    extra = "".join(f", {len(v)} {k}" for k, v in (("moved", report.moved), ("copies", report.copies),
                                                    ("removed", report.removed)) if v)
    print(f"{len(report.added)} added, {len(report.updated)} re-indexed, {len(report.unchanged)} unchanged, "
          f"{len(report.failed)} failed{extra}; {report.chunks_added} chunks, {report.chunks_embedded} "
          f"embedded in {took:.1f}s" + (f" ({report.chunks_reused} unchanged chunks kept their vectors)"
                                        if report.chunks_reused else "")
          + (" (cancelled)" if report.cancelled else "")
          + (f"; {report.pictures_embedded} pictures embedded" if report.pictures_embedded else ""))
    for path, why in report.failed:
        print(f"  failed: {readable(path)}: {why}")
    for path, why in report.skipped:
        print(f"  skipped: {readable(path)}: {why}")
    for path, note in report.notes:
        print(f"  note: {readable(path)}: {note}")
    for old, new in report.moved:
        print(f"  moved: {readable(old)} -> {readable(new)} (vectors kept)")
    for path in report.copies:
        print(f"  copy: {readable(path)} (same content as an indexed file)")
    for path in report.removed:
        print(f"  removed: {readable(path)} (deleted from a linked folder)")
    if report.password_needed:
        print("  encrypted files: run again with --password to index them")
