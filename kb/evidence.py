"""Choosing the evidence that goes into a prompt: ranked chunks packed into a token budget.

Neighbouring chunks of one page are merged into one span (their overlap is paid once, and the
answer often straddles the cut); a chunk that does not fit is skipped, not the end of the list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence


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


def pack(hits: Sequence, budget: int, count_tokens: Callable[[str], int],
         page_text: Callable[[int, int], str | None], per_source_overhead: int = 12) -> list[Span]:
    """Spans for the best hits whose tokens (plus a header each) fit in `budget`, best first.

    `hits` need doc_id, page, start, end and text; `page_text(doc_id, page)` gives the text the
    offsets point into, so merged neighbours come out exactly as the document has them.
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
            continue
        spans.append(Span(h.doc_id, h.page, h.start, h.end, h.text, cost - per_source_overhead, [i]))
        used += cost
    return spans
