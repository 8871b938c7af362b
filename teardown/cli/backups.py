"""``teardown verify`` and ``teardown restore``: restore drills for the backups teardown made.

Both commands are registered on the main group by ``teardown.cli.main``. Exit codes: 0 every file
matched, 1 a file did not match or the restore failed (each bad file is named on stderr), 2 bad
input (no such backup, unreadable manifest, bad ``--to``, destination not empty).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from teardown.adapters.ssh.connect import SshTarget
from teardown.adapters.ssh.restore import restore_backup
from teardown.adapters.store_check import VerifyReport, verify_backup
from teardown.adapters.stored_pull import Problem, RestoreReport
from teardown.cli.common import EXIT_FAILED, echo, errors_to_exit_codes, json_option
from teardown.core.errors import InputError

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


def _emit_json(report: VerifyReport | RestoreReport, extra: dict[str, Any]) -> None:
    click.echo(json.dumps({**asdict(report), **extra}, indent=2, sort_keys=True))


@click.command()
@click.argument("backup", type=click.Path(path_type=Path))
@json_option
@errors_to_exit_codes
def verify(backup: Path, as_json: bool) -> None:
    """Re-hash every file of a pulled BACKUP and compare it with the manifest.

    BACKUP is a pull directory of the local store (holding segments/ and manifest.json) or its
    manifest.json. Every tar segment is read and each file's sha256 and size compared with the
    manifest; nothing is extracted.

    \b
    Exit codes: 0 every file matches, 1 some do not (each named on stderr),
                2 no such backup or an unreadable manifest.
    Example:
      teardown verify .teardown/backups/<key>
    """
    report = verify_backup(backup)
    if as_json:
        _emit_json(report, {"bad_files": report.bad_files})
    elif report.ok:
        echo(
            f"{report.backup}: {report.files} files, {report.total_bytes} bytes in "
            f"{report.segments} segments match the manifest"
        )
    if not report.ok:
        _problems(report.problems)
        echo(
            f"teardown: failed: {report.backup}: {report.files} of {report.expected} files "
            f"match the manifest; {len(report.problems)} problems",
            err=True,
        )
        sys.exit(EXIT_FAILED)


@click.command()
@click.argument("backup", type=click.Path(path_type=Path))
@click.option(
    "--to",
    "to",
    required=True,
    help="[user@]host[:port]:/path on an SSH host.",
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
@json_option
@errors_to_exit_codes
def restore(
    backup: Path,
    to: str,
    overwrite: bool,
    known_hosts: tuple[Path, ...],
    identities: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Put a pulled BACKUP back on a host over SSH, then verify it there.

    Files land under the destination plus their original absolute path: a pull of /srv/www
    restored with --to web-1:/restore gives /restore/srv/www/index.html (--to web-1:/ restores
    in place). Nothing is sent when the destination already holds any of the backup's paths,
    unless --overwrite. The host's key must be known (~/.ssh/known_hosts or --known-hosts), as
    for pulls. After the transfer the host hashes every file (openssl or sha256sum) and each is
    compared with the manifest.

    A sandbox's CBR backup is restored with `teardown sandbox restore`.

    \b
    Exit codes: 0 restored and every file matches, 1 a file does not match or the
                connection failed, 2 bad input or a destination that is not empty.
    Examples:
      teardown restore .teardown/backups/<key> --to root@10.0.0.5:/restore
      teardown restore .teardown/backups/<key> --to web-1:2222:/srv-copy --known-hosts kh
    """
    user, host, port, path = parse_remote(to)
    target = SshTarget(
        host=host,
        port=port,
        user=user,
        identity_files=tuple(str(p) for p in identities),
        known_hosts=tuple(str(p) for p in known_hosts),
    )
    report_restore(restore_backup(backup, target, path, overwrite=overwrite), as_json)


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
