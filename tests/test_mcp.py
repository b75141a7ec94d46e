"""`zhiku mcp`: a real knowledge base served over MCP, driven by the official SDK's own client — the
server started as a subprocess over stdio (as Claude Desktop starts it) or over streamable HTTP."""

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from fixtures import make_pdf

from app.cli import main

ZHIKU = str(Path(sys.executable).with_name("zhiku"))
SMALL_LLM = "qwen2.5-coder-0.5b-instruct-q4_k_m"


def _docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    (d / "知库.txt").write_text("知库从不联网，文档只保存在你自己的电脑上。", encoding="utf-8")
    make_pdf(d / "report.pdf", [["Page one says nothing of note."], ["Page two: the chunk size is 256 tokens."]])
    return d


@pytest.fixture
def served(tmp_path, capsys, monkeypatch):
    """A knowledge base 'kb' built from generated documents (a Chinese note and a two-page PDF)."""
    monkeypatch.setenv("ZHIKU_KEYRING", "file")
    assert main(["add", "kb", str(_docs(tmp_path))]) == 0
    capsys.readouterr()
    return tmp_path


@asynccontextmanager
async def _session(*args: str, env: dict | None = None):
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=ZHIKU, args=["mcp", *args], env=env or dict(os.environ))
    log = Path(os.environ["ZHIKU_HOME"]) / "mcp-stderr.txt"  # (pytest's captured stderr has no file number)
    with open(log, "a", encoding="utf-8") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


def _run(coro_fn, *args):
    return anyio.run(coro_fn, *args)


async def _call(session, tool: str, **arguments) -> tuple[bool, object]:
    """(is_error, the structured result or the error's text)."""
    res = await session.call_tool(tool, arguments)
    if res.is_error:
        return True, " ".join(c.text for c in res.content if getattr(c, "text", None))
    return False, res.structured_content


def test_an_agent_lists_searches_and_reads_a_knowledge_base_and_bad_calls_change_nothing(served):
    async def agent():
        async with _session("--kb", "kb") as s:
            tools = {t.name: t for t in (await s.list_tools()).tools}
            # read-only without --allow-add; no CLIP model registered here, so no image search
            assert set(tools) == {"list_knowledge_bases", "search", "ask", "read"}
            assert all(len(t.description) > 60 for t in tools.values())
            assert tools["search"].input_schema["required"] == ["kb", "query"]
            assert tools["search"].annotations.read_only_hint is True

            err, listing = await _call(s, "list_knowledge_bases")
            kb = listing["knowledge_bases"][0]
            assert not err and (kb["name"], kb["documents"], kb["can_add"]) == ("kb", 2, False)
            before = kb["chunks"]

            err, found = await _call(s, "search", kb="kb", query="What is the chunk size?", k=3)
            top = found["results"][0]
            assert not err and (top["file"], top["page"], top["part"]) == ("report.pdf", 2, "page")
            assert "256 tokens" in top["text"] and "note" not in found
            err, found = await _call(s, "search", kb="kb", query="知库会联网吗", k=1,
                                     only=["知库.txt"])
            assert found["results"][0]["file"] == "知库.txt" and found["results"][0]["part"] == "section"

            err, page = await _call(s, "read", kb="kb", document=top["path"], page=2)
            assert not err and page["pages"] == 2 and "chunk size is 256" in page["text"]

            resources = (await s.list_resources()).resources
            assert sorted(r.name for r in resources) == ["report.pdf", "知库.txt"]
            pdf = next(r for r in resources if r.name == "report.pdf")
            text = (await s.read_resource(f"{pdf.uri}/pages/2")).contents[0].text
            assert text == page["text"]
            whole = (await s.read_resource(str(pdf.uri))).contents[0].text
            assert "--- page 1 ---" in whole and "--- page 2 ---" in whole

            # every mistake is a tool error that says what to do, and changes nothing
            bad = [await _call(s, "search", kb="nope", query="x"),
                   await _call(s, "search", kb="kb", query="chunk size", k=51),
                   await _call(s, "read", kb="kb", document="missing.pdf"),
                   await _call(s, "read", kb="kb", document="report.pdf", page=3),
                   await _call(s, "search", kb="kb", query="chunk", only=["/elsewhere/other.pdf"])]
            assert all(err for err, _ in bad), bad
            assert "this server offers 'kb'" in bad[0][1] and "between 1 and 50" in bad[1][1]
            assert "no document 'missing.pdf'" in bad[2][1] and "pages 1 to 2" in bad[3][1]
            assert "none of /elsewhere/other.pdf" in bad[4][1]
            err, listing = await _call(s, "list_knowledge_bases")
            assert listing["knowledge_bases"][0]["chunks"] == before

    _run(agent)


def test_ask_over_mcp_gives_a_cited_answer_and_says_not_found(served):
    async def agent():
        async with _session("--kb", "kb", "--llm", SMALL_LLM, "--answer-tokens", "48") as s:
            err, res = await _call(s, "ask", kb="kb", question="What is the chunk size?")
            assert not err and "256" in res["answer"] and not res["not_found"]
            assert res["sources"][0]["name"] == "report.pdf" and res["sources"][0]["page"] == 2
            assert res["sentences"] and {c["status"] for c in res["sentences"]} <= {"supported", "unsupported",
                                                                                     "unchecked"}
            err, res = await _call(s, "ask", kb="kb", question="谁赢得了1998年世界杯足球赛？")
            assert not err and res["not_found"] and res["sources"] == []

    _run(agent)


def test_without_a_chat_model_search_still_works_and_ask_says_what_to_install(served, tmp_path):
    models = tmp_path / "only-the-embedder"
    models.mkdir()
    real = Path(os.environ["ZHIKU_MODELS"])
    for name in ("multilingual-e5-small", "multilingual-e5-small-int8"):
        (models / name).symlink_to(real / name)

    async def agent():
        async with _session("--kb", "kb", env=dict(os.environ, ZHIKU_MODELS=str(models))) as s:
            err, found = await _call(s, "search", kb="kb", query="chunk size")
            assert not err and found["results"][0]["file"] == "report.pdf"
            err, why = await _call(s, "ask", kb="kb", question="What is the chunk size?")
            assert err and "zhiku models install" in why and "search and read work" in why

    _run(agent)


def test_a_knowledge_base_still_embedding_answers_by_keywords_and_says_so(tmp_path, capsys, monkeypatch):
    assert main(["add", "fresh", str(_docs(tmp_path)), "--no-embed"]) == 0
    capsys.readouterr()

    async def agent():
        async with _session("--kb", "fresh") as s:
            err, found = await _call(s, "search", kb="fresh", query="chunk size", k=2)
            assert not err and found["results"][0]["file"] == "report.pdf"
            assert "wait for their embedding" in found["note"] and "keywords only" in found["note"]

    _run(agent)


def test_add_takes_files_only_from_the_allowed_folders(served, tmp_path):
    inbox, outside = tmp_path / "inbox", tmp_path / "private"
    inbox.mkdir()
    outside.mkdir()
    (inbox / "minutes.txt").write_text("The lighthouse committee meets on Thursdays at the harbour.",
                                       encoding="utf-8")
    (outside / "secret.txt").write_text("The vault code is hidden in the lighthouse.", encoding="utf-8")
    (inbox / "sneaky.txt").symlink_to(outside / "secret.txt")  # inside by name, outside in truth

    async def agent():
        async with _session("--kb", "kb", "--allow-add", str(inbox)) as s:
            tools = {t.name: t for t in (await s.list_tools()).tools}
            assert "add" in tools and str(inbox) in tools["add"].input_schema["properties"]["paths"]["description"]
            for paths in ([str(outside / "secret.txt")], [str(inbox / "sneaky.txt")],
                          [str(inbox / "minutes.txt"), str(outside)]):
                err, why = await _call(s, "add", kb="kb", paths=paths)
                assert err and "outside the folders this server may add from" in why and "nothing was added" in why
            err, listing = await _call(s, "list_knowledge_bases")
            assert listing["knowledge_bases"][0]["documents"] == 2  # nothing went in
            err, report = await _call(s, "add", kb="kb", paths=[str(inbox / "minutes.txt")])
            assert not err and [Path(p).name for p in report["added"]] == ["minutes.txt"]
            err, found = await _call(s, "search", kb="kb", query="When does the lighthouse committee meet?", k=1)
            assert found["results"][0]["file"] == "minutes.txt"
            assert "minutes.txt" in {r.name for r in (await s.list_resources()).resources}

    _run(agent)


def test_a_team_knowledge_base_whose_server_is_down_is_a_tool_error_saying_so(served, tmp_path):
    from kb.knowledge_base import kbs_dir
    from kb.storage.postgres.link import write_link

    # a PostgreSQL address on a Unix socket nobody listens on: refused at once
    write_link(kbs_dir() / "team", f"postgresql://zhiku@/knowledge?host={tmp_path / 'no-server'}", "zhiku_team")

    async def agent():
        async with _session("--kb", "kb", "--kb", "team") as s:
            err, why = await _call(s, "search", kb="team", query="chunk size")
            assert err and "does not answer" in why and "Check that it runs" in why
            err, found = await _call(s, "search", kb="kb", query="chunk size")  # the other one still works
            assert not err and found["results"][0]["file"] == "report.pdf"

    _run(agent)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_http_transport_on_localhost_needs_the_bearer_token(served):
    import httpx

    port = _free_port()
    proc = subprocess.Popen([ZHIKU, "mcp", "--kb", "kb", "--http", str(port)], stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    try:
        banner = [proc.stderr.readline() for _ in range(2)]
        assert banner[0].strip() == f"Zhiku MCP server at http://127.0.0.1:{port}/mcp"
        token = banner[1].split("Bearer ", 1)[1].strip()
        shown = subprocess.run([ZHIKU, "mcp", "--show-token"], capture_output=True, text=True, timeout=60)
        assert shown.stdout.strip() == token and len(token) >= 40  # kept, not made anew
        url = f"http://127.0.0.1:{port}/mcp"
        hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                 "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                            "clientInfo": {"name": "test", "version": "0"}}}
        headers = {"accept": "application/json, text/event-stream"}
        for _ in range(100):  # until uvicorn listens
            try:
                refused = httpx.post(url, json=hello, headers=headers, timeout=5)
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        assert refused.status_code == 401 and "bearer token" in refused.text
        wrong = httpx.post(url, json=hello, headers={**headers, "authorization": "Bearer not-it"}, timeout=5)
        assert wrong.status_code == 401
        # the token alone is not enough from a page that names another host (DNS rebinding)
        rebound = httpx.post(url, json=hello, timeout=5,
                             headers={**headers, "authorization": f"Bearer {token}", "host": "evil.example"})
        assert rebound.status_code in (403, 421)

        async def agent():
            import httpx2
            from mcp.client.session import ClientSession
            from mcp.client.streamable_http import streamable_http_client

            client = httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=60)
            async with client, streamable_http_client(url, http_client=client) as (read, write, *_), \
                    ClientSession(read, write) as s:
                await s.initialize()
                assert "search" in {t.name for t in (await s.list_tools()).tools}
                res = await s.call_tool("search", {"kb": "kb", "query": "chunk size", "k": 1})
                return json.loads(res.content[0].text)

        found = _run(agent)
        assert found["results"][0]["file"] == "report.pdf" and found["results"][0]["page"] == 2
        # a new token: the old one is refused from then on (checked per request, not per start)
        renewed = subprocess.run([ZHIKU, "mcp", "--new-token"], capture_output=True, text=True, timeout=60)
        assert renewed.stdout.strip() != token
        old = httpx.post(url, json=hello, headers={**headers, "authorization": f"Bearer {token}"}, timeout=5)
        assert old.status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_mcp_names_what_it_serves_or_refuses_to_start(served, capsys):
    assert main(["mcp"]) == 2
    assert "--kb NAME" in capsys.readouterr().err
    assert main(["mcp", "--kb", "nope"]) == 2
    assert "no knowledge base called 'nope'" in capsys.readouterr().err
    assert main(["mcp", "--kb", "kb", "--allow-add", str(served / "no-such-folder")]) == 2
    assert "no such folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["mcp", "--help"])
    out = capsys.readouterr().out
    assert '"mcpServers": {"zhiku"' in out and "search(kb, query" in out and "Authorization: Bearer" in out
