"""The storage contract, run unchanged against both backends: SQLite + FAISS on this computer and
PostgreSQL + pgvector on a real (embedded) server. Where the dialects differ underneath — SQLite's
REPLACE deletes and cascades, PostgreSQL's ON CONFLICT updates in place; names that are not UTF-8;
NUL characters, which PostgreSQL text cannot hold; two writers at once — the engine must see the same
thing. This suite is what a rewrite of either backend has to keep passing (issue 30)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from kb.storage.sqlite.store import Store
from kb.text.chunking import Chunk
from kb.text.document import Document, Page, Picture

DIM = 8


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory):
    from test_pg_store import _start

    server, url = _start(tmp_path_factory.mktemp("contract-pg"))
    yield url
    server.cleanup()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path, monkeypatch):
    monkeypatch.setenv("ZHIKU_KEYRING", "file")
    settings = {"name": f"contract_{tmp_path.name}"[-40:], "embed_model_id": "test-model@0", "embed_dim": DIM,
                "chunk_tokens": 64, "overlap_tokens": 8}
    if request.param == "sqlite":
        s = Store.create(tmp_path / "kb", settings)
    else:
        from kb.storage.postgres.store import PgStore

        s = PgStore.create(tmp_path / "kb", settings, request.getfixturevalue("pg_url"))
    yield s
    s.close()


def _doc(path: str, *texts: str) -> tuple[Document, list[Chunk]]:
    pages = [Page(n, t) for n, t in enumerate(texts, 1)]
    chunks = [Chunk(p.number, 0, len(p.text), p.text, len(p.text.split())) for p in pages]
    return Document(Path(path), "text", pages, title=Path(path).stem), chunks


def _put(store, path: str, *texts: str) -> tuple[int, int]:
    doc, chunks = _doc(path, *texts)
    return store.put_document(path, doc, chunks, sha256="0" * 64, size=sum(map(len, texts)), mtime=1.0)


def _embed_all(store) -> None:
    pending = store.pending_chunks(1000)
    ids = [cid for cid, _ in pending]
    rng = np.random.default_rng(len(ids))
    vecs = rng.normal(size=(len(ids), DIM)).astype(np.float32)
    store.add_vectors(ids, vecs / np.linalg.norm(vecs, axis=1, keepdims=True))


def _hits(store, query: str) -> set[str]:
    found = store.lexical_search(query, 10)
    return {r.text for r in store.chunks([cid for cid, _ in found]).values()}


def test_a_document_put_again_replaces_its_content_and_keeps_unchanged_chunks_vectors(store):
    doc_id, pending = _put(store, "/docs/a.txt", "the lighthouse keeper", "copper lanterns at dusk")
    assert pending == 2 and store.document("/docs/a.txt")["status"] == "embedding"
    _embed_all(store)
    assert store.document("/docs/a.txt")["status"] == "indexed" and store.count("vectors") == 2
    keeper = store.lexical_search("lighthouse keeper", 1)[0][0]
    before = store.vector(keeper)
    # page 1 unchanged, page 2 rewritten: one vector kept, one to compute
    again, pending = _put(store, "/docs/a.txt", "the lighthouse keeper", "silk and tea by the canal")
    assert again == doc_id and pending == 1  # the same document row on both backends
    assert store.count("documents") == 1 and store.count("chunks") == 2 and store.count("vectors") == 1
    assert _hits(store, "copper lanterns") == set() and _hits(store, "canal") == {"silk and tea by the canal"}
    now = store.lexical_search("lighthouse keeper", 1)[0][0]
    assert np.array_equal(store.vector(now), before)  # carried over, not recomputed


def test_removing_a_document_takes_its_pages_chunks_vectors_and_terms(store):
    doc_id, _ = _put(store, "/docs/b.txt", "river mountain", "orchard compass")
    _embed_all(store)
    other, _ = _put(store, "/docs/c.txt", "meadow thunder")
    store.remove_document(doc_id)
    assert store.document("/docs/b.txt") is None and store.count("documents") == 1
    assert store.count("chunks") == 1 and store.count("vectors") == 0 and store.count_pending() == 1
    assert store.page_text(doc_id, 1) is None and store.page_text(other, 1) == "meadow thunder"
    assert _hits(store, "orchard") == set()


def test_a_failure_recorded_over_a_document_drops_its_content_and_keeps_the_reason(store):
    doc_id, _ = _put(store, "/docs/d.txt", "glacier saddle")
    store.put_failure("/docs/d.txt", "damaged: no pages could be read", sha256=None, size=10, mtime=2.0)
    row = store.document("/docs/d.txt")
    assert row["id"] == doc_id and row["status"] == "failed" and row["error"] == "damaged: no pages could be read"
    assert store.count("chunks") == 0 and _hits(store, "glacier") == set()


def test_names_that_are_not_utf8_and_text_with_nul_characters_come_back_as_they_went_in(store):
    gbk = b"/docs/\xd6\xaa\xbf\xe2.txt".decode("utf-8", "surrogateescape")  # 知库.txt written in GBK
    doc_id, _ = _put(store, gbk, "harbour\x00records", "港口 丝绸")
    assert store.document(gbk)["id"] == doc_id
    assert [d["path"] for d in store.documents()] == [gbk]
    assert store.page_text(doc_id, 2) == "港口 丝绸"
    # a NUL in a page's text: PostgreSQL text cannot hold one; both backends give back U+FFFD, one
    # character for one, so the chunk's offsets into the page still hold
    assert store.page_text(doc_id, 1) == "harbour\ufffdrecords"
    assert _hits(store, "harbour") == {"harbour\ufffdrecords"}


def _picture(seed: int, page: int) -> Picture:
    from io import BytesIO

    from PIL import Image

    out = BytesIO()
    Image.new("RGB", (24, 16), (seed * 40 % 256, 90, 200 - seed)).save(out, "JPEG")
    return Picture(page, f"{seed:064x}", 240, 160, out.getvalue())


def test_pictures_rows_thumbnails_and_vectors_follow_their_documents(store):
    doc, chunks = _doc("/docs/album.pdf", "harbour at dawn", "the old mill")
    doc.kind, doc.pictures = "pdf", [_picture(1, 1), _picture(2, 2), _picture(3, 2), _picture(1, 2)]
    doc_id, _ = store.put_document("/docs/album.pdf", doc, chunks, sha256="1" * 64, size=9, mtime=1.0)
    pics = store.pictures
    # a picture repeated inside one document is kept once (its first place)
    assert pics.count() == 3 and pics.missing_documents() == []
    assert [(r.page, r.sha256) for r in pics.on_pages([(doc_id, 2)])] == [(2, f"{2:064x}"), (2, f"{3:064x}")]
    # one thumbnail file per picture content, readable by this desktop
    row = pics.rows([pics.on_pages([(doc_id, 1)])[0].id])
    thumb = next(iter(row.values())).thumb
    assert thumb.read_bytes() == _picture(1, 1).thumb
    thumb.unlink()  # this desktop's copy lost: a server store fetches it again, a local one has none
    assert pics.thumb_path(f"{1:064x}").exists() == store.shared
    # CLIP vectors, bound to a model, searched, and gone with their pictures
    pics.vectors.bind("clip-test@0", 4)
    assert pics.count_pending() == 3
    ids = [i for i, _ in pics.vectors.pending(10)]
    pics.add_vectors(ids, np.eye(4, dtype=np.float32)[:3])
    assert pics.count_pending() == 0 and pics.search(np.eye(4, dtype=np.float32)[1], 1)[0][0] == ids[1]
    # the document read again with one picture left: the others' rows and vectors go, unused thumbnails too
    doc.pictures = [_picture(2, 2)]
    store.put_document("/docs/album.pdf", doc, chunks, sha256="2" * 64, size=9, mtime=2.0)
    assert pics.count() == 1 and store.count("image_vectors") == 0
    assert not pics.thumb_path(f"{1:064x}").exists() and pics.thumb_path(f"{2:064x}").exists()
    store.remove_document(doc_id)
    assert pics.count() == 0 and not pics.thumb_path(f"{2:064x}").exists()


def test_two_writers_at_once_lose_nothing(store):
    errors = []

    def write(tag: str) -> None:
        try:
            for i in range(5):
                _put(store, f"/docs/{tag}-{i}.txt", f"{tag} note {i} violin", f"{tag} page two {i}")
        except Exception as e:  # noqa: BLE001 (collected for the assertion)
            errors.append(e)

    threads = [threading.Thread(target=write, args=(t,)) for t in ("alpha", "beta")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count("documents") == 10 and store.count("chunks") == 20 and store.count_pending() == 20
    assert len(_hits(store, "violin")) == 10


def test_the_queue_keeps_order_ignores_repeats_and_forgets_what_was_stored(store):
    store.queue.enqueue(["/docs/q1.txt", "/docs/q2.txt"])
    store.queue.enqueue(["/docs/q3.txt", "/docs/q1.txt"])  # q1 again: still one entry, still first
    assert store.queue.queued() == ["/docs/q1.txt", "/docs/q2.txt", "/docs/q3.txt"] == store.queue.waiting()
    assert store.queue.claim(["/docs/q1.txt", "/docs/q2.txt"]) == ["/docs/q1.txt", "/docs/q2.txt"]
    _put(store, "/docs/q2.txt", "stored: leaves the queue in the same transaction")
    store.queue.dequeue(["/docs/q3.txt"])
    assert store.queue.queued() == ["/docs/q1.txt"]


def test_a_lease_held_by_a_live_desktop_is_respected_and_a_dead_ones_taken_over(store):
    """On one computer every queued file is this process's; on a server, files another live
    desktop holds are left to it, and those of a process that died here are taken at once."""
    import subprocess
    import sys

    from kb.storage import leases

    store.queue.enqueue(["/docs/live.txt", "/docs/dead.txt", "/docs/free.txt"])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a process of this computer that ran and ended: a `zhiku add` killed mid-job
    alive = "another-desktop:4242"  # on another computer: alive until its lease runs out
    if store.shared:
        import time

        with store.db.transaction() as db:
            for path, holder in (("/docs/live.txt", alive), ("/docs/dead.txt", f"{leases.HOST}:{gone.pid}")):
                db.execute("UPDATE queue SET claimed_by=%s, claimed_at=%s WHERE path=%s", (holder, time.time(), path))
    mine = store.queue.claim(["/docs/live.txt", "/docs/dead.txt", "/docs/free.txt"])
    assert mine == (["/docs/dead.txt", "/docs/free.txt"] if store.shared else
                    ["/docs/live.txt", "/docs/dead.txt", "/docs/free.txt"])
    store.queue.renew()  # on a server: the leases stay this process's while it works
    assert store.queue.claim(mine) == mine


def test_copies_moves_and_linked_folders_mean_the_same_on_both(store, tmp_path):
    owner, _ = _put(store, "/docs/owner.txt", "porcelain and tea", "the canal at night")
    other, _ = _put(store, "/docs/held-other.txt", "a page that goes when a copy lands here")
    store.paths.add_copy("/docs/copy-a.txt", owner)
    store.paths.add_copy("/docs/held-other.txt", owner)  # the document that path held goes, with its chunks
    store.paths.add_copy("/docs/copy-a.txt", owner)  # again: still one copy
    assert store.paths.copies(owner) == ["/docs/copy-a.txt", "/docs/held-other.txt"]
    assert store.paths.copy_owner("/docs/copy-a.txt") == owner and store.paths.copy_owner("/docs/owner.txt") is None
    assert store.document("/docs/held-other.txt") is None and store.count("chunks") == 2
    assert sorted(store.paths.all_paths()) == ["/docs/copy-a.txt", "/docs/held-other.txt", "/docs/owner.txt"]
    assert store.paths.by_hash("0" * 64) == (owner, "/docs/owner.txt")
    # a move keeps the document's id, chunks and page text; a copy at the new path stops being one
    store.paths.move(owner, "/docs/copy-a.txt", "copy-a.txt", None)
    assert store.paths.document_id("/docs/copy-a.txt") == owner and store.paths.document_id("/docs/owner.txt") is None
    assert store.paths.copies(owner) == ["/docs/held-other.txt"] and store.page_text(owner, 2) == "the canal at night"
    assert store.document("/docs/copy-a.txt")["name"] == "copy-a.txt" and other != owner
    store.paths.drop_copy("/docs/held-other.txt")
    assert store.paths.copies(owner) == []
    for folder in ("/data/b", "/data/a", "/data/b"):
        store.paths.link_folder(folder)
    store.paths.unlink_folder("/data/b")
    assert store.paths.folders() == ["/data/a"]


def test_conversations_keep_their_order_and_a_deleted_one_takes_its_messages(store):
    from kb.storage.conversations import Conversations

    convs = Conversations(store.conversation_rows)
    first, second = convs.create("CLIP 是什么？"), convs.create("  GPT-3\n有多少参数？ ")
    assert second.title == "GPT-3 有多少参数？" and first.id != second.id
    q = convs.add(first.id, "user", "CLIP 是什么？")
    a = convs.add(first.id, "assistant", "对比学习的图文模型[1]。", sources=[{"number": 1, "name": "clip.txt"}],
                  checks=[{"status": "supported"}], attempt=None)
    assert [c.id for c in convs.list()] == [first.id, second.id]  # the one just written to comes first
    got = convs.messages(first.id)
    assert [(m.id, m.role) for m in got] == [(q.id, "user"), (a.id, "assistant")] and a.id > q.id
    assert got[1].sources == [{"number": 1, "name": "clip.txt"}] and got[1].checks == [{"status": "supported"}]
    convs.truncate(first.id, a.id)
    assert [m.id for m in convs.messages(first.id)] == [q.id]
    convs.rename(second.id, "参数")
    convs.delete(first.id)
    assert [(c.id, c.title) for c in convs.list()] == [(second.id, "参数")]
    assert convs.messages(first.id) == []  # cascaded on both


def test_a_store_says_where_its_data_lives(store):
    if store.shared:  # the server (its password never shown: kb.storage.postgres.database.safe_url) and schema
        assert store.host and store.where.startswith("postgresql://") and "(schema zhiku_contract_" in store.where
    else:
        assert store.host is None and store.where == str(store.folder)
