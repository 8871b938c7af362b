"""``teardown verify`` and ``teardown restore``: restore drills for the backups teardown made.

Both commands are registered on the main group by ``teardown.cli.main``. Exit codes: 0 every file
matched, 1 a file did not match or the restore failed (each bad file is named on stderr), 2 bad
input (no such backup, unreadable manifest, bad ``--to``, destination not empty).

A backup is a pull directory of the local store, or a pull in the object store named by its URL
(``s3://bucket/prefix/backups/<key>/manifest.json``, ``teardown.adapters.store_urls``), or, for
``verify``, a run id: every pull the run's journal records.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from teardown.adapters.ssh.connect import SshTarget
from teardown.adapters.ssh.restore import restore_backup
from teardown.adapters.store_check import VerifyReport, verify_backup
from teardown.adapters.store_urls import (
    DownloadReport,
    StoredPullCheck,
    as_pull_layout,
    check_stored_pull,
    download_stored_pull,
    is_store_url,
    open_at,
    parse_backup_url,
)
from teardown.adapters.stored_pull import Problem, RestoreReport
from teardown.app.config import load_config
from teardown.cli.common import (
    EXIT_FAILED,
    config_option,
    echo,
    errors_to_exit_codes,
    journal_option,
    json_option,
)
from teardown.core.config import Config
from teardown.core.errors import InputError
from teardown.engine.journal import Journal
from teardown.support.clock import SystemClock

_REMOTE = re.compile(
    r"(?:(?P<user>[^@:/\s]+)@)?"
    r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^@:/\[\]\s]+))"
    r"(?::(?P<port>\d+))?"
    r":(?P<path>/.*)"
)


def parse_remote(spec: str) -> tuple[str | None, str, int | None, str]:
    """``[user@]host[:port]:/path`` -> (user, host, port, path). ``[::1]`` for IPv6 hosts."""
    m = _REMOTE.fullmatch(spec)
    if m is None:
        raise InputError(
            "--to", f"{spec!r} is not [user@]host[:port]:/absolute/path (e.g. root@web-1:/restore)"
        )
    port = int(m["port"]) if m["port"] else None
    if port is not None and not 0 < port < 65536:
        raise InputError("--to", f"port {port} is out of range")
    return m["user"], m["v6"] or m["host"], port, m["path"]


def _problems(problems: list[Problem]) -> None:
    for p in problems:
        echo(f"teardown: bad: {p}", err=True)


def _emit_json(
    report: VerifyReport | RestoreReport | StoredPullCheck | DownloadReport, extra: dict[str, Any]
) -> None:
    click.echo(json.dumps({**asdict(report), **extra}, indent=2, sort_keys=True))


_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@click.command()
@click.argument("backup")
@click.option(
    "--read",
    is_flag=True,
    help="With a stored pull: read every object back and hash it (default: the checksum the "
    "store vouches for, a HEAD per object).",
)
@config_option
@journal_option
@json_option
@errors_to_exit_codes
def verify(
    backup: str,
    read: bool,
    config_path: Path | None,
    journal_path: Path | None,
    as_json: bool,
) -> None:
    """Re-hash every file of a pulled BACKUP and compare it with the manifest.

    BACKUP is a pull directory of the local store (holding segments/ and manifest.json) or its
    manifest.json. Every tar segment is read and each file's sha256 and size compared with the
    manifest; nothing is extracted.

    BACKUP may also be a pull in the object store, by its URL
    (s3://bucket/prefix/backups/<key>/manifest.json, or that directory): every object its index
    (objects.json) lists must be there with its size and sha256. The endpoint, region and
    credentials are [store]'s of the config; the bucket and prefix are the URL's.

    BACKUP may also be a RUN id: every pull the run's journal records is checked, in the bucket
    or in the local store.

    \b
    Exit codes: 0 every file matches, 1 some do not (each named on stderr),
                2 no such backup or an unreadable manifest.
    Examples:
      teardown verify .teardown/backups/<key>
      teardown verify s3://team-teardown/ci/backups/<key>/manifest.json
      teardown verify 20261126T101500Z-a1b2c3
    """
    if is_store_url(backup):
        config = load_config(config_path)
        _finish([_check_stored(config, backup, None, read)], as_json, single=True)
        return
    path = Path(backup)
    if path.exists() or not _RUN_ID.fullmatch(backup):
        _finish([verify_backup(path)], as_json, single=True)
        return
    _verify_run(load_config(config_path), journal_path, backup, read, as_json)


def _verify_run(
    config: Config, journal_path: Path | None, run_id: str, read: bool, as_json: bool
) -> None:
    """Every pull of ``run_id`` (journal artifacts whose ref is a stored or a local pull)."""
    path = journal_path or Path(config.journal.path)
    if not path.exists():
        raise InputError(run_id, f"no such backup (and no journal at {path} to find a run in)")
    with Journal.open(path, SystemClock(), create=False) as journal:
        artifacts = journal.artifacts(run_id)
    pulls = sorted(
        {a.ref: a for a in artifacts.values() if a.kind == "pull" and a.ref}.values(),
        key=lambda a: a.ref,
    )
    if not pulls:
        raise InputError(run_id, "no such backup, and no pull recorded for a run of that id")
    reports: list[VerifyReport | StoredPullCheck] = [
        _check_stored(config, a.ref, a.sha256, read)
        if is_store_url(a.ref)
        else verify_backup(Path(a.ref))
        for a in pulls
    ]
    _finish(reports, as_json, single=False)


def _check_stored(
    config: Config, url: str, index_sha256: str | None, read: bool
) -> StoredPullCheck:
    where = parse_backup_url(url)
    store = open_at(config.store, where.store_url, os.environ)
    return check_stored_pull(store, where.key, index_sha256 or None, read=read)


def _finish(reports: list[VerifyReport | StoredPullCheck], as_json: bool, *, single: bool) -> None:
    """Print the verify reports (one JSON object when ``single``, else a list); exit 1 when
    one is not ok, each problem named on stderr."""
    if as_json:
        bodies = [{**asdict(r), "bad_files": r.bad_files} for r in reports]
        click.echo(json.dumps(bodies[0] if single else bodies, indent=2, sort_keys=True))
    for r in reports:
        if isinstance(r, VerifyReport):
            good = f"{r.files} files, {r.total_bytes} bytes in {r.segments} segments"
            count, against = f"{r.files} of {r.expected} files", "the manifest"
        else:
            good = f"{r.objects} objects, {r.total_bytes} bytes"
            count, against = f"{r.objects} of {r.expected} objects", "the index"
        if r.ok and not as_json:
            echo(f"{r.backup}: {good} match {against}")
        if not r.ok:
            _problems(r.problems)
            echo(
                f"teardown: failed: {r.backup}: {count} match {against}; "
                f"{len(r.problems)} problems",
                err=True,
            )
    if not all(r.ok for r in reports):
        sys.exit(EXIT_FAILED)


@click.command()
@click.argument("backup")
@click.option(
    "--to",
    "to",
    default=None,
    help="[user@]host[:port]:/path on an SSH host.",
)
@click.option(
    "--download",
    "download",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="With a stored pull (s3://...): only download it into this directory, as a pull "
    "directory of the local store (checked against the index), and restore nothing.",
)
@click.option(
    "--overwrite", is_flag=True, help="Restore even if the destination holds some of the paths."
)
@click.option(
    "--known-hosts",
    "known_hosts",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Extra known_hosts file (besides ~/.ssh/known_hosts); repeatable.",
)
@click.option(
    "--identity",
    "identities",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Private key to offer (default: the agent, ~/.ssh/config, ~/.ssh/id_*); repeatable.",
)
@config_option
@json_option
@errors_to_exit_codes
def restore(
    backup: str,
    to: str | None,
    download: Path | None,
    overwrite: bool,
    known_hosts: tuple[Path, ...],
    identities: tuple[Path, ...],
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Put a pulled BACKUP back on a host over SSH, then verify it there.

    Files land under the destination plus their original absolute path: a pull of /srv/www
    restored with --to web-1:/restore gives /restore/srv/www/index.html (--to web-1:/ restores
    in place). Nothing is sent when the destination already holds any of the backup's paths,
    unless --overwrite. The host's key must be known (~/.ssh/known_hosts or --known-hosts), as
    for pulls. After the transfer the host hashes every file (openssl or sha256sum) and each is
    compared with the manifest.

    A pull in the object store (s3://bucket/prefix/backups/<key>/manifest.json) is first
    downloaded to a temporary directory, every object's sha256 compared with the index, then
    restored as a local one; the temporary copy is removed. With --download DIR it is only
    downloaded, into DIR/<key>, and nothing is restored. The endpoint, region and credentials
    are [store]'s of the config.

    A sandbox's CBR backup is restored with `teardown sandbox restore`.

    \b
    Exit codes: 0 restored and every file matches, 1 a file does not match or the
                connection failed, 2 bad input or a destination that is not empty.
    Examples:
      teardown restore .teardown/backups/<key> --to root@10.0.0.5:/restore
      teardown restore .teardown/backups/<key> --to web-1:2222:/srv-copy --known-hosts kh
      teardown restore s3://team-teardown/ci/backups/<key>/manifest.json --to web-1:/restore
      teardown restore s3://team-teardown/ci/backups/<key> --download ./copy
    """
    if download is not None:
        if to is not None:
            raise InputError("--download", "either --to or --download, not both")
        if not is_store_url(backup):
            raise InputError("--download", "only for a pull in the object store (s3://...)")
        _fail_download(_download(load_config(config_path), backup, download), as_json)
        return
    if to is None:
        raise InputError("--to", "missing: where to restore ([user@]host[:port]:/path)")
    user, host, port, path = parse_remote(to)
    target = SshTarget(
        host=host,
        port=port,
        user=user,
        identity_files=tuple(str(p) for p in identities),
        known_hosts=tuple(str(p) for p in known_hosts),
    )
    if not is_store_url(backup):
        report_restore(restore_backup(Path(backup), target, path, overwrite=overwrite), as_json)
        return
    config = load_config(config_path)
    with tempfile.TemporaryDirectory(prefix="teardown-restore-") as staging:
        fetched = _download(config, backup, Path(staging))
        if not fetched.ok:
            _fail_download(fetched, as_json)
        as_pull_layout(Path(fetched.directory))  # a pushed backup: plain files, put in a segment
        report = restore_backup(Path(fetched.directory), target, path, overwrite=overwrite)
    report.source = fetched.backup
    report_restore(report, as_json)


def _download(config: Config, url: str, dest: Path) -> DownloadReport:
    where = parse_backup_url(url)
    store = open_at(config.store, where.store_url, os.environ)
    return download_stored_pull(store, where.key, dest)


def _fail_download(report: DownloadReport, as_json: bool) -> None:
    """Print a download's outcome when it stands alone (--download) or failed; exit 1 when an
    object does not match."""
    if as_json:
        _emit_json(report, {})
    elif report.ok:
        echo(
            f"{report.backup}: {report.objects} objects, {report.total_bytes} bytes downloaded "
            f"to {report.directory}; every checksum matches the index"
        )
    if not report.ok:
        _problems(report.problems)
        echo(
            f"teardown: failed: {report.backup}: {report.objects} of {report.expected} objects "
            f"downloaded intact; {len(report.problems)} problems",
            err=True,
        )
        sys.exit(EXIT_FAILED)


def report_restore(report: RestoreReport, as_json: bool) -> None:
    """Print a restore's outcome (text or JSON); exit 1 when a file does not match."""
    if as_json:
        _emit_json(report, {})
    elif report.ok:
        echo(
            f"restored {report.files} files ({report.total_bytes} bytes), {report.dirs} "
            f"directories and {report.symlinks} symlinks to {report.destination}; every "
            f"checksum matches ({report.verified_with})"
        )
    if not report.ok:
        _problems(report.problems)
        echo(
            f"teardown: failed: {report.destination}: {report.files} of {report.expected} files "
            f"verified, {len(report.problems)} problems",
            err=True,
        )
        sys.exit(EXIT_FAILED)
