"""Answering: retrieve, build the prompt, stream the LLM's answer, report what it cited."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from kb.evidence import pack
from kb.lexical import query_terms
from kb.prompt import SourceText, build, follow_up_body, language
from kb.retriever import DEFAULT_TOP_K, Hit, Retriever

# Prompt tokens of evidence for a new question (bench/README.md: answer-recall vs time to first token).
DEFAULT_CONTEXT_TOKENS = 300

NOT_FOUND = {
    "zh": "你的文档中没有找到与这个问题相关的内容。",
    "en": "I couldn't find anything about this in your documents.",
}
_CITE = re.compile(r"[\[【](\d+(?:\s*[,，、]\s*\d+)*)[\]】]")


@dataclass
class Source:
    """A numbered source of an answer: which file, which page, which characters."""

    number: int
    name: str
    path: str
    doc_id: int
    page: int
    start: int
    end: int
    text: str
    score: float


@dataclass
class AnswerResult:
    """The finished answer."""

    text: str
    cited: list[Source]
    sources: list[Source]
    not_found: bool
    question: str
    search_query: str
    stopped: bool = False


def cited_numbers(text: str) -> list[int]:
    """Source numbers cited in an answer, in order of first citation: [1], [1, 2], 【3】."""
    out: list[int] = []
    for group in _CITE.findall(text):
        for n in re.split(r"\s*[,，、]\s*", group):
            if n.isdigit() and int(n) not in out:
                out.append(int(n))
    return out


@dataclass
class AnswerStream:
    """Iterate for the answer's pieces; `sources` is known before the first piece, `result` after."""

    sources: list[Source]
    _pieces: Iterator[str]
    _finish: object
    result: AnswerResult | None = None
    _text: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[str]:
        for piece in self._pieces:
            self._text.append(piece)
            yield piece
        self.result = self._finish("".join(self._text))

    def text(self) -> str:
        """Run to the end and return the whole answer."""
        for _ in self:
            pass
        return self.result.text


class Answerer:
    """Answers questions from one knowledge base with one chat model, one conversation at a time.

    Time to first token is prompt processing, so the prompt is kept small (the best evidence
    packed into `context_tokens`) and follow-ups extend the previous prompt instead of replacing
    it: llama.cpp then reuses the cached keys and values of everything already read and only
    processes the new sources and question.
    """

    def __init__(self, kb, llm, top_k: int = DEFAULT_TOP_K, reserve: int = 512,
                 temperature: float = 0.2, context_tokens: int = DEFAULT_CONTEXT_TOKENS,
                 **retriever_settings) -> None:
        self.kb, self.llm, self.top_k, self.reserve = kb, llm, top_k, reserve
        self.temperature, self.context_tokens = temperature, context_tokens
        self.retriever = Retriever(kb.store, kb.embedder, **retriever_settings)
        self._thread: list[dict] = []  # the last prompt's messages plus the answer it got
        self._thread_sources: list[Source] = []

    def search_query(self, question: str, history: Sequence[dict]) -> str:
        """What to retrieve with: a follow-up is searched together with the question before it.

        ("它是哪年发布的？" alone finds nothing; with "GPT-3 有多少参数？" before it, it does.) No
        LLM rewrite: that would cost a second prompt's processing before the first token.
        """
        previous = next((t["content"] for t in reversed(history) if t["role"] == "user"), None)
        return f"{previous.strip()} {question.strip()}" if previous else question

    def evidence(self, hits: Sequence[Hit], budget: int, query: str) -> list[Source]:
        """The hits packed into `budget` prompt tokens (neighbours merged, the last one cut to its
        best sentences), as unnumbered sources."""
        spans = pack(hits, budget, self.llm.count_tokens, self.kb.store.page_text, terms=query_terms(query))
        out = []
        for s in spans:
            best = hits[s.members[0]]
            out.append(Source(0, best.name, best.path, best.doc_id, best.page, s.start, s.end, s.text,
                              max(hits[m].score for m in s.members)))
        return out

    def ask(self, question: str, history: Sequence[dict] = (), lang: str | None = None) -> AnswerStream:
        """Retrieve and start answering; nothing above the floor means no LLM call at all."""
        lang = lang or language(question)
        query = self.search_query(question, history)
        hits = self.retriever.search(query, self.top_k)
        if not hits:
            message = NOT_FOUND[lang]
            return AnswerStream([], iter([message]), lambda text: AnswerResult(
                text, [], [], True, question, query))
        if self._continues(history):
            messages, sources = self._follow_up(question, query, hits, lang)
        else:
            messages, sources = None, []
        if messages is None:
            picked = self.evidence(hits, self.context_tokens, query)
            prompt = build(question, [SourceText(s.name, s.page, s.text, s.score) for s in picked],
                           self.llm.count_tokens, self.llm.n_ctx, self.reserve, history, lang)
            sources = [dataclasses.replace(picked[i], number=n) for n, i in enumerate(prompt.kept, 1)]
            messages = prompt.messages

        def finish(text: str) -> AnswerResult:
            numbers = cited_numbers(text)
            cited = [sources[n - 1] for n in numbers if 1 <= n <= len(sources)]
            self._thread = [*messages, {"role": "assistant", "content": text}]
            self._thread_sources = list(sources)
            return AnswerResult(text, cited, sources, False, question, query, self.llm.stopped)

        pieces = self.llm.stream_chat(messages, max_tokens=self.reserve, temperature=self.temperature)
        return AnswerStream(sources, pieces, finish)

    def _continues(self, history: Sequence[dict]) -> bool:
        """True when `history` ends with the answer this answerer gave last (its prompt is cached)."""
        return bool(self._thread and history and history[-1]["role"] == "assistant"
                    and history[-1]["content"].strip() == self._thread[-1]["content"].strip())

    def _follow_up(self, question: str, query: str, hits: Sequence[Hit], lang: str):
        """The previous prompt and answer, then only the new sources and the question; None if too long."""
        old = self._thread_sources
        fresh = [h for h in hits if not any(
            s.doc_id == h.doc_id and s.page == h.page and h.start < s.end and h.end > s.start for s in old)]
        picked = self.evidence(fresh, self.context_tokens // 3, query) if fresh else []
        numbered = [dataclasses.replace(s, number=len(old) + n) for n, s in enumerate(picked, 1)]
        body = follow_up_body(question, [(s.number, SourceText(s.name, s.page, s.text, s.score))
                                         for s in numbered], lang)
        messages = [*self._thread, {"role": "user", "content": body}]
        if self.llm.count_prompt_tokens(messages) + self.reserve > self.llm.n_ctx:
            return None, []
        return messages, [*old, *numbered]
