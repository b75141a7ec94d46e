"""The not-found path end to end with the default chat model: a question on the documents' topic
whose answer they do not hold is turned away with the closest passages; one they hold is answered."""

import pytest

from kb.answering.answer import NOT_FOUND, Answerer

DOCS = {
    "clip.txt": "CLIP 是 OpenAI 提出的对比性语言-图像预训练模型。它用从网络收集的四亿对图片和文字训练，"
                "让匹配的图文在同一个向量空间里靠近，不匹配的远离。训练好的模型可以做零样本图像分类。",
    "tennis.txt": "法国网球公开赛是每年在巴黎罗兰·加洛斯球场举行的红土网球赛事，是四大满贯赛事之一。"
                  "纳达尔在这项赛事中赢得了十四次男子单打冠军，被称为“红土之王”。",
    "bread.md": "To bake bread, mix flour, water, yeast and salt. Knead for ten minutes, let it rise for "
                "an hour, then bake at 220 degrees for thirty minutes.",
}


@pytest.fixture(scope="module")
def default_llm():
    """The catalog's default chat model: the probe's threshold is calibrated for it."""
    from models.llm import LocalLLM

    llm = LocalLLM.default(n_ctx=2048)
    yield llm
    llm.close()


@pytest.fixture
def kb(kb_from):
    return kb_from(DOCS)


@pytest.mark.parametrize("question, lang, topic, turned_away_by", [
    ("2022年法网男单冠军是谁？", "zh", "tennis.txt", "numbers"),  # no 2022 in the documents: the digits rule
    ("纳达尔的教练是谁？", "zh", "tennis.txt", "probe"),  # right topic, the answer is not there: the probe
])
def test_an_answer_the_documents_do_not_hold_is_not_found_with_related_passages(kb, default_llm, question,
                                                                              lang, topic, turned_away_by):
    stream = Answerer(kb, default_llm, temperature=0.0, reserve=128).ask(question)
    text = stream.text()
    result = stream.result
    assert result.not_found, f"answered {text!r} (P(yes) {result.answerability})"
    assert result.text == NOT_FOUND[lang] and result.rejected_by == turned_away_by
    assert result.related and result.related[0].name == topic  # shown as "possibly related"
    assert result.cited == [] and result.checks == []


def test_an_answer_the_documents_hold_is_answered_and_checked(kb, default_llm):
    stream = Answerer(kb, default_llm, temperature=0.0, reserve=128).ask("纳达尔赢得过多少次法网男单冠军？")
    text = stream.text()
    result = stream.result
    assert not result.not_found and result.answerability is not None and result.answerability >= 0.5
    assert "十四" in text or "14" in text
    checked = [c for c in result.checks if c.status != "skipped"]
    assert checked and checked[0].status == "supported", checked
    assert checked[0].support.name == "tennis.txt"


def test_a_year_the_documents_never_mention_turns_the_question_away_but_answer_lengths_do_not():
    from kb.answering.answerability import absent_numbers

    tennis = [DOCS["tennis.txt"]]
    assert absent_numbers("2022年法网男单冠军是谁？", tennis) == ["2022"]
    assert absent_numbers("纳达尔赢得过14次法网冠军吗？", tennis) == []  # 十四 is 14
    assert absent_numbers("用100字介绍纳达尔", tennis) == []
    assert absent_numbers("Explain in at least 400 words how bread is baked.", [DOCS["bread.md"]]) == []
