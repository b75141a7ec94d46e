"""Which follow-ups lean on the conversation: the rule on real questions, and what the answerer searches."""

import pytest

from kb.answering.follow_up import refers_back

DEPENDENT = ["它是哪年发布的？", "它用了多少数据？", "那GPT-4呢？", "这个模型有多少参数？", "他在哪里出生？",
             "该公司的总部在哪里？", "When was it released?", "How many parameters does it have?",
             "What about GPT-4?", "Who founded them?", "And its population?"]
STANDALONE = ["GPT-3有多少参数？", "CLIP是如何训练的？", "《战国无双3》是由哪两个公司合作开发的？",
              "How was CLIP trained?", "What did the Normans do in their conquest of England?",
              "Which NFL team represented the AFC at Super Bowl 50?",
              "When did Tesla move his laboratory to Colorado Springs?", "这样做有什么好处和坏处，为什么大家都这么做？",
              "What is the name of the stadium that hosted Super Bowl 50?", "其实CLIP和ALIGN的训练数据有什么区别？"]


@pytest.mark.parametrize("question", DEPENDENT)
def test_a_question_that_points_back_depends_on_the_conversation(question):
    assert refers_back(question)


@pytest.mark.parametrize("question", STANDALONE)
def test_a_question_that_names_its_subject_stands_on_its_own(question):
    assert not refers_back(question)


DOCS = {
    "clip.txt": "CLIP 是 OpenAI 提出的对比性语言-图像预训练模型。它用从网络收集的四亿对图片和文字训练，"
                "让匹配的图文在同一个向量空间里靠近，不匹配的远离。",
    "gpt3.txt": "GPT-3 是 OpenAI 于 2020 年发布的语言模型，拥有 1750 亿个参数，在约 45TB 的文本上训练。",
    "vicuna.txt": "Vicuna 是斯坦福、伯克利等机构基于 LLaMA 微调的 130 亿参数模型，训练数据来自 ShareGPT 上的用户对话。",
}


@pytest.fixture
def kb(kb_from):
    return kb_from(DOCS)


def _two_turns(kb, llm, first_question, second_question):
    """Ask two questions in one conversation; the second answer's stream, run to its end."""
    from kb.answering.answer import Answerer

    answerer = Answerer(kb, llm, temperature=0.0, answerable_threshold=None, reserve=128)
    first = answerer.ask(first_question)
    first.text()
    history = [{"role": "user", "content": first_question}, {"role": "assistant", "content": first.result.text}]
    second = answerer.ask(second_question, history)
    second.text()
    return second


def test_an_unrelated_follow_up_is_searched_and_answered_on_its_own(kb, small_llm):
    second = _two_turns(kb, small_llm, "CLIP是如何训练的？", "GPT-3有多少参数？")
    assert second.result.search_query == "GPT-3有多少参数？" and not second.result.follows_up
    assert second.sources[0].name == "gpt3.txt"
    assert not any(s.name == "clip.txt" for s in second.result.sources)  # the first answer's sources are gone
    assert "1750" in second.result.text


def test_a_dependent_follow_up_is_searched_with_the_question_before_it(kb, small_llm):
    second = _two_turns(kb, small_llm, "GPT-3是谁发布的？", "它有多少参数？")
    assert second.result.follows_up and second.result.search_query == "GPT-3是谁发布的？ 它有多少参数？"
    assert any(s.name == "gpt3.txt" for s in second.result.sources)
