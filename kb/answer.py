"""Answering: retrieve, build the prompt, stream the LLM's answer, report what it cited."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from kb.prompt import SourceText, build, language, neutralise
from kb.retriever import DEFAULT_TOP_K, Hit, Retriever

NOT_FOUND = {
    "zh": "你的文档中没有找到与这个问题相关的内容。",
    "en": "I couldn't find anything about this in your documents.",
}
_CONDENSE = {
    "zh": "根据上面的对话，把最后的问题改写成一个不依赖上下文、完整独立的问题。只输出改写后的问题。",
    "en": "Given the conversation above, rewrite the last question as one standalone question that "
          "needs no context. Output only the rewritten question.",
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
    """Answers questions from one knowledge base with one chat model."""

    def __init__(self, kb, llm, top_k: int = DEFAULT_TOP_K, reserve: int = 512,
                 temperature: float = 0.2, **retriever_settings) -> None:
        self.kb, self.llm, self.top_k, self.reserve = kb, llm, top_k, reserve
        self.temperature = temperature
        self.retriever = Retriever(kb.store, kb.embedder, **retriever_settings)

    def condense(self, question: str, history: Sequence[dict]) -> str:
        """Rewrite a follow-up as a standalone question (for retrieval), using recent turns."""
        if not history:
            return question
        lang = language(question)
        recent = [{"role": t["role"], "content": neutralise(t["content"])[:1500]} for t in history[-4:]]
        msgs = [*recent, {"role": "user", "content": f"{question}\n\n{_CONDENSE[lang]}"}]
        rewritten = self.llm.chat(msgs, max_tokens=80, temperature=0.0).strip().splitlines()
        return rewritten[0].strip() if rewritten and rewritten[0].strip() else question

    def ask(self, question: str, history: Sequence[dict] = (), lang: str | None = None) -> AnswerStream:
        """Retrieve and start answering; nothing above the floor means no LLM call at all."""
        lang = lang or language(question)
        query = self.condense(question, history)
        hits = self.retriever.search(query, self.top_k)
        if not hits:
            message = NOT_FOUND[lang]
            return AnswerStream([], iter([message]), lambda text: AnswerResult(
                text, [], [], True, question, query))
        prompt = build(question, [SourceText(h.name, h.page, h.text, h.score) for h in hits],
                       self.llm.count_tokens, self.llm.n_ctx, self.reserve, history, lang)
        sources = [_source(n, hits[i]) for n, i in enumerate(prompt.kept, 1)]

        def finish(text: str) -> AnswerResult:
            numbers = cited_numbers(text)
            cited = [sources[n - 1] for n in numbers if 1 <= n <= len(sources)]
            return AnswerResult(text, cited, sources, False, question, query, self.llm.stopped)

        pieces = self.llm.stream_chat(prompt.messages, max_tokens=self.reserve, temperature=self.temperature)
        return AnswerStream(sources, pieces, finish)


def _source(n: int, h: Hit) -> Source:
    return Source(n, h.name, h.path, h.doc_id, h.page, h.start, h.end, h.text, h.score)
