"""The local backup store: one directory per pull, holding tar segments, an index and a manifest.

Layout of ``ROOT/<key>/`` (``key`` is the plan step's idempotency key, so reruns find it)::

    segments/000001.tar       finalized segments: plain tar files holding only accepted members
    segments/000002.tar.part  the segment being written (discarded if the process died)
    index.jsonl               one line per file received: path, size, mode, mtime, sha256, segment
    hostsums.jsonl            the host's own sha256 of each file, and how it was computed
    manifest.json             written last, only when every file verified

Files are kept as tar segments rather than one file per member: creating 20,000 small files on
ext4 is what makes the other tools slow, whatever the transport, while appending them to an
archive costs a fraction of a second (measured with ``scripts/bench_pull``: README.md, "SSH
pulls: how data is copied and proven"). ``tar xf`` (or ``teardown restore``) unpacks a segment;
the names in it were checked (no absolute paths, no ``..``, no special files, setuid and setgid
bits cleared), so unpacking cannot write outside the target directory.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teardown.core.paths import bad_name

SEGMENT_ROLL_BYTES = 256 << 20
"""Start a new segment after this many bytes, so a killed process loses at most one segment."""


@dataclass
class FileRecord:
    """A file received into a segment, with the sha256 computed while it streamed in."""

    path: str
    size: int
    mode: int
    mtime: float
    sha256: str
    segment: int
    offset: int = -1
    """Where the file's data starts in its segment (-1: not recorded, older pulls)."""


@dataclass
class Refusal:
    path: str
    reason: str


@dataclass
class Manifest:
    """What a verified pull holds. Written as ``manifest.json``."""

    key: str
    server: str
    host: str
    user: str
    paths: list[str]
    excludes: list[str]
    started: str
    finished: str
    verified_with: str
    """``host:openssl``, ``host:sha256sum`` or ``sftp-reread``: how the host checksums were made."""
    files: list[dict[str, Any]] = field(default_factory=list)
    dirs: list[dict[str, Any]] = field(default_factory=list)
    symlinks: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    """Entries not stored, with why (only those the rule's ``accept_refused`` lists: any other
    refusal fails the pull)."""
    followed: list[dict[str, str]] = field(default_factory=list)
    """Requested paths that are symlinks on the host, and their targets (followed)."""
    origin: dict[str, str] = field(default_factory=dict)
    """What this is a copy of: account, resource id and creation time, the rule's settings
    digest, and the host key the data came from."""
    segments: list[dict[str, Any]] = field(default_factory=list)
    total_bytes: int = 0
    verified: bool = True


BATCH_KEY = "rows"
"""A line ``{"rows": [...]}`` holds several rows: one append writes one line. Encoding 20,000
rows in one call of the C encoder takes a tenth of encoding them one by one (which builds an
encoder per call): 0.02 s against 0.2 s here."""


def _append_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append ``rows`` as one line (a single row as itself), then fsync. A process killed while
    writing leaves a torn last line, which ``_read_jsonl`` stops at: those rows are lost, and
    what they described is fetched again."""
    if not rows:
        return
    body = rows[0] if len(rows) == 1 else {BATCH_KEY: rows}
    line = json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)  # owner-only
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of ``path`` in order: each line is a row, or a batch of rows (``BATCH_KEY``)."""
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    return  # a torn last line from a killed process
                if not isinstance(row, dict):
                    continue
                batch = row.get(BATCH_KEY)
                if isinstance(batch, list) and len(row) == 1:
                    yield from (r for r in batch if isinstance(r, dict))
                else:
                    yield row
    except FileNotFoundError:
        return


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class PullDir:
    """One pull's directory in the store. Not thread-safe: one pull at a time per key."""

    def __init__(self, root: Path, key: str) -> None:
        self.key = key
        self.dir = root / key
        self.segments = self.dir / "segments"
        self.index_path = self.dir / "index.jsonl"
        self.hostsums_path = self.dir / "hostsums.jsonl"
        self.manifest_path = self.dir / "manifest.json"

    def prepare(self) -> None:
        self.segments.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.dir, 0o700)
        for part in self.segments.glob("*.part"):
            part.unlink()  # a killed process's unfinished segment: its files are sent again

    def finalized(self) -> set[int]:
        return {int(p.stem) for p in self.segments.glob("*.tar") if p.stem.isdigit()}

    def received(self) -> dict[str, FileRecord]:
        """Latest record per path, only from finalized segments."""
        done = self.finalized()
        out: dict[str, FileRecord] = {}
        for row in _read_jsonl(self.index_path):
            try:
                rec = FileRecord(**row)
            except TypeError:
                continue
            if bad_name(rec.path):
                continue  # never written by a pull: a hand-edited or damaged index
            if rec.segment in done:
                out[rec.path] = rec
        return out

    def hostsums(self) -> dict[str, tuple[str, str]]:
        """path -> (sha256, method) as the host computed them."""
        return {
            r["path"]: (r["sha256"], r["via"])
            for r in _read_jsonl(self.hostsums_path)
            if isinstance(r.get("path"), str) and not bad_name(r["path"])
        }

    def forget(self, paths: set[str]) -> None:
        """Drop records (e.g. after a mismatch) so those files are fetched again."""
        if not paths:
            return
        for path in (self.index_path, self.hostsums_path):
            rows = [r for r in _read_jsonl(path) if r.get("path") not in paths]
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                for r in rows:
                    f.write(json.dumps(r, sort_keys=True) + "\n")
            os.replace(tmp, path)

    def add_records(self, records: list[FileRecord]) -> None:
        _append_jsonl(self.index_path, [vars(r) for r in records])

    def add_hostsums(self, sums: dict[str, str], via: str) -> None:
        _append_jsonl(
            self.hostsums_path,
            [{"path": p, "sha256": h, "via": via} for p, h in sums.items()],
        )

    def next_segment(self) -> int:
        return max(self.finalized(), default=0) + 1

    def segment_path(self, n: int, *, part: bool) -> Path:
        return self.segments / (f"{n:06d}.tar" + (".part" if part else ""))

    def write_manifest(self, manifest: Manifest) -> tuple[str, int]:
        """Write ``manifest.json`` atomically; return its sha256 and size. ValueError when an
        entry's name is not safe to store (``teardown.core.paths.bad_name``)."""
        for entry in (*manifest.files, *manifest.dirs, *manifest.symlinks):
            why = bad_name(str(entry.get("path", "")))
            if why:
                raise ValueError(f"refusing to record {str(entry.get('path'))[:200]!r}: {why}")
        # No indent: Python's C JSON encoder is used only without one (20,000 files: 30x faster).
        # vars(), not asdict(): asdict deep-copies every one of the file entries.
        body = json.dumps(vars(manifest), sort_keys=True, separators=(",", ":")).encode()
        tmp = self.manifest_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.manifest_path)
        return hashlib.sha256(body).hexdigest(), len(body)

    def manifest(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.manifest_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return data

    def invalidate_manifest(self) -> None:
        self.manifest_path.unlink(missing_ok=True)


class LocalStore:
    """A directory of pulls. Example: ``LocalStore(Path(".teardown/backups")).pull_dir(key)``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def pull_dir(self, key: str) -> PullDir:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"bad store key {key!r}")
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return PullDir(self.root, key)
