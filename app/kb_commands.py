"""The knowledge-base commands of the `zhiku` CLI: kb, add, remove, search, ask."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import time
from pathlib import Path

from app.cli_common import open_kb, print_report
from app.progress import ProgressPrinter
from kb import defaults
from kb.text.document import part_name
from kb.text.file_names import readable
from kb.answering.grounding import summary


def cmd_kb_create(args: argparse.Namespace) -> int:
    """Create an empty knowledge base."""
    from kb.knowledge_base import KnowledgeBase
    from models.embedder import Embedder

    server = args.server or None
    try:  # none chosen: the default, or when joining a team's knowledge base the model it was built with
        embedder = Embedder.default(args.embedder, int8=args.int8) \
            if args.embedder or args.int8 is not None else None
    except FileNotFoundError as e:  # --int8 without a sound variant
        print(f"error: {e}", file=sys.stderr)
        return 2
    kb = KnowledgeBase.create(args.name, embedder, args.chunk_tokens, args.overlap_tokens, server=server)
    if server:
        verb = "joined" if kb.joined else "created"
        print(f"{verb} {kb.name!r} on {kb.where} (embedding model {kb.embedder.model_id}); "
              f"this computer's link and thumbnails are in {kb.folder}")
    else:
        print(f"created {kb.name!r} in {kb.folder} (embedding model {kb.embedder.model_id})")
    return 0


def cmd_kb_list(args: argparse.Namespace) -> int:
    """List knowledge bases with document counts and sizes."""
    from kb.knowledge_base import list_names, on_server, summary

    rows = [{**{k: v for k, v in summary(name).items() if k != "embedding_model"}, "server": on_server(name)}
            for name in list_names()]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    elif not rows:
        print("no knowledge bases yet — create one with `zhiku add NAME PATH...`")
    else:
        for r in rows:
            failed = f", {r['failed']} failed" if r["failed"] else ""
            where = f" (on {r['server']})" if r["server"] else ""
            print(f"{r['name']}: {r['documents']} documents{failed}, {r['chunks']} chunks, "
                  f"{r['bytes'] / 1e6:.1f} MB{where}")
    return 0


def cmd_kb_delete(args: argparse.Namespace) -> int:
    """Delete a knowledge base (after confirmation unless --yes)."""
    from kb.knowledge_base import delete, on_server

    server = on_server(args.name)
    if args.from_server and not server:
        print(f"error: {args.name!r} is not on a server", file=sys.stderr)
        return 2
    if not args.yes:
        if not sys.stdin.isatty():
            print("error: refusing to delete without confirmation; pass --yes", file=sys.stderr)
            return 2
        what = (f"Delete knowledge base {args.name!r} from {server}, for everyone who uses it?" if args.from_server
                else f"Delete knowledge base {args.name!r} and its index?")
        if input(f"{what} Your files stay. [y/N] ").lower() != "y":
            return 1
    delete(args.name, from_server=args.from_server)
    if server and not args.from_server:
        print(f"unlinked {args.name!r} from this computer; it stays on {server} "
              "(`--from-server` deletes it there)")
    else:
        print(f"deleted {args.name!r}")
    return 0


def cmd_kb_info(args: argparse.Namespace) -> int:
    """Show a knowledge base's settings, counts and documents."""
    kb = open_kb(args.name)
    info = kb.info()
    info["documents_list"] = [{**{k: d[k] for k in ("name", "kind", "pages", "status", "error", "chunks")},
                               "path": readable(d["path"])} for d in kb.documents()]
    if args.json:
        print(json.dumps(info, ensure_ascii=False, indent=2))
        return 0
    for key in ("name", "folder", "embedding_model", "chunk_tokens", "overlap_tokens", "documents",
                "indexed", "failed", "chunks", "vectors", "ocr_pages", "queued"):
        print(f"{key:16} {info[key]}")
        if key == "indexed" and info["embedding_pending"]:
            print(f"{'':16} {info['embedding_pending']} more keyword-searchable, embedding pending "
                  f"(`zhiku add {shlex.quote(info['name'])}` embeds them)")
    for folder in info["linked_folders"]:
        print(f"{'linked folder':16} {folder}")
    copies = {d["path"]: d["copies"] for d in kb.documents() if d["copies"]}
    for d in info["documents_list"]:
        extra = f" — {d['error']}" if d["error"] else ""
        extra += "".join(f"\n      also at {readable(c)}" for c in (copies.get(d["path"]) or "").split("\n") if c)
        print(f"  [{d['status']}] {d['name']} ({d['pages']} pages, {d['chunks']} chunks){extra}")
    return 0


def cmd_kb_reembed(args: argparse.Namespace) -> int:
    """Re-embed every chunk with another embedding model."""
    from kb.knowledge_base import KnowledgeBase
    from models.embedder import Embedder

    try:
        embedder = Embedder.default(args.embedder, int8=args.int8)
    except FileNotFoundError as e:  # --int8 without a sound variant
        print(f"error: {e}", file=sys.stderr)
        return 2
    kb = KnowledgeBase.reembed(args.name, embedder, progress=ProgressPrinter())
    print(f"{kb.name!r} now uses {kb.embedder.model_id}")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    """Index files and folders into a knowledge base (created if it does not exist)."""
    password = args.password
    if password == "":  # --password without a value: ask, so it stays out of the shell history
        import getpass

        password = getpass.getpass("Password for encrypted files: ")
    from kb.ingest.files import NO_SUCH_PATH, collect
    from kb.knowledge_base import delete, list_names

    new = args.kb not in list_names()
    if new and args.paths and not collect(args.paths)[0]:
        _, skipped = collect(args.paths)
        for path, why in skipped:
            print(f"  skipped: {readable(path)}: {why}")
        print(f"nothing to add: knowledge base {args.kb!r} not created", file=sys.stderr)
        return 1
    kb = open_kb(args.kb, create=True, embedder_name=args.embedder)
    if not args.no_embed:
        from app.image_commands import clip_or_none

        try:  # with a CLIP model registered, pictures are embedded in the same job
            kb.use_clip(clip_or_none())
        except Exception as e:  # a moved or damaged CLIP model must not stop the documents going in
            print(f"warning: image search model not used ({e}); pictures are kept for later", file=sys.stderr)
    started = time.monotonic()
    report = kb.add(args.paths, progress=ProgressPrinter(), password=password, ocr=not args.no_ocr,
                    time_limit_s=args.time_limit, embed=not args.no_embed)
    print_report(report, time.monotonic() - started)
    if new and not (report.added or report.updated or report.unchanged):
        kb.close()
        delete(args.kb)
        print(f"nothing could be added: knowledge base {args.kb!r} not created", file=sys.stderr)
        return 1
    # 1 when anything asked for is not in the knowledge base: a failed file or a path that does not exist
    missing = any(why == NO_SUCH_PATH for _, why in report.skipped)
    return 1 if report.failed or missing else 0


def cmd_remove(args: argparse.Namespace) -> int:
    """Remove a document from a knowledge base."""
    kb = open_kb(args.kb)
    try:
        path = kb.remove(args.doc)
    except KeyError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2
    print(f"removed {path}")
    return 0


def hit_json(h) -> dict:
    """A search hit for `--json` and for MCP clients: file, path, part ("page", "section", "slide"),
    page, offsets into the page, score, similarity, text."""
    return {"file": h.name, "path": readable(h.path), "part": part_name(h.path), "page": h.page,
            "start": h.start, "end": h.end, "score": round(h.score, 6), "similarity": h.similarity, "text": h.text}


def _scope(kb, only: list[str] | None) -> set[int] | None:
    """--only FILE/FOLDER...: the documents to search (None: all; an empty set, said why, when none match)."""
    if not only:
        return None
    documents = kb.scope([Path(p).expanduser().resolve() for p in only])
    if not documents:
        print(f"error: none of {', '.join(only)} is a document of this knowledge base "
              "(`zhiku kb info` lists them)", file=sys.stderr)
    return documents


def cmd_search(args: argparse.Namespace) -> int:
    """Print the best chunks for a query with file:page and a snippet."""
    kb = open_kb(args.kb)
    documents = _scope(kb, args.only)
    if documents == set():
        return 1
    hits = kb.search(args.query, k=args.k, documents=documents)
    if args.json:
        print(json.dumps([hit_json(h) for h in hits], ensure_ascii=False, indent=2))
        return 0
    if not hits:
        print("nothing in this knowledge base matches")
    for i, h in enumerate(hits, 1):
        snippet = " ".join(h.text.split())[:160]
        print(f"{i}. {h.name}:{h.page}  (score {h.score:.4f})\n   {snippet}")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    """Stream an answer from a knowledge base, then list the sources it cited."""
    from kb.answering.answer import Answerer
    from models.chat_model import open_chat_model

    kb = open_kb(args.kb)
    try:
        documents = _scope(kb, args.only)
        if documents == set():
            return 1
        llm = open_chat_model(args.llm, n_ctx=args.ctx, n_threads=args.threads, n_gpu_layers=args.gpu_layers,
                              server=server_choice(args))
        try:
            return _answer(args, Answerer(kb, llm, top_k=args.k, context_tokens=args.context_tokens,
                                          reserve=args.answer_tokens, documents=documents))
        finally:  # closed here, not by the interpreter's teardown (llama-cpp-python's __del__ fails there)
            llm.close()
    finally:
        kb.close()


def _answer(args: argparse.Namespace, answerer) -> int:
    """Print the answer to `args.question` (streamed, or as JSON), then its checks and sources."""
    from models.server_errors import ServerError

    stream = answerer.ask(args.question)
    if args.json:
        stream.text()
        print(json.dumps(answer_json(stream.result), ensure_ascii=False, indent=2))
        return 0
    streamed = []
    try:
        for piece in stream:
            streamed.append(piece)
            sys.stdout.write(piece)
            sys.stdout.flush()
    except ServerError as e:  # what came stays on the screen; the reason follows it
        print(f"\n\nerror: {e}", file=sys.stderr)
        return 2
    result = stream.result
    print()
    if result.not_found:
        if result.attempt is not None:  # what streamed was the attempt the checks turned away
            print(f"\n✗ {ATTEMPT_NOTE}")
            for c in result.attempt.checks:
                if c.status == "unsupported":
                    print(f"  ✗ {c.text.strip()}\n      {c.reason}")
            print(f"\n{result.text}")
        elif "".join(streamed).strip() != result.text.strip():
            print(result.text)
        if result.related:
            print("\nPossibly related:")
            for s in result.related:
                print(f"  {s.name}, {part_name(s.path)} {s.page}: {' '.join(s.text.split())[:100]}")
        return 0
    if result.text.strip() != "".join(streamed).strip():  # markers out of range or a copied header went
        print(f"\n{result.text}")
    unsupported, checked = summary(result.checks)
    if checked:
        print(f"\nChecked against your documents: {checked - unsupported} of {checked} sentences supported.")
        for c in result.checks:
            if c.status == "unsupported":
                print(f"  ✗ {c.text.strip()}\n      {c.reason}")
    if result.cited:
        print("\nSources:")
        for s in result.cited:
            print(f"  [{s.number}] {s.name}, {part_name(s.path)} {s.page}: {' '.join(s.text.split())[:100]}")
    elif result.sources:
        print("\n(no source cited; consulted: " + ", ".join(f"{s.name}:{s.page}" for s in result.sources) + ")")
    return 0


def server_choice(args: argparse.Namespace):
    """The model server named by --server (a key given with --api-key is kept for it), or None."""
    from models.api_keys import save_key, where
    from models.chat_model import ServerChoice
    from models.remote_llm import root_of

    if not args.server:
        return None
    if args.api_key:
        save_key(root_of(args.server), args.api_key)
        print(f"(the API key for {root_of(args.server)} is kept in {where()})", file=sys.stderr)
    return ServerChoice(args.server, args.server_model or "", args.api_key, float(args.server_timeout))


ATTEMPT_NOTE = ("The answer above is not backed by your documents (its first sentence failed the check), "
                "so it is not given as the answer.")


def answer_json(result) -> dict:
    """An AnswerResult for `--json`: the answer, each sentence's check and span, sources, related passages."""
    unsupported, checked = summary(result.checks)
    return {
        "question": result.question, "answer": result.text, "not_found": result.not_found,
        "rejected_by": result.rejected_by, "answerability": result.answerability,
        "follows_up": result.follows_up, "search_query": result.search_query,
        "sentences": [_sentence_json(c) for c in result.checks],
        "checked": checked, "unsupported": unsupported,
        "cited": [s.__dict__ for s in result.cited], "sources": [s.__dict__ for s in result.sources],
        "related": [s.__dict__ for s in result.related],
        "attempt": None if result.attempt is None else {
            "text": result.attempt.text, "sentences": [_sentence_json(c) for c in result.attempt.checks],
            "cited": [s.__dict__ for s in result.attempt.cited]},
    }


def _sentence_json(c) -> dict:
    return {"text": c.text, "start": c.start, "end": c.end, "status": c.status, "reason": c.reason,
            "cited": c.cited, "missing": c.missing, "support": dataclasses.asdict(c.support) if c.support else None}


def _variant_options(p: argparse.ArgumentParser) -> None:
    """--int8 / --float: which form of the embedding model (default: int8 where it is installed)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--int8", dest="int8", action="store_const", const=True, default=None,
                   help="embed with the model's int8 ONNX copy (the default where it is installed: "
                        "about 2x faster indexing, see bench/README.md)")
    g.add_argument("--float", dest="int8", action="store_const", const=False,
                   help="embed with the float model (PyTorch): slower, the original vectors")


def register(sub) -> None:
    """Add the knowledge-base subcommands to the `zhiku` parser."""
    kbp = sub.add_parser("kb", help="create, list, delete and inspect knowledge bases")
    ksub = kbp.add_subparsers(dest="kb_command", required=True)
    c = ksub.add_parser("create", help="create an empty knowledge base")
    _variant_options(c)
    c.add_argument("name")
    c.add_argument("--embedder", help="embedding model (default: the catalog default)")
    c.add_argument("--chunk-tokens", type=int, default=defaults.CHUNK_TOKENS)
    c.add_argument("--overlap-tokens", type=int, default=defaults.OVERLAP_TOKENS)
    c.add_argument("--server", metavar="URL", default=os.environ.get("ZHIKU_KB_SERVER", ""),
                   help="keep it in this PostgreSQL database with pgvector (postgresql://user:password@host/db; "
                        "$ZHIKU_KB_SERVER); joins the knowledge base of that name if another computer made it")
    c.set_defaults(func=cmd_kb_create)
    ls = ksub.add_parser("list", help="every knowledge base with its counts")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_kb_list)
    d = ksub.add_parser("delete", help="delete a knowledge base (your files stay)")
    d.add_argument("name")
    d.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    d.add_argument("--from-server", action="store_true",
                   help="a server knowledge base: delete it on the server, for everyone (default: unlink it here)")
    d.set_defaults(func=cmd_kb_delete)
    i = ksub.add_parser("info", help="settings, counts and documents")
    i.add_argument("name")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_kb_info)
    r = ksub.add_parser("reembed", help="switch to another embedding model, re-embedding every chunk")
    r.add_argument("name")
    r.add_argument("--embedder", help="embedding model (default: the catalog default)")
    _variant_options(r)
    r.set_defaults(func=cmd_kb_reembed)

    from app import folder_commands

    folder_commands.register(sub, ksub)

    from app import image_commands

    image_commands.register(sub)

    a = sub.add_parser("add", help="index files and folders into a knowledge base")
    a.add_argument("kb")
    a.add_argument("paths", nargs="*", help="files and folders (none: resume an interrupted job)")
    a.add_argument("--embedder", help="embedding model for a new knowledge base")
    a.add_argument("--password", nargs="?", const="", default=None,
                   help="password for encrypted PDFs (no value: asked for); never stored")
    a.add_argument("--no-ocr", action="store_true", help="do not OCR scanned pages and images")
    a.add_argument("--no-embed", action="store_true",
                   help="read the files now (keyword search works at once); embed on the next `zhiku add`")
    a.add_argument("--time-limit", type=float, default=None, metavar="S",
                   help=f"stop parsing a file after S seconds without progress (default {defaults.PARSE_TIME_LIMIT_S:g})")
    a.set_defaults(func=cmd_add)
    rm = sub.add_parser("remove", help="remove a document from a knowledge base")
    rm.add_argument("kb")
    rm.add_argument("doc", help="file name or full path")
    rm.set_defaults(func=cmd_remove)
    s = sub.add_parser("search", help="ranked chunks for a query")
    s.add_argument("kb")
    s.add_argument("query")
    s.add_argument("-k", type=int, default=defaults.TOP_K)
    s.add_argument("--json", action="store_true")
    s.add_argument("--only", nargs="+", metavar="PATH",
                   help="search only these documents, or the documents under these folders")
    s.set_defaults(func=cmd_search)
    q = sub.add_parser("ask", help="a streamed answer citing file and page")
    q.add_argument("kb")
    q.add_argument("question")
    q.add_argument("-k", type=int, default=defaults.TOP_K, help="sources to retrieve")
    q.add_argument("--context-tokens", type=int, default=defaults.CONTEXT_TOKENS,
                   help="prompt tokens of evidence (smaller: faster first token)")
    q.add_argument("--answer-tokens", type=int, default=defaults.ANSWER_TOKENS, metavar="N",
                   help=f"longest answer, in tokens (default {defaults.ANSWER_TOKENS})")
    q.add_argument("--llm", help="chat model (default: the catalog default)")
    q.add_argument("--ctx", type=int, default=defaults.N_CTX, help="context length in tokens")
    q.add_argument("--threads", type=int, help="llama.cpp threads (default: cores - 1)")
    q.add_argument("--gpu-layers", type=int, default=defaults.GPU_LAYERS, help="layers to offload to the GPU")
    q.add_argument("--server", metavar="URL", default=os.environ.get("ZHIKU_SERVER", ""),
                   help="answer through an OpenAI-compatible server, e.g. http://gpu-box:8000/v1 (vLLM, "
                        "llama.cpp, Ollama, LM Studio); default: $ZHIKU_SERVER, else the local model")
    q.add_argument("--server-model", metavar="NAME", help="the model on that server (default: the first it lists)")
    q.add_argument("--api-key", metavar="KEY", help="the server's API key; kept (keyring or a private file), "
                                                    "so later runs need not repeat it")
    q.add_argument("--server-timeout", type=float, default=120, metavar="S",
                   help="seconds without a word from the server before giving up (default 120)")
    q.add_argument("--json", action="store_true")
    q.add_argument("--only", nargs="+", metavar="PATH",
                   help="search only these documents, or the documents under these folders")
    q.set_defaults(func=cmd_ask)
