"""Pulling paths from a host into the store, verified end to end, resumable.

One pull, over one SSH connection:

1. ``before`` commands (a failure or timeout means no backup, never a partial one);
2. an inventory of the paths with ``find -H`` (type, mode, size, mtime, link target): a
   requested path that is itself a symlink is followed (the path the user named is what they
   want), symlinks inside it never are; checked: every name must be absolute, inside a requested
   path, free of ``..``, empty components and control characters; special files and symlinks
   pointing outside the set are refused and recorded;
3. two channels at once: ``tar`` streams exactly the listed entries that are not yet verified in
   the store, while the host hashes every file it has not hashed yet (``openssl`` when present,
   it runs about 4x faster than ``sha256sum`` here, else ``sha256sum``, else a second read over
   SFTP); the stream is parsed as it arrives, each file hashed and written to a tar segment;
4. every file's local sha256 and size are compared with the host's; any difference fails the
   pull and forgets that file, so a rerun fetches it again; so does a pull that verified no file
   at all (unless ``allow_empty``) and any refused entry the rule does not list in
   ``accept_refused``: a pull counts only if it holds what was asked;
5. ``after`` commands, whether or not the transfer succeeded.

A dropped connection keeps every file completed before it (the segment is cut at the last whole
member), so a rerun sends only what was not yet received.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import os
import posixpath
import re
import shlex
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO

from teardown.adapters.ssh.connect import guarded, translate
from teardown.adapters.ssh.remote import (
    RECV,
    choose_hasher,
    exec_works,
    exit_status,
    host_hashes,
    run_command,
    sftp_hashes,
    tail,
)
from teardown.adapters.ssh.tarstream import BLOCK, Member, TarError, TarParser
from teardown.adapters.store import SEGMENT_ROLL_BYTES, FileRecord, Manifest, PullDir
from teardown.core.errors import PermanentError, TransientError
from teardown.core.paths import bad_name, excluded, root_of, under

Progress = Callable[[int, int], None]
PROGRESS_EVERY = 1 << 20
"""Report progress at most once per MiB (and at the end)."""


@dataclass(frozen=True)
class PullRequest:
    server: str
    """A label for the manifest (server name or id)."""
    paths: tuple[str, ...]
    excludes: tuple[str, ...] = ()
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    verify_with: str = "auto"
    """``auto`` (openssl, else sha256sum, else SFTP re-read), ``openssl``, ``sha256sum``,
    ``sftp``."""
    method: str = "tar"
    """``tar`` (one stream over exec), or ``sftp``; SFTP is also used when the host refuses
    exec."""
    command_timeout: float = 600.0
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Values for ``${env:NAME}`` in hook commands: secrets stay out of config, plan and journal."""
    allow_empty: bool = True
    """A pull that verifies zero files still counts (the runner passes the rule's setting,
    false by default there)."""
    accept_refused: tuple[str, ...] | None = None
    """Globs on the path of refused entries that do not fail the pull; None accepts every
    refusal (the default for direct calls; the runner passes the rule's list)."""
    rule: str = ""
    """The pull rule's name, for messages."""
    origin: Mapping[str, str] = field(default_factory=dict)
    """What this pull is a copy of (account, resource id, creation time, settings digest, host
    key), written into the manifest."""


@dataclass
class PullReport:
    verified: bool
    detail: str
    files: int = 0
    total_bytes: int = 0
    sent_bytes: int = 0
    """File bytes received in this pull (a resumed pull receives only what was missing)."""
    refused: list[dict[str, str]] = field(default_factory=list)
    manifest_sha256: str | None = None
    manifest_path: str | None = None
    accepted_refusals: list[dict[str, str]] = field(default_factory=list)
    """Refused entries the rule's ``accept_refused`` lists (recorded, not failing)."""


@dataclass(frozen=True)
class Entry:
    path: str
    kind: str
    mode: int
    size: int
    mtime: float
    link: str = ""


# -- commands ----------------------------------------------------------------------------


_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def env_names(command: str) -> list[str]:
    """The names a command refers to as ``${env:NAME}``, in order, each once."""
    return list(dict.fromkeys(m.group(1) for m in _ENV_REF.finditer(command)))


def expand(command: str, env: Mapping[str, str]) -> tuple[str, bytes | None]:
    """``command`` made ready for the host, and what to send on its standard input.

    Each ``${env:NAME}`` becomes ``"$NAME"``; the values travel on the command's standard input
    (one base64 line each, read and decoded by the shell before the command runs), so they are
    never part of the command text the host receives (which ``ps`` and logs show), nor of the
    config, the plan or the journal. ``env`` holds only the variables allowed to be passed
    (``ssh.pass_env``); any other name is refused. Without references the command is unchanged.
    """
    names = env_names(command)
    if not names:
        return command, None
    missing = [n for n in names if n not in env]
    if missing:
        raise PermanentError(
            f"environment variable {missing[0]} is not set or not in ssh.pass_env "
            "(used in a command)"
        )
    reads = " && ".join(
        f'IFS= read -r {n} && {n}=$(printf %s "${n}" | base64 -d) && export {n}' for n in names
    )
    body = _ENV_REF.sub(lambda m: f'"${m.group(1)}"', command)
    stdin = b"".join(base64.b64encode(env[n].encode()) + b"\n" for n in names)
    return f"{reads} && {{\n{body}\n}}", stdin


def _run_hooks(
    transport: Any,
    commands: tuple[str, ...],
    which: str,
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run hook commands in order; return '' or why the first failed. The command text is never
    quoted back (it may hold a password)."""
    for i, cmd in enumerate(commands, 1):
        try:
            text, stdin = expand(cmd, env or {})
            status, _out, err = run_command(transport, text, timeout, stdin=stdin)
        except (TransientError, PermanentError) as e:
            if "environment variable" in str(e):
                return f"{which} command #{i}: {e}"
            return f"{which} command #{i} did not complete: {e.__class__.__name__}"
        if status != 0:
            return f"{which} command #{i} failed with exit status {status}"
        del err
    return ""


# -- inventory ---------------------------------------------------------------------------


def _roots(req: PullRequest) -> tuple[str, ...]:
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


def inventory(transport: Any, req: PullRequest) -> tuple[list[Entry], list[dict[str, str]]]:
    """The host's entries under the requested paths (``find``), and the refused ones."""
    roots = _roots(req)
    # -H: a requested path that is a symlink is followed; symlinks below it are not.
    cmd = (
        "find -H " + " ".join(shlex.quote(p) for p in roots) + " -printf '%y %m %s %T@ %p\\0%l\\0'"
    )
    status, out, err = run_command(transport, cmd, req.command_timeout)
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

    roots = _roots(req)
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


# -- the tar stream into segments --------------------------------------------------------


class _SegmentSink:
    """Writes accepted members of the stream into the pull's segments, hashing file bodies."""

    def __init__(
        self,
        pd: PullDir,
        expected: dict[str, Entry],
        progress: Progress | None,
        roots: tuple[str, ...] = (),
    ):
        self.pd = pd
        self.expected = expected
        self.progress = progress
        self.roots = set(roots)
        self.followed: dict[str, str] = {}
        """Requested paths that are symlinks on the host -> their targets (followed)."""
        self.linked_files: list[Entry] = []
        """Requested paths that are symlinks to files: read over SFTP after the tar stream."""
        self.refused: list[dict[str, str]] = []
        self.sent_bytes = 0
        self.files = 0
        self._seg = 0
        self._f: BinaryIO | None = None
        self._good = 0
        self._records: list[FileRecord] = []
        self._current: tuple[Entry, Any] | None = None
        self._written = 0
        self._offset = 0
        self._reported = 0

    def _open(self) -> BinaryIO:
        if self._f is None:
            self._seg = self.pd.next_segment()
            # Kept open across members until the segment is finalized (``finish``).
            path = self.pd.segment_path(self._seg, part=True)
            fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)  # owner-only
            self._f = os.fdopen(fd, "wb", buffering=1 << 20)
            self._good = self._written = 0
        return self._f

    def member(self, m: Member, raw: bytes) -> bool:
        if m.name.startswith("/"):  # we ask for relative names: never store an absolute one
            self.refused.append({"path": m.name[:300], "reason": "absolute name in stream"})
            return False
        name = "/" + m.name.rstrip("/")
        entry = self.expected.get(name)
        if entry is None:
            self.refused.append({"path": name[:300], "reason": "not requested (sent by host)"})
            return False
        kinds = {"file": "f", "dir": "d", "symlink": "l"}
        if m.kind == "symlink" and entry.kind in ("d", "f") and name in self.roots:
            # A requested path that is a symlink: followed by the listing, sent by tar as the
            # link itself. A directory's contents come as members below it; a file is read
            # over SFTP after the stream (``linked_files``).
            self.followed[name] = m.linkname
            if entry.kind == "f":
                self.linked_files.append(entry)
            return False
        if kinds.get(m.kind) != entry.kind:
            self.refused.append({"path": name, "reason": f"host sent a {m.kind}"})
            return False
        if m.kind == "symlink" and m.linkname != entry.link:
            self.refused.append({"path": name, "reason": "symlink target differs from listing"})
            return False
        f = self._open()
        if m.mode & 0o6000:  # keep modes, but never setuid/setgid
            raw = _patch_mode(raw, m.mode & ~0o6000)
        f.write(raw)
        self._written += len(raw)
        self._offset = self._written
        self._current = (entry, hashlib.sha256() if m.kind == "file" else None)
        self._size = m.size
        return True

    def data(self, chunk: memoryview) -> None:
        assert self._f is not None and self._current is not None
        self._f.write(chunk)
        h = self._current[1]
        if h is not None:
            h.update(chunk)
        n = len(chunk)
        self._written += n
        self.sent_bytes += n
        if self.progress is not None and self.sent_bytes - self._reported >= PROGRESS_EVERY:
            self._reported = self.sent_bytes
            self.progress(self.sent_bytes, self.files)

    def end_member(self) -> None:
        assert self._f is not None and self._current is not None
        entry, h = self._current
        pad = -self._size % BLOCK
        if pad:
            self._f.write(b"\0" * pad)
            self._written += pad
        if h is not None:
            self._records.append(
                FileRecord(
                    entry.path,
                    self._size,
                    entry.mode & ~0o6000,
                    entry.mtime,
                    h.hexdigest(),
                    self._seg,
                    self._offset,
                )
            )
            self.files += 1
        self._current = None
        self._good = self._written
        if self._written >= SEGMENT_ROLL_BYTES:
            self.finish()

    def finish(self) -> None:
        """Finalize the open segment at the last whole member (also after a failure). If the
        store cannot take even that (disk full), the segment is dropped: its files are sent
        again next time, and nothing half-written is ever counted as received."""
        if self.progress is not None and self._reported != self.sent_bytes:
            self._reported = self.sent_bytes
            self.progress(self.sent_bytes, self.files)
        if self._f is None:
            return
        f, part = self._f, self.pd.segment_path(self._seg, part=True)
        self._f = None
        self._current = None
        try:
            with contextlib.suppress(OSError):
                f.flush()  # may fail when the disk is full: the truncate below cuts it anyway
            os.ftruncate(f.fileno(), self._good)
            os.lseek(f.fileno(), self._good, os.SEEK_SET)
            os.write(f.fileno(), b"\0" * (2 * BLOCK))
            os.fsync(f.fileno())
        except OSError:
            with contextlib.suppress(OSError):
                f.close()
            part.unlink(missing_ok=True)
            self._records = []
            raise
        with contextlib.suppress(OSError):
            f.close()
        if self._good == 0:
            part.unlink()
            return
        part.replace(self.pd.segment_path(self._seg, part=False))
        self.pd.add_records(self._records)
        self._records = []


def _patch_mode(raw: bytes, mode: int) -> bytes:
    header = bytearray(raw[-BLOCK:])
    header[100:108] = b"%07o\0" % mode
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return raw[:-BLOCK] + bytes(header)


# -- host checksums ----------------------------------------------------------------------


def pull(
    transport: Any,
    pd: PullDir,
    req: PullRequest,
    progress: Progress | None = None,
    *,
    host_label: str = "",
    user: str = "",
) -> PullReport:
    """Pull ``req.paths`` into ``pd``; see the module docstring. Raises TransientError when the
    connection failed (what completed is kept for the rerun)."""
    pd.prepare()
    pd.invalidate_manifest()
    started = datetime.now(UTC).isoformat()
    can_exec = exec_works(transport, req.command_timeout)
    if (req.before or req.after) and not can_exec:
        return PullReport(False, "before/after commands are configured but the host refuses exec")
    failed = _run_hooks(transport, req.before, "before", req.command_timeout, req.env)
    if failed:
        after = _run_hooks(transport, req.after, "after", req.command_timeout, req.env)
        return PullReport(False, failed + (f"; {after}" if after else ""))
    try:
        use_sftp = req.method == "sftp" or not can_exec
        report = _transfer(transport, pd, req, progress, started, host_label, user, use_sftp)
    finally:
        after_failed = _run_hooks(transport, req.after, "after", req.command_timeout, req.env)
    if after_failed:
        report.detail += f" (warning: {after_failed})"
    return report


def _transfer(
    transport: Any,
    pd: PullDir,
    req: PullRequest,
    progress: Progress | None,
    started: str,
    host_label: str,
    user: str,
    use_sftp: bool,
) -> PullReport:
    sftp = None
    if use_sftp:
        import paramiko  # type: ignore[import-untyped, unused-ignore]

        sftp = guarded("sftp", lambda: paramiko.SFTPClient.from_transport(transport))
    try:
        if sftp is not None:
            entries, refused = guarded("sftp listing", lambda: sftp_inventory(sftp, req))
        else:
            entries, refused = inventory(transport, req)
        files = [e for e in entries if e.kind == "f"]
        received = pd.received()
        hostsums = pd.hostsums()
        stale = {
            e.path
            for e in files
            if e.path in received
            and (
                received[e.path].size != e.size
                or received[e.path].mtime != e.mtime
                or (e.path in hostsums and hostsums[e.path][0] != received[e.path].sha256)
            )
        }
        pd.forget(stale)
        for p in stale:
            received.pop(p, None)
            hostsums.pop(p, None)
        to_send = [e for e in files if e.path not in received]
        to_hash = [e.path for e in files if e.path not in hostsums]
        method = (
            "sftp"
            if sftp is not None
            else choose_hasher(transport, req.verify_with, req.command_timeout, to_hash)
        )
        via = "sftp-reread" if method == "sftp" else f"host:{method}"
        listing = [e for e in entries if e.kind != "f"] + to_send

        sink = _SegmentSink(pd, {e.path: e for e in listing}, progress, _roots(req))
        hashed: dict[str, str] = {}
        hash_error: list[BaseException] = []

        def hash_worker() -> None:
            try:
                hashed.update(host_hashes(transport, method, to_hash, req.command_timeout))
            except BaseException as e:  # reported after the stream
                hash_error.append(e)

        worker = None
        if method != "sftp":
            worker = threading.Thread(target=hash_worker, name="host-sha256", daemon=True)
            worker.start()
        try:
            if sftp is not None:
                guarded("sftp transfer", lambda: _sftp_stream(sftp, listing, sink))
            elif listing:
                _stream(transport, listing, sink, req.command_timeout)
                if sink.linked_files:
                    # requested files that are symlinks: tar sent the link, SFTP reads the file
                    guarded("sftp transfer", lambda: _sftp_files(transport, sink))
        finally:
            try:
                guarded("backup store", sink.finish)
            finally:
                if worker is not None:
                    worker.join()
                guarded("backup store", lambda: pd.add_hostsums(hashed, via))
        if hash_error:
            raise translate(hash_error[0], "host checksums")
        if sftp is not None:
            pd.add_hostsums(guarded("sftp re-read", lambda: sftp_hashes(sftp, to_hash)), via)
        return _verify(
            pd, req, files, entries, refused + sink.refused, sink, via, started, host_label, user
        )
    finally:
        if sftp is not None:
            sftp.close()


def _sftp_stream(sftp: Any, listing: list[Entry], sink: _SegmentSink) -> None:
    """Fetch entries over SFTP, feeding the same sink as a tar stream would."""
    import tarfile

    types = {"f": tarfile.REGTYPE, "d": tarfile.DIRTYPE, "l": tarfile.SYMTYPE}
    kinds = {"f": "file", "d": "dir", "l": "symlink"}
    for e in listing:
        info = tarfile.TarInfo(e.path[1:])
        info.type = types[e.kind]
        info.mode = e.mode
        info.mtime = int(e.mtime)
        info.size = e.size if e.kind == "f" else 0
        info.linkname = e.link
        raw = info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
        member = Member(e.path[1:], kinds[e.kind], info.size, e.mode, e.mtime, e.link)
        if not sink.member(member, raw):
            continue
        if e.kind == "f":
            got = 0
            with sftp.open(e.path, "rb") as f:
                f.prefetch(e.size)
                while got < e.size:
                    chunk = f.read(min(RECV, e.size - got))
                    if not chunk:
                        break
                    got += len(chunk)
                    sink.data(memoryview(chunk))
            if got != e.size:
                raise EOFError(f"{e.path} changed size while being read")
        sink.end_member()


def _sftp_files(transport: Any, sink: _SegmentSink) -> None:
    """Read the requested files that are symlinks (followed) over SFTP into the same sink."""
    import paramiko  # type: ignore[import-untyped, unused-ignore]

    sftp = paramiko.SFTPClient.from_transport(transport)
    try:
        _sftp_stream(sftp, sink.linked_files, sink)
    finally:
        sftp.close()


def _stream(transport: Any, listing: list[Entry], sink: _SegmentSink, timeout: float) -> None:
    names = b"".join(e.path[1:].encode("utf-8", "surrogateescape") + b"\0" for e in listing)
    command = "tar -C / --null --no-recursion --verbatim-files-from --hard-dereference -T - -cf -"

    def go() -> None:
        chan = transport.open_session()
        try:
            chan.settimeout(timeout)
            chan.exec_command(command)
            chan.sendall(names)
            chan.shutdown_write()
            parser = TarParser(sink)
            while True:
                data = chan.recv(RECV)
                if not data:
                    break
                parser.feed(data)
            status = exit_status(chan, transport, time.monotonic() + timeout)
            err = b""
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(RECV)
            if status == -1:
                raise EOFError("connection closed before tar finished")
            try:
                parser.close()
            except TarError as e:
                raise EOFError(f"tar stream ended early: {e}") from None
            if status not in (0, 1):  # 1: "file changed as we read it"; the checks decide
                raise PermanentError(f"tar failed on the host (exit {status}): {tail(err)}")
        finally:
            chan.close()

    try:
        guarded("tar stream", go)
    except TarError as e:
        raise PermanentError(f"the host sent an invalid tar stream: {e}") from None


def _verify(
    pd: PullDir,
    req: PullRequest,
    files: list[Entry],
    entries: list[Entry],
    refused: list[dict[str, str]],
    sink: _SegmentSink,
    via: str,
    started: str,
    host_label: str,
    user: str,
) -> PullReport:
    received = pd.received()
    hostsums = pd.hostsums()
    problems: list[str] = []
    bad: set[str] = set()
    for e in files:
        rec = received.get(e.path)
        host = hostsums.get(e.path)
        if rec is None:
            problems.append(f"{e.path}: not received")
        elif host is None:
            problems.append(f"{e.path}: no checksum from the host")
        elif rec.sha256 != host[0]:
            problems.append(
                f"{e.path}: sha256 differs (host {host[0][:12]}, got {rec.sha256[:12]})"
            )
            bad.add(e.path)
        elif rec.size != e.size:
            problems.append(f"{e.path}: size differs (host {e.size}, got {rec.size})")
            bad.add(e.path)
    pd.forget(bad)
    total = sum(received[e.path].size for e in files if e.path in received)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        return PullReport(
            False,
            f"{len(problems)} of {len(files)} files not verified: "
            + "; ".join(problems[:3])
            + more,
            files=len(files) - len(problems),
            total_bytes=total,
            sent_bytes=sink.sent_bytes,
            refused=refused,
        )
    unaccepted, accepted = split_refused(refused, req.accept_refused)
    rule = f"pull {req.rule!r}" if req.rule else "the pull"
    if unaccepted:
        listed = "; ".join(f"{r['path']} ({r['reason']})" for r in unaccepted[:3])
        more = f" (and {len(unaccepted) - 3} more)" if len(unaccepted) > 3 else ""
        return PullReport(
            False,
            f"{rule} refused {len(unaccepted)} entries, so it does not hold them: {listed}{more}; "
            "list them in the rule's accept_refused to go ahead without them",
            files=len(files),
            total_bytes=total,
            sent_bytes=sink.sent_bytes,
            refused=refused,
        )
    if not files and not req.allow_empty:
        return PullReport(
            False,
            f"{rule} verified 0 files under {', '.join(req.paths)}: it copied nothing (set "
            "allow_empty = true on the rule if that is expected)",
            sent_bytes=sink.sent_bytes,
            refused=refused,
        )
    segments = sorted(pd.finalized())
    manifest = Manifest(
        key=pd.key,
        server=req.server,
        host=host_label,
        user=user,
        paths=list(req.paths),
        excludes=list(req.excludes),
        started=started,
        finished=datetime.now(UTC).isoformat(),
        verified_with=via,
        files=[
            {
                "path": e.path,
                "size": e.size,
                "mode": e.mode & ~0o6000,
                "mtime": e.mtime,
                "sha256": received[e.path].sha256,
                "segment": received[e.path].segment,
                "offset": received[e.path].offset,
            }
            for e in files
        ],
        dirs=[{"path": e.path, "mode": e.mode, "mtime": e.mtime} for e in entries if e.kind == "d"],
        symlinks=[{"path": e.path, "target": e.link} for e in entries if e.kind == "l"],
        refused=refused,
        followed=[{"path": p, "target": t} for p, t in sorted(sink.followed.items())],
        origin=dict(req.origin),
        segments=[
            {
                "name": pd.segment_path(n, part=False).name,
                "size": pd.segment_path(n, part=False).stat().st_size,
            }
            for n in segments
        ],
        total_bytes=total,
    )
    digest, _size = pd.write_manifest(manifest)
    detail = f"{len(files)} files, {total} bytes verified ({via})"
    if accepted:
        detail += f"; {len(accepted)} refused entries accepted by the rule (see manifest)"
    return PullReport(
        True,
        detail,
        files=len(files),
        total_bytes=total,
        sent_bytes=sink.sent_bytes,
        refused=refused,
        manifest_sha256=digest,
        manifest_path=str(pd.manifest_path),
        accepted_refusals=accepted,
    )


def split_refused(
    refused: list[dict[str, str]], accept: tuple[str, ...] | None
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(refusals that fail the pull, refusals the rule accepts by a glob on their path)."""
    if accept is None:
        return [], list(refused)
    bad: list[dict[str, str]] = []
    ok: list[dict[str, str]] = []
    for r in refused:
        (ok if any(fnmatch.fnmatchcase(r["path"], g) for g in accept) else bad).append(r)
    return bad, ok
