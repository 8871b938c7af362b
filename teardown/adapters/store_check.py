"""Checking a pull in the local store against its manifest: nothing leaves this machine.

``verify_backup(path)``
    Re-hashes every file of a pull (``ROOT/<key>/``, see ``teardown.adapters.store``) by streaming
    each tar segment through ``TarParser`` (nothing is extracted) and compares sha256, size and
    count with ``manifest.json``. Each problem names the file (or the segment) it concerns.

``check_backup(path, manifest_sha256)``
    The check before a destroy that relies on the pull: the manifest must be the one recorded,
    then a small store is verified in full and a large one by segment sizes and a rolling sample.

A pull is put back on a host by ``teardown.adapters.ssh.restore``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from teardown.adapters.ssh.tarstream import Member, TarError, TarParser
from teardown.adapters.stored_pull import (
    READ,
    Backup,
    FileEntry,
    Problem,
    feed_segment,
    load_backup,
    member_path,
)
from teardown.core.errors import InputError

FULL_RECHECK_BYTES = 1 << 30
"""A pull of up to 1 GiB is re-hashed in full before the destroy that relies on it."""
SAMPLE_BYTES = 64 << 20
"""Above that, every segment's size is checked and a rolling sample of files re-hashed: files
in an order that changes with every check, until at least this many bytes."""


@dataclass
class VerifyReport:
    backup: str
    """The pull directory."""
    ok: bool
    files: int
    """Files re-hashed and matching the manifest."""
    expected: int
    """Files in the manifest."""
    total_bytes: int
    """Bytes of file data re-hashed."""
    segments: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def bad_files(self) -> list[str]:
        return sorted({p.path for p in self.problems})


# -- verify ------------------------------------------------------------------------------


class _HashSink:
    """Hashes the bodies of the wanted files of one segment."""

    def __init__(self, wanted: dict[str, FileEntry]) -> None:
        self.wanted = wanted
        self.seen: dict[str, tuple[str, int]] = {}
        self._name = ""
        self._hash = hashlib.sha256()
        self._size = 0

    def member(self, member: Member, raw_header: bytes) -> bool:
        name = member_path(member)
        if member.kind != "file" or name is None or name not in self.wanted:
            return False
        self._name, self._hash, self._size = name, hashlib.sha256(), 0
        return True

    def data(self, chunk: memoryview) -> None:
        self._hash.update(chunk)
        self._size += len(chunk)

    def end_member(self) -> None:
        self.seen[self._name] = (self._hash.hexdigest(), self._size)


def _verify_segment(
    backup: Backup, n: int, wanted: dict[str, FileEntry], problems: list[Problem]
) -> tuple[int, int]:
    """Re-hash the files of segment ``n``; (files matching, bytes re-hashed). Problems are
    appended to ``problems``."""
    seg = backup.pd.segment_path(n, part=False)
    recorded = backup.segments[n]
    try:
        size = seg.stat().st_size
    except FileNotFoundError:
        problems.append(Problem(str(seg), "segment is missing"))
        problems += [Problem(p, f"not checked: segment {seg.name} is missing") for p in wanted]
        return 0, 0
    if recorded is not None and size != recorded:
        problems.append(Problem(str(seg), f"size {size} differs from the manifest's {recorded}"))
    sink = _HashSink(wanted)
    try:
        feed_segment(seg, TarParser(sink))
    except TarError as e:
        problems.append(Problem(str(seg), f"not a valid tar segment: {e}"))
    except OSError as e:
        problems.append(Problem(str(seg), f"cannot read: {e.strerror or e}"))
    good = total = 0
    for p, f in wanted.items():
        got = sink.seen.get(p)
        if got is None:
            problems.append(Problem(p, f"not found in segment {seg.name}"))
            continue
        digest, got_size = got
        total += got_size
        if got_size != f.size:
            problems.append(Problem(p, f"size differs (manifest {f.size}, stored {got_size})"))
        elif digest != f.sha256:
            problems.append(
                Problem(
                    p,
                    f"sha256 differs (manifest {f.sha256[:12]}, stored {digest[:12]}) "
                    f"in segment {seg.name}",
                )
            )
        else:
            good += 1
    return good, total


def _manifest_problems(backup: Backup) -> list[Problem]:
    """What is inconsistent within the manifest itself."""
    problems: list[Problem] = []
    recorded_total = backup.manifest.get("total_bytes")
    expected_total = sum(f.size for f in backup.files)
    if isinstance(recorded_total, int) and recorded_total != expected_total:
        problems.append(
            Problem(
                str(backup.pd.manifest_path),
                f"total_bytes {recorded_total} is not the sum of the file sizes {expected_total}",
            )
        )
    if len({f.path for f in backup.files}) != len(backup.files):
        problems.append(Problem(str(backup.pd.manifest_path), "lists a file more than once"))
    return problems


def verify_backup(path: Path) -> VerifyReport:
    """Re-hash every file of the pull at ``path`` and compare with its manifest (see above)."""
    backup = load_backup(path)
    problems: list[Problem] = []
    by_segment = backup.files_by_segment()
    good = 0
    total = 0
    for n in sorted(backup.segments):
        seg_good, seg_total = _verify_segment(backup, n, by_segment.get(n, {}), problems)
        good += seg_good
        total += seg_total
    problems += _manifest_problems(backup)
    return VerifyReport(
        backup=str(backup.pd.dir),
        ok=not problems and good == len(backup.files),
        files=good,
        expected=len(backup.files),
        total_bytes=total,
        segments=len(backup.segments),
        problems=problems,
    )


# -- the check before a destroy ------------------------------------------------------------


def check_backup(
    path: Path,
    manifest_sha256: str | None,
    *,
    full_limit: int = FULL_RECHECK_BYTES,
    sample_bytes: int = SAMPLE_BYTES,
    seed: str = "",
) -> str | None:
    """None when the pull at ``path`` still exists and matches what was recorded; otherwise the
    first problems, in one line.

    The manifest must hash to ``manifest_sha256`` (the journal's record); then a store of up to
    ``full_limit`` bytes is re-hashed in full (``verify_backup``); a larger one gets its segment
    sizes checked and a sample of at least ``sample_bytes`` of files re-hashed at their
    recorded offsets, chosen by ``seed`` (pass something that changes from one check to the
    next, so repeated checks cover different files). A manifest from before offsets were
    recorded is re-hashed in full whatever its size.
    """
    manifest_path = path / "manifest.json" if path.is_dir() else path
    try:
        body = manifest_path.read_bytes()
    except FileNotFoundError:
        return f"{manifest_path} is missing (the stored copy is gone)"
    except OSError as e:
        return f"{manifest_path} cannot be read: {e.strerror or e}"
    if manifest_sha256 is not None and hashlib.sha256(body).hexdigest() != manifest_sha256:
        return f"{manifest_path} changed since it was verified (sha256 differs)"
    try:
        backup = load_backup(manifest_path)
    except InputError as e:
        return str(e)
    total = sum(f.size for f in backup.files)
    raw = backup.manifest.get("files", [])
    offsets: dict[str, int] = {
        str(f.get("path")): int(f["offset"])
        for f in raw
        if isinstance(f, dict) and isinstance(f.get("offset"), int) and f["offset"] >= 0
    }
    if total <= full_limit or len(offsets) < len(backup.files):
        report = verify_backup(manifest_path)
        if report.ok:
            return None
        return _summary(report.problems)
    return _check_sample(backup, offsets, sample_bytes, seed)


def _summary(problems: list[Problem]) -> str:
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return "; ".join(str(p) for p in problems[:3]) + more


def _layout_problems(backup: Backup, offsets: dict[str, int]) -> list[Problem]:
    """Missing segments, segment sizes that differ from the manifest, files past their end."""
    problems: list[Problem] = []
    sizes: dict[int, int] = {}
    for n, recorded in sorted(backup.segments.items()):
        seg = backup.pd.segment_path(n, part=False)
        try:
            sizes[n] = seg.stat().st_size
        except FileNotFoundError:
            problems.append(Problem(str(seg), "segment is missing"))
            continue
        if recorded is not None and sizes[n] != recorded:
            problems.append(Problem(str(seg), f"size {sizes[n]} differs from the manifest's"))
    for f in backup.files:
        end = offsets[f.path] + f.size
        if f.segment in sizes and end > sizes[f.segment]:
            problems.append(Problem(f.path, "lies beyond the end of its segment"))
    return problems


def _hash_at(seg: Path, offset: int, size: int) -> str | None:
    """The sha256 of ``size`` bytes at ``offset`` in ``seg``; None if the segment ends first.
    OSError if it cannot be read."""
    h = hashlib.sha256()
    with open(seg, "rb") as fh:
        fh.seek(offset)
        left = size
        while left > 0:
            chunk = fh.read(min(READ, left))
            if not chunk:
                return None
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


def _check_sample(
    backup: Backup, offsets: dict[str, int], sample_bytes: int, seed: str
) -> str | None:
    problems = _layout_problems(backup, offsets)
    if problems:
        return _summary(problems)

    def order(f: FileEntry) -> str:
        return hashlib.sha256(f"{seed}\x1f{f.path}".encode()).hexdigest()

    taken = 0
    for f in sorted(backup.files, key=order):
        if taken >= sample_bytes:
            break
        taken += f.size
        seg = backup.pd.segment_path(f.segment, part=False)
        try:
            digest = _hash_at(seg, offsets[f.path], f.size)
        except OSError as e:
            problems.append(Problem(str(seg), f"cannot read: {e.strerror or e}"))
            break
        if digest != f.sha256:
            problems.append(Problem(f.path, f"sha256 differs from the manifest in {seg.name}"))
    return _summary(problems) if problems else None
