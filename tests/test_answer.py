"""Answering end to end with the real 0.5B model: sources, citations, not-found, follow-ups."""

import pytest

from kb.answering.answer import NOT_FOUND, Answerer, cited_numbers

SHORT = 128  # answer tokens: these answers are a sentence or two; length is not what is tested

DOCS = {
    "clip.txt": "CLIP 是 OpenAI 提出的对比性语言-图像预训练模型。它用从网络收集的四亿对图片和文字训练，"
                "让匹配的图文在同一个向量空间里靠近，不匹配的远离。",
    "bread.md": "To bake bread, mix flour, water, yeast and salt. Knead for ten minutes, let it rise for "
                "an hour, then bake at 220 degrees for thirty minutes.",
}


class CountingLLM:
    """The real model, counting generations."""

    def __init__(self, llm):
        self.llm, self.calls, self.sent = llm, 0, []

    def __getattr__(self, name):
        return getattr(self.llm, name)

    def stream_chat(self, messages, *a, **kw):
        self.calls += 1
        self.sent.append([dict(m) for m in messages])
        return self.llm.stream_chat(messages, *a, **kw)

    def chat(self, *a, **kw):
        self.calls += 1
        return self.llm.chat(*a, **kw)


@pytest.fixture
def kb(kb_from):
    return kb_from(DOCS)


def test_answer_streams_with_sources_known_up_front(kb, small_llm):
    stream = Answerer(kb, small_llm, temperature=0.0, reserve=SHORT).ask("CLIP 是用多少对图片和文字训练的？")
    assert stream.sources and stream.sources[0].name == "clip.txt"  # on screen before any token
    src = stream.sources[0]
    assert src.page == 1 and DOCS["clip.txt"][src.start:src.end] == src.text
    pieces = list(stream)
    assert len(pieces) > 2
    result = stream.result
    assert "四亿" in result.text or "4亿" in result.text or "4 亿" in result.text
    assert not result.not_found
    assert all(c in result.sources for c in result.cited)
    assert cited_numbers(result.text) and result.cited and result.cited[0].name == "clip.txt"


def test_not_found_without_calling_the_llm(kb, small_llm):
    llm = CountingLLM(small_llm)
    stream = Answerer(kb, llm).ask("量子计算机的退相干问题如何解决？")
    assert stream.text() == NOT_FOUND["zh"]
    assert stream.result.not_found and stream.result.sources == [] and llm.calls == 0
    en = Answerer(kb, llm).ask("Who won the 1998 football world cup?")
    assert en.text() == NOT_FOUND["en"] and llm.calls == 0


def test_follow_up_extends_the_cached_prompt_with_one_llm_call(kb, small_llm):
    llm = CountingLLM(small_llm)
    answerer = Answerer(kb, llm, temperature=0.0, reserve=SHORT)
    first = answerer.ask("做面包的步骤是什么？")
    first.text()
    cached_after_first = small_llm.cached_tokens
    history = [{"role": "user", "content": "做面包的步骤是什么？"},
               {"role": "assistant", "content": first.result.text}]
    stream = answerer.ask("那烤箱要多少度呢？", history=history)
    assert stream.sources and stream.sources[0].name == "bread.md"
    stream.text()
    assert llm.calls == 2  # one per question: no rewriting call before the answer
    assert stream.result.search_query == "做面包的步骤是什么？ 那烤箱要多少度呢？"
    before, after = llm.sent
    # the follow-up's prompt is the first prompt, its answer, then the new turn: llama.cpp reuses
    # the cached keys/values of that whole prefix and only processes the new turn
    assert after[: len(before)] == before
    # the answer as the model wrote it (before a copied source header was cleaned off): that is what
    # llama.cpp has cached
    assert after[len(before)] == {"role": "assistant", "content": first.result.raw_text}
    assert after[-1]["role"] == "user" and "烤箱要多少度" in after[-1]["content"]
    assert cached_after_first >= small_llm.count_prompt_tokens(before)
    # sources of the first answer keep their numbers; the bread chunk is not repeated
    assert stream.result.sources[: len(first.result.sources)] == first.result.sources
    assert after[-1]["content"].count("To bake bread") == 0


def test_history_from_elsewhere_starts_a_fresh_prompt(kb, small_llm):
    llm = CountingLLM(small_llm)
    history = [{"role": "user", "content": "做面包的步骤是什么？"},
               {"role": "assistant", "content": "先混合面粉、水、酵母和盐[1]。"}]
    stream = Answerer(kb, llm, temperature=0.0, reserve=SHORT).ask("那烤箱要多少度呢？", history=history)
    stream.text()
    sent = llm.sent[0]
    assert sent[0]["role"] == "system" and sent[1] == history[0] and sent[2]["role"] == "assistant"
    assert "To bake bread" in sent[-1]["content"]


def test_cited_numbers():
    assert cited_numbers("A [1] and B [2][1], C【3】, D [2, 4] and [5，6]") == [1, 2, 3, 4, 5, 6]
    assert cited_numbers("no citations (see 1)") == []
