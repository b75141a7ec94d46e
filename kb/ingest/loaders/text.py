"""Plain text and Markdown, in whatever encoding Chinese and English users save them."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from kb.text.document import Document, LoadError, Page

_BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
]
_CHINESE = ("gb18030", "big5")
# A 200 MB text without line breaks grew the parser past 2.7 GB (chunking splits it down to single
# characters) and then hit the time limit; a text file past this size is refused with a reason
# instead (32 MB is about ten thousand pages of Chinese).
MAX_TEXT_BYTES = 32 * 2**20
_CJK = re.compile(r"[\u4e00-\u9fff]")
# A long note was one "page 1" of everything: a citation could not say where in the file it was,
# and the viewer opened the whole file. Files are cut into sections that a citation names: at
# Markdown headings (a heading opens a section once the current one has MIN_SECTION characters,
# so a title and its short intro stay together), and any section past SECTION_CHARS (about two
# printed pages of English, one and a half of Chinese) at the paragraph, line or sentence end
# closest before that size.
SECTION_CHARS = 3000
MIN_SECTION = 200
_HEADING = re.compile(r"^ {0,3}#{1,6}\s")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_BREAKS = (re.compile(r"\n\s*\n"), re.compile(r"\n"), re.compile(r"(?<=[。！？.!?;；])\s*"))


def decode(data: bytes) -> tuple[str, str]:
    """Decode bytes, detecting the encoding; returns (text, encoding name)."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(enc, errors="replace"), enc
    if data.count(b"\x00") > len(data) // 8:  # UTF-16 without a BOM: every other byte is NUL
        # (checked before UTF-8, which accepts NULs and would keep them between the letters)
        even_nuls = data[0::2].count(0)
        enc = "utf-16-be" if even_nuls > data[1::2].count(0) else "utf-16-le"
        return data.decode(enc, errors="replace"), enc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    guess = (best.encoding if best else "").replace("_", "-").lower()
    if guess.startswith(("gb", "big5", "cp950", "hz", "utf")):
        enc = "gb18030" if guess.startswith(("gb", "hz")) else guess
        return data.decode(enc, errors="replace"), enc
    # charset-normalizer sometimes takes short Chinese text for Korean or Japanese; our users write
    # Chinese, so a strict Chinese decode full of hanzi wins over a foreign guess
    for enc in _CHINESE:
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if len(_CJK.findall(text)) >= max(1, len(text) // 10):
            return text, enc
    if best is not None:
        return str(best), guess
    return data.decode("utf-8", errors="replace"), "utf-8"


def load(path: Path) -> Document:
    """One page per form-feed separated section (usually one page in all)."""
    size = Path(path).stat().st_size
    if size > MAX_TEXT_BYTES:
        raise LoadError(f"text file too large to index ({size / 2**20:.0f} MB; text files are read up to "
                        f"{MAX_TEXT_BYTES // 2**20} MB): split it into smaller files")
    data = Path(path).read_bytes()
    if b"\x00" in data[:4096] and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE,
                                                       codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        if data.count(b"\x00") < len(data) // 8:
            raise LoadError("binary file, not text")
    text, _enc = decode(data)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    kind = "markdown" if Path(path).suffix.lower() in (".md", ".markdown") else "text"
    parts = text.split("\f") if "\f" in text else (by_headings(text) if kind == "markdown" else [text])
    sections = [piece for part in parts for piece in cut(part) if piece.strip()] or [text]
    return Document(Path(path), kind, [Page(i, s) for i, s in enumerate(sections, start=1)])


def by_headings(text: str) -> list[str]:
    """Markdown split before its headings (not inside code blocks), short openings kept with what follows."""
    sections, current, fenced = [], [], False
    size = 0
    for line in text.splitlines(keepends=True):
        if _FENCE.match(line):
            fenced = not fenced
        if not fenced and _HEADING.match(line) and size >= MIN_SECTION:
            sections.append("".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line.strip())
    sections.append("".join(current))
    return sections


def cut(text: str, limit: int = SECTION_CHARS) -> list[str]:
    """`text` in pieces of at most about `limit` characters, each ending at the latest paragraph,
    line or sentence end that fits (a hard cut only where none is)."""
    pieces = []
    while len(text) > limit:
        end = 0
        for pattern in _BREAKS:
            ends = [m.end() for m in pattern.finditer(text, limit // 3, limit)]
            if ends:
                end = ends[-1]
                break
        end = end or limit
        pieces.append(text[:end])
        text = text[end:]
    if text.strip() or not pieces:
        pieces.append(text)
    return pieces
