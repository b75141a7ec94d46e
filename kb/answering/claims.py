"""What an answer sentence claims about the question: its values, and the subject they must stand beside.

Over documents that all discuss the question's topic, a small model's wrong answer is usually a
value that is on the cited page but belongs to something else: asked when one event began, it
gives the date the page gives for another. Finding the value anywhere on the page proves nothing.
So a value (number, date, Latin or Chinese name, quoted term) counts as backed only where it
stands in one source window (a sentence or two adjacent ones) together with the question's
subject: the question's content words, less the words that only ask ("多少", "when", …). A value
the question itself names ("2016年…") is part of its subject, not a claim of the answer. How much
of the subject must be there (ANCHOR_MIN) is tuned on the look-alike sets (bench/lookalike.py,
tuning questions only; bench/README.md).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kb.text.lexical import STOPWORDS, terms
from kb.answering.values import DATE, MONTHS, compact, key_tokens, named, numbers

# Share of the question's subject terms a window must hold for a value in it to count as the
# answer to this question. Tuned on bench/lookalike.py's tuning sets (bench/README.md, "Look-alike").
ANCHOR_MIN = 0.5
# Words that only say what is asked for, never what about.
ASKING = frozenset(
    "多少 几 哪 哪里 哪儿 哪年 哪一年 哪天 哪位 哪种 哪家 哪国 哪部 什么 什么样 什么时候 何时 何地 何人 何种 为何 为什么 谁 "
    "多久 多长 多大 多高 多重 多远 第几 几个 几年 几次 几位 几种 怎样 怎么样 是什么 叫什么 称为 被称为 称作 名叫 "
    "what which who whom whose when where why how many much long old often far large big "
    "name named called kind type year years date percentage percent proportion number amount actually "
    "比例 百分比 多少比例 数量 人数 名字 名称 叫做 什么样 那座 这座 那位 这位 那个 这个 那些 这些 那次 这次".split())
# Across languages only names written the same in both stay Latin in a Chinese text: "GPT-3",
# "SQLite", "CLIP"; "Department for Work and Pensions" is written 就业及退休保障部 there.
IDENTIFIER = re.compile(r"\d|[a-z][A-Z]|^[A-Z]{2,}$")
_EN_STEM = 5  # English words compare on their first letters: "defense" ~ "defensive", "point" ~ "points"


def _stem(term: str) -> str:
    return term[:_EN_STEM] if term.isascii() else term


def subject_terms(question: str) -> list[str]:
    """The question's content terms that say what it is about (stemmed), in order."""
    out = []
    for t in terms(question):
        if t in STOPWORDS or t in ASKING:
            continue
        if (t.isascii() and len(t) < 3 and not t.isdigit()) or (not t.isascii() and len(t) < 2):
            continue
        out.append(_stem(t))
    # jieba's search mode also yields the parts of a long word ("黑豹队" and "黑豹"): keep the longest
    return [t for t in dict.fromkeys(out) if not any(t != o and t in o for o in out)]


def anchor(window: str, subject: list[str], lead: str = "") -> float:
    """Share of `subject` the window holds (1.0 when the question names no subject). A term only in
    the source's lead (its name and title), or only in part ("女演员" ~ "演员"), counts half:
    encyclopedic Chinese names its subject once and then leaves it out ("唐鱼……。体长约4公分。"),
    but the lead alone must not anchor a value that stands beside another attribute."""
    if not subject:
        return 1.0
    here, there = _holder(window), _holder(lead)
    return sum(1.0 if here(t) else 0.5 if there(t) or _part_held(t, here) else 0.0 for t in subject) / len(subject)


def _part_held(term: str, held) -> bool:
    """A long Chinese word of which a shorter word stands in the window ("女演员" ~ "演员")."""
    return not term.isascii() and len(term) >= 3 and any(
        len(p) >= 2 and p != term and held(p) for p in terms(term))


def _holder(text: str):
    compact = re.sub(r"\s+", "", text.lower())
    words = {_stem(t) for t in terms(text)} if text else set()
    return lambda t: t in words if t.isascii() else t in compact


@dataclass
class Asked:
    """The question as the checker reads it: its subject terms, its own values and language."""

    text: str
    subject: list[str]
    keys: dict[str, list[str]]
    values: set[float]
    language: str
    vector: np.ndarray | None = None
    number_values: list[set[float]] = field(default_factory=list)  # one set per number the question writes


def claim_values(said: str, asked: Asked, same_language: bool) -> list[tuple[str, object]]:
    """The values a sentence claims, each with a test for a source window that holds it; values
    the question itself names are its subject, not the answer's claim."""
    out: list[tuple[str, object]] = []
    rest = said
    for m in DATE.finditer(said):  # a date is one value: its numbers must stand together
        parts = [vals for vals in numbers(m.group(0)).values() if not vals & asked.values]
        month = re.match(r"\d*\s*(" + MONTHS + ")", m.group(0).lower())
        month = re.match(r"[a-z]{3}", month.group(1)).group(0) if month else ""
        if parts or month:
            out.append((m.group(0), lambda w, parts=parts, month=month: all_numbers(w, parts)
                        and month in w.lower()))
        rest = rest.replace(m.group(0), " ")
    for raw, vals in numbers(rest).items():
        if vals & asked.values:
            continue
        out.append((raw, lambda w, vals=vals: all_numbers(w, [vals])))
    keys = key_tokens(said)
    asked_words = {compact(k) for k in asked.keys["latin"] + asked.keys["names"] + asked.keys["quoted"]}
    latin = keys["latin"] if same_language else [w for w in keys["latin"] if IDENTIFIER.search(w)]
    for word in latin + (keys["names"] + keys["quoted"] if same_language else []):
        if compact(word) in asked_words or any(compact(word) in k for k in asked_words):
            continue
        out.append((word, lambda w, c=compact(word): c in compact(w)))
    return out


def may_anchor(w: tuple, test, asked: Asked, cross: bool) -> bool:
    """Whether window `w` holds the value and may speak of the question's subject: a sentence, or a
    pair whose second sentence, when the value is there, continues the first — it names part of
    the subject itself ("唐鱼……。体长约4公分") — and names nothing the question does not ("2018年北京车展"
    after "2017年上海车展…"; "他们的进攻得到500分" after "黑豹队的防守…" is about the attack)."""
    src, wa, wb, _, kind = w
    if not test(src.text[wa:wb]):
        return False
    if kind == "single" or cross:
        return True
    second = src.text[kind[0]:kind[1]]
    if not test(second):  # the value is in the first sentence, which is a window of its own: a
        return False      # sentence takes its subject from the one before it, never the one after
    keys = key_tokens(second)
    asked_words = compact(asked.text)
    foreign = [k for k in keys["names"] + keys["latin"] if compact(k) not in asked_words and not test(k)]
    return not foreign and anchor(second, asked.subject) > 0


@functools.lru_cache(maxsize=4096)
def window_keys(window: str) -> dict[str, list[str]]:
    """key_tokens of a source window, cached: the same windows are read for every sentence."""
    return key_tokens(window)


def swapped_subject(said: str, asked: Asked) -> tuple[str, str] | None:
    """(the name the sentence puts, the question's name it replaces) when the sentence restates the
    question's subject with another name of the same kind before the same words ("伊斯兰兄弟会是…"
    asked about 穆斯林兄弟会, "黄鳍雀鲷…" about 班卡雀鲷), else None. A name that is the answer
    ("明光社主席" asked what 楼曾瑞 does) stands before other words and is left alone."""
    said_compact, asked_compact = compact(said), compact(asked.text)
    for gone, kind in named(asked.text):
        if compact(gone) in said_compact:
            continue
        after = asked_compact.split(compact(gone), 1)[1][:2]
        for name, other in named(said):
            if other == kind and compact(name) not in asked_compact and len(after) == 2 \
                    and compact(name) + after in said_compact:
                return name, gone
    return None


def lead_of(src) -> str:
    """A source's name and title: where a document names what it is about (the document's title
    line when the answerer gave it, else a short first line of the passage)."""
    first = src.text.strip().split("\n", 1)[0].strip()
    title = first if len(first) <= 40 and not re.search(r"[。！？]|[.!?]$", first) else ""
    return "\n".join((Path(src.name).stem, getattr(src, "lead", "") or "", title))


def all_numbers(window: str, wanted: list[set[float]]) -> bool:
    """Whether `window` holds one of the values of each wanted number."""
    held = set().union(*numbers(window).values()) if numbers(window) else set()
    return all(vals & held for vals in wanted)
