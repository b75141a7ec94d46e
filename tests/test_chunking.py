"""Chunking in model tokens: per page, within the limit, with offsets that point at the text."""

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from kb.text.chunking import Chunker
from kb.text.document import Document, Page

ZH_PARA = ("CLIP 是一种对比性语言-图像预训练模型。它用四亿对图文数据训练，让图片和文字落在同一个向量空间！"
           "这样就能用文字搜索图片；也能做零样本分类？效果很好，") * 6
EN_PARA = ("Retrieval-augmented generation finds passages first. Then the model answers from them! "
           "Does it cite sources? It should; every answer names its file and page, ") * 6


def test_chunks_stay_on_their_page_and_under_the_limit(e5):
    chunker = Chunker(e5.count_tokens, size=64, overlap=10)
    doc = Document("x.pdf", "pdf", [Page(1, ZH_PARA), Page(2, ""), Page(3, EN_PARA + "\n\n" + ZH_PARA)])
    chunks = chunker.split(doc)
    assert {c.page for c in chunks} == {1, 3}
    pages = {p.number: p.text for p in doc.pages}
    for c in chunks:
        assert c.tokens == e5.count_tokens(c.text) <= 64
        assert pages[c.page][c.start:c.end] == c.text  # offsets highlight exactly this chunk
    assert len([c for c in chunks if c.page == 1]) >= 3


def test_splits_prefer_sentence_ends(e5):
    chunks = Chunker(e5.count_tokens, size=40, overlap=0).split_page(1, ZH_PARA)
    ends = sum(c.text.endswith(("。", "！", "？", "；", "，")) for c in chunks)
    assert ends >= len(chunks) - 1


def test_overlap_repeats_short_sentences(e5):
    text = "".join(f"第{i}句很短。" for i in range(60))
    with_overlap = Chunker(e5.count_tokens, size=48, overlap=16).split_page(1, text)
    assert all(a.end > b.start for a, b in pairwise(with_overlap))
    without = Chunker(e5.count_tokens, size=48, overlap=0).split_page(1, text)
    assert all(a.end <= b.start for a, b in pairwise(without))


def test_text_without_any_separator_is_still_cut(e5):
    text = "知" * 3000
    chunks = Chunker(e5.count_tokens, size=50, overlap=5).split_page(1, text)
    assert all(c.tokens <= 50 for c in chunks)
    assert sum(len(c.text) for c in chunks) >= len(text)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["知识库", "模型", "。", "，", "\n", "\n\n", " ", "CLIP", "training", ". ",
                                  "数据", "！", "page", "FAISS", "检索"]), min_size=0, max_size=400),
       st.integers(min_value=16, max_value=80))
def test_random_text_respects_limit_and_offsets(e5, parts, size):
    text = "".join(parts)
    chunker = Chunker(e5.count_tokens, size=size, overlap=size // 6)
    for c in chunker.split_page(1, text):
        assert c.tokens <= size
        assert text[c.start:c.end] == c.text


def test_offsets_stay_right_when_sentences_repeat(e5):
    from kb.text.chunking import Chunker

    text = "\n\n".join(f"第{i}段。" + "同一句话反复出现在每一段里。" * 6 + f"第{i}段的结论。" for i in range(1, 6))
    chunks = Chunker(e5.count_tokens, 48, 8).split_page(1, text)
    assert len(chunks) > 5
    for c in chunks:
        assert text[c.start:c.end] == c.text
    assert all(b.start > a.start and b.end > a.end for a, b in zip(chunks, chunks[1:], strict=False))
