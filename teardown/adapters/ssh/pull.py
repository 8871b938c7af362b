"""Pulling paths from a host into the store, verified end to end, resumable.

One pull, over one SSH connection:

1. ``before`` commands (a failure or timeout means no backup, never a partial one);
2. an inventory of the paths with ``find -H`` (type, mode, size, mtime, link target): a
   requested path that is itself a symlink is followed (the path the user named is what they
   want), symlinks inside it never are; checked: every name must be absolute, inside a requested
   path, free of ``..``, empty components and control characters; special files and symlinks
   pointing outside the set are refused and recorded (``teardown.adapters.ssh.inventory``);
3. at the same time: ``tar`` streams exactly the listed entries that are not yet verified in
   the store (a big pull in up to ``streams`` parallel streams, through OpenSSH's ``ssh`` pinned
   to the verified host key when a link is given), while the host hashes every file it has not
   hashed yet (``openssl`` when present, it runs about 4x faster than ``sha256sum`` here, else
   ``sha256sum``, else a second read over SFTP); each stream is parsed as it arrives, each file
   hashed and written to a tar segment (``teardown.adapters.ssh.transfer``);
4. every file's local sha256 and size are compared with the host's; any difference fails the
   pull and forgets that file, so a rerun fetches it again; so does a pull that verified no file
   at all (unless ``allow_empty``) and any refused entry the rule does not list in
   ``accept_refused``: a pull counts only if it holds what was asked
   (``teardown.adapters.ssh.pull_check``);
5. ``after`` commands, whether or not the transfer succeeded.

A dropped connection keeps every file completed before it (the segment is cut at the last whole
member), so a rerun sends only what was not yet received.
"""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from teardown.adapters.ssh import openssh
from teardown.adapters.ssh.connect import guarded
from teardown.adapters.ssh.inventory import (
    classify,
    inventory,
    listing_command,
    requested_roots,
    sftp_inventory,
)
from teardown.adapters.ssh.openssh import OpensshLink
from teardown.adapters.ssh.pull_check import Received, check_pull, split_refused
from teardown.adapters.ssh.pull_types import Entry, Progress, PullReport, PullRequest
from teardown.adapters.ssh.remote import (
    choose_hasher,
    exec_works,
    probe_then,
    run_command,
    sftp_hashes,
)
from teardown.adapters.ssh.transfer import TAR, SegmentSink, StreamPlan, receive, verified_with
from teardown.adapters.store import FileRecord, PullDir
from teardown.core.errors import PermanentError, TransientError

__all__ = [
    "Entry",
    "Progress",
    "PullReport",
    "PullRequest",
    "classify",
    "env_names",
    "expand",
    "pull",
    "split_refused",
]


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


# -- the pull ----------------------------------------------------------------------------


def pull(
    transport: Any,
    pd: PullDir,
    req: PullRequest,
    progress: Progress | None = None,
    *,
    host_label: str = "",
    user: str = "",
    link: OpensshLink | None = None,
) -> PullReport:
    """Pull ``req.paths`` into ``pd``; see the module docstring. ``link``: how ``ssh`` reaches
    the same host (``teardown.adapters.ssh.openssh.link_for``), for the ``tar`` streams. Raises
    TransientError when the connection failed (what completed is kept for the rerun)."""
    pd.prepare()
    pd.invalidate_manifest()
    started = datetime.now(UTC).isoformat()
    if req.client == "paramiko" or req.method != "tar":
        link = None
    # The first stream's ssh logs in while the host is probed and listed (saves its login's
    # 0.1-0.2 s); after the before commands when there are some (they may take long).
    sessions = [openssh.Session(link, TAR)] if link is not None and not req.before else []
    try:
        return _pull(transport, pd, req, progress, started, (host_label, user), link, sessions)
    finally:
        for session in sessions:
            session.close()


def _pull(
    transport: Any,
    pd: PullDir,
    req: PullRequest,
    progress: Progress | None,
    started: str,
    who: tuple[str, str],
    link: OpensshLink | None,
    sessions: list[openssh.Session],
) -> PullReport:
    """Steps 1 to 5 of the module docstring. ``sessions``: the first stream's ssh if it was
    started already; else it is started here and added (the caller closes them)."""
    listed = None
    if not req.before and req.method == "tar":
        # Without before commands, the listing runs in the probe's own exec request: one
        # round trip fewer (about 45 ms against OpenSSH here).
        listed = probe_then(transport, listing_command(req), req.command_timeout)
        can_exec = listed is not None
    else:
        can_exec = exec_works(transport, req.command_timeout)
    if (req.before or req.after) and not can_exec:
        return PullReport(False, "before/after commands are configured but the host refuses exec")
    failed = _run_hooks(transport, req.before, "before", req.command_timeout, req.env)
    if failed:
        after = _run_hooks(transport, req.after, "after", req.command_timeout, req.env)
        return PullReport(False, failed + (f"; {after}" if after else ""))
    try:
        use_sftp = req.method == "sftp" or not can_exec
        if link is not None and not sessions and not use_sftp:
            sessions.append(openssh.Session(link, TAR))
        plan = StreamPlan(
            req.streams, req.stream_min_bytes, link, sessions[0] if sessions else None
        )
        report = _transfer(transport, pd, req, progress, started, who, plan, use_sftp, listed)
    finally:
        after_failed = _run_hooks(transport, req.after, "after", req.command_timeout, req.env)
    if after_failed:
        report.detail += f" (warning: {after_failed})"
    return report


@contextlib.contextmanager
def _sftp_session(transport: Any, wanted: bool) -> Iterator[Any]:
    """An SFTP client over ``transport`` when ``wanted``, closed afterwards; else None."""
    if not wanted:
        yield None
        return
    import paramiko  # type: ignore[import-untyped, unused-ignore]

    sftp = guarded("sftp", lambda: paramiko.SFTPClient.from_transport(transport))
    try:
        yield sftp
    finally:
        sftp.close()


def _still_missing(
    pd: PullDir, files: list[Entry]
) -> tuple[list[Entry], list[str], dict[str, FileRecord], dict[str, tuple[str, str]]]:
    """(the files to send, the files the host must hash, the records and host checksums kept
    from earlier pulls). A file received earlier is kept only if its size and mtime are
    unchanged and its host checksum, if any, matches the stored one; otherwise the store
    forgets it and it is sent and hashed again."""
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
    return to_send, to_hash, received, hostsums


def _transfer(
    transport: Any,
    pd: PullDir,
    req: PullRequest,
    progress: Progress | None,
    started: str,
    who: tuple[str, str],
    plan: StreamPlan,
    use_sftp: bool,
    listed: tuple[int, bytes, bytes] | None = None,
) -> PullReport:
    """List, receive and check: steps 2 to 4 of the module docstring. ``who``: the host's label
    and the user, for the manifest; ``listed``: the listing command's answer, if it ran."""
    with _sftp_session(transport, use_sftp) as sftp:
        if sftp is not None:
            entries, refused = guarded("sftp listing", lambda: sftp_inventory(sftp, req))
        else:
            entries, refused = inventory(transport, req, listed)
        files = [e for e in entries if e.kind == "f"]
        to_send, to_hash, kept, sums = _still_missing(pd, files)
        method = (
            "sftp"
            if sftp is not None
            else choose_hasher(transport, req.verify_with, req.command_timeout, to_hash)
        )
        via = verified_with(method)
        listing = [e for e in entries if e.kind != "f"] + to_send
        expected = {e.path: e for e in listing}
        roots = requested_roots(req)
        streamed = receive(
            transport,
            sftp,
            lambda shared: SegmentSink(pd, expected, progress, roots, shared),
            listing,
            method,
            to_hash,
            req.command_timeout,
            plan,
        )
        if method == "sftp":  # nothing hashed on the host: read every file a second time
            with _sftp_session(transport, sftp is None) as opened:
                reader = sftp if sftp is not None else opened
                reread = guarded("sftp re-read", lambda: sftp_hashes(reader, to_hash))
            pd.add_hostsums(reread, via)
            streamed.hashed.update(reread)
        # What this pull stored, added to what earlier ones kept: as the index and the host
        # checksums on disk now say, without reading them back.
        kept.update((r.path, r) for s in streamed.sinks for r in s.committed)
        sums.update((path, (digest, via)) for path, digest in streamed.hashed.items())
        got = Received(
            files,
            entries,
            refused + streamed.refused,
            streamed.followed,
            streamed.sent_bytes,
            via,
            records=kept,
            hostsums=sums,
        )
        report = check_pull(pd, req, got, started=started, host_label=who[0], user=who[1])
        report.streamed = streamed.how
        if report.verified:
            report.detail += f" over {streamed.how}"
        if streamed.notes:
            report.detail += f" (note: {streamed.notes[0]})"
        return report
