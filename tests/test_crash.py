"""`zhiku add` killed with SIGKILL at random points always reopens consistent and resumes.

Each round writes a few more files and starts `zhiku add` (which also resumes whatever the
previous, killed round left queued or unembedded), then kills it at a point drawn at random and
seen in the database as it happens: files queued, k of the round's files stored, or a batch of
vectors committed. After every kill the KB must open consistent (SQLite counts == FAISS count, FTS
rows == chunks), and vectors committed before a kill must never be computed again.

`make test` kills 3 rounds, one at each kind of point in a random order; the slow tier 10 at
points drawn at random.
"""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CountingEmbedder
from test_indexing import _consistent

from kb.ingest.files import Files
from kb.knowledge_base import KnowledgeBase

SENTENCES = ["知识库第{i}号文档讨论检索增强生成，以及如何把文档切成小段。",
             "Document {i} explains hybrid retrieval: keywords and vectors, fused by rank.",
             "第{i}段：向量索引只是缓存，SQLite 才是真实来源，崩溃之后可以重建。"]
FILES_PER_ROUND = 6


def _write_files(folder: Path, start: int, count: int) -> None:
    folder.mkdir(exist_ok=True)
    for i in range(start, start + count):
        body = "\n".join(SENTENCES[j % 3].format(i=f"{i}-{j}") for j in range(64))
        (folder / f"doc{i:03d}.txt").write_text(body, encoding="utf-8")


def _vectors(kb) -> dict[int, bytes]:
    return dict(kb.store.db.query("SELECT chunk_id, vec FROM vectors"))


def _counts(db: Path) -> dict[str, int]:
    """Rows the running job has committed, read from a second connection as another process would."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return {t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("queue", "documents", "vectors")}
    finally:
        con.close()


def _kill_when(proc: subprocess.Popen, db: Path, reached) -> dict[str, int]:
    """SIGKILL `proc` as soon as the database shows `reached(counts)`; the counts seen then."""
    deadline, seen = time.monotonic() + 600, {}
    while proc.poll() is None and time.monotonic() < deadline:
        seen = _counts(db)
        if reached(seen):
            break
        time.sleep(0.02)  # a poll interval, not a guess at how long anything takes
    proc.send_signal(signal.SIGKILL)  # no chance to clean up
    proc.wait(timeout=30)
    return seen


POINTS = ("queued", "stored", "embedded")


@pytest.mark.parametrize("rounds", [pytest.param(3, id="3-rounds"),
                                    pytest.param(10, id="10-rounds", marks=pytest.mark.slow)])
def test_sigkill_at_random_points_then_resume(tmp_path, zhiku_home, e5, rounds):
    rng = random.Random(20261122)
    docs = tmp_path / "docs"
    KnowledgeBase.create("crash", e5).close()
    db = zhiku_home / "kbs" / "crash" / "kb.sqlite"
    exe = Path(sys.executable).with_name("zhiku")
    committed: dict[int, bytes] = {}
    midway = 0
    # every kind of point at least once, whatever the round count
    points = rng.sample(POINTS, 3) + [rng.choice(POINTS) for _ in range(rounds - 3)]
    for r, point in enumerate(points):
        _write_files(docs, r * FILES_PER_ROUND, FILES_PER_ROUND)
        before = _counts(db)
        k = rng.randint(1, FILES_PER_ROUND - 1)
        reached = {"queued": lambda c: c["queue"] > before["queue"],  # this round's files are queued
                   "stored": lambda c: c["documents"] >= before["documents"] + k,
                   "embedded": lambda c: c["vectors"] > before["vectors"]}[point]
        proc = subprocess.Popen([str(exe), "add", "crash", str(docs)], env=dict(os.environ),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _kill_when(proc, db, reached)
        assert proc.returncode in (-signal.SIGKILL, 0), proc.stderr.read().decode()[-2000:]

        kb = KnowledgeBase.open("crash", e5)
        _consistent(kb.store)  # rebuilds the FAISS cache if the kill left it stale
        now = _vectors(kb)
        assert all(now[cid] == blob for cid, blob in committed.items() if cid in now)
        assert set(committed) <= set(now)  # nothing committed was lost
        committed = now
        if Files(kb.store).queued() or kb.store.count_pending():
            midway += 1
        kb.close()
    assert midway >= rounds - 1, f"only {midway} of {rounds} kills landed mid-way"

    kb = KnowledgeBase.open("crash", CountingEmbedder(e5))
    missing = kb.store.count_pending()
    queued = set(Files(kb.store).queued())
    report = kb.add([docs])
    assert not report.failed
    assert set(report.added) | set(report.updated) <= queued  # only files the kills left unread
    unread_chunks = report.chunks_added
    assert kb.embedder.passages == missing + unread_chunks == report.chunks_embedded
    after = _vectors(kb)
    assert all(after[cid] == blob for cid, blob in committed.items())
    _consistent(kb.store)
    assert kb.store.count("documents") == rounds * FILES_PER_ROUND
    assert {d["status"] for d in kb.store.documents()} == {"indexed"}
    assert not Files(kb.store).queued()
    # "17-40" stands in doc017 only ("4-17" of doc004 would match a query for 17-4 as well)
    hit = kb.search("Document 17-40 explains hybrid retrieval", k=3)[0]
    assert hit.name == "doc017.txt"
