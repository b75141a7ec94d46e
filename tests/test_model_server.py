"""Answering through an OpenAI-compatible server: llama-cpp-python's own server, started here on
127.0.0.1 with the real 0.5B model (nothing leaves loopback: the suite's network guard is on)."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conftest import real_model, stop_after

pytestmark = pytest.mark.model_server

MODEL = "qwen2.5-0.5b"  # the alias the server lists
KEY = "sk-test-4f1c9a"  # the server's API key: must never reach a knowledge base or a log
DOCS = {
    "clip.txt": "CLIP 是 OpenAI 提出的对比性语言-图像预训练模型。它用从网络收集的四亿对图片和文字训练，"
                "让匹配的图文在同一个向量空间里靠近，不匹配的远离。",
    "bread.md": "To bake bread, mix flour, water, yeast and salt. Knead for ten minutes, let it rise for "
                "an hour, then bake at 220 degrees for thirty minutes.",
}
LONG = "请详细介绍 CLIP 模型：它的训练数据、训练方法、用途和局限，写五段，每段至少一百字。"

# llama.cpp's CPU kernels are separate libraries in our build: load them, then run the server
LAUNCH = ("import sys, runpy; from models import llama_backends; llama_backends.ensure_loaded(); "
          "sys.argv[0] = 'llama_cpp.server'; runpy.run_module('llama_cpp.server', run_name='__main__')")


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(folder: Path) -> Server:
    """llama-cpp-python's OpenAI-compatible server with the 0.5B model, on a free loopback port."""
    port = _free_port()
    log = folder / f"server-{port}.log"
    cmd = [sys.executable, "-c", LAUNCH, "--model", str(real_model("qwen2.5-coder-0.5b-instruct-q4_k_m")),
           "--model_alias", MODEL, "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
           "--n_threads", "1", "--api_key", KEY]
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=root,
                            env={**os.environ, "PYTHONPATH": str(root)})
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the server exited:\n{log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=2).status_code == 200:
                return Server(url, proc, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise AssertionError(f"the server did not come up:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("server"))
    yield s
    s.kill()


@pytest.fixture
def own_server(tmp_path):
    """A server this test may kill."""
    s = start_server(tmp_path)
    yield s
    if s.proc.poll() is None:
        s.kill()


@pytest.fixture
def kb(kb_from):
    return kb_from(DOCS)


def remote(server, **kw):
    from models.remote_llm import RemoteLLM

    return RemoteLLM(server.url, kw.pop("model", MODEL), kw.pop("api_key", KEY), **kw)


def test_a_cited_answer_streams_from_the_server(kb, server):
    from kb.answering.answer import Answerer, cited_numbers

    llm = remote(server)
    stream = Answerer(kb, llm, temperature=0.0, reserve=128).ask("CLIP 是用多少对图片和文字训练的？")
    assert stream.sources and stream.sources[0].name == "clip.txt"  # known before the server is asked
    pieces = list(stream)
    assert len(pieces) > 2  # streamed, not one block
    result = stream.result
    assert "四亿" in result.text or "4亿" in result.text or "4 亿" in result.text
    assert not result.not_found and all(c in result.sources for c in result.cited)
    assert cited_numbers(result.text) and result.cited[0].name == "clip.txt"
    assert result.answerability is None  # the probe is calibrated for local models only
    llm.close()


def test_the_prompt_budget_counts_with_the_servers_tokenizer(server, caplog):
    from models.chat_model import family_tokenizer

    with caplog.at_level(logging.INFO, logger="zhiku.server"):
        llm = remote(server)
    assert "/extras/tokenize" in llm.budget
    assert "/extras/tokenize" in caplog.text  # the log says how the budget is counted
    local = family_tokenizer(MODEL)  # the same vocabulary, from the installed GGUF
    assert local is not None
    for text in ("CLIP 用四亿对图文训练。", "Knead for ten minutes, then bake at 220 degrees.", DOCS["clip.txt"]):
        assert abs(llm.count_tokens(text) - local(text)) <= 1  # the server may add a BOS
    messages = [{"role": "system", "content": "x" * 10}, {"role": "user", "content": DOCS["clip.txt"]}]
    assert llm.count_prompt_tokens(messages) > local(DOCS["clip.txt"])
    llm.close()


def test_stop_ends_a_server_answer_at_once(server):
    llm = remote(server)
    pieces, after_stop = stop_after(llm, llm.stream_chat([{"role": "user", "content": LONG}], max_tokens=400), 3)
    assert llm.stopped and len(pieces) == 3 and after_stop == []
    # the server is still there for the next question
    assert llm.chat([{"role": "user", "content": "Say OK."}], max_tokens=5)
    llm.close()


def test_server_errors_say_what_to_do(server):
    from models.remote_llm import ServerUnavailable, UnknownModel, WrongKey

    with pytest.raises(WrongKey, match="refused the API key"):
        remote(server, api_key="sk-wrong")
    with pytest.raises(WrongKey):
        remote(server, api_key=None)
    with pytest.raises(UnknownModel, match=f"no model “qwen-72b”.*serves: {MODEL}"):
        remote(server, model="qwen-72b")
    with pytest.raises(ServerUnavailable, match="No model server answers at http://127.0.0.1:"):
        remote(server.__class__(f"http://127.0.0.1:{_free_port()}/v1", server.proc, server.log))
    assert remote(server, model="").model == MODEL  # no name: the first model the server lists


def test_the_api_key_stays_out_of_the_knowledge_base_and_the_logs(kb, server, zhiku_home, caplog, monkeypatch):
    from kb.answering.answer import Answerer
    from models.api_keys import key_file, load_key, save_key
    from models.chat_model import ServerChoice, open_chat_model
    from models.remote_llm import root_of

    monkeypatch.setenv("ZHIKU_KEYRING", "file")  # no desktop keyring here: the private file
    save_key(root_of(server.url), KEY)
    assert load_key(root_of(server.url)) == KEY
    assert stat.S_IMODE(key_file().stat().st_mode) == 0o600  # readable by the user only
    with caplog.at_level(logging.DEBUG):
        llm = open_chat_model(server=ServerChoice(server.url, MODEL))  # the key comes from the store
        stream = Answerer(kb, llm, reserve=128).ask("CLIP 是用多少对图片和文字训练的？")
        stream.text()
        kb.conversations.add(kb.conversations.create("q").id, "assistant", stream.result.text)
        llm.close()
    assert KEY not in caplog.text
    kb_files = [p for p in kb.folder.rglob("*") if p.is_file()]
    assert kb_files and not any(KEY.encode() in p.read_bytes() for p in kb_files)
    assert not any(KEY.encode() in p.read_bytes() for p in zhiku_home.rglob("*") if p.is_file()
                   and p != key_file())
    assert json.loads(key_file().read_text()) == {root_of(server.url): KEY}


def test_a_server_killed_mid_answer_gives_a_clear_error_and_the_conversation_keeps_what_came(
        qtbot, kb_from, own_server, monkeypatch):
    from test_gui import open_window

    from app.gui.settings import AppSettings
    from models.api_keys import save_key
    from models.remote_llm import root_of

    monkeypatch.setenv("ZHIKU_KEYRING", "file")
    save_key(root_of(own_server.url), KEY)
    kb = kb_from(DOCS)
    w = open_window(qtbot)
    w.apply_settings(AppSettings(**{**vars(w.settings), "server_url": own_server.url, "server_model": MODEL}))
    w.kbs[kb.name] = kb
    w.select_kb(kb.name)
    w.answering.ask(LONG)
    qtbot.waitUntil(lambda: w.answering.answer_worker is not None, timeout=60_000)
    streamed = []
    w.answering.answer_worker.progress.connect(lambda x: streamed.append(x) if isinstance(x, str) else None)
    qtbot.waitUntil(lambda: len(streamed) >= 5, timeout=120_000)
    own_server.kill()
    qtbot.waitUntil(lambda: not w.chat.busy, timeout=60_000)
    last = w.chat.messages[-1]
    assert last["role"] == "assistant"
    assert "broke off in the middle of the reply" in last["content"] or "ended the reply early" in last["content"]
    came = "".join(streamed).strip()
    assert last["content"].startswith(came[:20])  # what came is still on screen
    stored = kb.conversations.messages(w.answering.conversation)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[-1].content.startswith(came[:20]) and "Something went wrong" in stored[-1].content
    assert w.isVisible()  # the app stays up


def test_the_cli_answers_through_the_server_and_keeps_the_key(kb, server, capsys, monkeypatch):
    from app.cli import main
    from models.api_keys import key_file, load_key
    from models.remote_llm import root_of

    monkeypatch.setenv("ZHIKU_KEYRING", "file")
    name = kb.name
    kb.close()
    code = main(["ask", name, "CLIP 是用多少对图片和文字训练的？", "--server", server.url, "--api-key", KEY,
                 "--answer-tokens", "96"])
    out, err = capsys.readouterr()
    assert code == 0 and "亿" in out and "clip.txt" in out
    assert f"kept in {key_file()}" in err and load_key(root_of(server.url)) == KEY
    code = main(["ask", name, "CLIP 是什么？", "--server", server.url, "--answer-tokens", "32"])  # the kept key
    assert code == 0
    dead = f"http://127.0.0.1:{_free_port()}/v1"
    assert main(["ask", name, "CLIP 是什么？", "--server", dead]) == 2
    assert "No model server answers at" in capsys.readouterr().err


def test_the_token_estimate_with_its_margin_does_not_undercount(small_llm):
    """Servers without a tokenize endpoint or a local tokenizer of their family get the estimate
    plus 25%: it may overcount (less evidence fits) but must not undercount (the prompt overflows)."""
    from models.remote_llm import estimate_tokens

    texts = [DOCS["clip.txt"], DOCS["bread.md"], LONG, "  • GPT-1 论文\n  • GPT-2 论文\n  • GPT-4V 微软评测报告",
             "2023年3月,Meta开源了 LLaMA,参数量从 70 亿到 650 亿不等。", "def f(x):\n    return x ** 2  # squared"]
    for t in texts:
        assert estimate_tokens(t) * 1.25 >= small_llm.count_tokens(t), t


class _Odd(__import__("http.server").server.BaseHTTPRequestHandler):
    """A server that lists one model and streams replies the way a broken proxy or server might:
    /<how>/v1/chat/completions — `garbled` (a chunk that is not JSON after a good one), `html`
    (a 200 page that is no event stream), `error` (an error object in the middle of the stream)."""

    def log_message(self, *args):  # the test's output stays quiet
        pass

    def do_GET(self):  # noqa: N802 (http.server)
        if self.path.endswith("/v1/models"):
            self._send(200, "application/json", json.dumps({"data": [{"id": "odd"}]}).encode())
        else:
            self._send(404, "application/json", b'{"error": "no such path"}')

    def do_POST(self):  # noqa: N802 (http.server)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        how = self.path.split("/")[1]
        good = 'data: {"choices": [{"delta": {"content": "CLIP"}}]}\n\n'
        body = {"garbled": good + "data: {\"choices\": [{\"delta\": \n\n",
                "error": good + 'data: {"error": {"message": "out of memory"}}\n\n',
                "html": "<html><body>Sign in to the proxy</body></html>"}[how]
        self._send(200, "text/html" if how == "html" else "text/event-stream", body.encode())

    def _send(self, code, kind, data):
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.mark.parametrize("how, says", [
    ("garbled", "sent a piece of its reply Zhiku cannot read"),
    ("error", "reported an error in the middle of the reply: {'message': 'out of memory'}"),
    ("html", "did not stream its reply"),
])
def test_a_reply_the_server_garbles_is_a_server_error_and_what_came_is_kept(how, says):
    import http.server
    import threading

    from models.remote_llm import RemoteLLM
    from models.server_errors import ServerError

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Odd)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        llm = RemoteLLM(f"http://127.0.0.1:{srv.server_address[1]}/{how}/v1", local_tokenizer=len)
        got = []
        with pytest.raises(ServerError, match=__import__("re").escape(says)):
            for piece in llm.stream_chat([{"role": "user", "content": "CLIP?"}], max_tokens=8):
                got.append(piece)
        assert got == ([] if how == "html" else ["CLIP"])  # the good piece before the bad one came through
        llm.close()
    finally:
        srv.shutdown()
        srv.server_close()
