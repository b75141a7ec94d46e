"""Which reading of a PDF page to believe: pypdf's, PDFium's, or the symbol soup decoded as GBK.

pypdf reads most files right, and silently wrong in three ways found in real Chinese PDFs: a
TrueType font named in GBK ("宋体") without a ToUnicode map comes out as Latin-1 symbol soup
("¹ØÓÚºì¾ü" for 关于红军); runs drawn right to left come out reversed ("：现金流量表（单位：百万元）
22表"); unexpected scripts (Greek, IPA) stand in for Japanese. Such text is never found by a search,
and nobody sees why. So each page's text is scored for how implausible it is, and a suspect page
is read again with PDFium and with pypdf's layout mode (runs placed by position); a page that is
still symbol soup is tried as GBK bytes. The least implausible reading wins; among equally
plausible ones the one with the most characters, because PDFium drops characters of a font it cannot
find on the system (without a CJK font installed, the run "表" at the start of "表22：现金流量表" had
no glyph box and vanished from its text), then the first (pypdf's).
"""

from __future__ import annotations

import re

# Characters that real Chinese or English text almost never consists of: Latin-1 symbols and
# accented capitals (GBK bytes read as Latin-1), IPA and Greek/Coptic letters standing in for CJK,
# private-use code points and U+FFFD (unmapped glyphs), C0/C1 controls.
_ODD = re.compile("[\u0080-\u00bf\u00c0-\u00ff\u0250-\u02ff\u0370-\u03ff\u2c80-\u2cff"
                  "\ue000-\uf8ff\ufffd\x00-\x08\x0b\x0e-\x1f\u0080-\u009f]")
# A line cannot begin with closing punctuation in Chinese typesetting; a reading whose lines do
# has its runs in the wrong order.
_CLOSER_FIRST = re.compile(r"^\s*[：，。、；！？）」』】》%]", re.M)
SUSPECT = 0.2  # share of odd characters above which a page is read again (mojibake pages: > 0.6)


def oddness(text: str) -> float:
    """How implausible `text` is as Chinese or English: odd characters per character, plus the
    share of lines that begin with closing punctuation."""
    chars = "".join(text.split())
    if not chars:
        return 0.0
    lines = [line for line in text.splitlines() if line.strip()]
    return len(_ODD.findall(chars)) / len(chars) + len(_CLOSER_FIRST.findall(text)) / max(len(lines), 1)


def suspect(text: str) -> bool:
    """True when a page's text looks misread and another reading is worth trying."""
    return oddness(text) > SUSPECT or _CLOSER_FIRST.search(text) is not None


def as_gbk(text: str) -> str | None:
    """Symbol soup decoded as the GBK bytes it most likely was ("¹ØÓÚ" -> "关于"), or None."""
    for single_byte in ("cp1252", "latin-1", "mac-roman"):
        try:
            raw = text.encode(single_byte)
        except UnicodeEncodeError:
            continue
        try:
            return raw.decode("gb18030")
        except UnicodeDecodeError:
            continue
    return None


def best(readings: list[tuple[str, str]]) -> tuple[str, str]:
    """The least implausible (extractor, text) among non-empty readings; on a tie the one with the
    most characters, then the first."""
    usable = [r for r in readings if r[1].strip()] or readings[:1]
    return min(usable, key=lambda r: (oddness(r[1]), -len("".join(r[1].split()))))
