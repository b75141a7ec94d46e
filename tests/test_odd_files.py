"""Odd inputs never sink a job: names that are not UTF-8, pipes and sockets, Ctrl+C, exit codes."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from fixtures import cpu_ticks, make_slow_pdf, parser_of, when_busy

from app.cli import main

EXE = Path(sys.executable).with_name("zhiku")
GBK_NAME = "季度报告".encode("gbk") + b".txt"  # as archives from Chinese Windows machines keep it


def _gbk_folder(tmp_path: Path) -> tuple[Path, str, str]:
    d = tmp_path / "归档"
    d.mkdir()
    gbk = os.fsdecode(os.fsencode(str(d)) + b"/" + GBK_NAME)
    junk = os.fsdecode(os.fsencode(str(d)) + b"/\xff\xfe-notes.txt")  # neither UTF-8 nor GB18030
    Path(gbk).write_text("第三季度的预算是四百万元，由财务部审核。", encoding="utf-8")
    Path(junk).write_text("The junk-named note mentions the blue heron.", encoding="utf-8")
    (d / "plain.txt").write_text("一个普通的文件名，内容关于知识库。", encoding="utf-8")
    return d, gbk, junk


def test_a_file_name_that_is_not_utf8_is_indexed_shown_readably_and_kept_exact(make_kb, tmp_path):
    d, gbk, junk = _gbk_folder(tmp_path)
    kb = make_kb()
    report = kb.add([d])
    assert not report.failed and len(report.added) == 3
    docs = {x["name"]: x for x in kb.store.documents()}
    assert set(docs) == {"季度报告.txt", "\\xff\\xfe-notes.txt", "plain.txt"}
    # the stored path is the file's exact path: it opens, and a second job finds it unchanged
    assert docs["季度报告.txt"]["path"] == gbk and os.path.exists(docs["季度报告.txt"]["path"])
    assert docs["\\xff\\xfe-notes.txt"]["path"] == junk
    hit = kb.search("预算", k=1)[0]
    assert hit.name == "季度报告.txt" and hit.path == gbk
    assert len(kb.add([d]).unchanged) == 3


def test_the_cli_adds_a_folder_with_a_gbk_name_and_prints_it_readably(tmp_path, zhiku_home, capsys):
    d, _, _ = _gbk_folder(tmp_path)
    assert main(["add", "archive", str(d)]) == 0
    out = capsys.readouterr().out
    assert "3 added" in out and "0 failed" in out
    assert main(["search", "archive", "预算"]) == 0
    assert "季度报告.txt:1" in capsys.readouterr().out
    assert main(["kb", "info", "archive", "--json"]) == 0
    assert "归档/季度报告.txt" in capsys.readouterr().out


def test_pipes_and_sockets_in_a_folder_are_skipped_with_their_reason(tmp_path, zhiku_home, capsys):
    d = tmp_path / "docs"
    d.mkdir()
    (d / "note.txt").write_text("管道旁边的普通文件。", encoding="utf-8")
    os.mkfifo(d / "pipe.txt")  # a reader opening it would wait for a writer forever
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(d / "listening.md"))
    try:
        assert main(["add", "odd", str(d), str(d / "pipe.txt")]) == 0
    finally:
        sock.close()
    out = capsys.readouterr().out
    assert "1 added" in out
    assert f"skipped: {d / 'pipe.txt'}: a named pipe, not a file" in out
    assert f"skipped: {d / 'listening.md'}: a socket, not a file" in out


def test_a_pipe_left_in_the_queue_by_an_older_version_fails_alone(make_kb, tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    os.mkfifo(d / "pipe.txt")
    (d / "note.txt").write_text("队列里的普通文件。", encoding="utf-8")
    kb = make_kb()
    kb.files.enqueue([str(d / "pipe.txt")])
    report = kb.add([d / "note.txt"])
    assert report.failed == [(str(d / "pipe.txt"), "a named pipe, not a file")]
    assert report.added == [str(d / "note.txt")] and kb.files.queued() == []


def test_ctrl_c_ends_a_cli_job_in_the_middle_of_a_file_and_the_queue_keeps_the_rest(tmp_path, zhiku_home):
    d = tmp_path / "docs"
    d.mkdir()
    make_slow_pdf(d / "a-slow.pdf", operators=2_000_000)  # minutes of parsing
    (d / "b.txt").write_text("慢文件后面的文件。", encoding="utf-8")
    # as from a terminal: a suite started in the background by a shell inherits SIGINT ignored, and
    # Python then never installs its Ctrl+C handler (the test failed so in every background run)
    proc = subprocess.Popen([str(EXE), "add", "cc", str(d), "--time-limit", "300"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # the parser seen 6 CPU-seconds into its work: past its start-up (~1-3 s), inside the slow
    # file, which takes ~30 s here (and the job waits up to 300 s for it)
    parser = parser_of(proc.pid)
    when_busy(parser, lambda: None, ticks=600 - cpu_ticks(parser)).join()
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    out, err = proc.communicate(timeout=120)
    # far sooner than the file's 300 s limit: the parser is stopped, not waited for
    assert time.monotonic() - sent < 60 and proc.returncode == 130, (out, err)
    assert "interrupted" in err and "Traceback" not in err
    info = subprocess.run([str(EXE), "kb", "info", "cc", "--json"], capture_output=True, text=True, timeout=120)
    assert '"queued": 2' in info.stdout or '"queued": 1' in info.stdout, info.stdout


def test_a_killed_app_leaves_no_parser_behind_and_no_traceback(tmp_path):
    slow = make_slow_pdf(tmp_path / "slow.pdf", operators=2_000_000)
    script = (
        "import os, sys\n"
        "sys.path.insert(0, os.getcwd())\n"
        "from kb.ingest.parse_worker import ParserProcess\n"
        "if __name__ == '__main__':\n"
        "    p = ParserProcess(); p.warm()\n"
        "    print(p._proc.pid, flush=True)\n"
        f"    p.parse({str(slow)!r})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parents[1])
    worker = int(proc.stdout.readline())
    when_busy(worker, lambda: None).join()  # the parser is seen working on the file
    assert proc.poll() is None
    proc.kill()  # the app, mid-file: no chance to stop its parser
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 15
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(worker), "the parser kept running after its app was killed"
    assert "Traceback" not in err, err


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_add_exit_codes_and_no_knowledge_base_from_nothing(tmp_path, zhiku_home, capsys):
    good = tmp_path / "good.txt"
    good.write_text("退出码：全部成功时为零。", encoding="utf-8")
    assert main(["add", "nothing", str(tmp_path / "missing.pdf")]) == 1
    assert not (zhiku_home / "kbs" / "nothing").exists()
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"not a pdf at all")
    assert main(["add", "nothing", str(broken)]) == 1  # read and failed: still nothing to keep
    assert "not created" in capsys.readouterr().err and not (zhiku_home / "kbs" / "nothing").exists()
    assert main(["add", "codes", str(good), str(tmp_path / "missing.pdf")]) == 1
    assert main(["add", "codes", str(good)]) == 0  # unchanged
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.xyz").write_text("?")
    (folder / "more.txt").write_text("文件夹里的另一个文件。", encoding="utf-8")
    assert main(["add", "codes", str(folder)]) == 0  # a folder's file skipped by type is not a failure
    assert main(["add", "codes", str(folder / "notes.xyz")]) == 1  # named on its own, it was not indexed
    assert main(["add", "...", str(good)]) == 2
    assert "invalid knowledge base name" in capsys.readouterr().err


def test_kb_info_after_no_embed_says_embedding_is_pending(tmp_path, zhiku_home, capsys):
    (tmp_path / "a.txt").write_text("只建关键词索引，向量稍后再算。", encoding="utf-8")
    assert main(["add", "later", str(tmp_path / "a.txt"), "--no-embed"]) == 0
    capsys.readouterr()
    assert main(["kb", "info", "later"]) == 0
    out = capsys.readouterr().out
    assert "1 more keyword-searchable, embedding pending" in out


def test_kb_info_into_a_closed_pipe_ends_quietly(tmp_path, zhiku_home):
    (tmp_path / "a.txt").write_text("管道另一头已经关了。", encoding="utf-8")
    assert main(["add", "piped", str(tmp_path / "a.txt"), "--no-embed"]) == 0
    r, w = os.pipe()
    os.close(r)  # like `| head` that has read all it wanted
    proc = subprocess.run([str(EXE), "kb", "info", "piped"], stdout=w, stderr=subprocess.PIPE, text=True,
                          timeout=120)
    os.close(w)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_a_huge_text_file_is_refused_with_its_size(make_kb, tmp_path):
    from kb.ingest.loaders.text import MAX_TEXT_BYTES

    big = tmp_path / "dump.txt"
    with open(big, "wb") as f:
        f.truncate(MAX_TEXT_BYTES + 1)  # sparse: no time spent writing it
    kb = make_kb()
    report = kb.add([big])
    assert report.failed == [(str(big), f"text file too large to index (32 MB; text files are read up to "
                                         f"{MAX_TEXT_BYTES // 2**20} MB): split it into smaller files")]


def test_adding_to_a_new_name_says_so_and_suggests_a_close_existing_one(tmp_path, zhiku_home, capsys):
    (tmp_path / "a.txt").write_text("第一个知识库里的文件。", encoding="utf-8")
    (tmp_path / "b.txt").write_text("第二个知识库里的文件。", encoding="utf-8")
    assert main(["add", "资料", str(tmp_path / "a.txt"), "--no-embed"]) == 0
    capsys.readouterr()
    assert main(["add", "资料库", str(tmp_path / "b.txt"), "--no-embed"]) == 0
    assert "creating a new knowledge base '资料库' (did you mean '资料'?)" in capsys.readouterr().err
