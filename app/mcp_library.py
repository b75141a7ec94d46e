"""What `zhiku mcp` serves: the knowledge bases it was given, and what an agent may do with them
(the protocol side is app.mcp_server).

An agent gets what the window gives a person: ranked passages with file and page (the app's hybrid
retrieval, unchanged), answers from the local model that cite file and page, say "not found" and
mark unbacked sentences, the text of a page, and pictures where a CLIP model is installed. Only the
knowledge bases named with --kb are served (all local ones with --all), read-only unless --allow-add
names folders an agent may add files from.

Every mistake an agent can make (an unknown knowledge base or document, k past MAX_K, a path
outside the allowed folders) is a tool error that says what to do instead and changes nothing.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kb import defaults
from kb.text.document import part_name
from kb.text.file_names import readable

MAX_K = 50  # passages per search: past this an agent's context fills with the tail of the ranking
DOCUMENT_CHARS = 200_000  # a whole-document resource stops here (the page resources hold the rest)
INSTRUCTIONS = (
    "Zhiku serves the user's own documents (PDF, Word, web pages, notes; Chinese and English) from "
    "knowledge bases on this computer. Call `search` for passages with file and page, `read` for a whole "
    "page, and `ask` for an answer written by the local model from the documents (slower; it says "
    "not_found when they do not hold the answer). Cite file and page when you use what they return.")


class Library:
    """The knowledge bases one `zhiku mcp` serves, opened on first use, and what it may do with them."""

    def __init__(self, names: list[str], allow_add: list[Path] | None = None, llm: dict | None = None) -> None:
        self.names = list(dict.fromkeys(names))
        self.allow_add = [Path(p).expanduser().resolve() for p in allow_add or []]
        self.llm_options = dict(llm or {})
        self._kbs: dict[str, Any] = {}
        self._open_lock = threading.Lock()
        self._llm = None
        self._llm_lock = threading.Lock()  # one answer at a time: llama.cpp runs one context

    # ---- knowledge bases ------------------------------------------------------------------------
    def kb(self, name: str):
        """The knowledge base `name` if this server offers it (a tool error naming those it does)."""
        from kb.knowledge_base import KnowledgeBase

        if name not in self.names:
            offered = ", ".join(repr(n) for n in self.names) or "none"
            raise _tool_error(f"unknown knowledge base {name!r}: this server offers {offered} "
                              "(call list_knowledge_bases)")
        with self._open_lock:
            if name not in self._kbs:
                self._kbs[name] = KnowledgeBase.open(name)
            return self._kbs[name]

    def list_knowledge_bases(self) -> dict:
        """Names, counts and where each knowledge base lives."""
        out = []
        for name in self.names:
            base = self.kb(name)
            info = base.info()
            out.append({"name": name, "documents": info["documents"], "failed": info["failed"],
                        "chunks": info["chunks"], "embedding_pending": info["embedding_pending"],
                        "where": base.where, "embedding_model": info["embedding_model"],
                        "can_add": bool(self.allow_add)})
        return {"knowledge_bases": out}

    def _documents(self, kb, only: list[str] | None) -> set[int] | None:
        if not only:
            return None
        documents = kb.scope([Path(p).expanduser().resolve() if os.sep in p else p for p in only])
        documents |= {d["id"] for d in kb.documents() if d["name"] in only and d["status"] != "failed"}
        if not documents:
            raise _tool_error(f"none of {', '.join(only)} is a document of knowledge base {kb.name!r}; "
                              "give paths or file names as search results and the document resources name them")
        return documents

    # ---- tools --------------------------------------------------------------------------------
    def search(self, kb: str, query: str, k: int = defaults.TOP_K, only: list[str] | None = None) -> dict:
        """Ranked passages for a query, as the app's hybrid retrieval ranks them."""
        from app.kb_commands import hit_json

        if not 1 <= k <= MAX_K:
            raise _tool_error(f"k must be between 1 and {MAX_K} (got {k}); ask again with fewer passages")
        if not query.strip():
            raise _tool_error("the query is empty: give the words or question to search for")
        base = self.kb(kb)
        hits = base.search(query, k=k, documents=self._documents(base, only))
        result: dict = {"knowledge_base": kb, "query": query,
                        "results": [hit_json(h) for h in hits]}
        pending = base.count_pending()
        if pending:
            result["note"] = (f"{pending} passages of this knowledge base still wait for their embedding: "
                              "until then they are found by keywords only, so results may miss passages that "
                              "say the same thing in other words; search again later for full results")
        if not hits:
            result["note"] = result.get("note", "nothing in this knowledge base matches")
        return result

    def ask(self, kb: str, question: str, only: list[str] | None = None) -> dict:
        """An answer from the local model, with its citations and each sentence's check."""
        from app.kb_commands import answer_json
        from kb.answering.answer import Answerer

        if not question.strip():
            raise _tool_error("the question is empty")
        base = self.kb(kb)
        documents = self._documents(base, only)
        with self._llm_lock:
            llm = self._chat_model()
            answerer = Answerer(base, llm, reserve=self.llm_options.get("answer_tokens") or defaults.ANSWER_TOKENS,
                                documents=documents)
            stream = answerer.ask(question)
            stream.text()
            out = answer_json(stream.result)
        out["knowledge_base"] = kb
        for key in ("cited", "sources", "related"):
            out[key] = [_source(s) for s in out[key]]
        if out["attempt"]:
            out["attempt"]["cited"] = [_source(s) for s in out["attempt"]["cited"]]
        return out

    def _chat_model(self):
        from models.chat_model import open_chat_model
        from models.inventory import ModelNotInstalled

        if self._llm is None:
            o = self.llm_options
            try:
                self._llm = open_chat_model(o.get("name"), n_threads=o.get("threads"),
                                            n_gpu_layers=o.get("gpu_layers") or 0, server=o.get("server"))
            except ModelNotInstalled as e:
                raise _tool_error(f"ask needs a chat model, and none is installed ({e}). Install one with "
                                  "`zhiku models install` on this computer; search and read work without it"
                                  ) from None
        return self._llm

    def read(self, kb: str, document: str, page: int = 1) -> dict:
        """The text of one page (or section, slide, sheet) of a document."""
        base = self.kb(kb)
        try:
            doc = base.find_document(document)
        except KeyError as e:
            raise _tool_error(f"{e.args[0]}; search first, and pass a result's `path`") from None
        if doc["status"] == "failed":
            raise _tool_error(f"{doc['name']} could not be read when it was added: {doc['error']}")
        pages = int(doc["pages"] or 0)
        if not 1 <= page <= pages:
            raise _tool_error(f"{doc['name']} has {part_name(doc['path'])}s 1 to {pages}; there is no {page}")
        text, _ = base.page(doc["id"], page)
        return {"knowledge_base": kb, "file": doc["name"], "path": readable(doc["path"]),
                "part": part_name(doc["path"]), "page": page, "pages": pages, "text": text,
                "uri": page_uri(kb, doc["id"], page)}

    def search_images(self, kb: str, text: str, k: int = 12) -> dict:
        """Pictures in the documents matching a description."""
        if not 1 <= k <= MAX_K:
            raise _tool_error(f"k must be between 1 and {MAX_K} (got {k})")
        base = self.kb(kb)
        search = base.image_search(self.clip)
        hits = search.by_text(text, k)
        return {"knowledge_base": kb, "query": text, "warning": search.warning(text),
                "results": [h.as_dict() for h in hits]}

    @property
    def has_clip(self) -> bool:
        """Whether a CLIP model is installed (then there is a search_images tool). Read from the
        model list without loading or verifying it: an assistant waits for the server to start."""
        from models.inventory import statuses

        return any(s.role == "clip" and s.installed for s in statuses(check=False))

    @property
    def clip(self):
        """The CLIP model, loaded (and verified) on first use; None when it cannot be."""
        with self._open_lock:
            if not hasattr(self, "_clip"):
                from app.image_commands import clip_or_none

                self._clip = clip_or_none()  # a damaged one raises, worded: the tool error says what to do
            return self._clip

    def add(self, kb: str, paths: list[str]) -> dict:
        """Index files (only under the folders --allow-add named) into a knowledge base."""
        if not paths:
            raise _tool_error("give the files or folders to add")
        outside = [p for p in paths if not self.may_add(p)]
        if outside:
            allowed = ", ".join(str(a) for a in self.allow_add)
            raise _tool_error(f"{', '.join(outside)}: outside the folders this server may add from ({allowed}); "
                              "nothing was added")
        base = self.kb(kb)
        report = base.add([Path(p).expanduser().resolve() for p in paths])
        return {"knowledge_base": kb, "added": [readable(p) for p in report.added],
                "updated": [readable(p) for p in report.updated],
                "unchanged": [readable(p) for p in report.unchanged],
                "failed": [{"path": readable(p), "why": why} for p, why in report.failed],
                "skipped": [{"path": readable(p), "why": why} for p, why in report.skipped],
                "chunks_added": report.chunks_added}

    def may_add(self, path: str) -> bool:
        """True when `path` (symlinks resolved) lies under one of the --allow-add folders."""
        real = Path(path).expanduser().resolve()
        return any(real == a or real.is_relative_to(a) for a in self.allow_add)

    # ---- resources ----------------------------------------------------------------------------
    def resources(self) -> list[dict]:
        """One resource per indexed document of every knowledge base served."""
        out = []
        for name in self.names:
            for d in self.kb(name).documents():
                if d["status"] == "failed":
                    continue
                out.append({"uri": document_uri(name, d["id"]), "name": d["name"],
                            "description": f"{readable(d['path'])} in knowledge base {name!r}: {d['pages']} "
                                           f"{part_name(d['path'])}s, one by one at {document_uri(name, d['id'])}"
                                           "/pages/N"})
        return out

    def document_text(self, kb: str, doc_id: int, page: int | None = None) -> str:
        """A document's text (every page, headed) or one page's."""
        base = self.kb(kb)
        doc = next((d for d in base.documents() if d["id"] == doc_id), None)
        if doc is None:
            raise _resource_error(f"no document {doc_id} in knowledge base {kb!r}")
        if page is not None:
            if not 1 <= page <= int(doc["pages"] or 0):
                raise _resource_error(f"{doc['name']} has no {part_name(doc['path'])} {page}")
            return base.page(doc_id, page)[0]
        parts, size = [], 0
        for n in range(1, int(doc["pages"] or 0) + 1):
            text = f"--- {part_name(doc['path'])} {n} ---\n{base.page(doc_id, n)[0]}\n"
            if size + len(text) > DOCUMENT_CHARS:
                parts.append(f"--- (the rest from {part_name(doc['path'])} {n} on: read {document_uri(kb, doc_id)}"
                             "/pages/N) ---\n")
                break
            parts.append(text)
            size += len(text)
        return "".join(parts)

    def close(self) -> None:
        """Close every knowledge base opened and the chat model."""
        for kb in self._kbs.values():
            kb.close()
        if self._llm is not None:
            self._llm.close()


def document_uri(kb: str, doc_id: int) -> str:
    """The resource URI of a document."""
    return f"zhiku://{quote(kb, safe='')}/documents/{doc_id}"


def page_uri(kb: str, doc_id: int, page: int) -> str:
    """The resource URI of one page of a document."""
    return f"{document_uri(kb, doc_id)}/pages/{page}"


def _source(s: dict) -> dict:
    keep = ("number", "name", "path", "page", "text", "score")
    out = {k: s[k] for k in keep if k in s}
    if "path" in out:
        out["path"] = readable(out["path"])
        out["part"] = part_name(s["path"])
    return out


def _tool_error(message: str) -> Exception:
    from mcp.server.mcpserver.exceptions import ToolError

    return ToolError(message)


def _resource_error(message: str) -> Exception:
    from mcp.server.mcpserver.exceptions import ResourceNotFoundError

    return ResourceNotFoundError(message)
