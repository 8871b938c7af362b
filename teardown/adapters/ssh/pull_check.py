"""The verdict on a pull once its transfer is over, and its manifest.

Every file's local sha256 and size are compared with the host's; any difference fails the pull
and forgets that file, so a rerun fetches it again; so does a pull that verified no file at all
(unless ``allow_empty``) and any refused entry the rule does not list in ``accept_refused``: a
pull counts only if it holds what was asked. Only then is ``manifest.json`` written.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import UTC, datetime

from teardown.adapters.ssh.pull_types import Entry, PullReport, PullRequest
from teardown.adapters.store import FileRecord, Manifest, PullDir


@dataclass
class Received:
    """What a transfer listed and received, for the checks after it."""

    files: list[Entry]
    """The host's files, whether received in this pull or an earlier one."""
    entries: list[Entry]
    """Every entry listed and accepted: files, directories and symlinks."""
    refused: list[dict[str, str]]
    """Entries refused by the inventory or in the stream, with why."""
    followed: dict[str, str]
    """Requested paths that are symlinks on the host -> their targets (followed)."""
    sent_bytes: int
    """File bytes received in this pull."""
    via: str
    """How the host's checksums were made (``host:openssl``, ``host:sha256sum``,
    ``sftp-reread``)."""
    records: dict[str, FileRecord] | None = None
    """The store's records by path, when the caller has them (else read from the index)."""
    hostsums: dict[str, tuple[str, str]] | None = None
    """The host's checksums by path, when the caller has them (else read from the store)."""


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


def _mismatches(
    files: list[Entry],
    received: dict[str, FileRecord],
    hostsums: dict[str, tuple[str, str]],
) -> tuple[list[str], set[str]]:
    """(one line per file not verified, the files whose stored copy is wrong)."""
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
    return problems, bad


def _incomplete(
    req: PullRequest, got: Received, unaccepted: list[dict[str, str]], total: int
) -> PullReport | None:
    """The failed report of a pull that does not hold what was asked, else None."""
    rule = f"pull {req.rule!r}" if req.rule else "the pull"
    if unaccepted:
        listed = "; ".join(f"{r['path']} ({r['reason']})" for r in unaccepted[:3])
        more = f" (and {len(unaccepted) - 3} more)" if len(unaccepted) > 3 else ""
        return PullReport(
            False,
            f"{rule} refused {len(unaccepted)} entries, so it does not hold them: {listed}{more}; "
            "list them in the rule's accept_refused to go ahead without them",
            files=len(got.files),
            total_bytes=total,
            sent_bytes=got.sent_bytes,
            refused=got.refused,
        )
    if not got.files and not req.allow_empty:
        return PullReport(
            False,
            f"{rule} verified 0 files under {', '.join(req.paths)}: it copied nothing (set "
            "allow_empty = true on the rule if that is expected)",
            sent_bytes=got.sent_bytes,
            refused=got.refused,
        )
    return None


def _manifest(
    pd: PullDir,
    req: PullRequest,
    got: Received,
    received: dict[str, FileRecord],
    total: int,
    *,
    started: str,
    host_label: str,
    user: str,
) -> Manifest:
    """The manifest of a verified pull."""
    segments = sorted(pd.finalized())
    return Manifest(
        key=pd.key,
        server=req.server,
        host=host_label,
        user=user,
        paths=list(req.paths),
        excludes=list(req.excludes),
        started=started,
        finished=datetime.now(UTC).isoformat(),
        verified_with=got.via,
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
            for e in got.files
        ],
        dirs=[
            {"path": e.path, "mode": e.mode, "mtime": e.mtime} for e in got.entries if e.kind == "d"
        ],
        symlinks=[{"path": e.path, "target": e.link} for e in got.entries if e.kind == "l"],
        refused=got.refused,
        followed=[{"path": p, "target": t} for p, t in sorted(got.followed.items())],
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


def check_pull(
    pd: PullDir,
    req: PullRequest,
    got: Received,
    *,
    started: str,
    host_label: str,
    user: str,
) -> PullReport:
    """Compare what was received with the host's checksums, forget the files that differ, and
    write the manifest when the pull holds everything asked (see above)."""
    received = pd.received() if got.records is None else got.records
    hostsums = pd.hostsums() if got.hostsums is None else got.hostsums
    problems, bad = _mismatches(got.files, received, hostsums)
    pd.forget(bad)
    files = got.files
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
            sent_bytes=got.sent_bytes,
            refused=got.refused,
        )
    unaccepted, accepted = split_refused(got.refused, req.accept_refused)
    failed = _incomplete(req, got, unaccepted, total)
    if failed is not None:
        return failed
    manifest = _manifest(
        pd, req, got, received, total, started=started, host_label=host_label, user=user
    )
    digest, _size = pd.write_manifest(manifest)
    detail = f"{len(files)} files, {total} bytes verified ({got.via})"
    if accepted:
        detail += f"; {len(accepted)} refused entries accepted by the rule (see manifest)"
    return PullReport(
        True,
        detail,
        files=len(files),
        total_bytes=total,
        sent_bytes=got.sent_bytes,
        refused=got.refused,
        manifest_sha256=digest,
        manifest_path=str(pd.manifest_path),
        accepted_refusals=accepted,
    )
