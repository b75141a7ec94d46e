"""`zhiku demo`: builds a small knowledge base from documents it writes itself, then asks it."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

INTRO_ZH = """知库（Zhiku）使用说明

知库是一个私有的离线知识库。你把 PDF、Word、网页和笔记拖进窗口，知库在本机把它们切分成小段，
计算向量并建立索引。提问时，知库先找出最相关的段落，再由本地的量化大模型回答，并注明文件和页码。

隐私：知库从不联网。文档、问题和答案都只保存在你自己的电脑上，除非你主动要求下载模型。
"""

NOTES_EN = """# Notes on the demo models

Zhiku's default embedding model is multilingual-e5-small. It maps Chinese and English text into
the same 384-dimensional space, so a Chinese question can find an English passage.

The default chat model is Qwen2.5-Coder-1.5B-Instruct, quantized to 4 bits (Q4_K_M). It runs on
the CPU through llama.cpp; a GPU is optional.
"""

PDF_PAGES = [
    ("Zhiku demo report", ["Page 1 of the demo report.", "This page lists no numbers on purpose."]),
    ("索引的细节 / Index details", [
        "第2页：每个知识库包含一个 SQLite 数据库和一个 FAISS 索引文件。",
        "SQLite 是唯一的真实来源；FAISS 索引只是缓存，可以随时从 SQLite 中保存的向量重建。",
        "Page 2: the default chunk size is 256 tokens with an overlap of 38 tokens.",
    ]),
]

QUESTIONS = ["知库会把我的文档上传到网络吗？", "What is the default chunk size, and how large is the overlap?"]


def write_documents(folder: Path) -> list[Path]:
    """Write the demo's three documents (a Chinese text, an English Markdown, a two-page PDF)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    folder.mkdir(parents=True, exist_ok=True)
    intro, notes, pdf = folder / "知库说明.txt", folder / "model-notes.md", folder / "demo-report.pdf"
    intro.write_text(INTRO_ZH, encoding="utf-8")
    notes.write_text(NOTES_EN, encoding="utf-8")
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))  # a built-in CJK font: nothing to embed
    c = canvas.Canvas(str(pdf))
    for title, lines in PDF_PAGES:
        c.setFont("STSong-Light", 16)
        c.drawString(72, 760, title)
        c.setFont("STSong-Light", 11)
        for i, line in enumerate(lines):
            c.drawString(72, 720 - 20 * i, line)
        c.showPage()
    c.save()
    return [intro, notes, pdf]


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def run_demo(llm_name: str | None = None, embed_name: str | None = None,
             threads: int | None = None, gpu_layers: int = 0, answer_tokens: int | None = None) -> int:
    """Build the 'demo' knowledge base from generated files and stream two cited answers."""
    from kb import defaults
    from kb.answering.answer import Answerer
    from kb.answering.grounding import summary
    from kb.knowledge_base import KnowledgeBase, delete, list_names
    from models.embedder import Embedder
    from models.llm import LocalLLM
    from models.paths import data_dir

    folder = data_dir() / "demo-documents"
    shutil.rmtree(folder, ignore_errors=True)
    files = write_documents(folder)
    if "demo" in list_names():
        delete("demo")
    t0 = time.perf_counter()
    kb = KnowledgeBase.create("demo", Embedder.default(embed_name))
    report = kb.add(files)
    _out(f"Knowledge base 'demo': {len(report.added)} documents, {report.chunks_added} chunks "
         f"({kb.embedder.model_id}), built in {time.perf_counter() - t0:.1f}s from {folder}\n")
    for path, why in report.failed:
        _out(f"  failed: {path}: {why}\n")

    t0 = time.perf_counter()
    llm = LocalLLM.default(llm_name, n_ctx=defaults.N_CTX, n_threads=threads, n_gpu_layers=gpu_layers)
    _out(f"Chat model: {llm.model_name} ({llm.n_threads} threads), loaded in {time.perf_counter() - t0:.1f}s\n")
    answerer = Answerer(kb, llm, reserve=answer_tokens or defaults.ANSWER_TOKENS)
    for question in QUESTIONS:
        _out(f"\nQ: {question}\nA: ")
        t0 = time.perf_counter()
        first = None
        stream = answerer.ask(question)
        for piece in stream:
            first = first or time.perf_counter() - t0
            _out(piece)
        total = time.perf_counter() - t0
        _out(f"\n   (first token after {first or total:.1f}s, {total:.1f}s in all)\n")
        if stream.result.attempt is not None:  # the answer above failed its check: it is not the answer
            reason = next((c.reason for c in stream.result.attempt.checks if c.status == "unsupported"), "")
            _out(f"   not backed by the documents ({reason}): {stream.result.text}\n")
        unsupported, checked = summary(stream.result.checks)
        if checked:
            _out(f"   checked: {checked - unsupported} of {checked} sentences backed by the documents\n")
        for s in stream.result.cited or stream.result.sources:
            mark = "cited" if stream.result.cited else "consulted"
            _out(f"   {mark} [{s.number}] {s.name}, page {s.page}\n")
    llm.close()
    kb.close()
    _out("\nTry your own: zhiku add demo ~/Documents   then   zhiku ask demo \"...\"\n")
    return 0
