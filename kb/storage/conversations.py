"""Conversations with a knowledge base: questions, answers with their sources and checks, the
Markdown export. The rows live in the backend (SQLite on this computer, PostgreSQL for a team)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from kb.storage.contract import ConversationRows
from kb.text.document import part_name


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
    """List, create, delete conversations and append messages; the rows are the backend's
    (kb.storage.sqlite.conversations, kb.storage.postgres.conversations)."""

    def __init__(self, rows: ConversationRows) -> None:
        self.rows = rows

    def list(self) -> list[Conversation]:
        """All conversations, most recently used first."""
        return [Conversation(*r) for r in self.rows.conversations()]

    def create(self, title: str) -> Conversation:
        """Start a conversation (titled after its first question, usually)."""
        now = time.time()
        title = " ".join(title.split())[:80] or "…"
        return Conversation(self.rows.create(title, now), title, now, now)

    def rename(self, conversation_id: int, title: str) -> None:
        """Give a conversation another title."""
        self.rows.rename(conversation_id, title)

    def delete(self, conversation_id: int) -> None:
        """Delete a conversation and its messages."""
        self.rows.delete(conversation_id)

    def add(self, conversation_id: int, role: str, content: str, sources: list[dict] | None = None,
            checks: list[dict] | None = None, related: bool = False, attempt: dict | None = None) -> Message:
        """Append a message (an answer with its sources, sentence checks, not-found flag and the
        attempt the checks turned away)."""
        now = time.time()
        extra = json.dumps({"checks": checks or [], "related": related, "attempt": attempt}, ensure_ascii=False)
        mid = self.rows.add(conversation_id, role, content, json.dumps(sources or [], ensure_ascii=False), now, extra)
        return Message(mid, role, content, sources or [], now, checks or [], related, attempt)

    def truncate(self, conversation_id: int, from_message: int) -> None:
        """Delete message `from_message` and every later one (an edited question, a regenerated answer)."""
        self.rows.truncate(conversation_id, from_message, time.time())

    def messages(self, conversation_id: int) -> list[Message]:
        """A conversation's messages in order."""
        out = []
        for r in self.rows.messages(conversation_id):
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
