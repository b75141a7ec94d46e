"""Whether a question leans on the conversation before it, or stands on its own.

Searching every follow-up together with the question before it drags an unrelated question
towards the previous topic ("GPT-3有多少参数？" after a CLIP question cited a Vicuna passage). So
only a question that refers back — a pronoun or demonstrative with nothing in the question for it
to point at ("它用了多少数据？", "When was it released?"), or an elliptic "那GPT-4呢？" / "what about
X?" — is searched and answered with what came before; bench/answers.py measures both kinds.
"""

from __future__ import annotations

import re

from kb.text.lexical import STOPWORDS, terms

# Words that point back at something said before ("that" is left out: mostly a relative pronoun). Chinese demonstratives count only as a
# determiner or subject (这个/那个/该/此/其 + noun, 它/他/她), not inside words like 这样/那么.
_ZH_REFERS = re.compile(r"它们?|他们?|她们?|其[中他余]?|该|此[外时]?(?![外时])|这[个些种款位项部本篇]?|那[个些种款位项部本篇]?"
                        r"|上述|前者|后者|上面|刚才|之前提到")
_ZH_NOT_REFERS = re.compile(r"这样|那样|这么|那么|这里|那里|那就|其实|其他|其余|其中")
_ZH_ELLIPSIS = re.compile(r"^(那|那么|还有|另外|而)?.{0,12}呢[？?]?$")
_EN_REFERS = re.compile(r"\b(it|its|they|them|their|theirs|this|these|those|he|him|his|she|her|"
                        r"the former|the latter|the same|above)\b", re.I)
_EN_ELLIPSIS = re.compile(r"^\s*(and|what about|how about|and what about)\b", re.I)
# A question with this many content words of its own names its subject itself.
SELF_CONTAINED_TERMS = 4


def _content_words(question: str) -> list[str]:
    return [t for t in terms(question) if t not in STOPWORDS and len(t) > 1]


def refers_back(question: str) -> bool:
    """True when `question` cannot be understood without the conversation before it."""
    q = question.strip()
    if not q:
        return False
    if _ZH_ELLIPSIS.match(q) or _EN_ELLIPSIS.match(q):
        return True
    zh = _ZH_NOT_REFERS.sub("", q)
    pointer = _ZH_REFERS.search(zh) or _EN_REFERS.search(q)
    if not pointer:
        return False
    # "what is its capital" refers back; "When did Tesla move his lab to Colorado Springs" names
    # its subject (a capitalised name, or several content words before the pronoun)
    before = q[:pointer.start()]
    if re.search(r"\b[A-Z][a-z]+\b", before[1:]) or re.search(r"[《“\"「].+[》”\"」]", before):
        return False
    return len(_content_words(before)) < SELF_CONTAINED_TERMS - 1 or len(_content_words(q)) < SELF_CONTAINED_TERMS
