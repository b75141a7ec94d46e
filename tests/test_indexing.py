"""Indexing and the store: real e5, real SQLite, real FAISS, files generated here."""

import sqlite3

import numpy as np
import pytest
from fixtures import make_docx, make_pdf

from kb.knowledge_base import KnowledgeBase, list_names
from kb.storage.sqlite.schema import SCHEMA_VERSION
from kb.storage.contract import ModelMismatch, StoreError
from kb.storage.sqlite.store import Store

ZH_CLIP = "CLIP 是一种对比性语言-图像预训练模型，用四亿对图片和文字训练，让图像和文本落在同一个向量空间。"
ZH_WEATHER = "今天上海下了一整天的雨，气温只有八度，出门记得带伞。"
EN_FAISS = "FAISS is a library for efficient similarity search over dense vectors, written by Meta."
EN_COOKING = "To bake bread, mix flour, water, yeast and salt, knead for ten minutes and let it rise."


def _mixed_folder(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    (d / "clip.txt").write_text(ZH_CLIP, encoding="utf-8")
    (d / "weather.txt").write_bytes(ZH_WEATHER.encode("gbk"))
    (d / "faiss.md").write_text(EN_FAISS, encoding="utf-8")
    make_docx(d / "cooking.docx", [EN_COOKING])
    make_pdf(d / "mixed.pdf", [["第一页：机器学习的基本概念"], ["Page two: gradient descent minimises a loss."]])
    return d


def _consistent(store: Store) -> None:
    """Every chunk has its FTS row; vectors belong to chunks; the index agrees with SQLite."""
    q = store.db.query
    assert q("SELECT COUNT(*) FROM chunks_fts")[0][0] == store.count("chunks")
    assert q("SELECT COUNT(*) FROM chunks_fts WHERE rowid NOT IN (SELECT id FROM chunks)")[0][0] == 0
    assert q("SELECT COUNT(*) FROM vectors WHERE chunk_id NOT IN (SELECT id FROM chunks)")[0][0] == 0
    assert store.index.count == store.count("vectors")
    assert q("PRAGMA integrity_check")[0][0] == "ok"


def test_chinese_query_finds_the_right_chunk_in_a_mixed_kb(make_kb, tmp_path):
    kb = make_kb()
    report = kb.add([_mixed_folder(tmp_path)])
    assert len(report.added) == 5 and not report.failed
    hits = kb.search("CLIP模型是怎么训练的？", k=3)
    assert hits[0].name == "clip.txt" and hits[0].page == 1
    assert hits[0].text in ZH_CLIP and hits[0].similarity > 0.85
    assert kb.search("下雨天气温", k=1)[0].name == "weather.txt"
    assert kb.search("which library does similarity search?", k=1)[0].name == "faiss.md"
    page2 = kb.search("gradient descent loss", k=1)[0]
    assert (page2.name, page2.page) == ("mixed.pdf", 2)
    _consistent(kb.store)


def test_unchanged_files_are_skipped_and_changed_ones_reindexed(make_kb, tmp_path):
    kb = make_kb(counting=True)
    d = _mixed_folder(tmp_path)
    first = kb.add([d])
    embedded = kb.embedder.passages
    assert embedded == first.chunks_embedded == kb.store.count("vectors")

    again = kb.add([d])
    assert len(again.unchanged) == 5 and not again.added and not again.updated
    assert kb.embedder.passages == embedded  # nothing re-embedded

    (d / "faiss.md").write_text(EN_FAISS + "\n\nIt supports IVF and HNSW indexes.", encoding="utf-8")
    third = kb.add([d])
    assert third.updated == [str(d / "faiss.md")] and len(third.unchanged) == 4
    assert kb.embedder.passages == embedded + third.chunks_embedded
    assert third.chunks_embedded == third.chunks_added >= 1
    hit = kb.search("HNSW index", k=1)[0]
    assert hit.name == "faiss.md" and "HNSW" in hit.text
    _consistent(kb.store)


def test_removed_document_leaves_no_chunk_vector_or_fts_row(make_kb, tmp_path):
    kb = make_kb()
    d = _mixed_folder(tmp_path)
    kb.add([d])
    doc = kb.store.document(str(d / "clip.txt"))
    ids = [r[0] for r in kb.store.db.query("SELECT id FROM chunks WHERE doc_id=?", (doc["id"],))]
    assert ids
    kb.remove("clip.txt")
    c = kb.store.db.query
    q = ",".join(map(str, ids))
    assert c(f"SELECT COUNT(*) FROM chunks WHERE id IN ({q})")[0][0] == 0
    assert c(f"SELECT COUNT(*) FROM vectors WHERE chunk_id IN ({q})")[0][0] == 0
    assert c(f"SELECT COUNT(*) FROM chunks_fts WHERE rowid IN ({q})")[0][0] == 0
    assert c("SELECT COUNT(*) FROM pages WHERE doc_id=?", (doc["id"],))[0][0] == 0
    assert all(h.name != "clip.txt" for h in kb.search("CLIP 图像 文本 向量空间", k=5, apply_floor=False))
    _consistent(kb.store)
    reopened = Store(kb.store.folder)
    assert reopened.index.count == kb.store.count("vectors")  # the saved file matches too
    assert all(cid not in ids for cid, _ in reopened.dense_search(kb.embedder.embed_query("CLIP"), 50))


def test_deleted_or_damaged_faiss_file_is_rebuilt_with_identical_results(make_kb, tmp_path, e5):
    kb = make_kb()
    kb.add([_mixed_folder(tmp_path)])
    queries = ["CLIP 训练", "bread yeast", "相似度搜索", "机器学习"]
    before = [[(h.chunk_id, round(h.score, 9), h.similarity) for h in kb.search(q, 5, apply_floor=False)]
              for q in queries]
    folder = kb.store.folder
    kb.close()
    for damage in ("delete", "truncate", "stale"):
        index = folder / "index.faiss"
        if damage == "delete":
            index.unlink()
        elif damage == "truncate":
            index.write_bytes(index.read_bytes()[:100])
        else:  # a file from an older generation: same size, wrong stamp
            stamp = folder / "index.json"
            stamp.write_text(stamp.read_text().replace('"generation": ', '"generation": 1000'))
        reopened = KnowledgeBase.open("test", e5)
        after = [[(h.chunk_id, round(h.score, 9), h.similarity) for h in reopened.search(q, 5, apply_floor=False)]
                 for q in queries]
        assert after == before, damage
        assert (folder / "index.faiss").stat().st_size > 1000
        reopened.close()


def test_vectors_live_in_sqlite_as_float16(make_kb, tmp_path):
    kb = make_kb()
    kb.add([_mixed_folder(tmp_path)])
    blob = kb.store.db.query("SELECT vec FROM vectors LIMIT 1")[0][0]
    assert len(blob) == 384 * 2
    v = np.frombuffer(blob, np.float16).astype(np.float32)
    assert abs(np.linalg.norm(v) - 1) < 1e-2


def test_lexical_rows_exist_before_embedding(make_kb, tmp_path):
    """A new document is keyword-searchable as soon as it is read, before any vector exists."""
    from kb.ingest.indexer import CancelToken, Indexer

    kb = make_kb()
    d = _mixed_folder(tmp_path)
    token = CancelToken()
    seen = []

    def progress(p):
        if p.current and not token.cancelled:  # a file was just committed
            seen.append(kb.store.count("vectors"))
            token.cancel()  # stop before the first batch is embedded

    report = Indexer(kb).add([d], progress=progress, cancel=token)
    assert report.cancelled and seen == [0]
    assert kb.store.count("vectors") == 0 and kb.store.count("chunks") > 0
    assert not Indexer(kb).files.queued()  # a cancel by the user does not resume at the next start
    hits = kb.search("CLIP", k=3)
    assert hits and hits[0].similarity is None
    rest = Indexer(kb).embed_pending()
    assert rest.chunks_embedded == kb.store.count("chunks")
    statuses = {d["status"] for d in kb.store.documents()}
    assert statuses == {"indexed"}


def test_bad_files_fail_alone_while_the_rest_is_indexed(make_kb, tmp_path):
    d = _mixed_folder(tmp_path)
    (d / "empty.txt").write_bytes(b"")
    (d / "fake.pdf").write_bytes(b"this is not a pdf at all")
    good = make_pdf(tmp_path / "g.pdf", [["x"] * 3, ["y"]]).read_bytes()
    (d / "truncated.pdf").write_bytes(good[:200])
    make_pdf(d / "locked.pdf", [["秘密"]], password="pw")
    (d / "photo.heic").write_bytes(b"\0\0\0 ftypheic")
    (d / "layers.psd").write_bytes(b"8BPS")
    (d / ".hidden.txt").write_text("secret")
    kb = make_kb()
    report = kb.add([d])
    failed = {p.rsplit("/", 1)[1]: why for p, why in report.failed}
    assert failed["empty.txt"] == "empty file"
    assert failed["fake.pdf"].startswith("not a PDF: starts with b'this is ")
    assert "PDF" in failed["truncated.pdf"] and failed["truncated.pdf"] != failed["fake.pdf"]
    assert failed["locked.pdf"] == "encrypted PDF: password needed"
    skipped = {p.rsplit("/", 1)[1]: why for p, why in report.skipped}
    assert skipped["layers.psd"] == "unsupported file type '.psd'"
    assert failed["photo.heic"] == "not an image Pillow can read (damaged or unknown format)"
    assert skipped[".hidden.txt"] == "hidden file"
    assert len(report.added) == 5
    rows = {r["name"]: r for r in kb.store.documents()}
    assert rows["locked.pdf"]["status"] == "failed" and rows["locked.pdf"]["error"] == failed["locked.pdf"]
    assert rows["clip.txt"]["status"] == "indexed"


def test_a_kb_refuses_another_embedding_model_until_reembedded(make_kb, tmp_path, e5):
    from conftest import real_model

    from models.embedder import Embedder

    kb = make_kb("models")
    kb.add([_mixed_folder(tmp_path)])
    kb.close()
    mini = Embedder(real_model("all-minilm-l6-v2"))
    with pytest.raises(ModelMismatch, match="was built with multilingual-e5-small"):
        KnowledgeBase.open("models", mini)
    switched = KnowledgeBase.reembed("models", mini)
    assert switched.store.model_id == mini.model_id
    assert switched.store.count("vectors") == switched.store.count("chunks")
    assert switched.search("bread flour yeast", k=1)[0].name == "cooking.docx"
    switched.close()
    with pytest.raises(ModelMismatch):
        KnowledgeBase.open("models", e5)


def test_kb_lifecycle_and_schema(make_kb):
    kb = make_kb("笔记 notes")
    assert "笔记 notes" in list_names()
    assert kb.store.db.schema_version == SCHEMA_VERSION
    assert kb.store.db.query("PRAGMA journal_mode")[0][0] == "wal"
    with pytest.raises(StoreError, match="already exists"):
        KnowledgeBase.create("笔记 notes", kb.embedder)
    with pytest.raises(StoreError, match="invalid knowledge base name"):
        KnowledgeBase.create("../escape", kb.embedder)
    folder = kb.store.folder
    kb.close()
    db = sqlite3.connect(folder / "kb.sqlite")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer Zhiku"):
        Store(folder)


def test_migrations_bring_an_empty_database_to_the_current_schema(tmp_path):
    sqlite3.connect(tmp_path / "kb.sqlite").close()
    store = Store(tmp_path)
    assert store.db.schema_version == SCHEMA_VERSION
    tables = {r[0] for r in store.db.query("SELECT name FROM sqlite_master")}
    assert {"documents", "chunks", "vectors", "pages", "chunks_fts", "meta"} <= tables


def test_langchain_retriever_adapter(make_kb, tmp_path):
    from langchain_core.retrievers import BaseRetriever

    kb = make_kb()
    kb.add([_mixed_folder(tmp_path)])
    retriever = kb.as_retriever(k=2)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("CLIP 是怎么训练的")
    assert docs and docs[0].metadata["name"] == "clip.txt" and docs[0].metadata["page"] == 1
    assert docs[0].page_content in ZH_CLIP


def test_a_version_1_database_migrates_and_keeps_its_data(tmp_path):
    from kb.storage.sqlite.schema import MIGRATIONS

    db = sqlite3.connect(tmp_path / "kb.sqlite")
    for sql in MIGRATIONS[1]:
        db.execute(sql)
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO documents(path, name, status) VALUES ('/x/a.txt', 'a.txt', 'indexed')")
    db.commit()
    db.close()
    store = Store(tmp_path)
    assert store.db.schema_version == SCHEMA_VERSION >= 2
    assert store.documents()[0]["name"] == "a.txt"
    from kb.storage.conversations import Conversations

    conv = Conversations(store.conversation_rows)
    c = conv.create("CLIP 是什么？")
    conv.add(c.id, "user", "CLIP 是什么？")
    conv.add(c.id, "assistant", "对比学习模型[1]", [{"number": 1, "name": "a.txt", "page": 1}])
    assert [m.role for m in conv.messages(c.id)] == ["user", "assistant"]
    assert conv.messages(c.id)[1].sources[0]["name"] == "a.txt"
    assert conv.history(c.id) == [{"role": "user", "content": "CLIP 是什么？"},
                                  {"role": "assistant", "content": "对比学习模型[1]"}]
    conv.delete(c.id)
    assert conv.list() == [] and store.db.query("SELECT COUNT(*) FROM messages")[0][0] == 0


def test_index_type_follows_size_and_ivf_finds_the_exact_neighbours(tmp_path, monkeypatch):
    import numpy as np

    from kb.storage.sqlite import faiss_index as vector_index
    from kb.storage.sqlite.store import Store

    monkeypatch.setattr(vector_index, "IVF_FROM", 2_000)  # the real threshold needs 200k vectors
    assert vector_index.kind_for(1_999) == "flat" and vector_index.kind_for(2_000).startswith("ivf")
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(40, 32))
    vecs = (centres[rng.integers(0, 40, 3_000)] + 0.3 * rng.normal(size=(3_000, 32))).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    store = Store.create(tmp_path / "kb", {"embed_model_id": "synthetic", "embed_dim": 32})
    with store.db.transaction() as db:
        db.execute("INSERT INTO documents(id, path, name, status) VALUES (1, '/d', 'd', 'indexed')")
        db.executemany("INSERT INTO chunks(id, doc_id, page, start, end, text, tokens) VALUES (?,1,1,0,1,'x',1)",
                       [(i,) for i in range(1, 3_001)])
    store.add_vectors(list(range(1, 1_001)), vecs[:1_000])
    assert store.index.kind == "flat"
    store.add_vectors(list(range(1_001, 3_001)), vecs[1_000:])
    assert store.index_needs_rebuild()
    store.rebuild_index()
    assert store.index.kind == vector_index.kind_for(3_000)
    half = vecs.astype(np.float16).astype(np.float32)
    found = 0
    for q in vecs[::100]:
        exact = set((np.argsort(-(half @ q))[:10] + 1).tolist())
        found += len(exact & {cid for cid, _ in store.dense_search(q, 10)})
    assert found / (10 * 30) >= 0.9
    store.remove_document(1)  # IVF removes ids like the flat index
    assert store.index.count == 0
    store.close()
    reopened = Store(tmp_path / "kb")
    assert reopened.index.count == 0


def test_big_kbs_leave_common_words_out_of_keyword_search(tmp_path, monkeypatch):
    from kb.storage.sqlite import store as store_mod
    from kb.storage.sqlite.store import Store

    monkeypatch.setattr(store_mod, "PRUNE_FROM", 100)
    store = Store.create(tmp_path / "kb", {"embed_model_id": "synthetic", "embed_dim": 4})
    with store.db.transaction() as db:
        db.execute("INSERT INTO documents(id, path, name, status) VALUES (1, '/d', 'd', 'indexed')")
        for i in range(1, 201):  # "模型" and "训练" everywhere, "蜂鸟" once
            terms = "模型 训练 数据 " + ("蜂鸟 对比 学习" if i == 137 else f"填充{i}")
            db.execute("INSERT INTO chunks(id, doc_id, page, start, end, text, tokens) VALUES (?,1,1,0,1,?,1)",
                       (i, terms))
            db.execute("INSERT INTO chunks_fts(rowid, terms) VALUES (?, ?)", (i, terms))
    words = ["模型", "训练", "数据", "蜂鸟", "对比", "学习"]
    assert store._drop_common(words, 200) == ["蜂鸟", "对比", "学习"]
    assert store._df["模型"] == 200 and store._df["蜂鸟"] == 1
    # fewer than three rare words: the rarest three are kept
    assert store._drop_common(["模型", "训练", "蜂鸟", "数据"], 200) == ["蜂鸟", "模型", "训练"]
    assert store.lexical_search("模型训练数据里的蜂鸟对比", 5)[0][0] == 137


def test_editing_one_page_of_a_long_pdf_re_embeds_only_that_pages_chunks(make_kb, tmp_path):
    topics = ["向量检索", "对比学习", "知识蒸馏", "梯度下降", "注意力机制", "图像分割", "语音识别", "推荐系统"]
    pages = [[f"第{n}页讲{t}。" + f"{t}是机器学习里常见的方法，这一页用很多句子解释它的原理和用途。" * 30]
             for n, t in enumerate(topics * 3, start=1)]  # 24 pages, a few chunks each
    pdf = make_pdf(tmp_path / "long.pdf", pages)
    kb = make_kb()
    first = kb.add([pdf])
    doc = kb.store.document(str(pdf))
    stored = "SELECT c.page, c.start, c.text, v.vec FROM chunks c JOIN vectors v ON v.chunk_id=c.id"
    before = {r[:3]: r[3] for r in kb.store.db.query(stored)}
    page_17 = kb.store.db.query("SELECT COUNT(*) FROM chunks WHERE doc_id=? AND page=17", (doc["id"],))[0][0]
    assert first.chunks_embedded == first.chunks_added > 3 * page_17 > 0

    pages[16] = ["第17页改写了：这一页现在讲蜂鸟的飞行和它们的新陈代谢。" * 20]
    make_pdf(pdf, pages)
    second = kb.add([pdf])

    assert second.updated == [str(pdf)]
    new_17 = kb.store.db.query("SELECT COUNT(*) FROM chunks WHERE doc_id=? AND page=17", (doc["id"],))[0][0]
    assert 0 < second.chunks_embedded <= new_17  # only the edited page went through the model
    assert second.chunks_reused == second.chunks_added - second.chunks_embedded > 30
    after = {r[:3]: r[3] for r in kb.store.db.query(stored)}
    kept = [t for t in after if t in before]  # same page, place and text
    old_vectors: dict[str, set] = {}
    for (_, _, text), vec in before.items():
        old_vectors.setdefault(text, set()).add(vec)
    assert len(kept) == second.chunks_reused and all(after[t] in old_vectors[t[2]] for t in kept)
    assert kb.store.document(str(pdf))["status"] == "indexed" and kb.store.count_pending() == 0
    _consistent(kb.store)
    hit = kb.search("蜂鸟的新陈代谢", k=1, apply_floor=False)[0]
    assert hit.page == 17
