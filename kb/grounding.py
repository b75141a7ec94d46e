"""Checking an answer sentence by sentence against the sources it cites.

A small model's wrong answers are mostly right-looking sentences with one wrong number, date or
name, or sentences no source says at all. So each sentence is held to two tests against its cited
sources (all sources when it cites none): every key token in it (numbers by value, dates, Latin
names, Chinese proper names, quoted terms) occurs there, and one source sentence (or two adjacent
ones) says much the same — by the embedder's cosine or by the share of its jieba terms. Why the
thresholds are what they are: bench/README.md ("Sentence checking"); swapped-value answers are the
measure there.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from kb.evidence import sentences as source_sentences
from kb.lexical import STOPWORDS, terms
from kb.prompt import language

# A sentence is close to a source window when the embedder's cosine (e5-small, query prefix on
# both sides) reaches COSINE_MIN or when this share of its content terms occur in the window.
# Measured (bench/answers.py, CMRC tuning questions): correct answer sentences 0.88-0.97 with
# their source sentence, unrelated sentences of the same KB 0.78-0.86.
COSINE_MIN = 0.93
OVERLAP_MIN = 0.6
# ... or a cosine this much lower with half the term share.
COSINE_WITH_TERMS = 0.03
# A sentence with fewer content terms than this is checked together with the question.
SHORT_TERMS = 4
_CITE = re.compile(r"\s*[\[【](\d+(?:\s*[,，、]\s*\d+)*)[\]】]")
_END = re.compile(r"(?:[。！？!?；;]|\.(?=\s|$))(?:\s*[\[【]\d+(?:\s*[,，、]\s*\d+)*[\]】])*|\n+")
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_BIG = {"万": 1e4, "亿": 1e8, "thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_NUMBER = re.compile(r"(?<![a-z\d.\-])(\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百千]+)\s*(万亿|亿|万|thousand|million|billion|trillion)?"
                     r"(?=(年|岁|届|倍|%|)?)", re.I)
_LIST_NUMBER = re.compile(r"^(\d{1,2}[.)、]|[-*•])\s*")
_LATIN = re.compile(r"[A-Za-z][A-Za-z0-9\-+]*(?:\.[A-Za-z0-9]+)*")
_QUOTED = re.compile(r"[“\"「『《]([^”\"」』》\n]{1,40})[”\"」』》]")
_NAME_FLAGS = {"nr", "nrfg", "nrt", "ns", "nt", "nz"}
_posseg = None


@dataclass
class Support:
    """Where a sentence is backed: source number and the exact characters on the page."""

    number: int
    doc_id: int
    name: str
    path: str
    page: int
    start: int
    end: int
    text: str


@dataclass
class SentenceCheck:
    """One sentence of an answer and whether its cited sources back it."""

    start: int  # offsets into the answer text
    end: int
    text: str
    cited: list[int]
    status: str  # "supported", "unsupported" or "skipped" (no claim to check, e.g. "根据资料：")
    reason: str = ""
    missing: list[str] = field(default_factory=list)
    support: Support | None = None
    cosine: float = 0.0
    overlap: float = 0.0


REASONS = {
    "zh": {"missing": "资料[{src}]中没有“{tokens}”", "far": "没有哪句资料[{src}]的原文说了这句话",
           "cites_none": "没有可用的资料"},
    "en": {"missing": "“{tokens}” does not occur in source {src}", "far": "no sentence of source {src} says this",
           "cites_none": "no source to check against"},
}


def normalise(text: str) -> str:
    """NFKC, lowercase, digits joined across thousands separators: the form both sides compare in."""
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"(?<=\d)[,，](?=\d{3})", "", text)


def cn_number(text: str) -> float | None:
    """The value of a Chinese numeral without 万/亿 (两百三十 -> 230); None if it is not one."""
    if not text:
        return None
    if all(c in _CN_DIGITS for c in text):  # digit by digit, as in years: 二〇二〇
        return float("".join(str(_CN_DIGITS[c]) for c in text))
    total, digit = 0, None
    for c in text:
        if c in _CN_DIGITS:
            digit = _CN_DIGITS[c]
        elif c in _CN_UNITS:
            total += (1 if digit is None else digit) * _CN_UNITS[c]
            digit = None
        else:
            return None
    return float(total + (digit or 0))


def numbers(text: str) -> dict[str, set[float]]:
    """Numbers in `text`, each as written -> the values it may stand for (with and without 万/亿)."""
    out: dict[str, set[float]] = {}
    for m in _NUMBER.finditer(normalise(text)):
        raw, big = m.group(1), (m.group(2) or "").lower()
        if raw[0].isdigit():
            value = float(raw)
        else:
            # a lone 一/十 is a word more often than a number (一些, 十分); count it with a unit
            if len(raw) < 2 and not big and not m.group(3):
                continue
            value = cn_number(raw)
            if value is None:
                continue
        scale = 1.0
        for unit in ("万亿",) if big == "万亿" else (big,) if big else ():
            scale = 1e12 if unit == "万亿" else _BIG[unit]
        out[m.group(0).strip()] = {round(value * scale, 6), round(value, 6)} if big else {round(value, 6)}
    return out


def _names(sentence: str) -> list[str]:
    global _posseg
    if _posseg is None:
        from kb.lexical import _jieba

        _jieba()
        import jieba.posseg as posseg

        _posseg = posseg
    return [w.word for w in _posseg.cut(sentence) if w.flag in _NAME_FLAGS and len(w.word) >= 2
            and re.fullmatch(r"[\u3400-\u9fff]+", w.word)]


def key_tokens(sentence: str) -> dict[str, list[str]]:
    """What must occur in a source for `sentence` to hold: numbers, Latin names, Chinese names, quotes."""
    plain = _CITE.sub("", sentence)
    latin = []
    for i, m in enumerate(_LATIN.finditer(plain)):
        word = m.group(0).strip(".-+")
        if not word or word.lower() in STOPWORDS:
            continue
        starts_sentence = i == 0 and plain[:m.start()].strip() == ""
        if any(c.isdigit() for c in word) or (word[0].isupper() and not starts_sentence) or \
                (len(word) > 1 and word.isupper()):
            latin.append(word)
    quoted = [q.strip() for q in _QUOTED.findall(plain) if q.strip()]
    return {"numbers": list(numbers(plain)), "latin": latin, "names": _names(plain), "quoted": quoted}


def _compact(text: str) -> str:
    return re.sub(r"\s+", "", normalise(text))


def _holds(window: str, words: list[str], values: list[set[float]]) -> bool:
    """True when `window` has every word (spacing ignored) and one of the values of each number."""
    compact = _compact(window)
    found = set().union(*numbers(window).values()) if values else set()
    return all(w in compact for w in words) and all(v & found for v in values)


def split_sentences(answer: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of an answer; citation markers after a full stop stay with it."""
    out, start = [], 0
    for m in _END.finditer(answer):
        if answer[start:m.end()].strip():
            out.append((start, m.end()))
        start = m.end()
    if answer[start:].strip():
        out.append((start, len(answer)))
    # a list number ("1.") belongs to the item after it
    merged: list[tuple[int, int]] = []
    for a, b in out:
        if merged and re.fullmatch(r"\s*\d{1,2}[.)、]\s*", answer[merged[-1][0]:merged[-1][1]]):
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    # leading/trailing whitespace is not part of a sentence
    trimmed = []
    for a, b in merged:
        piece = answer[a:b]
        a2 = a + len(piece) - len(piece.lstrip())
        b2 = b - (len(piece) - len(piece.rstrip()))
        if b2 > a2:
            trimmed.append((a2, b2))
    return trimmed


def _content_terms(text: str) -> set[str]:
    return {t for t in terms(_CITE.sub("", text)) if t not in STOPWORDS and len(t) > 1}


class Checker:
    """Checks answers against their sources with one embedder (vectors of source text are cached)."""

    def __init__(self, embedder, cosine_min: float = COSINE_MIN, overlap_min: float = OVERLAP_MIN) -> None:
        self.embedder, self.cosine_min, self.overlap_min = embedder, cosine_min, overlap_min
        self._windows: dict[tuple, tuple[list[tuple[int, int]], np.ndarray]] = {}

    def _source_windows(self, src) -> tuple[list[tuple[int, int]], np.ndarray]:
        """Sentences and pairs of adjacent sentences of a source, with their vectors."""
        key = (src.doc_id, src.page, src.start, src.end)
        if key not in self._windows:
            spans = source_sentences(src.text) or [(0, len(src.text))]
            windows = spans + [(spans[i][0], spans[i + 1][1]) for i in range(len(spans) - 1)]
            vecs = self.embedder.embed_symmetric([src.text[a:b].strip() for a, b in windows])
            self._windows[key] = (windows, vecs)
        return self._windows[key]

    def check(self, answer: str, sources: Sequence, lang: str | None = None,
              question: str = "") -> list[SentenceCheck]:
        """Each sentence of `answer` checked against the `sources` it cites (numbered 1..n).

        A short sentence ("13亿[1]") says little on its own: it is read together with `question`,
        and the question's names must then occur in the same source window as the answer's.
        """
        lang = lang or language(answer)
        by_number = {s.number: s for s in sources}
        spans = split_sentences(answer)
        plain = [_LIST_NUMBER.sub("", _CITE.sub("", answer[a:b]).strip()) for a, b in spans]
        question = question.strip()
        asked = key_tokens(question) if question else {"latin": [], "names": []}
        context = (question, asked["latin"] + asked["names"])
        plain = [f"{question} {p}" if question and len(_content_terms(p)) < SHORT_TERMS else p for p in plain]
        claims = [i for i, p in enumerate(plain) if _content_terms(p) or key_tokens(p)["numbers"]]
        vecs = self.embedder.embed_symmetric([plain[i] for i in claims]) if claims else None
        out = []
        for (a, b), text in zip(spans, plain):
            cited = [n for n in cited_numbers(answer[a:b]) if n in by_number]
            if len(out) not in claims:
                out.append(SentenceCheck(a, b, answer[a:b], cited, "skipped"))
                continue
            vec = vecs[claims.index(len(out))]
            out.append(self._check_one(a, b, answer[a:b], text, vec, cited, by_number, lang, context))
        return out

    def _check_one(self, a, b, raw, text, vec, cited, by_number, lang, context) -> SentenceCheck:
        pool = [by_number[n] for n in cited] or list(by_number.values())
        reasons = REASONS[lang]
        label = ", ".join(str(s.number) for s in pool)
        if not pool:
            return SentenceCheck(a, b, raw, cited, "unsupported", reasons["cites_none"])
        keys = key_tokens(text)
        haystack = normalise("\n".join(s.text for s in pool))
        compact = re.sub(r"\s+", "", haystack)
        values = set().union(*numbers(haystack).values()) if numbers(haystack) else set()
        latin_words = set(re.findall(r"[a-z0-9][a-z0-9\-+.]*", haystack))
        same_language = any(language(s.text) == language(text) for s in pool)
        missing = [n for n, vals in numbers(text).items() if not vals & values]
        missing += [w for w in keys["latin"] if w.lower() not in latin_words and w.lower() not in compact]
        if same_language:  # a translated name cannot be found verbatim in the other language
            missing += [w for w in keys["names"] + keys["quoted"] if re.sub(r"\s+", "", normalise(w)) not in compact]
        question, question_keys = context
        short = bool(question) and text.startswith(question)
        said = text[len(question):].strip() if short else text
        if short:  # the question's names must stand beside the answer's numbers and names
            together = [_compact(k) for k in question_keys + key_tokens(said)["latin"]]
            wanted = [vals for vals in numbers(said).values()]
        quote = _compact(said)
        best = None
        words = _content_terms(text)
        for src in pool:
            windows, wvecs = self._source_windows(src)
            cos = wvecs @ vec
            for j, (wa, wb) in enumerate(windows):
                if short and not _holds(src.text[wa:wb], together, wanted):
                    continue
                window_terms = set(terms(src.text[wa:wb]))
                overlap = len(words & window_terms) / len(words) if words else 0.0
                # said word for word (spacing and width aside): as close as a sentence can be
                verbatim = len(quote) >= 2 and quote in _compact(src.text[wa:wb])
                score = (verbatim, max(float(cos[j]) - self.cosine_min, overlap - self.overlap_min))
                if best is None or score > best[0]:
                    best = (score, src, wa, wb, float(cos[j]), overlap)
        if best is None:  # no window holds the question's subject and the answer together
            return SentenceCheck(a, b, raw, cited, "unsupported", reasons["far"].format(src=label))
        (verbatim, _), src, wa, wb, cos, overlap = best
        piece = src.text[wa:wb]
        wa += len(piece) - len(piece.lstrip())
        wb -= len(piece) - len(piece.rstrip())
        support = Support(src.number, src.doc_id, src.name, src.path, src.page, src.start + wa, src.start + wb,
                          src.text[wa:wb])
        # a short answer whose numbers and names stand in one window with the question's subject
        # is backed by that window; anything else must also read like it
        keyed = short and bool(together or wanted) and bool(numbers(said) or key_tokens(said)["latin"])
        close = verbatim or keyed or cos >= self.cosine_min or overlap >= self.overlap_min or (
            cos >= self.cosine_min - COSINE_WITH_TERMS and overlap >= self.overlap_min / 2)
        if missing:
            reason = reasons["missing"].format(src=label, tokens="、".join(dict.fromkeys(missing)))
        elif not close:
            reason = reasons["far"].format(src=label)
        else:
            reason = ""
        return SentenceCheck(a, b, raw, cited, "unsupported" if reason else "supported", reason,
                             list(dict.fromkeys(missing)), support, round(cos, 4), round(overlap, 4))


def cited_numbers(text: str) -> list[int]:
    """Source numbers cited in a text, in order of first citation: [1], [1, 2], 【3】."""
    out: list[int] = []
    for group in _CITE.findall(text):
        for n in re.split(r"\s*[,，、]\s*", group):
            if n.isdigit() and int(n) not in out:
                out.append(int(n))
    return out


def summary(checks: Sequence[SentenceCheck]) -> tuple[int, int]:
    """(unsupported sentences, checked sentences)."""
    checked = [c for c in checks if c.status != "skipped"]
    return sum(c.status == "unsupported" for c in checked), len(checked)
