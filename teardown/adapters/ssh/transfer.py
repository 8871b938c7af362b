"""Receiving a pull's entries into the store: ``tar`` streams (or SFTP reads when the host
refuses exec) parsed as they arrive, each accepted member written to a tar segment with its file
body hashed on the way.

The streams carry exactly the listed entries that are not yet verified in the store. A big pull
is split into up to ``streams`` parallel streams of at least ``STREAM_MIN_BYTES`` each (files
balanced by size; directories and symlinks in the first), each with its own sink and segments;
each goes through OpenSSH's ``ssh`` when a link is given (``teardown.adapters.ssh.openssh``),
else over its own channel of the paramiko transport. A dropped connection keeps every file
completed before it (each segment is cut at its last whole member), so a rerun sends only what
was not yet received.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from teardown.adapters.ssh import openssh
from teardown.adapters.ssh.connect import guarded, translate
from teardown.adapters.ssh.pull_types import Entry, Progress
from teardown.adapters.ssh.remote import RECV, exit_status, host_hashes, tail
from teardown.adapters.ssh.tarstream import BLOCK, Member, TarError, TarParser
from teardown.adapters.store import SEGMENT_ROLL_BYTES, FileRecord, PullDir
from teardown.core.errors import PermanentError

PROGRESS_EVERY = 1 << 20
"""Report progress at most once per MiB (and at the end)."""
WRITE_BUFFER = 64 << 10
"""Headers gather in a 64 KiB buffer; a body chunk at least that big is written straight from
the received buffer (Python's buffered writer copies only what fits its buffer)."""
WRITEBACK_EVERY = 32 << 20
"""Every 32 MiB written, the kernel is asked to start writing that range to disk (and to drop
it from the page cache once written): the ``fsync`` that ends a segment then waits for little,
and a backup does not push the host's other data out of the cache."""
STREAM_MIN_BYTES = 64 << 20
"""A pull is split into parallel streams only when each gets at least this much file data:
below it, another connection costs more than it saves."""


_KIND_LETTER = {"file": "f", "dir": "d", "symlink": "l"}
"""A stream member's kind as the listing's letter."""


class _Shared:
    """What the sinks of one pull share: segment numbers, the index, the progress total."""

    def __init__(self, pd: PullDir, progress: Progress | None) -> None:
        self.lock = threading.Lock()
        self.stop = threading.Event()
        """Set when one stream failed: the others stop at their next chunk (what they
        completed is kept), so that a failure or Ctrl-C is not held up by a long stream."""
        self.progress = progress
        self._next = pd.next_segment()
        self._counts: dict[int, tuple[int, int]] = {}

    def segment(self) -> int:
        with self.lock:
            n = self._next
            self._next += 1
            return n

    def add_records(self, pd: PullDir, records: list[FileRecord]) -> None:
        with self.lock:
            pd.add_records(records)

    def report(self, sink: int, sent: int, files: int) -> None:
        if self.progress is None:
            return
        with self.lock:
            self._counts[sink] = (sent, files)
            total = [sum(c) for c in zip(*self._counts.values(), strict=True)]
            self.progress(total[0], total[1])


class SegmentSink:
    """Writes accepted members of the stream into the pull's segments, hashing file bodies."""

    def __init__(
        self,
        pd: PullDir,
        expected: dict[str, Entry],
        progress: Progress | None,
        roots: tuple[str, ...] = (),
        shared: _Shared | None = None,
    ):
        self.pd = pd
        self.expected = expected
        self.progress = progress
        self.shared = shared if shared is not None else _Shared(pd, progress)
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
        self.committed: list[FileRecord] = []
        """The records of the finalized segments (as added to the index)."""
        self._current: tuple[Entry, Any] | None = None
        self._written = 0
        self._flushed = 0
        self._offset = 0
        self._reported = 0

    def _open(self) -> BinaryIO:
        if self._f is None:
            self._seg = self.shared.segment()
            # Kept open across members until the segment is finalized (``finish``).
            path = self.pd.segment_path(self._seg, part=True)
            fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)  # owner-only
            self._f = os.fdopen(fd, "wb", buffering=WRITE_BUFFER)
            self._good = self._written = self._flushed = 0
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
        if m.kind == "symlink" and entry.kind in ("d", "f") and name in self.roots:
            # A requested path that is a symlink: followed by the listing, sent by tar as the
            # link itself. A directory's contents come as members below it; a file is read
            # over SFTP after the stream (``linked_files``).
            self.followed[name] = m.linkname
            if entry.kind == "f":
                self.linked_files.append(entry)
            return False
        if _KIND_LETTER.get(m.kind) != entry.kind:
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
        if self.shared.stop.is_set():
            raise EOFError("stopped: another stream of this pull failed")
        self._f.write(chunk)
        h = self._current[1]
        if h is not None:
            h.update(chunk)
        n = len(chunk)
        self._written += n
        self.sent_bytes += n
        if self._written - self._flushed >= WRITEBACK_EVERY:
            self._start_writeback()
        if self.progress is not None and self.sent_bytes - self._reported >= PROGRESS_EVERY:
            self._reported = self.sent_bytes
            self.shared.report(id(self), self.sent_bytes, self.files)

    def _start_writeback(self) -> None:
        """Start writing what was written since the last call to disk, without waiting."""
        assert self._f is not None
        self._f.flush()
        with contextlib.suppress(OSError, AttributeError):  # advice only (not on every OS)
            os.posix_fadvise(
                self._f.fileno(),
                self._flushed,
                self._written - self._flushed,
                os.POSIX_FADV_DONTNEED,
            )
        self._flushed = self._written

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
            self.shared.report(id(self), self.sent_bytes, self.files)
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
        self.shared.add_records(self.pd, self._records)
        self.committed += self._records
        self._records = []


def _patch_mode(raw: bytes, mode: int) -> bytes:
    """The member's raw header with its mode set to ``mode`` and its checksum recomputed."""
    header = bytearray(raw[-BLOCK:])
    header[100:108] = b"%07o\0" % mode
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return raw[:-BLOCK] + bytes(header)


def sftp_stream(sftp: Any, listing: list[Entry], sink: SegmentSink) -> None:
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


def sftp_linked_files(transport: Any, sink: SegmentSink) -> None:
    """Read the requested files that are symlinks (followed) over SFTP into the same sink."""
    import paramiko  # type: ignore[import-untyped, unused-ignore]

    sftp = paramiko.SFTPClient.from_transport(transport)
    try:
        sftp_stream(sftp, sink.linked_files, sink)
    finally:
        sftp.close()


TAR = "tar -C / --null --no-recursion --verbatim-files-from --hard-dereference -b 256 -T - -cf -"
"""Names on standard input, nothing recursed into; 128 KiB records (the default 10 KiB ones
cost the host a write per 10 KiB). The stream's end is padded to a record: the parser stops at
the end-of-archive marker."""


def _check_tar(status: int, parser: TarParser, err: str) -> None:
    """Raise unless ``tar`` exited well and its stream ended whole."""
    if status == -1:
        raise EOFError("connection closed before tar finished")
    try:
        parser.close()
    except TarError as e:
        raise EOFError(f"tar stream ended early: {e}") from None
    if status not in (0, 1):  # 1: "file changed as we read it"; the checks decide
        raise PermanentError(f"tar failed on the host (exit {status}): {err}")


def _channel_tar(transport: Any, names: bytes, sink: SegmentSink, timeout: float) -> None:
    """``tar`` over an exec channel of the paramiko transport."""
    chan = transport.open_session()
    try:
        chan.settimeout(timeout)
        chan.exec_command(TAR)
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
        _check_tar(status, parser, tail(err))
    finally:
        chan.close()


def tar_stream(
    transport: Any,
    listing: list[Entry],
    sink: SegmentSink,
    timeout: float,
    link: openssh.OpensshLink | None = None,
    session: openssh.Session | None = None,
) -> str:
    """Have ``tar`` on the host send exactly ``listing`` and parse the stream into ``sink`` as
    it arrives: through ``ssh`` when ``link`` is given (in ``session`` when one was started
    for it) and it can log in, else over the paramiko transport. Return a note when ``ssh``
    could not be used, else ''."""
    names = b"".join(e.path[1:].encode("utf-8", "surrogateescape") + b"\0" for e in listing)
    note = ""
    try:
        if link is not None:
            parser = TarParser(sink)
            try:
                status, err = openssh.run(link, TAR, names, parser.feed, timeout, session)
            except openssh.OpensshUnavailable as e:
                note = f"OpenSSH's ssh could not be used ({e}): streamed over paramiko"
            else:
                _check_tar(status, parser, err)
                return ""
        guarded("tar stream", lambda: _channel_tar(transport, names, sink, timeout))
    except TarError as e:
        raise PermanentError(f"the host sent an invalid tar stream: {e}") from None
    except (OSError, EOFError) as e:
        raise translate(e, "tar stream") from None
    return note


def verified_with(method: str) -> str:
    """How the host's checksums were made, as the manifest records it."""
    return "sftp-reread" if method == "sftp" else f"host:{method}"


def split_streams(listing: list[Entry], streams: int, min_bytes: int) -> list[list[Entry]]:
    """``listing`` as up to ``streams`` parts of at least ``min_bytes`` of files each: files
    balanced by size (largest first, each to the lightest part), kept in listing order within
    a part; directories and symlinks lead the first part (its segment is numbered first)."""
    files = [e for e in listing if e.kind == "f"]
    total = sum(e.size for e in files)
    n = max(1, min(streams, total // max(1, min_bytes), len(files)))
    if n == 1:
        return [listing]
    parts: list[list[Entry]] = [[] for _ in range(n)]
    loads = [0] * n
    for e in sorted(files, key=lambda e: -e.size):
        i = loads.index(min(loads))
        parts[i].append(e)
        loads[i] += e.size
    order = {e.path: k for k, e in enumerate(listing)}
    parts = [sorted(part, key=lambda e: order[e.path]) for part in parts]
    parts[0] = [e for e in listing if e.kind != "f"] + parts[0]
    return parts


@dataclass
class Streamed:
    """What the streams of one pull received, merged over its sinks."""

    sinks: list[SegmentSink]
    notes: list[str] = field(default_factory=list)
    """Why ``ssh`` was not used for a stream, if it was meant to be."""
    how: str = ""
    """``paramiko`` or ``openssh``, with the number of streams (``openssh x2``)."""
    hashed: dict[str, str] = field(default_factory=dict)
    """The host's checksums made in this pull (as added to the store)."""

    @property
    def refused(self) -> list[dict[str, str]]:
        return [r for s in self.sinks for r in s.refused]

    @property
    def followed(self) -> dict[str, str]:
        return {p: t for s in self.sinks for p, t in s.followed.items()}

    @property
    def sent_bytes(self) -> int:
        return sum(s.sent_bytes for s in self.sinks)


@dataclass(frozen=True)
class StreamPlan:
    """How a pull's entries travel: at most ``streams`` parallel streams of at least
    ``min_bytes`` each; through ``link`` (``ssh``) when given, the first in ``first`` when it
    was started early (its login overlaps the listing)."""

    streams: int = 1
    min_bytes: int = STREAM_MIN_BYTES
    link: openssh.OpensshLink | None = None
    first: openssh.Session | None = None


def _run_parts(
    jobs: list[Callable[[], str]], stop: threading.Event
) -> tuple[list[str], list[BaseException]]:
    """Run each job (the first in this thread, the others each in a thread of its own); return
    their notes and errors, the first failure first. A failure sets ``stop``."""
    notes: list[str] = []
    errors: list[BaseException] = []

    def one(job: Callable[[], str]) -> None:
        try:
            note = job()
            if note:
                notes.append(note)
        except BaseException as e:  # raised after every stream ended
            errors.append(e)
            stop.set()

    threads = [
        threading.Thread(target=one, args=(job,), name=f"pull-stream-{i}", daemon=True)
        for i, job in enumerate(jobs[1:], 1)
    ]
    for t in threads:
        t.start()
    if jobs:
        one(jobs[0])
    for t in threads:
        t.join()
    return notes, errors


def _finish_all(sinks: list[SegmentSink]) -> None:
    """Finalize every sink's segment; raise the first failure after trying them all."""
    failed: list[BaseException] = []
    for sink in sinks:
        try:
            guarded("backup store", sink.finish)
        except BaseException as e:
            failed.append(e)
    if failed:
        raise failed[0]


def receive(
    transport: Any,
    sftp: Any,
    make_sink: Callable[[_Shared | None], SegmentSink],
    listing: list[Entry],
    method: str,
    to_hash: list[str],
    timeout: float,
    plan: StreamPlan = StreamPlan(),
) -> Streamed:
    """Stream ``listing`` into sinks made by ``make_sink`` (over ``sftp`` when given, else
    ``tar`` streams as ``plan`` says) while the host hashes ``to_hash`` with ``method`` on a
    second channel; store both. Every segment is finalized and the host's checksums recorded
    even when a stream fails; the first failure is raised after all streams ended, a failure
    of the hashing after that."""
    via = verified_with(method)
    hashed: dict[str, str] = {}
    hash_error: list[BaseException] = []

    parts = [listing] if sftp is not None else split_streams(listing, plan.streams, plan.min_bytes)
    first = make_sink(None)
    sinks = [first] + [make_sink(first.shared) for _ in parts[1:]]
    stored = threading.Event()

    def hash_worker() -> None:
        try:
            hashed.update(host_hashes(transport, method, to_hash, timeout))
            # Stored as soon as they arrive (while the streams still run), not after them.
            first.pd.add_hostsums(hashed, via)
            stored.set()
        except BaseException as e:  # reported after the stream
            hash_error.append(e)

    worker = None
    if method != "sftp":
        worker = threading.Thread(target=hash_worker, name="host-sha256", daemon=True)
        worker.start()
    link = plan.link
    streamed = Streamed(sinks, how=f"{'openssh' if link else 'paramiko'} x{len(parts)}")
    try:
        if sftp is not None:
            streamed.how = "sftp"
            guarded("sftp transfer", lambda: sftp_stream(sftp, listing, first))
        elif listing:
            if len(parts) > 1 and any(e.kind != "f" for e in parts[0]):
                first._open()  # the part with the directories gets the first segment
            jobs: list[Callable[[], str]] = [
                functools.partial(
                    tar_stream, transport, part, sink, timeout, link, plan.first if i == 0 else None
                )
                for i, (part, sink) in enumerate(zip(parts, sinks, strict=True))
            ]
            notes, errors = _run_parts(jobs, first.shared.stop)
            streamed.notes = notes
            if link is not None and notes:  # those parts went over paramiko after all
                over_ssh = len(parts) - len(notes)
                streamed.how = f"openssh x{over_ssh}, paramiko x{len(notes)}"
            if errors:
                raise errors[0]
            linked = [e for s in sinks for e in s.linked_files]
            if linked:
                # requested files that are symlinks: tar sent the link, SFTP reads the file
                first.linked_files = linked
                guarded("sftp transfer", lambda: sftp_linked_files(transport, first))
    finally:
        try:
            _finish_all(sinks)
        finally:
            if worker is not None:
                worker.join()
            if not stored.is_set():
                guarded("backup store", lambda: first.pd.add_hostsums(hashed, via))
            streamed.hashed = hashed
    if hash_error:
        raise translate(hash_error[0], "host checksums")
    return streamed
