"""`zhiku demo`: the default models at work on a fixed, built-in context (until kb/ exists)."""

from __future__ import annotations

import sys
import time

SENTENCES = [
    "CLIP是一种对比性语言-图像预训练模型，把图片和文字映射到同一个向量空间。",
    "今天天气很好，适合出去散步。",
    "GPT-3有1750亿参数，由OpenAI在2020年发布。",
]
RANK_QUESTION = "什么是CLIP模型？"

CONTEXT = (
    "[1] 知库（Zhiku）是一个私有的离线知识库：文档在本机切分、向量化并建立索引，"
    "问题由本地量化大模型回答，并注明出处的文件和页码。\n"
    "[2] Zhiku never sends documents or questions over the network; models are installed "
    "from local packages and verified by SHA-256 before they are loaded.\n"
)
QUESTIONS = [
    "知库会把我的文档上传到网络吗？请用一句中文回答并引用编号。",
    "How does Zhiku make sure a model file is intact? Answer in one English sentence, citing [n].",
]
SYSTEM = ("You answer only from the numbered context. Cite sources like [1]. "
          "Answer in the language of the question. Be brief.")


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def run_demo(llm_name: str | None = None, embed_name: str | None = None,
             threads: int | None = None, gpu_layers: int = 0) -> int:
    """Rank three sentences against a question, then stream two cited answers."""
    from models.embedder import Embedder
    from models.llm import LocalLLM

    t0 = time.perf_counter()
    emb = Embedder.default(embed_name)
    q = emb.embed_query(RANK_QUESTION)
    scores = emb.embed_passages(SENTENCES) @ q
    _out(f"Embedding model: {emb.model_id} ({emb.dim}-d), loaded in {time.perf_counter() - t0:.1f}s\n")
    _out(f"Question: {RANK_QUESTION}\n")
    for rank, i in enumerate(scores.argsort()[::-1], 1):
        _out(f"  {rank}. {scores[i]:.3f}  {SENTENCES[i]}\n")

    t0 = time.perf_counter()
    llm = LocalLLM.default(llm_name, n_ctx=2048, n_threads=threads, n_gpu_layers=gpu_layers)
    _out(f"\nChat model: {llm.model_name} ({llm.n_threads} threads), loaded in "
         f"{time.perf_counter() - t0:.1f}s\nContext:\n{CONTEXT}")
    for question in QUESTIONS:
        _out(f"\nQ: {question}\nA: ")
        t0 = time.perf_counter()
        first = None
        n = 0
        messages = [{"role": "system", "content": SYSTEM},
                    {"role": "user", "content": f"Context:\n{CONTEXT}\nQuestion: {question}"}]
        for piece in llm.stream_chat(messages, max_tokens=120, temperature=0.1):
            first = first or time.perf_counter() - t0
            n += 1
            _out(piece)
        total = time.perf_counter() - t0
        _out(f"\n   ({n} pieces, first after {first or total:.1f}s, {total:.1f}s in all)\n")
    llm.close()
    return 0
