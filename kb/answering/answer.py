"""Answering: retrieve, ask the model whether the evidence answers, stream the answer, check it.

The order is what makes answers trustworthy without slowing the first token: the retriever's
floor and the answerability probe (kb.answering.answerability) run before the first token and turn away a
question the documents cannot answer with the not-found message and the closest passages as
"possibly related"; each sentence of an answer is checked against what it cites (kb.answering.grounding)
after the answer has streamed."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from kb.answering.answerability import absent_numbers, answerability, threshold_for
from kb.answering.evidence import pack
from kb.answering.follow_up import refers_back
from kb.answering.grounding import Checker, SentenceCheck, cited_numbers
from kb.text.lexical import query_terms
from kb.answering.prompt import HEADINGS, SourceText, build, follow_up_body, neutralise
from kb.text.language import language
from kb.search.retriever import DEFAULT_TOP_K, Hit, Retriever

from kb.defaults import ANSWER_TOKENS, CONTEXT_TOKENS as DEFAULT_CONTEXT_TOKENS  # noqa: E402 (re-exported)

NOT_FOUND = {
    "zh": "你的文档中没有找到与这个问题相关的内容。",
    "en": "I couldn't find anything about this in your documents.",
}
# Asked once when an answer is nothing but citation markers ("[3]", "[3] [4] [5]").
RETRY = {"zh": "请用完整的一句话回答这个问题，并在句末注明出处，不要只写编号。",
         "en": "Answer the question in a full sentence and cite the source at its end; not just a number."}
_CITE = re.compile(r"[\[【](\d+(?:\s*[,，、]\s*\d+)*)[\]】]")
# The prompt's own source header copied into an answer: "[1] doc0063.txt · 第1页：".
# Also with the placeholder the prompt's format shows ("[编号] gpt3.txt · 第1页", the 0.5B).
_HEADER_COPY = re.compile(r"[\[【](?:\d+|编号|n|number)[\]】]\s*[^\s\[\]]+\s*·\s*(?:第\s*\d+\s*页|page\s*\d+)\s*[:：]?\s*",
                          re.I)
# How the model says the sources hold no answer (the prompt asks for the first of each).
_SAYS_NOT_FOUND = re.compile(
    r"资料中没有答案|(资料|文档|文件|上下文)(中|里)?(并)?(没有|未|无)(提到|提及|找到|包含|给出|说明|相关|答案|关于)"
    r"|没有(找到|提到|提供)|无法(回答|确定|找到)|不知道"
    r"|(sources?|documents?|context|text)s? (do|does) not (contain|mention|say|provide|include|state)"
    r"|(not|no) (mentioned|found|information|answer) (in|about)|cannot (be )?(answer|determine|find)"
    r"|couldn't find|could not find|there is no (information|mention)", re.I)


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
    lead: str = ""  # the document's title line: what a passage that leaves its subject out is about


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
    checks: list[SentenceCheck] = field(default_factory=list)  # one per sentence, after the answer
    related: list[Source] = field(default_factory=list)  # "possibly related" passages when not found
    answerability: float | None = None  # the probe's P(yes), when it ran
    rejected_by: str | None = None  # "floor", "numbers", "probe", "model", "empty" or "check" when not found
    follows_up: bool = False  # searched and answered together with the conversation before it
    raw_text: str = ""  # what the model wrote, before markers out of range and copied headers went
    attempt: "Attempt | None" = None  # the answer the checks turned away (rejected_by "check")


@dataclass
class Attempt:
    """An answer whose direct claim the documents do not back: kept, folded, beside not-found."""

    text: str
    checks: list[SentenceCheck]
    cited: list[Source]  # its sources are the result's `related`


@dataclass
class Verdict:
    """What the checks make of an answer: shown as it is, or turned into not-found."""

    not_found: bool
    rejected_by: str | None
    checks: list[SentenceCheck]


def settle(text: str, sources: Sequence[Source], question: str, lang: str, checker) -> Verdict:
    """Check each sentence of `text`; fail closed when its direct claim (the first sentence that
    claims anything) is unsupported: a wrong value must never read as the answer. Later sentences
    that fail keep their marks."""
    checks = checker.check(text, sources, lang, question) if checker and text else []
    direct = next((c for c in checks if c.status != "skipped"), None)
    if direct is not None and direct.status == "unsupported":
        return Verdict(True, "check", checks)
    return Verdict(False, None, checks)


def clean_answer(text: str, n_sources: int) -> str:
    """The answer without citation markers that point at no source and without copied source
    headers; a header the model copied before text of its own cites that source at its end."""
    text = _cite_copied_headers(text)

    def keep(m: re.Match) -> str:
        nums = [n for n in re.split(r"\s*[,，、]\s*", m.group(1)) if n.isdigit() and 1 <= int(n) <= n_sources]
        return f"[{', '.join(nums)}]" if nums else ""
    text = _CITE.sub(keep, text)
    return re.sub(r"[ \t]+\n", "\n", text).strip()


def _cite_copied_headers(text: str) -> str:
    # The 0.5B model sometimes answers "[1] clip.txt · 第1页\n<the passage's words>" instead of
    # citing: what follows the header (up to the next header) is the text of source 1, so it cites
    # [1] where it ends, unless it cites something already.
    parts = _HEADER_COPY.split(text)
    heads = _HEADER_COPY.findall(text)
    out = parts[0]
    for head, body in zip(heads, parts[1:]):
        number = re.search(r"\d+", head.split("]")[0].split("】")[0])
        number = number.group() if number else None
        if number and body.strip() and not _CITE.search(body):
            stripped = body.rstrip()
            end = len(stripped) - 1 if stripped[-1] in "。．.!！?？" else len(stripped)
            body = stripped[:end] + f"[{number}]" + stripped[end:] + body[len(stripped):]
        out += body
    return out


def says_not_found(text: str) -> bool:
    """True when the answer is the model saying the sources do not hold the answer."""
    plain = _CITE.sub("", text).strip()
    return bool(_SAYS_NOT_FOUND.search(plain)) and len(plain) < 120


def is_empty_answer(text: str) -> bool:
    """True when nothing is left but markers and punctuation."""
    return not re.sub(r"[\W_]+", "", _CITE.sub("", text))


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
    packed into `context_tokens`) and follow-ups that refer back extend the previous prompt
    instead of replacing it: llama.cpp then reuses the cached keys and values of everything
    already read and only processes the new sources and question. A question that stands on its
    own is searched and answered on its own (kb.answering.follow_up).
    """

    def __init__(self, kb, llm, top_k: int = DEFAULT_TOP_K, reserve: int = ANSWER_TOKENS,
                 temperature: float = 0.2, context_tokens: int = DEFAULT_CONTEXT_TOKENS,
                 answerable_threshold: float | None | str = "auto", check: bool = True,
                 follow_up: str = "auto", **retriever_settings) -> None:
        self.kb, self.llm, self.top_k, self.reserve = kb, llm, top_k, reserve
        self.temperature, self.context_tokens = temperature, context_tokens
        # None: no probe; "auto": the threshold calibrated for this model (kb.answering.answerability)
        self.answerable_threshold = answerable_threshold
        self.follow_up = follow_up  # "auto" (kb.answering.follow_up decides), "always" or "never"
        self.retriever = Retriever(kb.store, kb.embedder, **retriever_settings)
        self.checker = Checker(kb.embedder) if check else None
        self._thread: list[dict] = []  # the last prompt's messages plus the answer it got
        self._thread_sources: list[Source] = []
        self._shown = ""  # the last answer as the user saw it (cleaned, or the not-found message)
        self._leads: dict[int, str] = {}

    def search_query(self, question: str, history: Sequence[dict]) -> str:
        """What to retrieve with: a follow-up is searched together with the question before it.

        ("它是哪年发布的？" alone finds nothing; with "GPT-3 有多少参数？" before it, it does.) No
        LLM rewrite: that would cost a second prompt's processing before the first token.
        """
        previous = next((t["content"] for t in reversed(history) if t["role"] == "user"), None)
        return f"{previous.strip()} {question.strip()}" if previous else question

    def depends_on(self, question: str, history: Sequence[dict]) -> bool:
        """Whether `question` is searched and answered with the conversation before it."""
        if not history or self.follow_up == "never":
            return False
        return self.follow_up == "always" or refers_back(question)

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

    def related(self, query: str, k: int = 3) -> list[Source]:
        """The closest passages below the floor: shown as "possibly related" with a not-found answer."""
        hits = self.retriever.search(query, k, apply_floor=False)
        return [Source(n, h.name, h.path, h.doc_id, h.page, h.start, h.end, h.text, h.score)
                for n, h in enumerate(hits, 1)]

    def prompt(self, question: str, query: str, hits: Sequence[Hit], history: Sequence[dict] = (),
               lang: str | None = None) -> tuple[list[dict], list[Source]]:
        """A fresh prompt for `question` over `hits`: its messages and its numbered sources."""
        picked = self.evidence(hits, self.context_tokens, query)
        prompt = build(question, [SourceText(s.name, s.page, s.text, s.score) for s in picked],
                       self.llm.count_tokens, self.llm.n_ctx, self.reserve, history, lang)
        sources = [dataclasses.replace(picked[i], number=n, lead=self.lead(picked[i].doc_id))
                   for n, i in enumerate(prompt.kept, 1)]
        return prompt.messages, sources

    def lead(self, doc_id: int) -> str:
        """The first line of a document's first page when it reads as a title (kb.answering.grounding
        checks a passage that leaves its subject out against it)."""
        if doc_id not in self._leads:
            first = (self.kb.store.page_text(doc_id, 1) or "").lstrip().split("\n", 1)[0].strip()
            self._leads[doc_id] = first if len(first) <= 40 else ""
        return self._leads[doc_id]

    def prefill(self, text: str, history: Sequence[dict] = (), lang: str | None = None) -> int:
        """While the question is typed: retrieve for the text so far and process the prompt up to
        the question into the model's cache, so that if the question sent is answered from the
        same evidence only its own tokens remain. Returns the tokens processed (-1: model busy).

        Not for follow-ups: they extend the conversation's cached prompt already.
        """
        lang = lang or language(text)
        if self.depends_on(text, history):
            return 0
        hits = self.retriever.search(text, self.top_k)
        if not hits:
            return 0
        messages, _ = self.prompt(text, text, hits, (), lang)
        return self.llm.prefill(messages, f"{HEADINGS[lang][2]}: {neutralise(text).strip()}")

    def ask(self, question: str, history: Sequence[dict] = (), lang: str | None = None,
            temperature: float | None = None) -> AnswerStream:
        """Retrieve and start answering; nothing above the floor means no LLM call at all."""
        lang = lang or language(question)
        temperature = self.temperature if temperature is None else temperature
        dependent = self.depends_on(question, history)
        query = self.search_query(question, history) if dependent else question
        hits = self.retriever.search(query, self.top_k)
        if not hits:
            related = self.related(query)
            return AnswerStream([], iter([NOT_FOUND[lang]]), lambda text: AnswerResult(
                text, [], [], True, question, query, related=related, rejected_by="floor", follows_up=dependent))
        messages, sources = (self._follow_up(question, query, hits, lang)
                             if dependent and self._continues(history) else (None, []))
        if messages is None:
            messages, sources = self.prompt(question, query, hits, history if dependent else (), lang)
        pages = [self.kb.store.page_text(d, n) for d, n in dict.fromkeys((s.doc_id, s.page) for s in sources)]
        if absent_numbers(question, pages):
            return AnswerStream([], iter([NOT_FOUND[lang]]), lambda text: AnswerResult(
                text, [], [], True, question, query, related=sources, rejected_by="numbers", follows_up=dependent))
        state: dict = {}

        threshold = threshold_for(self.llm, lang) if self.answerable_threshold == "auto" else self.answerable_threshold

        def pieces() -> Iterator[str]:
            if threshold is not None:
                try:
                    state["p"] = answerability(self.llm, messages, lang)
                except RuntimeError:  # stopped while the probe ran
                    if not self.llm.stopped:
                        raise
                    return
                if state["p"] < threshold:
                    state["rejected"] = "probe"
                    yield NOT_FOUND[lang]
                    return
            said = []
            for piece in self.llm.stream_chat(messages, max_tokens=self.reserve, temperature=temperature):
                said.append(piece)
                yield piece
            if said and is_empty_answer("".join(said)) and not self.llm.stopped:
                # only "[3]": the model pointed at a source instead of answering; ask once more
                retry = [*messages, {"role": "assistant", "content": "".join(said)},
                         {"role": "user", "content": RETRY[lang]}]
                state["retry_from"] = len("".join(said)) + 1
                yield "\n"
                yield from self.llm.stream_chat(retry, max_tokens=self.reserve, temperature=temperature)

        def finish(text: str) -> AnswerResult:
            self._thread = [*messages, {"role": "assistant", "content": text}]
            self._thread_sources = list(sources)
            result = _result(text)
            self._shown = result.text
            return result

        def _result(text: str) -> AnswerResult:
            base = dict(question=question, search_query=query, stopped=self.llm.stopped,
                        answerability=state.get("p"), follows_up=dependent, raw_text=text)
            if state.get("rejected"):
                return AnswerResult(text, [], [], True, related=sources, rejected_by="probe", **base)
            cleaned = clean_answer(text[state.get("retry_from", 0):], len(sources))
            if not base["stopped"] and (says_not_found(cleaned) or is_empty_answer(cleaned)):
                rejected = "model" if says_not_found(cleaned) else "empty"
                return AnswerResult(NOT_FOUND[lang], [], [], True, related=sources, rejected_by=rejected, **base)
            cited = [sources[n - 1] for n in cited_numbers(cleaned) if 1 <= n <= len(sources)]
            # a stopped answer ends mid-sentence, and checking it would hold the stop back by the
            # embedder's ~0.3 s; it is shown as stopped, unchecked
            if base["stopped"] or not self.checker:
                return AnswerResult(cleaned, cited, sources, False, **base)
            verdict = settle(cleaned, sources, question, lang, self.checker)
            if verdict.not_found:
                attempt = Attempt(cleaned, verdict.checks, cited)
                return AnswerResult(NOT_FOUND[lang], [], [], True, related=sources, rejected_by="check",
                                    attempt=attempt, **base)
            return AnswerResult(cleaned, cited, sources, False, checks=verdict.checks, **base)

        return AnswerStream(sources, pieces(), finish)

    def _continues(self, history: Sequence[dict]) -> bool:
        """True when `history` ends with the answer this answerer gave last (its prompt is cached)."""
        return bool(self._thread and history and history[-1]["role"] == "assistant"
                    and history[-1]["content"].strip() in (self._thread[-1]["content"].strip(), self._shown.strip()))

    def _follow_up(self, question: str, query: str, hits: Sequence[Hit], lang: str):
        """The previous prompt and answer, then only the new sources and the question; None if too long."""
        old = self._thread_sources
        fresh = [h for h in hits if not any(
            s.doc_id == h.doc_id and s.page == h.page and h.start < s.end and h.end > s.start for s in old)]
        picked = self.evidence(fresh, self.context_tokens // 3, query) if fresh else []
        numbered = [dataclasses.replace(s, number=len(old) + n, lead=self.lead(s.doc_id))
                    for n, s in enumerate(picked, 1)]
        body = follow_up_body(question, [(s.number, SourceText(s.name, s.page, s.text, s.score))
                                         for s in numbered], lang)
        messages = [*self._thread, {"role": "user", "content": body}]
        if self.llm.count_prompt_tokens(messages) + self.reserve > self.llm.n_ctx:
            return None, []
        return messages, [*old, *numbered]
