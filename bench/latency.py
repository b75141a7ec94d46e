"""Retrieval latency at 10k, 100k and 1M chunks, the index type the store picks, and peak RSS.

Synthetic knowledge bases are grown from a real one (the CMRC KB that bench/retrieval.py builds):
each real chunk is repeated with its text and FTS terms and a noisy copy of its vector (cosine
~0.9 to the original), so lexical posting lists and vector clusters grow as a real corpus's would.
They are written straight into a real Store (SQLite + FTS5 + vectors), then the store builds its
own index (flat or IVF by size) and questions go through the real Retriever end to end.

    python bench/latency.py --sizes 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from retrieval import CACHE, ensure_models_dir, load_dataset, open_or_build_kb  # noqa: E402

NOISE_COS = 0.9


def base_rows(store) -> tuple[list[tuple], np.ndarray]:
    """The real KB's chunks (doc_id, page, start, end, text, tokens, fts terms) and vectors."""
    rows = store.db.query(
        'SELECT c.id, c.doc_id, c.page, c.start, c."end", c.text, c.tokens, f.terms, v.vec FROM chunks c '
        "JOIN chunks_fts f ON f.rowid=c.id JOIN vectors v ON v.chunk_id=c.id ORDER BY c.id")
    vecs = np.frombuffer(b"".join(r[8] for r in rows), np.float16).reshape(len(rows), -1).astype(np.float32)
    return [r[1:8] for r in rows], vecs


def grow(folder: Path, size: int, rows: list[tuple], vecs: np.ndarray, dim: int, model_id: str):
    """A Store of `size` chunks made of noisy copies of the real ones (cached between runs)."""
    from kb.storage.sqlite.store import Store

    if (folder / "done").exists():
        return Store(folder)
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    store = Store.create(folder, {"name": folder.name, "embed_model_id": model_id, "embed_dim": dim})
    n_docs = len({r[0] for r in rows})
    made = 0
    for copy, take, noisy in noisy_copies(size, rows, vecs, dim):
        half = noisy.astype(np.float16)
        with store.db.transaction() as db:
            doc_base = copy * n_docs
            docs = sorted({r[0] for r in take})
            db.executemany("INSERT INTO documents(id, path, name, kind, status, pages) VALUES (?,?,?,?,?,1)",
                           [(doc_base + d, f"/synthetic/{copy}/{d}.txt", f"{copy}-{d}.txt", "text", "indexed")
                            for d in docs])
            first = made + 1
            db.executemany('INSERT INTO chunks(id, doc_id, page, start, "end", text, tokens) VALUES (?,?,?,?,?,?,?)',
                           [(first + i, doc_base + r[0], *r[1:6]) for i, r in enumerate(take)])
            db.executemany("INSERT INTO chunks_fts(rowid, terms) VALUES (?, ?)",
                           [(first + i, r[6]) for i, r in enumerate(take)])
            db.executemany("INSERT INTO vectors(chunk_id, vec) VALUES (?, ?)",
                           [(first + i, half[i].tobytes()) for i in range(len(take))])
        made += len(take)
        if copy % 50 == 0:
            print(f"    {made}/{size} chunks", flush=True)
    started = time.perf_counter()
    store.rebuild_index()
    (folder / "done").write_text(json.dumps({"index_build_s": round(time.perf_counter() - started, 1)}))
    return store


def noisy_copies(size: int, rows: list[tuple], vecs: np.ndarray, dim: int):
    """(copy number, rows, float32 vectors) slices of `size` synthetic chunks (the same for both stores)."""
    rng = np.random.default_rng(0)
    sigma = np.tan(np.arccos(NOISE_COS)) / np.sqrt(dim)
    made = 0
    for copy in range(-(-size // len(rows))):
        take = rows[: min(len(rows), size - made)]
        noisy = vecs[: len(take)] + rng.normal(0, sigma, (len(take), dim)).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        yield copy, take, noisy
        made += len(take)


def grow_pg(url: str, size: int, rows: list[tuple], vecs: np.ndarray, embedder):
    """The same synthetic chunks in a server knowledge base (PostgreSQL + pgvector), loaded by COPY."""
    from pg_copy import copy_rows, server_kb

    kb = server_kb(url, f"synthetic-{size}", embedder, 384, 58)
    n_docs = len({r[0] for r in rows})
    docs, pages, chunks, parts = [], [], [], []
    for copy, take, noisy in noisy_copies(size, rows, vecs, embedder.dim):
        base = copy * n_docs
        docs += [(base + d, f"/synthetic/{copy}/{d}.txt", f"{copy}-{d}.txt") for d in sorted({r[0] for r in take})]
        chunks += [(len(chunks) + i + 1, base + r[0], *r[1:7]) for i, r in enumerate(take)]
        parts.append(noisy)
    pages = [(d[0], 1, "") for d in docs]
    times = copy_rows(kb.store, docs, pages, chunks, np.concatenate(parts))
    return kb, {"index_build_s": times["hnsw_build_s"], "load_s": times["rows_s"] + times["vectors_s"]}


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile of `values`, in the values' unit."""
    return float(np.percentile(np.asarray(values), p))


def measure(store, embedder, questions: list[str]) -> dict:
    """Latency of the real Retriever (end to end and by part), and the IVF's recall vs exact search."""
    from kb.search.retriever import Retriever

    retriever = Retriever(store, embedder)
    started = time.perf_counter()
    _ = store.index  # load (or rebuild) before timing queries
    load_s = time.perf_counter() - started
    retriever.search(questions[0], 5)  # warm caches (SQLite pages, jieba)
    total, lex, dense = [], [], []
    for q in questions:
        t0 = time.perf_counter()
        retriever.search(q, 5)
        total.append(1000 * (time.perf_counter() - t0))
        t0 = time.perf_counter()
        store.lexical_search(q, retriever.candidates)
        lex.append(1000 * (time.perf_counter() - t0))
        qv = embedder.embed_query(q)
        t0 = time.perf_counter()
        store.dense_search(qv, retriever.candidates)
        dense.append(1000 * (time.perf_counter() - t0))
    out = {"chunks": store.count("vectors"), "index": store.index.kind, "index_load_s": round(load_s, 2),
           "p50_ms": round(percentile(total, 50), 1), "p95_ms": round(percentile(total, 95), 1),
           "lexical_p50_ms": round(percentile(lex, 50), 1), "lexical_p95_ms": round(percentile(lex, 95), 1),
           "dense_p50_ms": round(percentile(dense, 50), 2), "dense_p95_ms": round(percentile(dense, 95), 2)}
    if store.index.kind != "flat":
        out["ivf_recall@10"] = ivf_recall(store, embedder, questions[:100])
    return out


def ivf_recall(store, embedder, questions: list[str]) -> float:
    """How many of the exact top-10 neighbours the IVF index returns (mean over questions)."""
    rows = store.db.query("SELECT chunk_id, vec FROM vectors ORDER BY chunk_id")
    if rows and not isinstance(rows[0][1], bytes):  # pgvector's HalfVector (a server store)
        vecs = np.stack([r[1].to_numpy() for r in rows]).astype(np.float32)
    else:
        vecs = np.frombuffer(b"".join(r[1] for r in rows), np.float16).reshape(len(rows), -1).astype(np.float32)
    ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    found = 0
    for q in questions:
        qv = embedder.embed_query(q)
        exact = set(ids[np.argpartition(-(vecs @ qv), 10)[:10]].tolist())
        found += len(exact & {cid for cid, _ in store.dense_search(qv, 10)})
    return round(found / (10 * len(questions)), 4)


def rss_probe(folder: str, questions: list[str]) -> None:
    """(Run in a child process.) Peak RSS with the embedder loaded, then with the KB open and searched."""
    from kb.search.retriever import Retriever
    from kb.storage.sqlite.store import Store
    from models.embedder import Embedder

    embedder = Embedder.for_model_id(Store(Path(folder)).model_id)
    embedder.embed_query("warm up")
    model_kb = peak_rss_kb()
    store = Store(Path(folder))
    retriever = Retriever(store, embedder)
    for q in questions:
        retriever.search(q, 5)
    print(json.dumps({"rss_model_mb": round(model_kb / 1024), "rss_peak_mb": round(peak_rss_kb() / 1024)}))


def peak_rss_kb() -> int:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv=None) -> int:
    """Grow the synthetic KBs, time the questions, probe peak RSS; print JSON rows."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000, 1_000_000])
    p.add_argument("--questions", type=int, default=200)
    p.add_argument("--base", default="cmrc", help="the real KB the synthetic ones are grown from")
    p.add_argument("--stores", nargs="+", default=["sqlite"], choices=["sqlite", "postgresql"],
                   help="postgresql: the same chunks in a server knowledge base (embedded PostgreSQL + pgvector)")
    p.add_argument("--variant", choices=["float", "int8"],
                   help="the embedder's float model or its int8 variant (default: what new knowledge bases use)")
    p.add_argument("--rss-probe", help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args(argv)
    ensure_models_dir()
    passages, queries = load_dataset("cmrc", 1000, args.questions)
    questions = [q["question"] for q in queries]
    if args.rss_probe:
        rss_probe(args.rss_probe, questions[:50])
        return 0
    from models.embedder import Embedder

    embedder = Embedder.default(int8={"float": False, "int8": True}.get(args.variant))
    variant = embedder.model_id.partition("+")[2]
    from kb.text.chunking import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP_TOKENS

    kb, _, _ = open_or_build_kb(args.base, load_dataset(args.base, 0, None)[0], embedder,
                                DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP_TOKENS)
    rows_, vecs = base_rows(kb.store)
    results = []
    for size in args.sizes:
        folder = CACHE / f"synthetic-{args.base}-{size}{'-' + variant if variant else ''}"
        for kind in args.stores:
            print(f"{size} chunks, {kind}:", flush=True)
            if kind == "postgresql":
                from pg_copy import start_server

                server, built = grow_pg(start_server(CACHE / "postgres"), size, rows_, vecs, embedder)
                row = {"size": size, "store": kind, **built, **measure(server.store, embedder, questions)}
                server.close()
            else:
                store = grow(folder, size, rows_, vecs, embedder.dim, embedder.model_id)
                row = {"size": size, "store": kind, **json.loads((folder / "done").read_text()),
                       **measure(store, embedder, questions)}
                store.close()
                probe = subprocess.run([sys.executable, __file__, "--rss-probe", str(folder),
                                        "--questions", str(args.questions)], capture_output=True, text=True,
                                       check=True)
                row.update(json.loads(probe.stdout.strip().splitlines()[-1]))
            print("  " + json.dumps(row), flush=True)
            results.append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"latency-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
