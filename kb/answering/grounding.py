"""Checking an answer sentence by sentence against the sources it cites, as claims about the question.

A small model's wrong answers are mostly right-looking sentences with one wrong number, date or
name — over documents that all discuss the question's topic, usually a value the page gives for
something else — or sentences no source says at all. So each sentence is held to three tests
against its cited sources (all sources when it cites none, or when the one it cites does not say
it but another does): every value in it occurs there (kb.answering.values: numbers by value across scripts
and units, dates, names, quoted terms); each value stands in one source window beside the
question's subject (kb.answering.claims); and one source sentence (or two adjacent ones) says much the same
— by the embedder's cosine (a lower bar across languages) or by the share of its jieba terms. A
bare answer ("308分[1]") is read as the question's subject plus its value. Why the thresholds are
what they are: bench/README.md ("Sentence checking", "Look-alike documents").
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from kb.answering.claims import (ANCHOR_MIN, IDENTIFIER, Asked, anchor, claim_values, lead_of, may_anchor,
                                 subject_terms, swapped_subject, window_keys)
from kb.answering.evidence import sentences as source_sentences
from kb.text.lexical import STOPWORDS, terms
from kb.text.language import language
from kb.answering.values import YEAR, compact as _compact, key_tokens, named, normalise, numbers

# A sentence is close to a source window when the embedder's cosine (e5-small, query prefix on
# both sides) reaches COSINE_MIN or when this share of its content terms occur in the window.
# Measured (bench/answers.py, CMRC tuning questions): correct answer sentences 0.88-0.97 with
# their source sentence, unrelated sentences of the same KB 0.78-0.86.
COSINE_MIN = 0.93
OVERLAP_MIN = 0.6
# ... or a cosine this much lower with half the term share.
COSINE_WITH_TERMS = 0.03
# ... but a same-language pass by cosine alone needs this share of terms too: "CLIP 是一种循环神经网络，
# 主要用于语音识别" shares 1 of 10 terms with the CLIP sentence it contradicts yet scores 0.9314 with the
# int8 e5 (float 0.9265; the two differ by sd 0.003 on 467 CMRC pairs). 0.15-0.3 changed no verdict
# of the 1,258 saved look-alike answers.
TERMS_WITH_COSINE = 0.2
# Across languages the cosine runs lower: an English sentence and its Chinese translation score
# 0.82-0.86 (5th-50th percentile), against 0.80-0.85 for the closest sentence of another passage of
# the same article (50th-99th). 0.84 keeps 81% of translations and lets 4.6% of those others pass
# (0.85: 70% / 0.9%; 40 XQuAD passages, en sentences against zh; the same-language 0.93 keeps none).
CROSS_COSINE_MIN = 0.84
# Across languages a value's window is taken as about the question's subject when it is among the
# CROSS_RANK windows of the cited sources closest to the question in meaning (no shared words to count).
CROSS_RANK = 3
# A sentence with fewer content terms than this is checked together with the question.
SHORT_TERMS = 4
_CITE = re.compile(r"\s*[\[【](\d+(?:\s*[,，、]\s*\d+)*)[\]】]")
_END = re.compile(r"(?:[。！？!?；;]|\.(?=\s|$))(?:\s*[\[【]\d+(?:\s*[,，、]\s*\d+)*[\]】])*|\n+")
_LIST_NUMBER = re.compile(r"^(\d{1,2}[.)、](?!\d)|[-*•])\s*")  # "1. ", not "14.2光年"
_POINTER = re.compile(r"((this|it|that|which)\s+(is|was|can be)\s+(stated|mentioned|said|described|explained|found|"
                      r"shown|given)\s+in\s+(the\s+)?(source|document|text|passage)?s?\s*(on\s+page\s+\d+)?"
                      r"|(详见|参见|见|参考)?(资料|文档|来源)\s*(第\s*\d+\s*页)?(中)?(有)?(说明|提到|所述)?)[\s.。]*", re.I)


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
           "elsewhere": "资料[{src}]中的“{value}”说的是“{where}”，不是“{subject}”",
           "apart": "资料[{src}]中这些值不在同一处", "unnamed": "资料[{src}]没有提到“{name}”",
           "swapped": "这句说的是“{other}”，问题问的是“{name}”", "echo": "这句只是重复了问题，没有回答",
           "cites_none": "没有可用的资料"},
    "en": {"missing": "“{tokens}” does not occur in source {src}", "far": "no sentence of source {src} says this",
           "elsewhere": "source [{src}] gives “{value}” for “{where}”, not for “{subject}”",
           "apart": "source {src} does not give these values together",
           "unnamed": "source {src} never mentions “{name}”",
           "swapped": "this sentence is about “{other}”, the question about “{name}”",
           "echo": "this sentence only repeats the question",
           "cites_none": "no source to check against"},
}


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

    def __init__(self, embedder, cosine_min: float = COSINE_MIN, overlap_min: float = OVERLAP_MIN,
                 anchor_min: float = ANCHOR_MIN) -> None:
        self.embedder, self.cosine_min, self.overlap_min = embedder, cosine_min, overlap_min
        self.anchor_min = anchor_min
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
        """Each sentence of `answer` checked against the `sources` it cites (numbered 1..n), as
        the claim it makes about `question`: its values must stand beside the question's subject
        (kb.answering.claims), and a short sentence ("13亿[1]") is read as the question's subject plus it.
        """
        lang = lang or language(answer)
        by_number = {s.number: s for s in sources}
        spans = split_sentences(answer)
        said = [_LIST_NUMBER.sub("", _CITE.sub("", answer[a:b]).strip()) for a, b in spans]
        question = question.strip()
        asked = Asked(question, subject_terms(question) if question else [], key_tokens(question) if question else
                      {"numbers": [], "latin": [], "names": [], "quoted": []},
                      set().union(*numbers(question).values()) if question and numbers(question) else set(),
                      language(question) if question else lang)
        plain = [f"{question} {p}" if question and len(_content_terms(p)) < SHORT_TERMS else p for p in said]
        claims = [i for i, p in enumerate(plain) if (_content_terms(p) or key_tokens(p)["numbers"])
                  and not _POINTER.fullmatch(said[i].strip())]
        texts = [plain[i] for i in claims] + ([question] if question and claims else [])
        vecs = self.embedder.embed_symmetric(texts) if claims else None
        asked.vector = vecs[-1] if question and claims else None
        asked.number_values = list(numbers(question).values()) if question else []
        out = []
        for (a, b), text, bare in zip(spans, plain, said):
            cited = [n for n in cited_numbers(answer[a:b]) if n in by_number]
            if len(out) not in claims:
                out.append(SentenceCheck(a, b, answer[a:b], cited, "skipped"))
                continue
            vec = vecs[claims.index(len(out))]
            check = self._check_one(a, b, answer[a:b], text, bare, vec, cited, by_number, lang, asked)
            if check.status == "unsupported" and cited and len(cited) < len(by_number):
                # cited the wrong source: backed by another one of this answer's, it holds, and
                # its support (what a click opens) is the passage that says it
                anywhere = self._check_one(a, b, answer[a:b], text, bare, vec, [], by_number, lang, asked)
                if anywhere.status == "supported":
                    check = dataclasses.replace(anywhere, cited=cited)
            out.append(check)
        return out

    @staticmethod
    def _about(src, wa: int, wb: int, asked: "Asked", value: str = "") -> float:
        """How far window [wa, wb) of `src` is about the question: the share of its subject there
        (kb.answering.claims.anchor; a name may stand in the source's lead instead), but 0 when a name or
        year the question writes is missing and the window names another in its place (上海 vs
        北京 decides which show opened on 4月25日; 2018 vs 2017 which year's)."""
        window, heading = src.text[wa:wb], lead_of(src)
        asked_compact = _compact(asked.text)
        kinds = dict(named(asked.text))
        missing = {kinds.get(k, "latin"): _compact(asked.text).split(_compact(k), 1)[1][:2]
                   for k in asked.keys["latin"] + asked.keys["names"]
                   if not _mentions(window, k) and not _mentions(heading, k)}
        if missing:  # another name of the same kind stands where the question's is missing, before the
            # same words ("2018年北京车展" where "2018年上海车展" was asked)
            others = list(named(window)) + [(w, "latin") for w in window_keys(window)["latin"]
                                            if not _mentions(asked.text, w)]
            window_compact = _compact(window)
            if any(kind in missing and _compact(w) not in asked_compact and _compact(w) not in _compact(value)
                   and len(missing[kind]) == 2 and _compact(w) + missing[kind] in window_compact
                   for w, kind in others):
                return 0.0
        if asked.number_values:
            held = numbers(window)
            if any(not any(vals & v for v in held.values()) for vals in asked.number_values):
                mine = set().union(*numbers(value).values()) if numbers(value) else set()
                if any(YEAR.fullmatch(raw) and not vals & mine for raw, vals in held.items()):
                    return 0.0
        return anchor(window, asked.subject, heading)

    def _windows_of(self, pool) -> list[tuple]:
        """(source, start, end, vector) of every window of the pool's sources."""
        out = []
        for src in pool:
            windows, vecs = self._source_windows(src)
            singles = (len(windows) + 1) // 2
            for j, (wa, wb) in enumerate(windows):
                # a pair of sentences speaks of one subject only when the second refers back to
                # the first ("它", "It"); otherwise it can join one event's name to another's date
                if j < singles:
                    out.append((src, wa, wb, vecs[j], "single"))
                    continue
                out.append((src, wa, wb, vecs[j], windows[j - singles + 1]))
        return out

    def _anchored(self, values: list[tuple[str, object]], windows: list[tuple], asked: "Asked",
                  cross: bool, own: "Asked | None" = None) -> tuple[bool, tuple | None, str]:
        """Whether every value stands in a window beside the question's subject; the window that
        anchors the first value, or the value found only beside another subject."""
        if cross and asked.vector is not None:  # other language: the subject is matched by meaning
            near = sorted((float(w[3] @ asked.vector) for w in windows), reverse=True)
            floor = near[min(CROSS_RANK, len(near)) - 1] if near else 1.0
            score = lambda w: float(w[3] @ asked.vector) - floor + self.anchor_min  # noqa: E731
        else:
            score = None
        if not cross:  # documents that never name the question's subject cannot back a value about it
            everywhere = "\n".join(w[0].text + "\n" + lead_of(w[0]) for w in windows)
            kinds = dict(named(asked.text))
            # people, organisations and Latin names: a place or a translated term ("西区", "新世界") is
            # often written otherwise in the sources
            unnamed = [k for k in asked.keys["latin"] + asked.keys["names"]
                       if kinds.get(k, "latin") in ("latin", "person", "organisation") and not _mentions(everywhere, k)]
            if unnamed:
                return False, None, unnamed[0]
        first = None
        for label, test in values:
            if score is None or not cross:
                # a sentence that says what it is about ("经济学家皮凯蒂……声称1914年至1945年……")
                # anchors its values by its own words as well as by the question's
                score = lambda w, label=label: max(  # noqa: E731
                    self._about(w[0], w[1], w[2], a, label) for a in (asked, own) if a is not None)
            holding = [w for w in windows if may_anchor(w, test, asked, cross)]
            if not holding:
                return False, None, label
            best = max(holding, key=score)
            if score(best) < self.anchor_min:
                return False, best, label
            first = first or best
        return True, first, ""

    def _check_one(self, a, b, raw, text, bare, vec, cited, by_number, lang, asked) -> SentenceCheck:
        pool = [by_number[n] for n in cited] or list(by_number.values())
        reasons = REASONS[lang]
        label = ", ".join(str(s.number) for s in pool)
        if not pool:
            return SentenceCheck(a, b, raw, cited, "unsupported", reasons["cites_none"])
        keys = key_tokens(bare)  # the question's own words are its subject, not this sentence's claim
        haystack = normalise("\n".join(s.text for s in pool))
        compact = re.sub(r"\s+", "", haystack)
        values = set().union(*numbers(haystack).values()) if numbers(haystack) else set()
        latin_words = set(re.findall(r"[a-z0-9][a-z0-9\-+.]*", haystack))
        same_language = any(language(s.text) == language(text) for s in pool)
        # what the question writes is its subject ("unnamed" below), not this sentence's claim
        asked_compact = _compact(asked.text)
        missing = [n for n, vals in numbers(bare).items() if not vals & values and not vals & asked.values]
        missing += [w for w in keys["latin"] if w.lower() not in latin_words and w.lower() not in compact
                    and _compact(w) not in asked_compact and (same_language or IDENTIFIER.search(w))]
        if same_language:  # a translated name cannot be found verbatim in the other language
            missing += [w for w in keys["names"] + keys["quoted"]
                        if _compact(w) not in compact and _compact(w) not in asked_compact]
        windows = self._windows_of(pool)
        claimed = claim_values(bare, asked, same_language)
        cross = not any(language(s.text) == asked.language for s in pool)
        short = bool(asked.text) and text.startswith(asked.text)
        # the sentence's own years count like the question's: "2018年上海车展于4月19日…" is not
        # backed by the 2017 show's sentence
        own = None if short else Asked(bare, subject_terms(bare), key_tokens(bare), set(), language(bare),
                                       number_values=[v for v in numbers(bare).values()])
        anchored, where, stray = self._anchored(claimed, windows, asked, cross, own) if claimed and asked.text \
            else (True, None, "")
        quote = _compact(bare)
        best = None
        words = _content_terms(text)
        for src, wa, wb, wvec, _ in windows:
            window = src.text[wa:wb]
            if short and not cross and not claimed and self._about(src, wa, wb, asked) < self.anchor_min:
                continue  # a short answer without values must come from a window about the subject
            window_terms = set(terms(window))
            overlap = len(words & window_terms) / len(words) if words else 0.0
            # said word for word (spacing and width aside): as close as a sentence can be
            verbatim = len(quote) >= 2 and quote in _compact(window)
            cos = float(wvec @ vec)
            score = (verbatim, max(cos - (self.cosine_min if same_language else CROSS_COSINE_MIN),
                                   overlap - self.overlap_min))
            if best is None or score > best[0]:
                best = (score, src, wa, wb, cos, overlap)
        if claimed and anchored and where is not None and (short or cross):
            src, wa, wb = where[0], where[1], where[2]
            best = ((True, 0.0), src, wa, wb, float(where[3] @ vec), best[5] if best else 0.0)
        if best is None:  # no window holds the question's subject
            return SentenceCheck(a, b, raw, cited, "unsupported", reasons["far"].format(src=label))
        (verbatim, _), src, wa, wb, cos, overlap = best
        support = _support(src, wa, wb)
        cos_min = self.cosine_min if same_language else CROSS_COSINE_MIN
        terms_floor = TERMS_WITH_COSINE if same_language else 0.0
        close = verbatim or (cos >= cos_min and overlap >= terms_floor) or overlap >= self.overlap_min or (
            cos >= cos_min - COSINE_WITH_TERMS and overlap >= self.overlap_min / 2)
        swapped = swapped_subject(bare, asked) if not short and same_language else None
        # a sentence that only says the question's own words back ("X公司是X公司。") answers nothing
        echo = (not short and not claimed and asked.text and bool(_content_terms(bare))
                and _content_terms(bare) <= _content_terms(asked.text))
        if echo:
            reason = reasons["echo"]
        elif missing:
            reason = reasons["missing"].format(src=label, tokens="、".join(dict.fromkeys(missing)))
        elif swapped:
            reason = reasons["swapped"].format(other=swapped[0], name=swapped[1])
        elif not anchored and where is not None:
            reason = reasons["elsewhere"].format(src=where[0].number, value=stray,
                                                 where=_snippet(where[0].text[where[1]:where[2]]),
                                                 subject=_snippet(asked.text))
        elif not anchored and stray and stray not in bare:
            reason = reasons["unnamed"].format(src=label, name=stray)
        elif not anchored:
            reason = reasons["apart"].format(src=label)
        elif not close:
            reason = reasons["far"].format(src=label)
        else:
            reason = ""
        return SentenceCheck(a, b, raw, cited, "unsupported" if reason else "supported", reason,
                             list(dict.fromkeys(missing)), support, round(cos, 4), round(overlap, 4))


def _support(src, wa: int, wb: int) -> Support:
    piece = src.text[wa:wb]
    wa += len(piece) - len(piece.lstrip())
    wb -= len(piece) - len(piece.rstrip())
    return Support(src.number, src.doc_id, src.name, src.path, src.page, src.start + wa, src.start + wb,
                   src.text[wa:wb])


def _snippet(text: str, limit: int = 40) -> str:
    text = " ".join(_CITE.sub("", text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _mentions(text: str, name: str) -> bool:
    """Whether `text` names `name`: verbatim (spacing and width aside), or for a Latin name any word
    sharing its first four letters ("Scotland" ~ "Scottish", "Huguenots" ~ "Huguenot")."""
    if _compact(name) in _compact(text):
        return True
    if name.isascii() and len(name) >= 5:  # and one letter off: "ARPNET" asked, "ARPANET" written
        stem, low = name[:4].lower(), name.lower()
        return any(w.startswith(stem) or (abs(len(w) - len(low)) <= 1 and
                                           difflib.SequenceMatcher(None, w, low).ratio() >= 0.85)
                   for w in set(re.findall(r"[a-z][a-z0-9\-]+", normalise(text))))
    return False


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
