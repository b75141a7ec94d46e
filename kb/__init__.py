"""Zhiku's engine: documents in, cited and checked answers out. Imports models/, never Qt or app/.

The map, in the order a document travels:

- `knowledge_base` — the front door: create, open, list, delete a knowledge base by name; add
  files, search, ask. app/ talks to the engine through `KnowledgeBase` only. `defaults` holds every
  setting a user can change.
- `ingest/` — files in: `files` (which paths a knowledge base knows, its persisted queue, linked
  folders), `indexer` (batches that each commit on their own), `file_reader` (hash, decide, parse),
  `parse_worker` (parsing in a killable process with time and memory limits), `loaders/` (one per
  format), `watcher`, `index_report`.
- `storage/` — where it is kept: `contract` (what the engine asks of a store; tests/
  test_store_contract.py runs it against both); `store`, `pictures`, `vectors` (what both stores do
  around their rows: the base classes); `sqlite/` (the desktop's knowledge base: SQLite the truth,
  FAISS a cache) and `postgres/` (a team's, on a server with pgvector; `link`, where it lives) —
  siblings with the same rooms (database, schema, store, queue, paths, conversations, vectors,
  pictures), each in its own dialect's SQL — `conversations`, `leases` (who works on what when
  desktops share a server).
- `search/` — finding passages: `retriever` (keyword bm25 + vectors, fused by rank, with a floor),
  `image_search` (CLIP), `langchain_retriever`.
- `answering/` — from passages to a trusted answer: `answer` (the `Answerer`: evidence, probe,
  stream, check, fail closed), `answerability` (does the evidence answer?), `evidence` (packing a
  token budget), `prompt`, `follow_up`, `grounding` (the sentence checker), `claims` and `values`
  (what a sentence claims and the values it names).
- `text/` — what every part shares about text, at the bottom: `document` (pages), `chunking`,
  `lexical` (the words keyword search indexes), `file_names` (names that are not UTF-8, kept
  exact), `language` (Chinese or English).

Arrows point down: answering and ingest use search and storage; storage uses text; nothing in
text/ or storage/ imports what stands above it (tests/test_layers.py).
"""
