"""A pull as it lies in the store, read back: its ``manifest.json`` loaded and checked
(``load_backup``), its tar segments fed to a ``TarParser``; and the finding and report types
that the store check (``teardown.adapters.store_check``), the restore over SSH
(``teardown.adapters.ssh.restore``) and the sandbox CBR restore (``teardown.sandbox.restore``)
share.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teardown.adapters.ssh.tarstream import Member, TarParser
from teardown.adapters.store import PullDir
from teardown.core.errors import InputError
from teardown.core.paths import bad_name

READ = 4 << 20
"""Segment read size."""


@dataclass
class Problem:
    path: str
    """The file (or segment, or directory) concerned."""
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


@dataclass
class RestoreReport:
    source: str
    destination: str
    """``user@host:port:/dest`` for SSH restores, a local path for CBR restores."""
    ok: bool
    files: int
    """Files restored whose checksum matched."""
    expected: int
    total_bytes: int
    verified_with: str
    dirs: int = 0
    symlinks: int = 0
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class FileEntry:
    """One file of the manifest."""

    path: str
    size: int
    sha256: str
    segment: int


@dataclass
class Backup:
    """A pull's manifest, loaded and checked."""

    pd: PullDir
    manifest: dict[str, Any]
    files: list[FileEntry]
    dirs: list[str]
    symlinks: dict[str, str]
    segments: dict[int, int | None]
    """Segment number -> size recorded in the manifest (None: not listed)."""
    paths: list[str]

    def files_by_segment(self) -> dict[int, dict[str, FileEntry]]:
        """Segment number -> path -> file, for the segments that hold files."""
        by_segment: dict[int, dict[str, FileEntry]] = {}
        for f in self.files:
            by_segment.setdefault(f.segment, {})[f.path] = f
        return by_segment


def _locate(path: Path) -> tuple[Path, Path]:
    """(the pull directory, its manifest.json) for ``path``, either of the two."""
    if path.is_dir():
        return path, path / "manifest.json"
    if path.name == "manifest.json":
        return path.parent, path
    if path.exists():
        raise InputError(str(path), "not a backup directory or its manifest.json")
    raise InputError(str(path), "no such backup")


def _read_manifest(source: str, manifest_path: Path) -> dict[str, Any]:
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(
            source, "no manifest.json (the pull did not finish or was not verified)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(source, f"manifest.json is unreadable: {e}") from None
    if not isinstance(data, dict):
        raise InputError(source, "manifest.json is not an object")
    return data


def load_backup(path: Path) -> Backup:
    """The pull at ``path`` (its directory or its ``manifest.json``); InputError if unusable."""
    source = str(path)
    directory, manifest_path = _locate(path)
    data = _read_manifest(source, manifest_path)
    try:
        files = [
            FileEntry(str(f["path"]), int(f["size"]), str(f["sha256"]), int(f["segment"]))
            for f in data["files"]
        ]
        dirs = [str(d["path"]) for d in data.get("dirs", [])]
        symlinks = {str(s["path"]): str(s["target"]) for s in data.get("symlinks", [])}
        listed: dict[int, int | None] = {}
        for s in data.get("segments", []):
            name = str(s["name"])
            if not re.fullmatch(r"\d+\.tar", name):
                raise ValueError(f"bad segment name {name!r}")
            listed[int(name[:-4])] = int(s["size"])
        paths = [str(p) for p in data.get("paths", [])]
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise InputError(source, f"manifest.json is malformed: {type(e).__name__}: {e}") from None
    for name in [f.path for f in files] + dirs + list(symlinks):
        why = bad_name(name)
        if why:
            raise InputError(source, f"manifest.json names {name[:200]!r}: {why}")
    for f in files:
        listed.setdefault(f.segment, None)
    pd = PullDir(directory.parent, directory.name)
    return Backup(pd, data, files, dirs, symlinks, listed, paths)


def member_path(m: Member) -> str | None:
    """The absolute path a stored member stands for (segments hold relative names)."""
    if m.name.startswith("/"):
        return None
    return "/" + m.name.rstrip("/")


def feed_segment(path: Path, parser: TarParser) -> None:
    """Read the segment at ``path`` through ``parser``; TarError or OSError if it is bad."""
    with open(path, "rb") as f:
        while chunk := f.read(READ):
            parser.feed(chunk)
    parser.close()
