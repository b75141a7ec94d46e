"""File names that are not valid UTF-8: kept exact on disk and in the database, shown readably.

Archives unpacked from Chinese Windows machines keep GBK-encoded names; Python hands them over as
str with lone surrogates (os.fsdecode's "surrogateescape"), which SQLite, terminals and Qt all
refuse. The path itself must stay exact (it is how the file is opened again), so in the database
each escaped byte U+DC80–U+DCFF is stored as U+10FF80–U+10FFFF, the end of a private-use plane no
file name uses, and mapped back when read (kb.storage.sqlite.store). What people see is `readable(path)`: the
bytes decoded as GB18030 when they are valid GB18030, escaped as \\xNN otherwise.
"""

from __future__ import annotations

import os
import re

_ESCAPED = re.compile("[\udc80-\udcff]")
_STORED = re.compile("[\U0010ff80-\U0010ffff]")
_SHIFT = 0x10FF80 - 0xDC80
STORED_MARK = b"\xf4\x8f\xbe"  # UTF-8 lead bytes of U+10FF80–U+10FFBF
STORED_MARK_2 = b"\xf4\x8f\xbf"  # and of U+10FFC0–U+10FFFF


def has_escapes(text: str) -> bool:
    """True when `text` holds bytes that were not valid UTF-8 (os.fsdecode's lone surrogates)."""
    return _ESCAPED.search(text) is not None


def to_stored(text: str) -> str:
    """`text` with its escaped bytes moved to the private-use code points SQLite can hold."""
    return _ESCAPED.sub(lambda m: chr(ord(m.group()) + _SHIFT), text)


def from_stored(text: str) -> str:
    """The exact path back from what `to_stored` wrote."""
    return _STORED.sub(lambda m: chr(ord(m.group()) - _SHIFT), text)


def decode_stored(raw: bytes) -> str:
    """SQLite text_factory: UTF-8, with stored escapes turned back into the exact path."""
    text = raw.decode("utf-8")
    return from_stored(text) if STORED_MARK in raw or STORED_MARK_2 in raw else text


def readable(path: str) -> str:
    """`path` for people: names in another encoding decoded as GB18030, other bad bytes as \\xNN."""
    if not has_escapes(path):
        return path
    return "/".join(_readable_part(part) for part in path.split("/"))


def _readable_part(part: str) -> str:
    # one name at a time: the folders above it are usually valid UTF-8 and must stay as they are
    if not has_escapes(part):
        return part
    raw = os.fsencode(part)
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace")
