"""The image-search commands of the `zhiku` CLI: `zhiku images KB "words"` and `--like PATH`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.progress import ProgressPrinter


def clip_or_none(name: str | None = None):
    """The registered CLIP model (or `name`), or None when there is none: image search is optional."""
    from models.clip import ClipModel
    from models.inventory import ModelNotInstalled

    try:
        return ClipModel.default(name)
    except ModelNotInstalled:
        if name:
            raise
        return None


def cmd_images(args: argparse.Namespace) -> int:
    """Pictures in a knowledge base matching words or looking like an image file."""
    from kb.knowledge_base import KnowledgeBase

    if bool(args.query) == bool(args.like):
        print("error: give either words to search for or --like IMAGE", file=sys.stderr)
        return 2
    if args.like and not Path(args.like).is_file():
        print(f"error: {args.like}: no such image file", file=sys.stderr)
        return 1
    kb = KnowledgeBase.open(args.kb)
    kb.use_clip(clip_or_none(args.clip))
    if kb.clip is not None and (kb.pictures.count_pending() or kb.pictures.missing_documents()):
        kb.indexer().index_pictures(progress=ProgressPrinter())  # a CLIP model added since the last job
    search = kb.image_search()
    try:
        hits = search.by_image(Path(args.like), args.k) if args.like else search.by_text(args.query, args.k)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {args.like}: cannot read the image ({e})", file=sys.stderr)
        return 1
    warning = search.warning(args.query or "")
    if args.json:
        print(json.dumps({"query": args.query, "like": args.like, "warning": warning,
                          "results": [h.as_dict() for h in hits]}, ensure_ascii=False, indent=2))
        return 0
    if warning:
        print(f"note: {warning}", file=sys.stderr)
    if not hits:
        print("no pictures found" + ("" if kb.pictures.count() else " (this knowledge base has none)"))
    for n, h in enumerate(hits, start=1):
        why = [f"clip {h.clip_similarity:.3f}"] if h.clip_similarity is not None else []
        if h.text_rank:
            why.append(f"page text #{h.text_rank}")
        print(f"{n}. {h.score:.3f}  {h.picture.name} p.{h.page}  {h.picture.width}x{h.picture.height}  "
              f"({', '.join(why)})  {h.thumb}")
        for path, page in h.also_in:
            print(f"      also in {Path(path).name} p.{page}")
    return 0


def register(sub) -> None:
    """Add `zhiku images` to the parser."""
    im = sub.add_parser("images", help="find pictures in a knowledge base by words or by example")
    im.add_argument("kb")
    im.add_argument("query", nargs="?", help="what the picture shows (English for English-only CLIP models)")
    im.add_argument("--like", metavar="PATH", help="an image file: find pictures that look like it")
    im.add_argument("-k", type=int, default=12, help="results to show")
    im.add_argument("--clip", help="CLIP model name (default: the registered one)")
    im.add_argument("--json", action="store_true")
    im.set_defaults(func=cmd_images)
