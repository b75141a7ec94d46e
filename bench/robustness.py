"""Robustness: every file of the shared real-world corpora either indexed or failed with a reason.

Runs `KnowledgeBase.add` (what `zhiku add` and a drop on the window run) over
../shared/corpora/pdf-samples and office-and-web (~330 third-party files: encrypted, malformed,
scanned, exotic) in a scratch KB, and writes the outcome by reason. By default the files are read
and keyword-indexed only (`zhiku add --no-embed`): embedding the corpus's ~10,000 chunks takes
about an hour on 2 cores and says nothing about robustness; `--embed` does it anyway.

    python bench/robustness.py [--embed] [--time-limit S]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from retrieval import SHARED, ensure_models_dir  # noqa: E402

CORPORA = [(SHARED.parent / "corpora" / name).resolve() for name in ("pdf-samples", "office-and-web")]
RESULTS = ROOT / "bench" / "results"


def run(corpora: list[Path], embed: bool, time_limit: float | None) -> dict:
    """Index the corpora into a scratch KB; the outcome counted by reason."""
    ensure_models_dir()
    with tempfile.TemporaryDirectory() as home:
        os.environ["ZHIKU_HOME"] = home
        from kb.knowledge_base import KnowledgeBase

        kb = KnowledgeBase.create("robustness")
        started = time.monotonic()
        report = kb.add(corpora, embed=embed, time_limit_s=time_limit)
        took = time.monotonic() - started
        docs = kb.store.documents()
        pdfs = [Path(d["path"]) for d in docs if d["status"] != "failed" and d["path"].lower().endswith(".pdf")]
        out = {
            "files": len(report.added) + len(report.failed) + len(report.copies) + len(report.unchanged),
            "indexed": len(report.added), "copies": len(report.copies), "failed": len(report.failed),
            "skipped": len(report.skipped), "chunks": kb.store.count("chunks"),
            "vectors": kb.store.count("vectors"), "ocr_pages": sum(d["ocr_pages"] or 0 for d in docs),
            "seconds": round(took, 1), "embedded": embed,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "by_reason": report.by_reason(),
            "failed_files": sorted((str(Path(p).relative_to(CORPORA[0].parent)), why)
                                   for p, why in report.failed),
            "notes": sorted((str(Path(p).relative_to(CORPORA[0].parent)), why) for p, why in report.notes),
            "pdf_pages_by_extractor": extractors(pdfs),
        }
        kb.close()
    return out


def extractors(pdfs: list[Path]) -> dict[str, int]:
    """Text-layer pages of the indexed PDFs by the reading kept (kb.ingest.loaders.pdf_text), OCR off."""
    from kb.text.document import LoadError
    from kb.ingest.parse_worker import ParserProcess

    counts: dict[str, int] = {}
    parser = ParserProcess.shared()
    for path in pdfs:
        try:
            doc = parser.parse(path, ocr=False)[0]
        except LoadError:
            continue
        for page in doc.pages:
            key = page.extractor or "pypdf"
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def markdown(r: dict) -> str:
    """The summary table."""
    lines = [f"{r['files']} files read in {r['seconds']} s: {r['indexed']} indexed, {r['copies']} identical "
             f"copies, {r['failed']} failed; {r['skipped']} skipped in folders. {r['chunks']} chunks, "
             f"{r['ocr_pages']} pages by OCR, peak RSS {r['peak_rss_mb']} MB (this process; parsers run apart).",
             "", "| outcome | files |", "|---|---|", f"| indexed | {r['indexed']} |",
             f"| identical copy of an indexed file | {r['copies']} |"]
    lines += [f"| {why} | {n} |" for why, n in r["by_reason"].items()]
    if r.get("notes"):
        lines += ["", "Indexed with a note:", ""] + [f"- {p}: {why}" for p, why in r["notes"]]
    if r.get("pdf_pages_by_extractor"):
        lines += ["", "| PDF pages read by | pages |", "|---|---|"]
        lines += [f"| {k} | {n} |" for k, n in r["pdf_pages_by_extractor"].items()]
    return "\n".join(lines)


def main() -> int:
    """Run, print the table, and write JSON + Markdown to bench/results/."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embed", action="store_true", help="also embed every chunk (about an hour here)")
    ap.add_argument("--time-limit", type=float, default=None, help="per-file parser limit (default 120 s)")
    args = ap.parse_args()
    missing = [str(c) for c in CORPORA if not c.is_dir()]
    if missing:
        print(f"error: corpora not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    result = run(CORPORA, args.embed, args.time_limit)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"robustness-{stamp}.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))
    md = markdown(result)
    (RESULTS / f"robustness-{stamp}.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
