"""The knowledge base database's schema, as numbered migrations (PRAGMA user_version)."""

SCHEMA_VERSION = 5

# MIGRATIONS[v] takes a database from version v-1 to v.
MIGRATIONS: dict[int, list[str]] = {
    1: [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
        """CREATE TABLE documents (
            id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, name TEXT NOT NULL, kind TEXT,
            title TEXT, sha256 TEXT, size INTEGER, mtime REAL, pages INTEGER DEFAULT 0,
            status TEXT NOT NULL, error TEXT, added REAL, updated REAL)""",
        """CREATE TABLE pages (
            doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            number INTEGER NOT NULL, text TEXT NOT NULL, PRIMARY KEY (doc_id, number))""",
        """CREATE TABLE chunks (
            id INTEGER PRIMARY KEY, doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            page INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL, text TEXT NOT NULL,
            tokens INTEGER NOT NULL)""",
        "CREATE INDEX chunks_doc ON chunks(doc_id)",
        """CREATE TABLE vectors (
            chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE, vec BLOB NOT NULL)""",
        "CREATE VIRTUAL TABLE chunks_fts USING fts5(terms)",
    ],
    2: [  # chat history, kept with the knowledge base it talks about
        """CREATE TABLE conversations (
            id INTEGER PRIMARY KEY, title TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL)""",
        """CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            role TEXT NOT NULL, content TEXT NOT NULL, sources TEXT, created REAL NOT NULL)""",
        "CREATE INDEX messages_conversation ON messages(conversation_id, id)",
    ],
    3: [  # OCR text and its boxes; the persisted indexing queue; linked folders; duplicate files
        "ALTER TABLE pages ADD COLUMN ocr INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE pages ADD COLUMN boxes TEXT",
        "CREATE TABLE queue (path TEXT PRIMARY KEY, queued REAL NOT NULL)",
        "CREATE TABLE folders (path TEXT PRIMARY KEY, added REAL NOT NULL)",
        """CREATE TABLE copies (
            path TEXT PRIMARY KEY,
            doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE)""",
        "CREATE INDEX documents_sha ON documents(sha256)",
    ],
    4: [  # pictures inside documents and their CLIP vectors (thumbnails are files named by hash)
        """CREATE TABLE images (
            id INTEGER PRIMARY KEY, doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            page INTEGER NOT NULL, sha256 TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
            UNIQUE (doc_id, sha256))""",
        "CREATE INDEX images_sha ON images(sha256)",
        "CREATE INDEX images_page ON images(doc_id, page)",
        """CREATE TABLE image_vectors (
            image_id INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE, vec BLOB NOT NULL)""",
        # NULL: read before pictures were collected (older versions): extracted when image search wants them
        "ALTER TABLE documents ADD COLUMN pictures INTEGER",
    ],
    5: [  # each answer's sentence checks (kb.answering.grounding) and whether its sources are only "possibly related"
        "ALTER TABLE messages ADD COLUMN checks TEXT",
    ],
}
