"""`zhiku mcp`: the user's knowledge bases inside the assistants they already use (Claude Desktop,
Cherry Studio, VS Code and Cursor agents, LM Studio), over the Model Context Protocol.

Built on the official SDK's MCPServer (FastMCP before mcp 2): the tools, their typed parameters and
descriptions are here; what they do is app.mcp_library.Library. Over stdio by default, which is what
those clients start. `--http PORT` serves streamable HTTP for clients that want a URL: on 127.0.0.1
only unless `--host` says otherwise, the SDK's DNS-rebinding check on, and every request must carry
a bearer token, generated once and kept like a model server's API key (models.api_keys).

No `from __future__ import annotations` here: the SDK reads each tool's annotations when it is
registered, and the annotated types (KB, ONLY) are local to build_server.
"""

import argparse
import hmac
import secrets
import sys
from pathlib import Path
from typing import Annotated, Any, Callable

from app.mcp_library import INSTRUCTIONS, MAX_K, Library
from kb import defaults

TOKEN_KEY = "zhiku mcp --http"  # the bearer token's entry in the key store
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def build_server(library: Library, version: str = ""):
    """The MCP server over `library`: its tools, and its documents as resources."""
    from mcp.server.mcpserver import MCPServer
    from mcp_types import Resource, ToolAnnotations
    from pydantic import Field

    KB = Annotated[str, Field(description="the knowledge base's name, as list_knowledge_bases gives it")]
    ONLY = Annotated[list[str] | None, Field(
        description="limit to these documents: paths or file names from earlier results (folders stand for "
                    "every document under them); omit to use the whole knowledge base")]

    class ZhikuServer(MCPServer):
        async def list_resources(self) -> list[Resource]:
            """Every indexed document of the knowledge bases served, read when the list is asked
            for (an agent that added a file sees it next time); the templates below read them."""
            import anyio.to_thread

            rows = await anyio.to_thread.run_sync(library.resources)
            return [Resource(uri=r["uri"], name=r["name"], description=r["description"], mime_type="text/plain")
                    for r in rows]

    # warnings only: the SDK's default (INFO) also turns on other libraries' chatter (faiss's loader),
    # which a client shows in its server log
    server = ZhikuServer("zhiku", title="Zhiku (知库) knowledge bases", instructions=INSTRUCTIONS,
                         version=version, log_level="WARNING")
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(annotations=read_only)
    def list_knowledge_bases() -> dict[str, Any]:
        """The knowledge bases this server offers: name, documents, chunks, where each lives (a folder
        on this computer or a team's PostgreSQL server), and whether files may be added."""
        return _said(library.list_knowledge_bases)

    @server.tool(annotations=read_only)
    def search(kb: KB, query: Annotated[str, Field(description="words or a question, Chinese or English")],
               k: Annotated[int, Field(description=f"how many passages, 1 to {MAX_K}")] = 8,
               only: ONLY = None) -> dict[str, Any]:
        """Passages of the user's documents that best match `query` (keywords and meaning combined, as
        the Zhiku app ranks them), best first: file, path, page (or section / slide), score and the
        passage's exact text. Quote the text and cite file and page."""
        return _said(library.search, kb, query, k, only)

    @server.tool(annotations=read_only)
    def ask(kb: KB, question: Annotated[str, Field(description="the question, Chinese or English")],
            only: ONLY = None) -> dict[str, Any]:
        """An answer written by the local model from the user's documents, with its citations (file +
        page) and a check of every sentence against the cited passages. `not_found` true means the
        documents do not hold the answer: say so rather than answering from elsewhere. Slower than
        search (seconds to a minute on a laptop)."""
        return _said(library.ask, kb, question, only)

    @server.tool(annotations=read_only)
    def read(kb: KB, document: Annotated[str, Field(description="the document's path (or its file name "
                                                                "when unique), as search returns it")],
             page: Annotated[int, Field(description="page, section or slide number, from 1")] = 1
             ) -> dict[str, Any]:
        """The whole text of one page (section of a text file, slide of a presentation) of a document,
        with how many there are: to read around a passage search found."""
        return _said(library.read, kb, document, page)

    if library.has_clip:
        @server.tool(annotations=read_only)
        def search_images(kb: KB, text: Annotated[str, Field(description="what the picture shows")],
                          k: Annotated[int, Field(description=f"how many pictures, 1 to {MAX_K}")] = 12
                          ) -> dict[str, Any]:
            """Pictures inside the documents (PDF figures, photos, slides) matching a description, with
            the document and page each is on and a thumbnail file on this computer."""
            return _said(library.search_images, kb, text, k)

    if library.allow_add:
        folders = ", ".join(str(f) for f in library.allow_add)

        @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False,
                                                 idempotent_hint=True, open_world_hint=False))
        def add(kb: KB, paths: Annotated[list[str], Field(
                description=f"files or folders to index; only under {folders}")]) -> dict[str, Any]:
            """Index files into a knowledge base (a file already there is read again only if it
            changed), so that search and ask find them. Only files under the folders the user allowed."""
            return _said(library.add, kb, paths)

    @server.resource("zhiku://{kb}/documents/{doc_id}", mime_type="text/plain",
                     description="a document's text, page by page (long ones end with where to read on)")
    def document_resource(kb: str, doc_id: int) -> str:
        return library.document_text(kb, doc_id)

    @server.resource("zhiku://{kb}/documents/{doc_id}/pages/{page}", mime_type="text/plain",
                     description="one page (section, slide) of a document")
    def page_resource(kb: str, doc_id: int, page: int) -> str:
        return library.document_text(kb, doc_id, page)

    return server


def _said(method, *args):
    """Run a library call; the errors Zhiku words for people (a server that does not answer, a model
    not installed, a damaged file) reach the agent as tool errors with those words, as on the CLI."""
    from mcp.server.mcpserver.exceptions import ToolError

    from app.cli_common import worded_errors

    try:
        return method(*args)
    except worded_errors() as e:
        raise ToolError(str(e)) from None


class BearerGate:
    """An ASGI wrapper that lets through only HTTP requests carrying `Authorization: Bearer <token>`,
    the token read from the key store on every request: `zhiku mcp --new-token` shuts out the old
    one at once, without a restart (a file read, or a keyring call of a few ms, next to a tool call)."""

    def __init__(self, app, current: Callable[[], str | None]) -> None:
        self.app, self.current = app, current

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            token = self.current()
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not token or not hmac.compare_digest(given, f"Bearer {token}".encode()):
                body = b'{"error": "missing or wrong bearer token: `zhiku mcp --show-token` prints it"}'
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"www-authenticate", b'Bearer realm="zhiku"')]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def http_token(renew: bool = False) -> str:
    """The bearer token of `zhiku mcp --http`, made the first time (or anew) and kept in the key store."""
    from models.api_keys import load_key, save_key

    token = None if renew else load_key(TOKEN_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        save_key(TOKEN_KEY, token)
    return token


def cmd_mcp(args: argparse.Namespace) -> int:
    """Serve knowledge bases over MCP (stdio, or streamable HTTP with --http)."""
    from app.cli_common import app_version
    from kb.knowledge_base import list_names

    if args.show_token or args.new_token:
        print(http_token(renew=args.new_token))
        return 0
    local = list_names()
    names = local if args.all else list(args.kb or [])
    if not names:
        print("error: name the knowledge bases to serve (--kb NAME, again for more) or pass --all; "
              f"yours: {', '.join(local) or 'none yet (`zhiku add NAME PATH...` makes one)'}", file=sys.stderr)
        return 2
    missing = [n for n in names if n not in local]
    if missing:
        print(f"error: no knowledge base called {', '.join(repr(n) for n in missing)} "
              "(`zhiku kb list` shows them)", file=sys.stderr)
        return 2
    for folder in args.allow_add or []:
        if not Path(folder).expanduser().is_dir():
            print(f"error: --allow-add {folder}: no such folder", file=sys.stderr)
            return 2
    from app.kb_commands import server_choice

    library = Library(names, args.allow_add, {"name": args.llm, "threads": args.threads,
                                              "gpu_layers": args.gpu_layers, "answer_tokens": args.answer_tokens,
                                              "server": server_choice(args)})
    server = build_server(library, app_version())
    try:
        if args.http is None:
            server.run("stdio")
            return 0
        host = args.host or "127.0.0.1"
        if host not in LOCAL_HOSTS:
            print(f"warning: serving on {host}: other computers that can reach it and know the token can read "
                  "these knowledge bases", file=sys.stderr)
        return _serve_http(server, host, args.http)
    finally:
        library.close()


def _serve_http(server, host: str, port: int) -> int:
    import uvicorn

    from models.api_keys import load_key

    token = http_token()
    app = BearerGate(server.streamable_http_app(host=host), lambda: load_key(TOKEN_KEY))
    shown = f"[{host}]" if ":" in host else host
    print(f"Zhiku MCP server at http://{shown}:{port}/mcp\n"
          f"header  Authorization: Bearer {token}\n"
          "(the same across restarts: `zhiku mcp --show-token` prints it, `--new-token` replaces it)",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0


HELP = """\
Serve knowledge bases to AI assistants over the Model Context Protocol.

An assistant that speaks MCP (Claude Desktop, Cherry Studio, VS Code, Cursor, LM Studio) starts
`zhiku mcp --kb NAME` itself and then sees these tools:
  list_knowledge_bases   names, counts and where each lives
  search(kb, query, k, only)   ranked passages: file, page, score and exact text
  ask(kb, question, only)      the local model's answer with citations, each sentence checked,
                               not_found when the documents do not hold it
  read(kb, document, page)     the text of one page, section or slide
  search_images(kb, text, k)   pictures in the documents (when a CLIP model is installed)
  add(kb, paths)               only with --allow-add, only files under those folders
and every document as a resource (zhiku://KB/documents/ID, .../pages/N). Nothing is written
without --allow-add.

Claude Desktop (claude_desktop_config.json) and Cherry Studio (MCP Servers > Add > Import from
JSON) take this entry:
  {"mcpServers": {"zhiku": {"command": "zhiku", "args": ["mcp", "--kb", "笔记"]}}}
VS Code (.vscode/mcp.json):
  {"servers": {"zhiku": {"type": "stdio", "command": "zhiku", "args": ["mcp", "--kb", "笔记"]}}}

For a client that wants a URL: `zhiku mcp --kb 笔记 --http 8765` serves
http://127.0.0.1:8765/mcp; send the header it prints (Authorization: Bearer ...);
--new-token replaces the token.
"""


def register(sub) -> None:
    """The `zhiku mcp` command."""
    p = sub.add_parser("mcp", help="serve knowledge bases to AI assistants over MCP (Model Context Protocol)",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kb", action="append", metavar="NAME", help="a knowledge base to serve (repeat for more)")
    p.add_argument("--all", action="store_true", help="serve every knowledge base on this computer")
    p.add_argument("--allow-add", nargs="+", metavar="FOLDER",
                   help="offer an `add` tool that indexes files from these folders (and only these)")
    p.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP on this port instead of stdio")
    p.add_argument("--host", help="address to serve HTTP on (default 127.0.0.1; anything else is reachable "
                                  "from other computers)")
    p.add_argument("--show-token", action="store_true", help="print the HTTP bearer token and exit")
    p.add_argument("--new-token", action="store_true",
                   help="replace the HTTP bearer token (clients with the old one are refused from then on), "
                        "print it and exit")
    p.add_argument("--llm", help="chat model for `ask` (default: the catalog default)")
    p.add_argument("--threads", type=int, help="llama.cpp threads (default: cores - 1)")
    p.add_argument("--gpu-layers", type=int, default=0, help="layers to offload to the GPU")
    p.add_argument("--answer-tokens", type=int, default=defaults.ANSWER_TOKENS, metavar="N",
                   help=f"longest answer, in tokens (default {defaults.ANSWER_TOKENS})")
    p.add_argument("--server", help="answer with a model on your own OpenAI-compatible server (URL)")
    p.add_argument("--server-model", help="the model's name on that server")
    p.add_argument("--api-key", help="that server's API key (kept in the key store)")
    p.add_argument("--server-timeout", type=float, default=120.0, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_mcp)
