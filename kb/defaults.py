"""Every default a user can change, in one place: the window's settings, the CLI, the demo, the
LangChain adapter and the engine all read them here (why each value: bench/README.md).
"""

from __future__ import annotations

from models.llm import DEFAULT_N_CTX

N_CTX = DEFAULT_N_CTX  # the chat model's context window, in tokens
GPU_LAYERS = 0  # layers offloaded to a GPU (0: CPU only)
TOP_K = 5  # sources per answer (and hits per search)
# Prompt tokens of evidence for a new question (bench/README.md: answer-recall vs time to first token).
CONTEXT_TOKENS = 300
# Longest answer, in tokens: room the prompt keeps free for it (answers over the seed articles run
# 60-250 tokens; a "write five paragraphs" request is cut here).
ANSWER_TOKENS = 512
CHUNK_TOKENS = 384  # chunk size in the embedding model's tokens
OVERLAP_TOKENS = 58  # ~15% of a chunk, carried into the next
PARSE_TIME_LIMIT_S = 120.0  # a file's parser may go this long without progress
# OCR models and a big PDF fit in ~1 GB; a parser past 3 GB is lost
PARSE_MEMORY_LIMIT_MB = 3072
