"""Restore drills: prove a backup can be read back, and put it back somewhere.

Three operations:

``verify_backup(path)``
    Re-hashes every file of a pull (``ROOT/<key>/``, see ``teardown.adapters.store``) by streaming
    each tar segment through ``TarParser`` (nothing is extracted) and compares sha256, size and
    count with ``manifest.json``. Each problem names the file (or the segment) it concerns.

``restore_backup(path, target, dest)``
    Pushes a pull back to a host over SSH, into the directory ``dest`` on that host, and verifies
    it there. Files land under ``dest`` + their original absolute path: a pull of ``/srv/www``
    restored to ``/restore`` gives ``/restore/srv/www/index.html``; ``dest = "/"`` restores in
    place. Before anything is sent, the host is asked which of the backup's paths already exist
    under ``dest``; any one of them refuses the restore (``InputError``) unless ``overwrite``.
    The segments are fed, filtered to exactly the manifest's files (each from the segment the
    manifest names), directories and symlinks, into one ``tar xf - -C DEST`` exec channel. Then
    the host hashes the restored files itself (``openssl``, else ``sha256sum``, else a second read
    over SFTP, as for pulls) and lists their types, sizes and link targets; everything is compared
    with the manifest. Symlink targets are restored as recorded (an absolute target still names
    the original location, not one under ``dest``). Modes are those of the tar headers (setuid
    and setgid were cleared at pull time); ownership follows ``tar``'s defaults (numeric owners
    are restored when the remote user is root). Modes and owners are not compared.

A sandbox CBR backup is restored by ``teardown.sandbox.restore`` (``teardown sandbox restore``).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teardown.adapters.ssh.connect import SshTarget, connected, guarded, resolve
from teardown.adapters.ssh.remote import (
    RECV,
    choose_hasher,
    exec_works,
    exit_status,
    host_hashes,
    run_command,
    sftp_hashes,
)
from teardown.adapters.ssh.tarstream import BLOCK, Member, TarError, TarParser
from teardown.adapters.store import PullDir
from teardown.core.errors import InputError, PermanentError
from teardown.core.paths import bad_name

READ = 4 << 20
"""Segment read size."""
SEND = 1 << 20
"""Bytes buffered before each ``sendall`` to the tar channel."""
RECORD = 20 * BLOCK
"""tar's default record size (blocking factor 20); the stream sent is padded to whole records."""
EOF_GRACE = 5.0
"""Seconds to wait for tar to exit at the end-of-archive marker before sending EOF."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Problem:
    path: str
    """The file (or segment, or directory) concerned."""
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


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


# -- the manifest ------------------------------------------------------------------------


@dataclass(frozen=True)
class _FileEntry:
    path: str
    size: int
    sha256: str
    segment: int


@dataclass
class _Backup:
    pd: PullDir
    manifest: dict[str, Any]
    files: list[_FileEntry]
    dirs: list[str]
    symlinks: dict[str, str]
    segments: dict[int, int | None]
    """Segment number -> size recorded in the manifest (None: not listed)."""
    paths: list[str]


def _load(path: Path) -> _Backup:
    """The pull at ``path`` (its directory or its ``manifest.json``); InputError if unusable."""
    source = str(path)
    if path.is_dir():
        directory, manifest_path = path, path / "manifest.json"
    elif path.name == "manifest.json":
        directory, manifest_path = path.parent, path
    elif path.exists():
        raise InputError(source, "not a backup directory or its manifest.json")
    else:
        raise InputError(source, "no such backup")
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
    try:
        files = [
            _FileEntry(str(f["path"]), int(f["size"]), str(f["sha256"]), int(f["segment"]))
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
    return _Backup(pd, data, files, dirs, symlinks, listed, paths)


def _member_path(m: Member) -> str | None:
    """The absolute path a stored member stands for (segments hold relative names)."""
    if m.name.startswith("/"):
        return None
    return "/" + m.name.rstrip("/")


# -- verify ------------------------------------------------------------------------------


class _HashSink:
    """Hashes the bodies of the wanted files of one segment."""

    def __init__(self, wanted: dict[str, _FileEntry]) -> None:
        self.wanted = wanted
        self.seen: dict[str, tuple[str, int]] = {}
        self._name = ""
        self._hash = hashlib.sha256()
        self._size = 0

    def member(self, member: Member, raw_header: bytes) -> bool:
        name = _member_path(member)
        if member.kind != "file" or name is None or name not in self.wanted:
            return False
        self._name, self._hash, self._size = name, hashlib.sha256(), 0
        return True

    def data(self, chunk: memoryview) -> None:
        self._hash.update(chunk)
        self._size += len(chunk)

    def end_member(self) -> None:
        self.seen[self._name] = (self._hash.hexdigest(), self._size)


def _feed_file(path: Path, parser: TarParser) -> None:
    with open(path, "rb") as f:
        while chunk := f.read(READ):
            parser.feed(chunk)
    parser.close()


def verify_backup(path: Path) -> VerifyReport:
    """Re-hash every file of the pull at ``path`` and compare with its manifest (see above)."""
    backup = _load(path)
    problems: list[Problem] = []
    by_segment: dict[int, dict[str, _FileEntry]] = {}
    for f in backup.files:
        by_segment.setdefault(f.segment, {})[f.path] = f
    good = 0
    total = 0
    for n in sorted(backup.segments):
        seg = backup.pd.segment_path(n, part=False)
        wanted = by_segment.get(n, {})
        recorded = backup.segments[n]
        try:
            size = seg.stat().st_size
        except FileNotFoundError:
            problems.append(Problem(str(seg), "segment is missing"))
            problems += [Problem(p, f"not checked: segment {seg.name} is missing") for p in wanted]
            continue
        if recorded is not None and size != recorded:
            problems.append(
                Problem(str(seg), f"size {size} differs from the manifest's {recorded}")
            )
        sink = _HashSink(wanted)
        parser = TarParser(sink)
        try:
            _feed_file(seg, parser)
        except TarError as e:
            problems.append(Problem(str(seg), f"not a valid tar segment: {e}"))
        except OSError as e:
            problems.append(Problem(str(seg), f"cannot read: {e.strerror or e}"))
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

FULL_RECHECK_BYTES = 1 << 30
"""A pull of up to 1 GiB is re-hashed in full before the destroy that relies on it."""
SAMPLE_BYTES = 64 << 20
"""Above that, every segment's size is checked and a rolling sample of files re-hashed: files
in an order that changes with every check, until at least this many bytes."""


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
        backup = _load(manifest_path)
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


def _check_sample(
    backup: _Backup, offsets: dict[str, int], sample_bytes: int, seed: str
) -> str | None:
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
    if problems:
        return _summary(problems)

    def order(f: _FileEntry) -> str:
        return hashlib.sha256(f"{seed}\x1f{f.path}".encode()).hexdigest()

    taken = 0
    for f in sorted(backup.files, key=order):
        if taken >= sample_bytes:
            break
        taken += f.size
        seg = backup.pd.segment_path(f.segment, part=False)
        h = hashlib.sha256()
        try:
            with open(seg, "rb") as fh:
                fh.seek(offsets[f.path])
                left = f.size
                while left > 0:
                    chunk = fh.read(min(READ, left))
                    if not chunk:
                        break
                    h.update(chunk)
                    left -= len(chunk)
        except OSError as e:
            problems.append(Problem(str(seg), f"cannot read: {e.strerror or e}"))
            break
        if left or h.hexdigest() != f.sha256:
            problems.append(Problem(f.path, f"sha256 differs from the manifest in {seg.name}"))
    return _summary(problems) if problems else None


# -- restore over SSH --------------------------------------------------------------------


class _Sender:
    """Buffers bytes for the tar channel, sending about ``SEND`` bytes at a time."""

    def __init__(self, chan: Any) -> None:
        self.chan = chan
        self.buf = bytearray()
        self.sent = 0

    def write(self, data: bytes | memoryview) -> None:
        self.buf += data
        if len(self.buf) >= SEND:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            self.chan.sendall(bytes(self.buf))
            self.sent += len(self.buf)
            self.buf.clear()


class _ForwardSink:
    """Forwards the wanted members of one segment to the channel, hashing file bodies."""

    def __init__(
        self,
        out: _Sender,
        files: dict[str, _FileEntry],
        dirs: set[str],
        symlinks: dict[str, str],
    ) -> None:
        self.out = out
        self.files = files
        self.dirs = dirs
        """Directories not yet sent (each is sent once)."""
        self.symlinks = symlinks
        """Symlinks not yet sent."""
        self.local: dict[str, str] = {}
        """Path -> sha256 of the stored body as sent."""
        self.file_bytes = 0
        self._name = ""
        self._hash: Any = None
        self._left = 0
        self._pad = 0

    def member(self, member: Member, raw_header: bytes) -> bool:
        name = _member_path(member)
        if name is None:
            return False
        if member.kind == "file":
            ok = name in self.files
        elif member.kind == "dir":
            ok = name in self.dirs
            self.dirs.discard(name)
        elif member.kind == "symlink":
            ok = self.symlinks.get(name) == member.linkname
            if ok:
                del self.symlinks[name]
        else:
            ok = False
        if not ok:
            return False
        self.out.write(raw_header)
        self._name = name
        self._hash = hashlib.sha256() if member.kind == "file" else None
        self._left = member.size
        self._pad = -member.size % BLOCK
        return True

    def data(self, chunk: memoryview) -> None:
        self.out.write(chunk)
        if self._hash is not None:
            self._hash.update(chunk)
        self._left -= len(chunk)
        self.file_bytes += len(chunk)

    def end_member(self) -> None:
        if self._pad:
            self.out.write(b"\0" * self._pad)
        if self._hash is not None:
            self.local[self._name] = self._hash.hexdigest()
        self._hash = None
        self._left = self._pad = 0

    def abandon(self) -> str | None:
        """After a bad segment: complete the member being sent with zeros, keeping the outgoing
        stream valid. Returns that member's path, if one was cut."""
        if not self._left and not self._pad:
            return None
        self.out.write(b"\0" * (self._left + self._pad))
        self._left = self._pad = 0
        self._hash = None
        return self._name


def _host_path(prefix: str, path: str) -> str:
    return prefix + path


def _check_dest(dest: str) -> str:
    """The prefix to put before every original path ("" when restoring in place to /)."""
    if not dest.startswith("/"):
        raise InputError(dest, "the restore destination must be an absolute path on the host")
    clean = posixpath.normpath(dest)
    if clean.startswith("//"):
        clean = "/" + clean.lstrip("/")
    if _CONTROL.search(clean) or ".." in clean.split("/"):
        raise InputError(dest, "the restore destination has '..' or a control character")
    return "" if clean == "/" else clean


def _listing(transport: Any, roots: list[str], timeout: float) -> dict[str, tuple[str, int, str]]:
    """Path -> (type, size, link target) of everything under ``roots`` on the host; missing
    roots are simply absent."""
    if not roots:
        return {}
    cmd = "find -P " + " ".join(shlex.quote(r) for r in roots) + " -printf '%y %s %p\\0%l\\0'"
    status, out, err = run_command(transport, cmd, timeout)
    if status not in (0, 1):  # 1: some root does not exist
        text = err.decode("utf-8", "replace").strip()[-300:]
        raise PermanentError(f"listing the destination failed on the host: {text}")
    fields = out.split(b"\0")
    result: dict[str, tuple[str, int, str]] = {}
    for i in range(0, len(fields) - 1, 2):
        head = fields[i].decode("utf-8", "surrogateescape")
        link = fields[i + 1].decode("utf-8", "surrogateescape")
        try:
            kind, size, path = head.split(" ", 2)
            result[path] = (kind, int(size), link)
        except ValueError:
            continue
    return result


def _roots(backup: _Backup, prefix: str) -> list[str]:
    """The host paths under which the backup's entries land (the pull's requested paths)."""
    roots = sorted({(p.rstrip("/") or "/") for p in backup.paths})
    every = [f.path for f in backup.files] + backup.dirs + list(backup.symlinks)
    if not roots or any(
        not any(p == r or p.startswith(r.rstrip("/") + "/") for r in roots) for p in every
    ):
        # Not recorded, or not covering everything: use each entry's top-level directory.
        roots = sorted({"/" + p.split("/")[1] for p in every})
    # Drop roots inside other roots, so find lists nothing twice.
    kept = [
        r for r in roots if not any(r != o and r.startswith(o.rstrip("/") + "/") for o in roots)
    ]
    return [(prefix + r) if r != "/" else (prefix or "/") for r in kept]


def _send(
    transport: Any, backup: _Backup, prefix: str, timeout: float
) -> tuple[_ForwardSink, list[Problem]]:
    """Stream the manifest's entries into ``tar x`` on the host."""
    dest = prefix or "/"
    quoted = shlex.quote(dest)
    command = f"mkdir -p -- {quoted} && tar -x -b {RECORD // BLOCK} -f - -C {quoted}"
    problems: list[Problem] = []
    by_segment: dict[int, dict[str, _FileEntry]] = {}
    for f in backup.files:
        by_segment.setdefault(f.segment, {})[f.path] = f
    segments = sorted(backup.segments)

    def go() -> _ForwardSink:
        chan = transport.open_session()
        try:
            chan.settimeout(timeout)
            chan.exec_command(command)
            out = _Sender(chan)
            sink = _ForwardSink(out, {}, set(backup.dirs), dict(backup.symlinks))
            for n in segments:
                seg = backup.pd.segment_path(n, part=False)
                sink.files = by_segment.get(n, {})
                parser = TarParser(sink)
                try:
                    _feed_file(seg, parser)
                except (TarError, OSError) as e:
                    why = str(e) if isinstance(e, TarError) else (e.strerror or str(e))
                    problems.append(Problem(str(seg), f"segment unusable: {why}"))
                    cut = sink.abandon()
                    if cut is not None:
                        problems.append(Problem(cut, "cut short: its segment is unusable"))
            # The end-of-archive marker, padded to whole records as tar itself writes archives:
            # GNU tar then stops reading and exits without waiting for EOF. EOF is sent only
            # if tar has not exited after a grace period (other tars), because the sandbox's SSH
            # server can drop stdin still buffered towards the command when EOF arrives.
            end = out.sent + len(out.buf) + 2 * BLOCK
            out.write(b"\0" * (2 * BLOCK + (-end % RECORD)))
            out.flush()
            grace = time.monotonic() + EOF_GRACE
            while not chan.exit_status_ready() and time.monotonic() < grace:
                time.sleep(0.005)
            if not chan.exit_status_ready():
                chan.shutdown_write()
            err = bytearray()
            deadline = time.monotonic() + timeout
            while True:
                if chan.recv_stderr_ready():
                    err += chan.recv_stderr(RECV)
                if not chan.recv(RECV):
                    break
            status = exit_status(chan, transport, deadline)
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(RECV)
            if status != 0:
                text = bytes(err).decode("utf-8", "replace").strip()[-300:]
                problems.append(Problem(dest, f"tar failed on the host (exit {status}): {text}"))
            return sink
        finally:
            chan.close()

    return guarded("tar restore", go), problems


def _sftp_rehash(sftp: Any, names: list[str]) -> dict[str, str]:
    """Each file's sha256 read back over SFTP; a missing or unreadable file is left out."""
    hashes: dict[str, str] = {}
    for name in names:
        try:
            hashes.update(sftp_hashes(sftp, [name]))
        except (FileNotFoundError, PermissionError):
            continue
    return hashes


def _compare_on_host(
    transport: Any,
    backup: _Backup,
    prefix: str,
    sink: _ForwardSink,
    timeout: float,
) -> tuple[int, int, str, list[Problem]]:
    """Hash and list the restored entries on the host; (good files, bytes, via, problems)."""
    problems: list[Problem] = []
    names = [_host_path(prefix, f.path) for f in backup.files]
    method = choose_hasher(transport, "auto", timeout, names)
    if method == "sftp":
        import paramiko  # type: ignore[import-untyped, unused-ignore]

        sftp = guarded("sftp", lambda: paramiko.SFTPClient.from_transport(transport))
        try:
            hashes = guarded("sftp re-read", lambda: _sftp_rehash(sftp, names))
        finally:
            sftp.close()
        via = "sftp-reread"
    else:
        hashes = host_hashes(transport, method, names, timeout)
        via = f"host:{method}"
    listing = _listing(transport, _roots(backup, prefix), timeout)
    good = total = 0
    for f in backup.files:
        host_name = _host_path(prefix, f.path)
        local = sink.local.get(f.path)
        entry = listing.get(host_name)
        digest = hashes.get(host_name)
        if local is None:
            problems.append(Problem(f.path, "not sent: missing from its stored segment"))
        elif local != f.sha256:
            problems.append(
                Problem(f.path, f"stored copy differs from the manifest (sha256 {local[:12]})")
            )
        if entry is None or entry[0] != "f":
            kind = "missing" if entry is None else f"a {entry[0]!r} entry, not a file"
            problems.append(Problem(f.path, f"on the host: {kind} at {host_name}"))
            continue
        if entry[1] != f.size:
            problems.append(Problem(f.path, f"size on the host {entry[1]}, manifest {f.size}"))
            continue
        if digest is None:
            problems.append(Problem(f.path, "no checksum from the host"))
            continue
        if digest != f.sha256:
            problems.append(
                Problem(f.path, f"sha256 on the host {digest[:12]}, manifest {f.sha256[:12]}")
            )
            continue
        if local == f.sha256:
            good += 1
            total += f.size
    for d in backup.dirs:
        entry = listing.get(_host_path(prefix, d))
        if entry is None or entry[0] != "d":
            problems.append(Problem(d, "directory missing on the host"))
    for link, target in backup.symlinks.items():
        entry = listing.get(_host_path(prefix, link))
        if entry is None or entry[0] != "l":
            problems.append(Problem(link, "symlink missing on the host"))
        elif entry[2] != target:
            problems.append(Problem(link, f"symlink points to {entry[2]!r}, not {target!r}"))
    return good, total, via, problems


def restore_backup(
    path: Path,
    target: SshTarget,
    dest: str,
    *,
    overwrite: bool = False,
    timeout: float = 600.0,
) -> RestoreReport:
    """Push the pull at ``path`` to ``dest`` on ``target`` and verify it there (see above).

    Raises InputError (nothing sent) for a bad backup or destination, or when ``dest`` already
    holds one of the backup's paths and ``overwrite`` is false; TransientError/PermanentError
    for SSH failures. Differences found after the transfer are reported, not raised.
    """
    backup = _load(path)
    prefix = _check_dest(dest)
    label = f"{resolve(target).label}:{prefix or '/'}"
    with connected(target) as transport:
        if not exec_works(transport, timeout):
            raise PermanentError(f"{label}: the host refuses exec; a restore needs tar there")
        if not overwrite:
            existing = _listing(transport, _roots(backup, prefix), timeout)
            ours = [f.path for f in backup.files] + backup.dirs + list(backup.symlinks)
            clash = sorted(p for p in ours if _host_path(prefix, p) in existing)
            if clash:
                more = f" (and {len(clash) - 3} more)" if len(clash) > 3 else ""
                raise InputError(
                    label,
                    f"{len(clash)} of the backup's paths already exist there: "
                    + ", ".join(_host_path(prefix, p) for p in clash[:3])
                    + more
                    + "; choose an empty destination or pass --overwrite",
                )
        sink, problems = _send(transport, backup, prefix, timeout)
        good, total, via, more_problems = _compare_on_host(transport, backup, prefix, sink, timeout)
    problems += more_problems
    return RestoreReport(
        source=str(backup.pd.dir),
        destination=label,
        ok=not problems and good == len(backup.files),
        files=good,
        expected=len(backup.files),
        total_bytes=total,
        verified_with=via,
        dirs=len(backup.dirs),
        symlinks=len(backup.symlinks),
        problems=problems,
    )


# -- restore a sandbox CBR backup --------------------------------------------------------
