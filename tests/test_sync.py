"""Linked folders: new, changed, moved and deleted files; duplicates; watching; old databases."""

import shutil
import sqlite3
import threading

from test_indexing import ZH_CLIP, ZH_WEATHER, _consistent

from kb.ingest.files import Files
from kb.knowledge_base import KnowledgeBase
from kb.storage.sqlite.store import Store


def _vectors_of(kb, name):
    return dict(kb.store.db.query(
        "SELECT v.chunk_id, v.vec FROM vectors v JOIN chunks c ON c.id=v.chunk_id "
        "JOIN documents d ON d.id=c.doc_id WHERE d.name=?", (name,)))


def test_a_moved_file_keeps_its_vectors(make_kb, tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    (d / "clip.txt").write_text(ZH_CLIP, encoding="utf-8")
    kb = make_kb(counting=True)
    kb.add([d])
    before = _vectors_of(kb, "clip.txt")
    embedded = kb.embedder.passages
    (d / "archive").mkdir()
    shutil.move(d / "clip.txt", d / "archive" / "clip-2024.txt")
    report = kb.add([d])
    assert report.moved == [(str(d / "clip.txt"), str(d / "archive" / "clip-2024.txt"))]
    assert not report.added and kb.embedder.passages == embedded  # nothing embedded again
    assert _vectors_of(kb, "clip-2024.txt") == before
    hit = kb.search("CLIP 的对比学习", k=1)[0]
    assert hit.path == str(d / "archive" / "clip-2024.txt")
    _consistent(kb.store)


def test_duplicates_are_indexed_once_and_listed_under_each_path(make_kb, tmp_path):
    d = tmp_path / "docs"
    (d / "a").mkdir(parents=True)
    (d / "b").mkdir()
    (d / "a" / "clip.txt").write_text(ZH_CLIP, encoding="utf-8")
    shutil.copy(d / "a" / "clip.txt", d / "b" / "clip-copy.txt")
    kb = make_kb(counting=True)
    report = kb.add([d])
    assert report.added == [str(d / "a" / "clip.txt")] and report.copies == [str(d / "b" / "clip-copy.txt")]
    rows = kb.store.documents()
    assert len(rows) == 1 and rows[0]["copies"] == str(d / "b" / "clip-copy.txt")
    assert kb.embedder.passages == kb.store.count("chunks")
    assert kb.add([d]).unchanged == [str(d / "a" / "clip.txt"), str(d / "b" / "clip-copy.txt")]
    # deleting the original leaves the copy holding the document
    (d / "a" / "clip.txt").unlink()
    kb.files.link(d)
    report = kb.sync()
    rows = kb.store.documents()
    assert len(rows) == 1 and rows[0]["path"] == str(d / "b" / "clip-copy.txt") and not rows[0]["copies"]
    assert kb.embedder.passages == kb.store.count("chunks")


def test_sync_picks_up_new_changed_moved_and_deleted_files(make_kb, tmp_path):
    d = tmp_path / "linked"
    d.mkdir()
    (d / "clip.txt").write_text(ZH_CLIP, encoding="utf-8")
    (d / "weather.txt").write_bytes(ZH_WEATHER.encode("gbk"))
    (d / "old.md").write_text("# 旧笔记\n\n这份笔记稍后会被删除。", encoding="utf-8")
    kb = make_kb(counting=True)
    kb.files.link(d)
    first = kb.sync()
    assert len(first.added) == 3
    clip_vectors = _vectors_of(kb, "clip.txt")

    (d / "new.md").write_text("# 新笔记\n\n向量数据库 FAISS 的索引类型。", encoding="utf-8")
    (d / "weather.txt").write_bytes((ZH_WEATHER + "\n补充：周末转晴。").encode("gbk"))
    (d / "sub").mkdir()
    shutil.move(d / "clip.txt", d / "sub" / "clip.txt")
    (d / "old.md").unlink()
    report = kb.sync()
    assert report.added == [str(d / "new.md")]
    assert report.updated == [str(d / "weather.txt")]
    assert report.moved == [(str(d / "clip.txt"), str(d / "sub" / "clip.txt"))]
    assert report.removed == [str(d / "old.md")]
    assert _vectors_of(kb, "clip.txt") == clip_vectors
    assert sorted(x["name"] for x in kb.store.documents()) == ["clip.txt", "new.md", "weather.txt"]
    assert kb.search("周末转晴", k=1)[0].name == "weather.txt"
    _consistent(kb.store)
    assert kb.sync().unchanged and not kb.sync().added  # idempotent


def test_the_watcher_notices_a_new_file(tmp_path):
    from kb.ingest.watcher import FolderWatcher

    d = tmp_path / "w"
    d.mkdir()
    fired = threading.Event()
    with FolderWatcher([str(d)], fired.set, quiet_s=0.3):
        # the watch is set up on the observer's own thread: a new file each half second until one is seen
        for i in range(40):
            (d / f"note{i}.txt").write_text("新文件", encoding="utf-8")
            if fired.wait(0.5):
                break
        assert fired.is_set()
        fired.clear()
        (d / ".~lock.note.txt#").write_text("x")  # an editor's lock file is not a change
        assert not fired.wait(1.5)


def test_an_interrupted_job_resumes_from_the_persisted_queue(make_kb, tmp_path):
    from kb.ingest.indexer import CancelToken

    d = tmp_path / "docs"
    d.mkdir()
    for i in range(6):
        (d / f"n{i}.txt").write_text(f"第{i}份笔记。" + ZH_CLIP, encoding="utf-8")
    kb = make_kb()
    token = CancelToken()
    kb.add([d], progress=lambda p: p.current and token.cancel(keep_queue=True), cancel=token)  # a quit
    queued = Files(kb.store).queued()
    assert 0 < len(queued) < 6
    assert kb.indexer().needs_resume()
    report = kb.indexer().resume()
    assert sorted(report.added) == sorted(queued)
    assert kb.store.count("documents") == 6 and not Files(kb.store).queued()
    assert not kb.indexer().needs_resume()


def test_a_version_2_database_with_content_migrates_and_searches(make_kb, tmp_path, e5):
    from kb.storage.sqlite import schema

    kb = make_kb("old")
    (tmp_path / "clip.txt").write_text(ZH_CLIP, encoding="utf-8")
    kb.add([tmp_path / "clip.txt"])
    folder = kb.store.folder
    kb.close()
    # take it back to what version 2 had: no OCR columns, no queue, folders or copies, no pictures,
    # no sentence checks
    db = sqlite3.connect(folder / "kb.sqlite")
    for table in ("image_vectors", "images", "queue", "folders", "copies"):
        db.execute(f"DROP TABLE {table}")
    db.execute("DROP INDEX documents_sha")
    db.execute("ALTER TABLE pages DROP COLUMN ocr")
    db.execute("ALTER TABLE pages DROP COLUMN boxes")
    db.execute("ALTER TABLE documents DROP COLUMN pictures")
    db.execute("ALTER TABLE messages DROP COLUMN checks")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    kb = KnowledgeBase.open("old", e5)
    assert kb.store.db.schema_version == schema.SCHEMA_VERSION == 5
    assert kb.search("CLIP 的对比学习", k=1)[0].name == "clip.txt"
    assert kb.info()["linked_folders"] == [] and kb.info()["queued"] == 0
    assert kb.info()["pictures"] == 0 and kb.pictures.missing_documents() == []  # text has no pictures
    _consistent(kb.store)
    kb.close()


def test_a_damaged_database_is_reported_with_its_path_and_left_untouched(tmp_path):
    from kb.storage.contract import StoreError

    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "kb.sqlite").write_bytes(b"this is not a database" * 100)
    before = (folder / "kb.sqlite").read_bytes()
    try:
        Store(folder)
        raise AssertionError("opened a damaged database")
    except StoreError as e:
        assert str(folder / "kb.sqlite") in str(e) and "damaged" in str(e)
    assert (folder / "kb.sqlite").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["kb.sqlite"]
