"""One Markdown report from the latest retrieval, latency and speed results in bench/results/."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def latest(prefix: str) -> tuple[Path, object] | None:
    """The newest results file of one kind, parsed."""
    files = sorted(RESULTS.glob(f"{prefix}-*.json"))
    return (files[-1], json.loads(files[-1].read_text())) if files else None


def table(rows: list[dict], cols: list[str]) -> list[str]:
    """A Markdown table of `cols` from `rows`."""
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return out


def machine() -> str:
    """Cores, memory and CPU model of this machine."""
    import os

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    mem = ""
    if Path("/proc/meminfo").exists():
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB"
    return f"{os.cpu_count()} cores ({cpu}){mem}, Python {platform.python_version()}"


def main() -> int:
    """Write bench/results/report.md and print it."""
    lines = [f"Machine: {machine()}", ""]
    found = latest("retrieval")
    if found:
        path, rows = found
        lines += [f"### Retrieval quality ({path.name})", ""]
        budgets = sorted({k for r in rows for k in r if k.endswith("tok")}, key=lambda k: int(k[2:-3]))
        lines += table(rows, ["dataset", "system", "questions", "chunks", "R@1", "R@5", "R@10", "MRR",
                              *budgets, "ms_per_query"]) + [""]
    found = latest("latency")
    if found:
        path, rows = found
        lines += [f"### Retrieval latency and memory ({path.name})", ""]
        lines += table(rows, ["size", "index", "index_build_s", "p50_ms", "p95_ms", "lexical_p50_ms",
                              "dense_p50_ms", "ivf_recall@10", "rss_model_mb", "rss_peak_mb"]) + [""]
    speed_files = sorted(RESULTS.glob("speed-*.json"))
    if speed_files:  # parts may come from separate runs: the newest result of each part wins
        data = {}
        for f in speed_files:
            data.update(json.loads(f.read_text()))
        lines += [f"### Speed ({', '.join(f.name for f in speed_files[-3:])})", "", "```",
                  json.dumps(data, indent=1), "```", ""]
    answers = sorted(RESULTS.glob("answers-*.md"))
    if answers:
        lines += [f"### Answers ({answers[-1].name})", "", answers[-1].read_text(), ""]
    robust = sorted(RESULTS.glob("robustness-*.md"))
    if robust:
        lines += [f"### Robustness ({robust[-1].name})", "", robust[-1].read_text(), ""]
    out = RESULTS / "report.md"
    RESULTS.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
