"""`zhiku add` killed with SIGKILL at random points always reopens consistent and resumes.

Each round writes a few more files and starts `zhiku add` (which also resumes whatever the
previous, killed round left queued or unembedded), then kills it after a random delay. After
every kill the KB must open consistent (SQLite counts == FAISS count, FTS rows == chunks), and
vectors committed before a kill must never be computed again.
"""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import CountingEmbedder
from test_indexing import _consistent

from kb.files import Files
from kb.knowledge_base import KnowledgeBase

SENTENCES = ["知识库第{i}号文档讨论检索增强生成，以及如何把文档切成小段。",
             "Document {i} explains hybrid retrieval: keywords and vectors, fused by rank.",
             "第{i}段：向量索引只是缓存，SQLite 才是真实来源，崩溃之后可以重建。"]
ROUNDS = 10
FILES_PER_ROUND = 6


def _write_files(folder: Path, start: int, count: int) -> None:
    folder.mkdir(exist_ok=True)
    for i in range(start, start + count):
        body = "\n".join(SENTENCES[j % 3].format(i=f"{i}-{j}") for j in range(64))
        (folder / f"doc{i:03d}.txt").write_text(body, encoding="utf-8")


def _vectors(kb) -> dict[int, bytes]:
    return dict(kb.store.db.query("SELECT chunk_id, vec FROM vectors"))


def test_sigkill_at_random_points_then_resume(tmp_path, zhiku_home, e5):
    rng = random.Random(20261122)
    docs = tmp_path / "docs"
    KnowledgeBase.create("crash", e5).close()
    exe = Path(sys.executable).with_name("zhiku")
    committed: dict[int, bytes] = {}
    midway = 0
    for r in range(ROUNDS):
        _write_files(docs, r * FILES_PER_ROUND, FILES_PER_ROUND)
        proc = subprocess.Popen([str(exe), "add", "crash", str(docs)], env=dict(os.environ),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(2.0, 9.0))  # start-up is ~3 s: some kills land early, most mid-work
        proc.send_signal(signal.SIGKILL)  # no chance to clean up
        proc.wait(timeout=30)
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
    assert midway >= 5, f"only {midway} of {ROUNDS} kills landed mid-way"

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
    assert kb.store.count("documents") == ROUNDS * FILES_PER_ROUND
    assert {d["status"] for d in kb.store.documents()} == {"indexed"}
    assert not Files(kb.store).queued()
    hit = kb.search("doc 17-4 hybrid retrieval", k=3)[0]
    assert hit.name == "doc017.txt"
