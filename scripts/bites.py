"""Does the suite bite? Break one core behaviour at a time on purpose, run the tests that should
notice, and report which of them fail (tests/README.md keeps the last run's table).

Each mutant is one exact text replacement in one source file; the file is restored afterwards
(also on Ctrl+C). A mutant that no test catches is a missing test.

    .venv/bin/python scripts/bites.py [NAME ...]     # all mutants, or the named ones
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    behaviour: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]  # pytest node ids or files: the tests that should notice


MUTANTS = [
    Mutant("floor", "the retrieval floor (a passage must beat the query's baseline by a margin)",
           "kb/search/retriever.py", "if apply_floor and not self._passes(hit, query_terms, query_lang):",
           "if False and apply_floor and not self._passes(hit, query_terms, query_lang):",
           ("tests/test_answer.py", "tests/test_kb_cli.py::test_ask_json_cites_file_and_page")),
    Mutant("digits", "the digits rule (a number the question writes that no source holds: not found)",
           "kb/answering/answerability.py", "    return [raw for raw, values in numbers(asked).items()",
           "    return [] and [raw for raw, values in numbers(asked).items()",
           ("tests/test_not_found.py",)),
    Mutant("checker-numbers", "the sentence checker's number test (a value the source does not hold)",
           "kb/answering/grounding.py",
           "missing = [n for n, vals in numbers(bare).items() if not vals & values and not vals & asked.values]",
           "missing = [n for n, vals in numbers(bare).items() if False]",
           ("tests/test_grounding.py", "tests/test_gui_answers.py")),
    Mutant("resume", "resume after kill -9 (what a killed job left queued is read by the next)",
           "kb/storage/sqlite/queue.py", 'return [r[0] for r in self.db.query("SELECT path FROM queue ORDER BY queued, rowid")]',
           "return []",
           ("tests/test_crash.py::test_sigkill_at_random_points_then_resume[3-rounds]", "tests/test_sync.py",
            "tests/test_store_contract.py",
            "tests/test_gui_indexing.py::test_a_job_interrupted_by_quitting_resumes_at_the_next_start")),
    Mutant("fifo", "a named pipe in a folder is skipped (opening one blocks forever)",
           "kb/ingest/files.py", "    if stat.S_ISFIFO(mode):\n", "    if False and stat.S_ISFIFO(mode):\n",
           ("tests/test_odd_files.py::test_pipes_and_sockets_in_a_folder_are_skipped_with_their_reason",
            "tests/test_odd_files.py::test_a_pipe_left_in_the_queue_by_an_older_version_fails_alone")),
    Mutant("gbk-names", "a GBK file name is kept exact in the database",
           "kb/text/file_names.py", "    return _STORED.sub(lambda m: chr(ord(m.group()) - _SHIFT), text)",
           "    return text", ("tests/test_odd_files.py",)),
    Mutant("int8-parity", "an int8 variant that strays from the float model is refused",
           "models/onnx_int8.py", "    if worst < MIN_PARITY:", "    if False:",
           ("tests/test_embedder_int8.py",)),
    Mutant("lease-takeover", "the leases of a killed process are taken over at once",
           "kb/storage/leases.py", "            out.append(holder)\n", "            pass\n",
           ("tests/test_pg_store.py::test_a_computer_killed_mid_add_leaves_work_that_the_next_run_takes_over_and_finishes",
            "tests/test_store_contract.py",
            "tests/test_crash.py::test_sigkill_at_random_points_then_resume[3-rounds]")),
    Mutant("api-key-log", "the API key never reaches a log",
           "models/remote_llm.py", '        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}\n',
           '        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}\n'
           '        log.debug("connecting to %s with %s", base_url, headers)\n',
           ("tests/test_model_server.py::test_the_api_key_stays_out_of_the_knowledge_base_and_the_logs",)),
    Mutant("ask-only", '"ask only these documents" limits retrieval to them',
           "kb/search/retriever.py", "        self.documents = documents  # a scope",
           "        self.documents = None  # a scope",
           ("tests/test_kb_cli.py::test_only_limits_search_to_named_documents_and_folders",
            "tests/test_gui_chat_tools.py::test_asking_only_some_documents_cites_only_them_until_cleared")),
]


def run(m: Mutant) -> tuple[list[str], float]:
    """Apply `m`, run its tests, restore the file; the failing tests' ids and the seconds taken."""
    path = ROOT / m.path
    original = path.read_text(encoding="utf-8")
    assert original.count(m.old) == 1, f"{m.name}: the text to break is not in {m.path} exactly once"
    path.write_text(original.replace(m.old, m.new), encoding="utf-8")
    started = time.monotonic()
    try:
        tests = [t for t in m.tests if (ROOT / t.split("::")[0]).exists()]
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", *tests],
                             cwd=ROOT, capture_output=True, text=True, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    finally:
        path.write_text(original, encoding="utf-8")
    failed = re.findall(r"^FAILED (\S+)", out.stdout, re.M)
    return failed, time.monotonic() - started


def main(argv=None) -> int:
    """Run the mutants; print a Markdown table; exit 1 if any went unnoticed."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="mutants to run (default: all)")
    args = p.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.names or m.name in args.names]
    print("| behaviour broken | where | tests that fail |\n|---|---|---|", flush=True)
    missed = 0
    for m in chosen:
        failed, took = run(m)
        missed += not failed
        caught = "<br>".join(f"`{f}`" for f in failed) or "**none: a missing test**"
        print(f"| {m.behaviour} | `{m.path}` | {caught} |", flush=True)
        print(f"<!-- {m.name}: {took:.0f} s -->", file=sys.stderr, flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
