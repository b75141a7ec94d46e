"""How close `models.remote_llm.estimate_tokens` comes to Qwen's real token counts.

A model server with no tokenize endpoint, and no installed GGUF of its family, gets its prompt
budget from this estimate plus 25%. Printed per corpus: min, median and max of estimate / real,
and how many passages the estimate with its margin still under-counts (it must be none).

    .venv/bin/python bench/token_estimate.py
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

from models.chat_model import family_tokenizer  # noqa: E402
from models.remote_llm import estimate_tokens  # noqa: E402

MARGIN = 1.25


def passages(path: Path, n: int = 300) -> list[str]:
    """The first `n` passages of a bench passages.jsonl."""
    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line)["text"])
            if len(out) >= n:
                break
    return out


def main() -> None:
    """Print the estimate's ratio to the real count per corpus."""
    count = family_tokenizer("qwen")
    if count is None:
        sys.exit("no Qwen GGUF installed: run `make models`")
    seeds = [p for f in sorted((SHARED / "corpora" / "seeds-zh").glob("*.txt"))
             for p in f.read_text(encoding="utf-8").split("\n\n") if len(p) > 100]
    corpora = {"seeds-zh paragraphs": seeds,
               "xquad-en": passages(SHARED / "bench" / "xquad" / "rag_format_en" / "passages.jsonl"),
               "cmrc": passages(SHARED / "bench" / "cmrc2018-dev" / "passages.jsonl")}
    print("| corpus | passages | min | median | max | under-counted with +25% |\n|---|---|---|---|---|---|")
    for name, texts in corpora.items():
        r = [estimate_tokens(t) / count(t) for t in texts if t.strip()]
        print(f"| {name} | {len(r)} | {min(r):.2f} | {statistics.median(r):.2f} | {max(r):.2f} | "
              f"{sum(x * MARGIN < 1 for x in r)} |")


if __name__ == "__main__":
    main()
