"""Answering end to end with the real 0.5B model: sources, citations, not-found, follow-ups."""

import pytest

from kb.answer import NOT_FOUND, Answerer, cited_numbers

DOCS = {
    "clip.txt": "CLIP 是 OpenAI 提出的对比性语言-图像预训练模型。它用从网络收集的四亿对图片和文字训练，"
                "让匹配的图文在同一个向量空间里靠近，不匹配的远离。",
    "bread.md": "To bake bread, mix flour, water, yeast and salt. Knead for ten minutes, let it rise for "
                "an hour, then bake at 220 degrees for thirty minutes.",
}


class CountingLLM:
    """The real model, counting generations."""

    def __init__(self, llm):
        self.llm, self.calls = llm, 0

    def __getattr__(self, name):
        return getattr(self.llm, name)

    def stream_chat(self, *a, **kw):
        self.calls += 1
        return self.llm.stream_chat(*a, **kw)

    def chat(self, *a, **kw):
        self.calls += 1
        return self.llm.chat(*a, **kw)


@pytest.fixture
def kb(make_kb, tmp_path):
    k = make_kb()
    for name, text in DOCS.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    k.add([tmp_path / n for n in DOCS])
    return k


def test_answer_streams_with_sources_known_up_front(kb, small_llm):
    stream = Answerer(kb, small_llm, temperature=0.0).ask("CLIP 是用多少对图片和文字训练的？")
    assert stream.sources and stream.sources[0].name == "clip.txt"  # on screen before any token
    src = stream.sources[0]
    assert src.page == 1 and DOCS["clip.txt"][src.start:src.end] == src.text
    pieces = list(stream)
    assert len(pieces) > 2
    result = stream.result
    assert "四亿" in result.text or "4亿" in result.text or "4 亿" in result.text
    assert not result.not_found
    assert all(c in result.sources for c in result.cited)
    if cited_numbers(result.text):
        assert result.cited and result.cited[0].name == "clip.txt"


def test_not_found_without_calling_the_llm(kb, small_llm):
    llm = CountingLLM(small_llm)
    stream = Answerer(kb, llm).ask("量子计算机的退相干问题如何解决？")
    assert stream.text() == NOT_FOUND["zh"]
    assert stream.result.not_found and stream.result.sources == [] and llm.calls == 0
    en = Answerer(kb, llm).ask("Who won the 1998 football world cup?")
    assert en.text() == NOT_FOUND["en"] and llm.calls == 0


def test_follow_up_is_condensed_into_a_standalone_question(kb, small_llm):
    history = [{"role": "user", "content": "做面包的步骤是什么？"},
               {"role": "assistant", "content": "先把面粉、水、酵母和盐混合，揉十分钟，发酵一小时，再烤三十分钟[1]。"}]
    llm = CountingLLM(small_llm)
    stream = Answerer(kb, llm, temperature=0.0).ask("烤箱要多少度？", history=history)
    assert stream.sources and stream.sources[0].name == "bread.md"
    stream.text()
    assert llm.calls == 2  # one rewrite, one answer
    assert stream.result.search_query != "烤箱要多少度？"
    assert stream.result.text.strip()


def test_cited_numbers():
    assert cited_numbers("A [1] and B [2][1], C【3】, D [2, 4] and [5，6]") == [1, 2, 3, 4, 5, 6]
    assert cited_numbers("no citations (see 1)") == []
