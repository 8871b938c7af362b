"""The inventory of a pull: what the host has under the requested paths, and which of it may be
stored.

Listed with ``find -H`` (type, mode, size, mtime, link target), or walked over SFTP when the host
refuses exec: a requested path that is itself a symlink is followed (the path the user named is
what they want), symlinks inside it never are. Every name must be absolute, inside a requested
path, free of ``..``, empty components and control characters; special files and symlinks
pointing outside the set are refused and recorded.
"""

from __future__ import annotations

import posixpath
import shlex
from typing import Any

from teardown.adapters.ssh.pull_types import Entry, PullRequest
from teardown.adapters.ssh.remote import run_command, tail
from teardown.core.errors import PermanentError
from teardown.core.paths import bad_name, excluded, root_of, under


def requested_roots(req: PullRequest) -> tuple[str, ...]:
    """The requested paths as roots (no trailing slash); PermanentError for an unsafe one."""
    for p in req.paths:
        why = bad_name(root_of(p))
        if why:
            raise PermanentError(f"configured path {p!r}: {why}")
    return tuple(root_of(p) for p in req.paths)


def classify(
    raw: list[Entry], req: PullRequest, roots: tuple[str, ...]
) -> tuple[list[Entry], list[dict[str, str]]]:
    """Keep the entries that are safe to store; refuse the rest with a reason."""
    entries: list[Entry] = []
    refused: list[dict[str, str]] = []
    for entry in raw:
        path = entry.path
        why = bad_name(path) or (None if under(path, roots) else "outside the requested paths")
        if why:
            refused.append({"path": path[:300], "reason": why})
            continue
        if excluded(path, req.excludes, roots):
            continue
        if entry.kind == "l":
            link = entry.link
            target = posixpath.normpath(
                link if link.startswith("/") else posixpath.join(posixpath.dirname(path), link)
            )
            if not under(target, roots):
                refused.append({"path": path, "reason": f"symlink points outside: {link}"})
                continue
        elif entry.kind not in ("f", "d"):
            refused.append({"path": path, "reason": f"special file (type {entry.kind})"})
            continue
        entries.append(entry)
    return entries, refused


def listing_command(req: PullRequest) -> str:
    """The ``find`` that lists the requested paths (see ``inventory``)."""
    roots = requested_roots(req)
    # -H: a requested path that is a symlink is followed; symlinks below it are not.
    return (
        "find -H " + " ".join(shlex.quote(p) for p in roots) + " -printf '%y %m %s %T@ %p\\0%l\\0'"
    )


def inventory(
    transport: Any, req: PullRequest, answer: tuple[int, bytes, bytes] | None = None
) -> tuple[list[Entry], list[dict[str, str]]]:
    """The host's entries under the requested paths (``find``), and the refused ones. ``answer``:
    the listing command's (status, stdout, stderr) when it ran already."""
    roots = requested_roots(req)
    if answer is None:
        answer = run_command(transport, listing_command(req), req.command_timeout)
    status, out, err = answer
    if status != 0:
        raise PermanentError(f"listing the paths failed on the host: {tail(err)}")
    fields = out.split(b"\0")
    raw: list[Entry] = []
    refused: list[dict[str, str]] = []
    for i in range(0, len(fields) - 1, 2):
        head = fields[i].decode("utf-8", "surrogateescape")
        link = fields[i + 1].decode("utf-8", "surrogateescape")
        try:
            kind, mode, size, mtime, path = head.split(" ", 4)
            raw.append(Entry(path, kind, int(mode, 8), int(size), float(mtime), link))
        except ValueError:
            refused.append({"path": head[:200], "reason": "unreadable listing line"})
    entries, more = classify(raw, req, roots)
    return entries, refused + more


def sftp_inventory(sftp: Any, req: PullRequest) -> tuple[list[Entry], list[dict[str, str]]]:
    """The same inventory, walked over SFTP (for hosts that refuse exec)."""
    import stat as st

    roots = requested_roots(req)
    raw: list[Entry] = []

    def add(path: str, attrs: Any) -> None:
        mode = attrs.st_mode or 0
        kind = (
            "d"
            if st.S_ISDIR(mode)
            else "f"
            if st.S_ISREG(mode)
            else "l"
            if st.S_ISLNK(mode)
            else "o"
        )
        link = sftp.readlink(path) if kind == "l" else ""
        raw.append(
            Entry(
                path,
                kind,
                mode & 0o7777,
                attrs.st_size or 0,
                float(attrs.st_mtime or 0),
                link or "",
            )
        )
        if kind == "d":
            for child in sorted(sftp.listdir_attr(path), key=lambda a: a.filename):
                add(posixpath.join(path, child.filename), child)

    for root in roots:
        add(root, sftp.stat(root))  # a requested path that is a symlink is followed
    return classify(raw, req, roots)
