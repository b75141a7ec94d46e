"""The values a sentence can claim — numbers, dates, Latin and Chinese names, quoted terms — in
the form both sides of a check compare in: a number by every value it may stand for, across
scripts and units (1750亿 = 175B = 175 billion; 四次 = four), a name spacing and width aside."""

from __future__ import annotations

import functools
import re
import unicodedata

from kb.text.lexical import STOPWORDS

_CITE = re.compile(r"\s*[\[【](\d+(?:\s*[,，、]\s*\d+)*)[\]】]")
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_BIG = {"万": 1e4, "亿": 1e8, "thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12,
        "k": 1e3, "m": 1e6, "b": 1e9, "bn": 1e9}
# "175B" and "1750亿" and "175 billion" are one value: a number is compared by every value it may
# stand for, across scripts and units
_NUMBER = re.compile(r"(?<![a-z\d.\-])(\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百千]+)\s*"
                     r"(万亿|亿|万|thousand|million|billion|trillion|(?<=\d)(?:bn|[kmb])(?![a-z]))?"
                     r"(?=(年|岁|届|倍|次|个|名|位|人|天|场|座|项|种|所|家|只|支|条|本|部|张|件|台|辆|艘|架|门|间|层|首|篇|期|轮|%|)?)",
                     re.I)
_WORD_NUMBERS = {w: float(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())}
_WORD_NUMBER = re.compile(r"\b(" + "|".join(_WORD_NUMBERS) + r")\b", re.I)
_LATIN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z][A-Za-z0-9\-+]*(?:\.[A-Za-z0-9]+)*")
MONTHS = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
DATE = re.compile(r"(?:\d{2,4}\s*年\s*)?\d{1,2}\s*月(?:\s*\d{1,2}\s*[日号])?|\d{2,4}\s*年"
                   r"|\b" + MONTHS + r"\s+\d{1,2}(?:st|nd|rd|th)?(?:,?\s+\d{4})?\b|\b\d{1,2}\s+" + MONTHS
                   + r"(?:\s+\d{4})?\b", re.I)
# A sentence that only points at a source ("This is stated in [1] on page 1.", "详见资料第2页。")
YEAR = re.compile(r"(1[5-9]|20)\d\d\s*年?")
_QUOTED = re.compile(r"[“\"「『《]([^”\"」』》\n]{1,40})[”\"」』》]")
_NAME_KINDS = {"nr": "person", "nrfg": "person", "nrt": "person", "ns": "place", "nt": "organisation",
               "nz": "other"}
_posseg = None


def normalise(text: str) -> str:
    """NFKC, lowercase, digits joined across thousands separators: the form both sides compare in."""
    text = _FRACTION.sub(lambda m: (m.group(1) or "0") + _FRACTIONS[m.group(2)], text)  # 5½ -> 5.5, not 51⁄2
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"(?<=\d)[,，](?=\d{3})", "", text)


_FRACTIONS = {"½": ".5", "¼": ".25", "¾": ".75", "⅓": ".33", "⅔": ".67", "⅛": ".125"}
_FRACTION = re.compile(r"(\d*)\s*([" + "".join(_FRACTIONS) + "])")


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
    for m in _WORD_NUMBER.finditer(normalise(text)):  # "four" = 四 = 4, across languages
        if m.group(1) not in ("one", "zero"):  # "one of", "zero-shot": words, not counts
            out[m.group(0)] = {_WORD_NUMBERS[m.group(1)]}
    return out


def _names(sentence: str) -> list[str]:
    return [word for word, _ in named(sentence)]


@functools.lru_cache(maxsize=8192)
def named(sentence: str) -> tuple[tuple[str, str], ...]:
    """Chinese proper names in `sentence` with their kind: person, place, organisation or other."""
    global _posseg
    if _posseg is None:
        from kb.text.lexical import _jieba

        _jieba()
        import jieba.posseg as posseg

        _posseg = posseg
    return tuple((w.word, _NAME_KINDS[w.flag]) for w in _posseg.cut(sentence) if w.flag in _NAME_KINDS
                 and len(w.word) >= 2 and re.fullmatch(r"[\u3400-\u9fff]+", w.word))


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


def compact(text: str) -> str:
    """The text normalised, without whitespace: how names and quotes are looked for."""
    return re.sub(r"\s+", "", normalise(text))


