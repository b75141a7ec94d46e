"""Conversation rows of a team's knowledge base on PostgreSQL (kb.storage.conversations reads
them). Every desktop sees every conversation of the knowledge base."""

from __future__ import annotations


class ServerConversationRows:
    """Conversations and their messages as rows (kb.storage.contract.ConversationRows)."""

    def __init__(self, db) -> None:
        self.db = db

    def conversations(self) -> list[tuple]:
        """(id, title, created, updated) of every conversation, most recently used first."""
        return self.db.query("SELECT id, title, created, updated FROM conversations ORDER BY updated DESC, id DESC")

    def create(self, title: str, now: float) -> int:
        """A new conversation's id."""
        with self.db.transaction() as db:
            return db.execute("INSERT INTO conversations(title, created, updated) VALUES (%s, %s, %s) RETURNING id",
                          (title, now, now)).fetchone()[0]

    def rename(self, conversation_id: int, title: str) -> None:
        """Give a conversation another title."""
        with self.db.transaction() as db:
            db.execute("UPDATE conversations SET title=%s WHERE id=%s", (title, conversation_id))

    def delete(self, conversation_id: int) -> None:
        """Delete a conversation; its messages go with it (ON DELETE CASCADE)."""
        with self.db.transaction() as db:
            db.execute("DELETE FROM conversations WHERE id=%s", (conversation_id,))

    def add(self, conversation_id: int, role: str, content: str, sources: str, now: float, extra: str) -> int:
        """Append a message (sources and extra as JSON text); its id. The conversation is touched."""
        with self.db.transaction() as db:
            mid = db.execute("INSERT INTO messages(conversation_id, role, content, sources, created, checks) "
                         "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                         (conversation_id, role, content, sources, now, extra)).fetchone()[0]
            db.execute("UPDATE conversations SET updated=%s WHERE id=%s", (now, conversation_id))
        return mid

    def truncate(self, conversation_id: int, from_message: int, now: float) -> None:
        """Delete message `from_message` and every later one."""
        with self.db.transaction() as db:
            db.execute("DELETE FROM messages WHERE conversation_id=%s AND id>=%s", (conversation_id, from_message))
            db.execute("UPDATE conversations SET updated=%s WHERE id=%s", (now, conversation_id))

    def messages(self, conversation_id: int) -> list[tuple]:
        """(id, role, content, sources, created, extra) of a conversation's messages, in order."""
        return self.db.query("SELECT id, role, content, sources, created, checks FROM messages "
                                "WHERE conversation_id=%s ORDER BY id", (conversation_id,))
