"""Splitting pages into chunks sized in the embedding model's tokens, never across a page."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

from kb.text.document import Document

# Paragraph, line, Chinese sentence ends, English sentence ends, clause commas, spaces, characters.
SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", ". ", "! ", "? ", "; ", "，", ", ", " ", ""]
from kb.defaults import CHUNK_TOKENS as DEFAULT_CHUNK_TOKENS  # noqa: E402 (re-exported)
from kb.defaults import OVERLAP_TOKENS as DEFAULT_OVERLAP_TOKENS  # noqa: E402


SECTION_CHARS = 20_000  # a 3-million-character "page" (a book as one .txt) is split in slices of this


def _sections(text: str) -> list[str]:
    """Cut a huge page at paragraph breaks before splitting: the splitter's regex passes over a
    whole string at once, holding Python's GIL (and so the window) for as long as that takes."""
    if len(text) <= SECTION_CHARS * 2:
        return [text]
    out, start = [], 0
    while start < len(text):
        end = min(len(text), start + SECTION_CHARS)
        if end < len(text):
            cut = text.rfind("\n\n", start + SECTION_CHARS // 2, end)
            if cut < 0:
                cut = text.rfind("\n", start + SECTION_CHARS // 2, end)
            end = cut + 1 if cut >= 0 else end
        out.append(text[start:end])
        start = end
    return out


@dataclass
class Chunk:
    """A piece of one page: its text and where it sits in that page's text."""

    page: int
    start: int
    end: int
    text: str
    tokens: int


class Chunker:
    """RecursiveCharacterTextSplitter measured in model tokens, with offsets kept per page."""

    def __init__(self, count_tokens: Callable[[str], int], size: int = DEFAULT_CHUNK_TOKENS,
                 overlap: int = DEFAULT_OVERLAP_TOKENS) -> None:
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        if size < 16 or not 0 <= overlap < size:
            raise ValueError(f"chunk size {size} / overlap {overlap}: need size >= 16 and 0 <= overlap < size")
        # the splitter measures the same pieces more than once (merging, overlap, our fit check)
        count_tokens = functools.lru_cache(maxsize=65536)(count_tokens)
        self.size, self.overlap, self.count_tokens = size, overlap, count_tokens
        self._splitter = RecursiveCharacterTextSplitter(
            separators=SEPARATORS, keep_separator="end", chunk_size=size, chunk_overlap=overlap,
            length_function=count_tokens, strip_whitespace=True)

    def split_page(self, number: int, text: str) -> list[Chunk]:
        """Chunks of one page, each with its offsets into `text`."""
        out: list[Chunk] = []
        cursor, prev_end = 0, 0
        for piece in self._fit([p for section in _sections(text) for p in self._splitter.split_text(section)]):
            # Chunks come in order and each ends past the one before; with repeated sentences the
            # first match after the previous start can be an earlier copy, so skip those.
            start = text.find(piece, cursor)
            while start >= 0 and start + len(piece) <= prev_end:
                start = text.find(piece, start + 1)
            if start < 0:
                start = text.find(piece, cursor)
            if start < 0:
                start = text.find(piece)
            if start < 0:  # cannot happen with strip-only splitting; keep the chunk anyway
                start = cursor
            end = start + len(piece)
            out.append(Chunk(number, start, end, piece, self.count_tokens(piece)))
            cursor, prev_end = start + 1, max(prev_end, end)
        return out

    def split(self, doc: Document) -> list[Chunk]:
        """All chunks of a document, page by page."""
        return [c for page in doc.pages if page.text.strip() for c in self.split_page(page.number, page.text)]

    def _fit(self, pieces: list[str]) -> list[str]:
        # joined pieces can tokenise a little longer than the sum the splitter measured
        out = []
        for p in pieces:
            if self.count_tokens(p) <= self.size or len(p) < 2:
                out.append(p)
            else:
                mid = len(p) // 2
                out += self._fit([p[:mid].strip(), p[mid:].strip()])
        return [p for p in out if p]
