"""Conversations with a knowledge base, stored in its SQLite database."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from kb.text.document import part_name
from kb.storage.sqlite.database import Database


@dataclass
class Message:
    """One turn: who said it, what, and (for answers) the sources it cited."""

    id: int
    role: str  # "user" or "assistant"
    content: str
    sources: list[dict] = field(default_factory=list)
    created: float = 0.0
    checks: list[dict] = field(default_factory=list)  # kb.answering.grounding.SentenceCheck as dicts
    related: bool = False  # the sources are "possibly related" passages of a not-found answer
    attempt: dict | None = None  # {"text", "checks"}: the answer the checks turned away, kept folded


@dataclass
class Conversation:
    """A conversation's summary row."""

    id: int
    title: str
    created: float
    updated: float


class Conversations:
    """List, create, delete conversations and append messages."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def list(self) -> list[Conversation]:
        """All conversations, most recently used first."""
        rows = self.db.query("SELECT id, title, created, updated FROM conversations ORDER BY updated DESC, id DESC")
        return [Conversation(*r) for r in rows]

    def create(self, title: str) -> Conversation:
        """Start a conversation (titled after its first question, usually)."""
        now = time.time()
        title = " ".join(title.split())[:80] or "…"
        with self.db.transaction() as db:
            cid = db.execute("INSERT INTO conversations(title, created, updated) VALUES (?,?,?)",
                             (title, now, now)).lastrowid
        return Conversation(cid, title, now, now)

    def rename(self, conversation_id: int, title: str) -> None:
        """Give a conversation another title."""
        with self.db.transaction() as db:
            db.execute("UPDATE conversations SET title=? WHERE id=?", (title, conversation_id))

    def delete(self, conversation_id: int) -> None:
        """Delete a conversation and its messages."""
        with self.db.transaction() as db:
            db.execute("DELETE FROM conversations WHERE id=?", (conversation_id,))

    def add(self, conversation_id: int, role: str, content: str, sources: list[dict] | None = None,
            checks: list[dict] | None = None, related: bool = False, attempt: dict | None = None) -> Message:
        """Append a message (an answer with its sources, sentence checks, not-found flag and the
        attempt the checks turned away)."""
        now = time.time()
        extra = json.dumps({"checks": checks or [], "related": related, "attempt": attempt}, ensure_ascii=False)
        with self.db.transaction() as db:
            mid = db.execute("INSERT INTO messages(conversation_id, role, content, sources, created, checks) "
                             "VALUES (?,?,?,?,?,?)", (conversation_id, role, content,
                                                       json.dumps(sources or [], ensure_ascii=False), now,
                                                       extra)).lastrowid
            db.execute("UPDATE conversations SET updated=? WHERE id=?", (now, conversation_id))
        return Message(mid, role, content, sources or [], now, checks or [], related, attempt)

    def truncate(self, conversation_id: int, from_message: int) -> None:
        """Delete message `from_message` and every later one (an edited question, a regenerated answer)."""
        with self.db.transaction() as db:
            db.execute("DELETE FROM messages WHERE conversation_id=? AND id>=?", (conversation_id, from_message))
            db.execute("UPDATE conversations SET updated=? WHERE id=?", (time.time(), conversation_id))

    def messages(self, conversation_id: int) -> list[Message]:
        """A conversation's messages in order."""
        rows = self.db.query(
            "SELECT id, role, content, sources, created, checks FROM messages WHERE conversation_id=? ORDER BY id",
            (conversation_id,))
        out = []
        for r in rows:
            extra = json.loads(r[5] or "{}")
            out.append(Message(r[0], r[1], r[2], json.loads(r[3] or "[]"), r[4], extra.get("checks", []),
                               bool(extra.get("related")), extra.get("attempt")))
        return out

    def markdown(self, conversation_id: int) -> str:
        """The conversation as Markdown: each question, each answer, and the sources it cited
        (file, page and the passage), so it reads on its own outside Zhiku."""
        title = next((c.title for c in self.list() if c.id == conversation_id), "")
        out = [f"# {title}", ""]
        for m in self.messages(conversation_id):
            if m.role == "user":
                out += [f"## {m.content.strip()}", ""]
                continue
            out += [m.content.strip(), ""]
            if m.attempt:  # folded, as in the window: the model's words, marked as not backed
                out += ["<details><summary>The model's attempt — not backed by your documents</summary>", "",
                        m.attempt.get("text", "").strip(), ""]
                out += [f"- ✗ {c['text'].strip()} — {c.get('reason', '')}" for c in m.attempt.get("checks", [])
                        if c.get("status") == "unsupported"]
                out += ["", "</details>", ""]
            if m.sources:
                out += ["Possibly related:" if m.related else "Sources:", ""]
                for s in m.sources:
                    passage = " ".join(str(s.get("text", "")).split())
                    out.append(f"- [{s.get('number', '')}] {s.get('name', '')}, {part_name(s.get('path') or s.get('name', ''))} {s.get('page', '')}"
                               + (f": {passage}" if passage else ""))
                out.append("")
        return "\n".join(out).rstrip() + "\n"

    def history(self, conversation_id: int, turns: int = 6) -> list[dict]:
        """The last `turns` messages as chat messages, for follow-up questions."""
        return [{"role": m.role, "content": m.content} for m in self.messages(conversation_id)[-turns:]]
