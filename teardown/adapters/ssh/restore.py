"""Restoring a pull to a host over SSH, verified there.

``restore_backup(path, target, dest)`` pushes a pull back to a host, into the directory ``dest``
on that host, and verifies it there. Files land under ``dest`` + their original absolute path: a
pull of ``/srv/www`` restored to ``/restore`` gives ``/restore/srv/www/index.html``;
``dest = "/"`` restores in place. Before anything is sent, the host is asked which of the
backup's paths already exist under ``dest``; any one of them refuses the restore
(``InputError``) unless ``overwrite``. The segments are fed, filtered to exactly the manifest's
files (each from the segment the manifest names), directories and symlinks, into one
``tar xf - -C DEST`` exec channel. Then the host hashes the restored files itself (``openssl``,
else ``sha256sum``, else a second read over SFTP, as for pulls) and lists their types, sizes and
link targets; everything is compared with the manifest. Symlink targets are restored as recorded
(an absolute target still names the original location, not one under ``dest``). Modes are those
of the tar headers (setuid and setgid were cleared at pull time); ownership follows ``tar``'s
defaults (numeric owners are restored when the remote user is root). Modes and owners are not
compared.

A pull is checked in the store, without a host, by ``teardown.adapters.store_check``; a sandbox
CBR backup is restored by ``teardown.sandbox.restore`` (``teardown sandbox restore``).
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import shlex
import time
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
from teardown.adapters.stored_pull import (
    Backup,
    FileEntry,
    Problem,
    RestoreReport,
    feed_segment,
    load_backup,
    member_path,
)
from teardown.core.errors import InputError, PermanentError

SEND = 1 << 20
"""Bytes buffered before each ``sendall`` to the tar channel."""
RECORD = 20 * BLOCK
"""tar's default record size (blocking factor 20); the stream sent is padded to whole records."""
EOF_GRACE = 5.0
"""Seconds to wait for tar to exit at the end-of-archive marker before sending EOF."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Listing = dict[str, tuple[str, int, str]]
"""Host path -> (type, size, link target), as ``find -printf '%y %s'`` and ``%l`` give them."""


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
        files: dict[str, FileEntry],
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

    def _wanted(self, name: str, member: Member) -> bool:
        """Whether to send ``member``; a directory or symlink is wanted once."""
        if member.kind == "file":
            return name in self.files
        if member.kind == "dir":
            ok = name in self.dirs
            self.dirs.discard(name)
            return ok
        if member.kind == "symlink":
            ok = self.symlinks.get(name) == member.linkname
            if ok:
                del self.symlinks[name]
            return ok
        return False

    def member(self, member: Member, raw_header: bytes) -> bool:
        name = member_path(member)
        if name is None or not self._wanted(name, member):
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


def _listing(transport: Any, roots: list[str], timeout: float) -> Listing:
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
    result: Listing = {}
    for i in range(0, len(fields) - 1, 2):
        head = fields[i].decode("utf-8", "surrogateescape")
        link = fields[i + 1].decode("utf-8", "surrogateescape")
        try:
            kind, size, path = head.split(" ", 2)
            result[path] = (kind, int(size), link)
        except ValueError:
            continue
    return result


def _roots(backup: Backup, prefix: str) -> list[str]:
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


def _refuse_clash(transport: Any, backup: Backup, prefix: str, label: str, timeout: float) -> None:
    """InputError when one of the backup's paths already exists under the destination."""
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


# -- sending -----------------------------------------------------------------------------


def _feed_segments(backup: Backup, sink: _ForwardSink, problems: list[Problem]) -> None:
    """Feed every segment through ``sink``; an unusable segment is reported, and the member it
    cut short completed with zeros, so the stream stays valid."""
    by_segment = backup.files_by_segment()
    for n in sorted(backup.segments):
        seg = backup.pd.segment_path(n, part=False)
        sink.files = by_segment.get(n, {})
        try:
            feed_segment(seg, TarParser(sink))
        except (TarError, OSError) as e:
            why = str(e) if isinstance(e, TarError) else (e.strerror or str(e))
            problems.append(Problem(str(seg), f"segment unusable: {why}"))
            cut = sink.abandon()
            if cut is not None:
                problems.append(Problem(cut, "cut short: its segment is unusable"))


def _end_archive(chan: Any, transport: Any, out: _Sender, timeout: float) -> tuple[int, bytes]:
    """Send the end of the archive and wait for tar; (its exit status, its stderr).

    The end-of-archive marker is padded to whole records as tar itself writes archives: GNU tar
    then stops reading and exits without waiting for EOF. EOF is sent only if tar has not exited
    after a grace period (other tars), because the sandbox's SSH server can drop stdin still
    buffered towards the command when EOF arrives.
    """
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
    return status, bytes(err)


def _send(
    transport: Any, backup: Backup, prefix: str, timeout: float
) -> tuple[_ForwardSink, list[Problem]]:
    """Stream the manifest's entries into ``tar x`` on the host."""
    dest = prefix or "/"
    quoted = shlex.quote(dest)
    command = f"mkdir -p -- {quoted} && tar -x -b {RECORD // BLOCK} -f - -C {quoted}"
    problems: list[Problem] = []

    def go() -> _ForwardSink:
        chan = transport.open_session()
        try:
            chan.settimeout(timeout)
            chan.exec_command(command)
            out = _Sender(chan)
            sink = _ForwardSink(out, {}, set(backup.dirs), dict(backup.symlinks))
            _feed_segments(backup, sink, problems)
            status, err = _end_archive(chan, transport, out, timeout)
            if status != 0:
                text = err.decode("utf-8", "replace").strip()[-300:]
                problems.append(Problem(dest, f"tar failed on the host (exit {status}): {text}"))
            return sink
        finally:
            chan.close()

    return guarded("tar restore", go), problems


# -- checking on the host ----------------------------------------------------------------


def _sftp_rehash(sftp: Any, names: list[str]) -> dict[str, str]:
    """Each file's sha256 read back over SFTP; a missing or unreadable file is left out."""
    hashes: dict[str, str] = {}
    for name in names:
        try:
            hashes.update(sftp_hashes(sftp, [name]))
        except (FileNotFoundError, PermissionError):
            continue
    return hashes


def _hashes_on_host(transport: Any, names: list[str], timeout: float) -> tuple[dict[str, str], str]:
    """The host's sha256 of each of ``names`` (absent when it has none), and how it was made."""
    method = choose_hasher(transport, "auto", timeout, names)
    if method != "sftp":
        return host_hashes(transport, method, names, timeout), f"host:{method}"
    import paramiko  # type: ignore[import-untyped, unused-ignore]

    sftp = guarded("sftp", lambda: paramiko.SFTPClient.from_transport(transport))
    try:
        hashes = guarded("sftp re-read", lambda: _sftp_rehash(sftp, names))
    finally:
        sftp.close()
    return hashes, "sftp-reread"


def _file_problem(
    f: FileEntry, host_name: str, entry: tuple[str, int, str] | None
) -> Problem | None:
    """What is wrong with the restored file itself (its type and size on the host)."""
    if entry is None or entry[0] != "f":
        kind = "missing" if entry is None else f"a {entry[0]!r} entry, not a file"
        return Problem(f.path, f"on the host: {kind} at {host_name}")
    if entry[1] != f.size:
        return Problem(f.path, f"size on the host {entry[1]}, manifest {f.size}")
    return None


def _compare_files(
    backup: Backup,
    prefix: str,
    sink: _ForwardSink,
    hashes: dict[str, str],
    listing: Listing,
    problems: list[Problem],
) -> tuple[int, int]:
    """Compare each restored file with the manifest; (good files, their bytes)."""
    good = total = 0
    for f in backup.files:
        host_name = _host_path(prefix, f.path)
        local = sink.local.get(f.path)
        digest = hashes.get(host_name)
        if local is None:
            problems.append(Problem(f.path, "not sent: missing from its stored segment"))
        elif local != f.sha256:
            problems.append(
                Problem(f.path, f"stored copy differs from the manifest (sha256 {local[:12]})")
            )
        wrong = _file_problem(f, host_name, listing.get(host_name))
        if wrong is not None:
            problems.append(wrong)
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
    return good, total


def _compare_others(backup: Backup, prefix: str, listing: Listing) -> list[Problem]:
    """Directories and symlinks missing on the host, or symlinks pointing elsewhere."""
    problems: list[Problem] = []
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
    return problems


def _compare_on_host(
    transport: Any,
    backup: Backup,
    prefix: str,
    sink: _ForwardSink,
    timeout: float,
) -> tuple[int, int, str, list[Problem]]:
    """Hash and list the restored entries on the host; (good files, bytes, via, problems)."""
    names = [_host_path(prefix, f.path) for f in backup.files]
    hashes, via = _hashes_on_host(transport, names, timeout)
    listing = _listing(transport, _roots(backup, prefix), timeout)
    problems: list[Problem] = []
    good, total = _compare_files(backup, prefix, sink, hashes, listing, problems)
    problems += _compare_others(backup, prefix, listing)
    return good, total, via, problems


# -- the restore -------------------------------------------------------------------------


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
    backup = load_backup(path)
    prefix = _check_dest(dest)
    label = f"{resolve(target).label}:{prefix or '/'}"
    with connected(target) as transport:
        if not exec_works(transport, timeout):
            raise PermanentError(f"{label}: the host refuses exec; a restore needs tar there")
        if not overwrite:
            _refuse_clash(transport, backup, prefix, label, timeout)
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
