"""Receiving a pull's entries into the store: a ``tar`` stream over one exec channel (or SFTP
reads when the host refuses exec) parsed as it arrives, each accepted member written to a tar
segment with its file body hashed on the way.

The stream carries exactly the listed entries that are not yet verified in the store. A dropped
connection keeps every file completed before it (the segment is cut at the last whole member),
so a rerun sends only what was not yet received.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from typing import Any, BinaryIO

from teardown.adapters.ssh.connect import guarded, translate
from teardown.adapters.ssh.pull_types import Entry, Progress
from teardown.adapters.ssh.remote import RECV, exit_status, host_hashes, tail
from teardown.adapters.ssh.tarstream import BLOCK, Member, TarError, TarParser
from teardown.adapters.store import SEGMENT_ROLL_BYTES, FileRecord, PullDir
from teardown.core.errors import PermanentError

PROGRESS_EVERY = 1 << 20
"""Report progress at most once per MiB (and at the end)."""


class SegmentSink:
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


def tar_stream(transport: Any, listing: list[Entry], sink: SegmentSink, timeout: float) -> None:
    """Have ``tar`` on the host send exactly ``listing`` (names on its standard input, nothing
    recursed into) and parse the stream into ``sink`` as it arrives."""
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


def verified_with(method: str) -> str:
    """How the host's checksums were made, as the manifest records it."""
    return "sftp-reread" if method == "sftp" else f"host:{method}"


def receive(
    transport: Any,
    sftp: Any,
    sink: SegmentSink,
    listing: list[Entry],
    method: str,
    to_hash: list[str],
    timeout: float,
) -> None:
    """Stream ``listing`` into ``sink`` (over ``sftp`` when given, else ``tar``) while the host
    hashes ``to_hash`` with ``method`` on a second channel; store both. The segment is finalized
    and the host's checksums recorded even when the stream fails; a failure of the hashing is
    raised after the stream."""
    via = verified_with(method)
    hashed: dict[str, str] = {}
    hash_error: list[BaseException] = []

    def hash_worker() -> None:
        try:
            hashed.update(host_hashes(transport, method, to_hash, timeout))
        except BaseException as e:  # reported after the stream
            hash_error.append(e)

    worker = None
    if method != "sftp":
        worker = threading.Thread(target=hash_worker, name="host-sha256", daemon=True)
        worker.start()
    try:
        if sftp is not None:
            guarded("sftp transfer", lambda: sftp_stream(sftp, listing, sink))
        elif listing:
            tar_stream(transport, listing, sink, timeout)
            if sink.linked_files:
                # requested files that are symlinks: tar sent the link, SFTP reads the file
                guarded("sftp transfer", lambda: sftp_linked_files(transport, sink))
    finally:
        try:
            guarded("backup store", sink.finish)
        finally:
            if worker is not None:
                worker.join()
            guarded("backup store", lambda: sink.pd.add_hostsums(hashed, via))
    if hash_error:
        raise translate(hash_error[0], "host checksums")
