"""A `zhiku add` killed with SIGKILL mid-way reopens consistent and resumes without re-embedding."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import CountingEmbedder
from test_indexing import _consistent

from kb.knowledge_base import KnowledgeBase

SENTENCES = ["知识库第{i}号文档讨论检索增强生成，以及如何把文档切成小段。",
             "Document {i} explains hybrid retrieval: keywords and vectors, fused by rank.",
             "第{i}段：向量索引只是缓存，SQLite 才是真实来源，崩溃之后可以重建。"]


FILES = 48


def _write_corpus(folder: Path, files: int = FILES) -> None:
    # enough chunks for several committed embedding batches (Indexer.BATCH chunks each)
    folder.mkdir()
    for i in range(files):
        body = "\n".join(SENTENCES[j % 3].format(i=f"{i}-{j}") for j in range(64))
        (folder / f"doc{i:02d}.txt").write_text(body, encoding="utf-8")


def test_sigkill_during_add_then_resume(tmp_path, zhiku_home, e5):
    docs = tmp_path / "docs"
    _write_corpus(docs)
    env = dict(os.environ)
    exe = Path(sys.executable).with_name("zhiku")
    proc = subprocess.Popen([str(exe), "add", "crash", str(docs)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db = zhiku_home / "kbs" / "crash" / "kb.sqlite"
    killed_at = None
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
                    vectors = con.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
                    chunks = con.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
                    con.close()
                except sqlite3.OperationalError:
                    vectors = chunks = 0
                if 0 < vectors < chunks:
                    proc.send_signal(signal.SIGKILL)  # no chance to clean up
                    killed_at = vectors
                    break
            time.sleep(0.05)
    finally:
        if proc.poll() is None and killed_at is None:
            proc.kill()
        proc.wait(timeout=30)
    assert killed_at is not None, f"never caught it mid-way: {proc.stderr.read().decode()[-2000:]}"
    assert proc.returncode == -signal.SIGKILL

    kb = KnowledgeBase.open("crash", CountingEmbedder(e5))
    _consistent(kb.store)  # rebuilds the FAISS cache if the kill left it stale
    have = {cid: blob for cid, blob in kb.store.conn.execute("SELECT chunk_id, vec FROM vectors")}
    assert len(have) >= killed_at
    missing = kb.store.count("chunks") - len(have)
    assert missing > 0

    report = kb.add([docs])
    assert len(report.unchanged) == FILES and not report.added and not report.failed
    assert kb.embedder.passages == missing == report.chunks_embedded  # committed batches kept
    after = dict(kb.store.conn.execute("SELECT chunk_id, vec FROM vectors"))
    assert all(after[cid] == blob for cid, blob in have.items())
    _consistent(kb.store)
    assert {d["status"] for d in kb.store.documents()} == {"indexed"}
    hit = kb.search("doc 17-4 hybrid retrieval", k=3)[0]
    assert hit.name == "doc17.txt"
