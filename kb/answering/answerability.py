"""Does the evidence answer the question? A yes/no probe read from the chat model itself.

The retriever's floor turns away questions about topics the knowledge base never mentions, but
not a question about the right topic whose answer is missing ("2022年法网开始时间" over a
tennis article of another year): the small model then answers anyway, with a citation. So before
answering, the model is asked whether the sources hold the answer, and the probability of "yes"
among "yes"/"no" as its next token is read off one forward pass. The probe shares the answer
prompt's prefix (sources and question), so llama.cpp reuses those cached keys and values and the
probe costs its own ~30 tokens; the answer then re-reads only its last few.

The threshold is calibrated on CMRC dev questions 0-999 only (bench/answers.py --calibrate):
see bench/README.md ("Answerability").
"""

from __future__ import annotations

import re
from typing import Sequence

from kb.answering.values import numbers

PROBE = {
    "zh": "上面的资料里有这个问题的明确答案吗？只回答“是”或“否”。",
    "en": "Do the sources above state the answer to this question? Reply with Yes or No only.",
}
YES_NO = {
    "zh": {"yes": ["是"], "no": ["否", "不"]},
    "en": {"yes": ["Yes", "yes"], "no": ["No", "no"]},
}
# P(yes) / (P(yes) + P(no)) below this means "not in your documents", per chat model (GGUF file
# stem) and question language. Qwen2.5-Coder-1.5B, Chinese: on 30 answerable + 30 unanswerable CMRC
# tuning questions answerable ones score 0.92-0.99, unanswerable ones 0.67-0.99 (30% never reach
# the probe: the retriever's floor turns them away); 0.92 keeps 96.7% of answerable ones and turns
# away 76.7% of the rest (0.90: 100% / 73.3%; 0.94: 83.3% / 90%). English: the same probe in
# English scores lower throughout (answerable 0.32-0.79), so its threshold is its own, calibrated
# on 30 + 30 XQuAD-en questions the bench never asks (the end of its shuffled lists): 0.40 keeps
# 96.7% and turns away 46.7% (0.50: 86.7% / 76.7%); asking English questions the Chinese probe
# separated them worse (0.94: 90% / 46.7%). Models not calibrated are not probed: a guessed
# threshold turned away follow-ups the 0.5B answers well (tests/test_answer.py).
THRESHOLDS = {"qwen2.5-coder-1.5b-instruct": {"zh": 0.92, "en": 0.40}}


def threshold_for(llm, lang: str = "zh") -> float | None:
    """The calibrated threshold for this chat model (by its file name) and language; None: no probe."""
    stem = getattr(getattr(llm, "path", None), "stem", "").lower()
    per_language = next((t for prefix, t in THRESHOLDS.items() if stem.startswith(prefix)), {})
    return per_language.get(lang)


def probe_messages(messages: Sequence[dict], lang: str) -> list[dict]:
    """The answer prompt with the yes/no question appended as a second user turn."""
    return [*messages, {"role": "user", "content": PROBE[lang]}]


def answerability(llm, messages: Sequence[dict], lang: str) -> float:
    """P(yes) / (P(yes) + P(no)) for "do these sources answer the question?"."""
    p = llm.first_token_probabilities(probe_messages(messages, lang), YES_NO[lang])
    total = p["yes"] + p["no"]
    return p["yes"] / total if total > 0 else 0.0


def absent_numbers(question: str, pages: Sequence[str]) -> list[str]:
    """Numbers the question writes in digits (a year, a model number) that none of the sources'
    pages holds, by value: "2022年法网男单冠军" over a tennis article without 2022 cannot be
    answered from it. On CMRC tuning questions (0-999): 0 of 400 answerable ones lost, 5 of 91
    unanswerable ones caught that the probe can pass (45 and 8 of them carry such a number)."""
    held: set[float] = set()
    for text in pages:
        for values in numbers(text).values():
            held |= values
    asked = _ANSWER_SHAPE.sub(" ", question)  # "in 400 words", "用100字" say how to answer, not what
    return [raw for raw, values in numbers(asked).items()
            if any(c.isdigit() for c in raw) and not values & held]


_ANSWER_SHAPE = re.compile(r"\d+\s*(?:words?|sentences?|paragraphs?|points?|bullets?|lines?|items?|examples?|"
                           r"个?字|句话?|段话?|个?要?点|条|个例子)", re.I)
