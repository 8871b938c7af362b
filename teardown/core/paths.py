"""Path rules for pulled files, in one place: which names are safe to store, which entries lie
under the requested paths, and which are excluded. Pure; used by the planner, the SSH pull, the
store, ``teardown verify`` and ``teardown restore`` alike, so they can never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from fnmatch import fnmatchcase

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BAD_PARTS = frozenset(("..", ".", ""))

PROBE_NAMES = ("a", "data.db", ".hidden", "x y", "0", "UPPER.LOG", "dir.d", "-")
"""Names tried under each requested path to tell whether the excludes leave anything."""


def bad_name(path: str) -> str | None:
    """Why ``path`` may not be stored or restored, or None when it is safe.

    Safe means: absolute, no control character, and no ``..``, ``.`` or empty component (so no
    ``//`` and no trailing ``/``). The root ``/`` itself is the one name with an empty component.

    >>> bad_name("/var/www/index.html") is None
    True
    >>> bad_name("/var/www/../etc/shadow")
    "'..', '.' or an empty component in name"
    """
    if not path.startswith("/"):
        return "not an absolute path"
    if _CONTROL.search(path):
        return "control character in name"
    if path == "/":
        return None
    if not _BAD_PARTS.isdisjoint(path.split("/")[1:]):  # one C loop: 20,000 names a pull
        return "'..', '.' or an empty component in name"
    return None


def root_of(path: str) -> str:
    """A configured path as a root: without trailing slashes (``/`` stays ``/``)."""
    return path.rstrip("/") or "/"


def under(path: str, roots: Iterable[str]) -> bool:
    """Whether ``path`` is one of ``roots`` or lies below one of them."""
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def excluded(path: str, excludes: Iterable[str], roots: tuple[str, ...]) -> bool:
    """Whether an exclude glob drops ``path``: a glob matches a component's name or the full path
    of any component below a root (a requested path itself is never excluded)."""
    excludes = tuple(excludes)
    if not excludes:
        return False
    parts = path.split("/")
    for i in range(2, len(parts) + 1):
        prefix = "/".join(parts[:i])
        if not under(prefix, roots) or prefix in roots:
            continue
        name = parts[i - 1]
        if any(fnmatchcase(name, x) or fnmatchcase(prefix, x) for x in excludes):
            return True
    return False


def excluded_roots(paths: Iterable[str], excludes: Iterable[str]) -> list[str]:
    """The requested paths under which the excludes drop every entry a host could have (tried
    with a set of probe names): a rule with such a path would pull nothing from it."""
    excludes = tuple(excludes)
    roots = tuple(root_of(p) for p in paths)
    if not excludes:
        return []
    return [
        root
        for root in roots
        if all(excluded(root.rstrip("/") + "/" + name, excludes, roots) for name in PROBE_NAMES)
    ]


__all__ = ["bad_name", "excluded", "excluded_roots", "root_of", "under"]
