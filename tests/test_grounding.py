"""The sentence checker on real sentences with the real e5 embedder: what it flags and what it passes."""

import pytest

from kb.answering.answer import Source, clean_answer, is_empty_answer, says_not_found
from kb.answering.grounding import Checker, split_sentences, summary
from kb.answering.values import key_tokens, numbers

CLIP = ("CLIP 是 OpenAI 在 2021 年提出的对比性语言-图像预训练模型。它用从网络收集的四亿对图片和文字训练，"
        "让匹配的图文在同一个向量空间里靠近，不匹配的远离。训练好的模型可以做零样本图像分类。")
GPT3 = ("GPT-3 由 OpenAI 于 2020 年发布，拥有 1750 亿个参数，训练数据约 45TB。相对于 GPT-3，GPT-3.5 "
        "有三个变体，分别有 13 亿、60 亿和 1750 亿参数。")
BRONCOS = ("Super Bowl 50 was an American football game. The Denver Broncos defeated the Carolina Panthers "
           "24–10 to earn their third Super Bowl title. The game was played on February 7, 2016, at Levi's "
           "Stadium in Santa Clara, California.")


def source(n, text, name="doc.txt", page=1, start=0):
    return Source(n, name, f"/docs/{name}", n, page, start, start + len(text), text, 1.0)


@pytest.fixture(scope="module")
def checker(e5):
    return Checker(e5)


def statuses(checks):
    return [c.status for c in checks if c.status != "skipped"]


def test_a_sentence_that_says_what_its_source_says_is_supported_with_its_span(checker):
    sources = [source(1, CLIP, "clip.txt", page=3, start=100)]
    checks = checker.check("CLIP 用从网络收集的四亿对图片和文字训练[1]。", sources, "zh")
    assert statuses(checks) == ["supported"]
    span = checks[0].support
    assert span.number == 1 and span.name == "clip.txt" and span.page == 3
    # offsets are on the page: the source starts at character 100 of it
    assert CLIP[span.start - 100:span.end - 100] == span.text and "四亿对图片" in span.text


def test_a_paraphrase_passes(checker):
    sources = [source(1, CLIP)]
    checks = checker.check("CLIP 的训练数据是从互联网上收集的 4 亿个图文对[1]。", sources, "zh")
    assert statuses(checks) == ["supported"], checks[0].reason
    en = checker.check("The Broncos beat the Panthers 24–10 in Super Bowl 50 [1].", [source(1, BRONCOS)], "en")
    assert statuses(en) == ["supported"], en[0].reason


def test_a_swapped_number_is_flagged_with_the_number_named(checker):
    sources = [source(1, GPT3)]
    checks = checker.check("GPT-3 拥有 1750 亿个参数[1]。GPT-3 由 OpenAI 于 2019 年发布[1]。", sources, "zh")
    assert statuses(checks) == ["supported", "unsupported"]
    assert "2019" in checks[1].missing and "2019" in checks[1].reason
    assert summary(checks) == (1, 2)


def test_a_swapped_name_is_flagged(checker):
    checks = checker.check("The Denver Broncos defeated the Seattle Seahawks 24–10 [1].", [source(1, BRONCOS)], "en")
    assert statuses(checks) == ["unsupported"] and "Seattle" in checks[0].missing
    zh = checker.check("CLIP 是斯坦福在 2021 年提出的模型[1]。", [source(1, CLIP)], "zh")
    assert statuses(zh) == ["unsupported"]


def test_a_sentence_no_source_says_is_flagged(checker):
    checks = checker.check("CLIP 是一种循环神经网络，主要用于语音识别[1]。", [source(1, CLIP)], "zh")
    assert statuses(checks) == ["unsupported"] and checks[0].reason


def test_a_short_answer_is_read_with_its_question(checker):
    sources = [source(1, GPT3)]
    ok = checker.check("1750亿[1]", sources, "zh", question="GPT-3有多少参数？")
    assert statuses(ok) == ["supported"]
    wrong = checker.check("500亿[1]", sources, "zh", question="GPT-3有多少参数？")
    assert statuses(wrong) == ["unsupported"]


def test_a_sentence_citing_the_wrong_source_is_backed_by_the_one_that_says_it_and_uncited_ones_use_all(checker):
    sources = [source(1, CLIP, "clip.txt"), source(2, GPT3, "gpt3.txt")]
    # the number is in source 2, but the sentence cites source 1: what a click opens is source 2
    cited_wrong = checker.check("GPT-3 拥有 1750 亿个参数[1]。", sources, "zh")
    assert statuses(cited_wrong) == ["supported"] and cited_wrong[0].support.name == "gpt3.txt"
    assert cited_wrong[0].cited == [1]
    # a value no source holds fails whichever it cites
    assert statuses(checker.check("GPT-3 拥有 1950 亿个参数[1]。", sources, "zh")) == ["unsupported"]
    uncited = checker.check("GPT-3 拥有 1750 亿个参数。", sources, "zh")
    assert statuses(uncited) == ["supported"] and uncited[0].support.name == "gpt3.txt"


def test_key_tokens_numbers_by_value_and_sentences():
    assert numbers("四亿对，1,750亿参数，二〇二〇年")["四亿"] >= {4e8}
    assert 1.75e11 in numbers("1,750亿参数")["1750亿"]
    keys = key_tokens("GPT-3 由 OpenAI 于 2020 年发布，见《语言模型》。")
    assert keys["numbers"] == ["2020"] and keys["latin"] == ["GPT-3", "OpenAI"] and keys["quoted"] == ["语言模型"]
    text = "第一句。[1] 第二句[2]。\n1. 列表项。"
    assert [text[a:b] for a, b in split_sentences(text)] == ["第一句。[1]", "第二句[2]。", "1. 列表项。"]


def test_answer_cleanup_drops_markers_out_of_range_and_copied_headers():
    assert clean_answer("CLIP 用四亿对训练[1][7]。列表[2, 5]", 2) == "CLIP 用四亿对训练[1]。列表[2]"
    assert clean_answer("[1] doc0063.txt · 第1页：法网在五月开始[1]。", 1) == "法网在五月开始[1]。"
    # a copied header stands for a citation of that source: its text cites it where it ends
    assert clean_answer("[2] clip.txt · 第1页\nCLIP 用四亿对图文训练。它能零样本分类。", 2) == \
        "CLIP 用四亿对图文训练。它能零样本分类[2]。"
    # the prompt's placeholder copied as a header (the 0.5B): dropped, not checked as a claim
    assert clean_answer("[编号] gpt3.txt · 第1页\nGPT-3 拥有 1750 亿个参数。", 2) == "GPT-3 拥有 1750 亿个参数。"
    assert is_empty_answer("[3] [4] [5]") and is_empty_answer(" [1]。") and not is_empty_answer("四亿[1]")
    assert says_not_found("资料中没有答案。") and says_not_found("The sources do not contain the answer.")
    assert not says_not_found("CLIP 用四亿对图片和文字训练[1]。")
