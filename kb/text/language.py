"""Which language a question is written in: the reply's language, the prompt's, the not-found text's.

Users write Chinese and English, often mixed: a Chinese question full of English terms
("CLIP 的 zero-shot 分类怎么做？") is Chinese.
"""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")


def language(text: str) -> str:
    """'zh' for a Chinese question (even one full of English terms), else 'en'."""
    stripped = text.strip()
    cjk = len(_CJK.findall(stripped))
    if not cjk:
        return "en"
    if _CJK.match(stripped) or any(p in stripped for p in "？。，！；：、"):
        return "zh"
    return "zh" if cjk > len(_LATIN_WORD.findall(stripped)) else "en"
