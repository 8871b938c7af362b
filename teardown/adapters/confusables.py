"""Look-alike folding for the guards: text as a person would read it. On top of the core's
NFKC fold, every letter of another script that the Unicode confusables data lists as looking
like a Latin one (Cyrillic er U+0440, Greek omicron U+03BF...) becomes that Latin letter, so
``*prod*`` also refuses a name spelled to slip past it. The data is ``confusable_homoglyphs``'
copy of Unicode's ``confusables.txt`` (TR39)."""

from __future__ import annotations

from functools import lru_cache

from confusable_homoglyphs import confusables

from teardown.core.text import fold as basic_fold


@lru_cache(maxsize=4096)
def _latin(char: str) -> str:
    found = confusables.is_confusable(char, greedy=True, preferred_aliases=["latin"])
    for entry in found or []:
        for glyph in entry.get("homoglyphs", []):
            c = str(glyph.get("c", ""))
            if c.isascii() and c.isprintable():
                return c
    return char


def fold(text: str) -> str:
    """``text`` normalised (NFKC, formatting characters removed), look-alikes made Latin, and
    case folded: what a guard compares."""
    base = basic_fold(text)
    if base.isascii():
        return base
    return "".join(_latin(c) if not c.isascii() else c for c in base).casefold()


__all__ = ["fold"]
