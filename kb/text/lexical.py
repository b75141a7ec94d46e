"""Words for the SQLite FTS5 index: jieba-segmented Chinese, lowercased English, no punctuation."""

from __future__ import annotations

import logging
import re
import threading

_lock = threading.Lock()
_ready = False
_WORD = re.compile(r"\w", re.UNICODE)
# Function words that match almost every chunk and so say nothing about relevance.
STOPWORDS = frozenset(
    "的 了 是 在 和 与 及 或 也 就 都 而 着 把 被 让 给 对 从 向 这 那 这个 那个 之 其 吗 呢 吧 啊 呀 "
    "什么 怎么 如何 为什么 哪些 哪个 是否 有 有没有 一个 一种 我 你 他 她 它 我们 你们 他们 请 "
    "a an the and or of to in on at for by with from as is are was were be been being do does did "
    "what which who whom how why when where that this these those it its i you he she we they "
    "can could should would will shall may might must not no yes about into over than then".split())


def _jieba():
    global _ready
    import jieba

    if not _ready:
        with _lock:
            if not _ready:
                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _ready = True
    return jieba


def terms(text: str) -> list[str]:
    """Search-mode segmentation: overlapping words for Chinese, lowercased, punctuation dropped."""
    return [t for t in (w.strip().lower() for w in _jieba().cut_for_search(text)) if t and _WORD.search(t)]


def index_text(text: str) -> str:
    """The space-separated terms stored in the FTS5 table for a chunk."""
    return " ".join(terms(text))


def query_terms(text: str) -> set[str]:
    """The words of a question that say something (stopwords dropped)."""
    return {t for t in terms(text) if t not in STOPWORDS}


def query_words(text: str) -> list[str]:
    """The distinct words of a question that say something, in order."""
    return [t for t in dict.fromkeys(terms(text)) if t not in STOPWORDS]


def match_expression(words: list[str]) -> str | None:
    """An FTS5 MATCH expression with the words OR-ed; None when there are none."""
    if not words:
        return None
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)


def match_query(text: str) -> str | None:
    """An FTS5 MATCH expression (terms OR-ed) for a question; None when no term is left."""
    return match_expression(query_words(text))
