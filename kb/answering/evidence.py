"""Choosing the evidence that goes into a prompt: ranked chunks packed into a token budget.

Neighbouring chunks of one page are merged into one span (their overlap is paid once, and the
answer often straddles the cut); a chunk that does not fit is skipped, not the end of the list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])|(?<=[.!?;]\s)|\n+")
MIN_TRIMMED = 48  # tokens: a window smaller than this rarely holds a usable answer
# Only the best-ranked hits are cut to fit: cutting lower ones takes room from whole chunks
# further down that rank lower but hold more (bench/tune.py: R@1000tok fell when all were cut).
TRIM_TOP = 3


@dataclass
class Span:
    """A stretch of one page that goes into the prompt, and the ranked hits it covers."""

    doc_id: int
    page: int
    start: int
    end: int
    text: str
    tokens: int
    members: list[int]  # indices of the hits merged into this span, best first


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text` (Chinese and English ends, line breaks)."""
    out, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        if m.end() > start and text[start:m.start()].strip():
            out.append((start, m.end()))
        start = max(start, m.end())
    if text[start:].strip():
        out.append((start, len(text)))
    return out


def best_window(text: str, terms: set[str], budget: int, count_tokens: Callable[[str], int]) -> tuple[int, int]:
    """The contiguous run of sentences of `text` that fits `budget` tokens and holds the most
    query words, grown around the best sentence; (0, 0) when not even one sentence fits."""
    spans = sentences(text)
    if not spans:
        return 0, 0

    def weight(i: int) -> float:
        piece = text[spans[i][0]:spans[i][1]].lower()
        return sum(len(t) for t in terms if t in piece)

    scores = [weight(i) for i in range(len(spans))]
    order = sorted(range(len(spans)), key=lambda i: (-scores[i], i))
    candidates = [i for i in order[:3] if scores[i] > 0] or [0]  # no query word anywhere: the start
    for best in candidates:
        lo = hi = best
        if count_tokens(text[spans[lo][0]:spans[hi][1]]) > budget:
            continue
        while True:  # grow towards the better-scoring neighbour while it fits
            options = [j for j in (lo - 1, hi + 1) if 0 <= j < len(spans)]
            options.sort(key=lambda j: (-scores[j], j > hi))
            for j in options:
                a, b = min(lo, j), max(hi, j)
                if count_tokens(text[spans[a][0]:spans[b][1]]) <= budget:
                    lo, hi = a, b
                    break
            else:
                return spans[lo][0], spans[hi][1]
    return 0, 0


def pack(hits: Sequence, budget: int, count_tokens: Callable[[str], int],
         page_text: Callable[[int, int], str | None], per_source_overhead: int = 12,
         terms: set[str] | None = None) -> list[Span]:
    """Spans for the best hits whose tokens (plus a header each) fit in `budget`, best first.

    `hits` need doc_id, page, start, end and text; `page_text(doc_id, page)` gives the text the
    offsets point into, so merged neighbours come out exactly as the document has them. With the
    query's `terms`, a best hit too long for the whole budget is cut to its best sentences instead
    of being dropped (sentence-level selection: a small prompt keeps the sentence with the answer).
    """
    spans: list[Span] = []
    used = 0
    pages: dict[tuple[int, int], str | None] = {}
    for i, h in enumerate(hits):
        key = (h.doc_id, h.page)
        near = next((s for s in spans if (s.doc_id, s.page) == key
                     and h.start <= s.end + 1 and h.end >= s.start - 1), None)
        if near is not None:
            if key not in pages:
                pages[key] = page_text(*key)
            text = pages[key]
            start, end = min(near.start, h.start), max(near.end, h.end)
            if text is None or end > len(text):
                continue
            merged = text[start:end].strip()
            cost = count_tokens(merged)
            if used - near.tokens + cost > budget:
                continue
            used += cost - near.tokens
            near.start, near.end, near.text, near.tokens = start, end, merged, cost
            near.members.append(i)
            continue
        cost = count_tokens(h.text) + per_source_overhead
        if used + cost > budget:
            room = budget - used - per_source_overhead
            if terms is not None and i < TRIM_TOP and room >= MIN_TRIMMED:
                trimmed = _cut(h, i, terms, room, count_tokens)
                if trimmed is not None:
                    spans.append(trimmed)
                    used += trimmed.tokens + per_source_overhead
            continue
        spans.append(Span(h.doc_id, h.page, h.start, h.end, h.text, cost - per_source_overhead, [i]))
        used += cost
    return spans


def _cut(h, i: int, terms: set[str], room: int, count_tokens: Callable[[str], int]) -> Span | None:
    """Hit `h` cut to its best sentences within `room` tokens, as a span (None if nothing fits)."""
    a, b = best_window(h.text, terms, room, count_tokens)
    piece = h.text[a:b]
    if not piece.strip():
        return None
    start = h.start + a + len(piece) - len(piece.lstrip())
    piece = piece.strip()
    return Span(h.doc_id, h.page, start, start + len(piece), piece, count_tokens(piece), [i])
