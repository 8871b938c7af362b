"""Text from a cloud or a host made safe to show: control characters (C0, DEL, C1) and the
Unicode formatting characters that reorder or hide text (bidirectional overrides, zero-width
characters) are written as visible escapes, so a resource name can neither clear a terminal,
move its cursor, nor forge a line of a plan a person reviews. Pure; every renderer uses it."""

from __future__ import annotations

import re
import unicodedata

_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff]"
)


def _escape(m: re.Match[str]) -> str:
    c = m.group(0)
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``text`` with every unsafe character written as ``\\xNN`` or ``\\uNNNN``.

    >>> printable("cache-1\\x1b[2J\\nFAKE")
    'cache-1\\\\x1b[2J\\\\x0aFAKE'
    """
    return _UNSAFE.sub(_escape, str(text))


def fold(text: str) -> str:
    """``text`` as a guard should compare it: NFKC (full-width and compatibility forms become
    their plain letters), formatting characters (zero-width, bidirectional) removed, case
    folded. Look-alike letters of other scripts are folded by the adapters' richer fold."""
    normal = unicodedata.normalize("NFKC", text)
    return "".join(c for c in normal if unicodedata.category(c) != "Cf").casefold()


__all__ = ["fold", "printable"]
