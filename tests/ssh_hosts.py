"""SSH hosts to pull from in tests: a real OpenSSH sshd on 127.0.0.1 or a sandbox SSH server,
used by the ``host`` fixture (``conftest.py``) that runs a test against each."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from teardown.adapters.ssh.connect import SshTarget, connected, resolve
from teardown.adapters.ssh.openssh import OpensshLink, link_for
from teardown.adapters.ssh.pull import PullReport, PullRequest, pull
from teardown.adapters.ssh.pull_types import Progress
from teardown.adapters.store import PullDir
from teardown.sandbox.ssh import (
    SshFleet,
    SshServerSpec,
    ensure_host_key,
    ensure_keys,
    write_known_hosts,
)
from tests.sshd import SshdInfo


@dataclass
class Host:
    """An SSH server to pull from, and how to reach it."""

    kind: str
    target: SshTarget
    fleet: SshFleet | None = None


def sandbox_host(root: Path, data: Path, **spec: object) -> tuple[SshFleet, SshTarget]:
    keys = ensure_keys(root / "ssh")
    pub = ensure_host_key(root / "hostkey")
    fleet = SshFleet(keys)
    ports = fleet.start([SshServerSpec("srv", root / "hostkey", data, **spec)])  # type: ignore[arg-type]
    write_known_hosts(root / "known_hosts", [(ports["srv"], pub)])
    target = SshTarget(
        host="127.0.0.1",
        port=ports["srv"],
        user="root",
        identity_files=(str(keys.client_key),),
        known_hosts=(str(root / "known_hosts"),),
        use_ssh_config=False,
    )
    return fleet, target


def sshd_target(info: SshdInfo) -> SshTarget:
    return SshTarget(
        host=info.host,
        port=info.port,
        user=info.user,
        identity_files=(str(info.client_key),),
        known_hosts=(str(info.known_hosts),),
        use_ssh_config=False,
    )


def do_pull(target: SshTarget, pd: PullDir, req: PullRequest) -> PullReport:
    with connected(target) as transport:
        return pull(transport, pd, req, host_label=target.host)


def link_to(target: SshTarget, transport: object, **changes: object) -> OpensshLink:
    """How OpenSSH's ssh reaches ``target`` (as the fetcher builds it), with ``changes``."""
    r = resolve(target)
    link = link_for(r.hostname, r.port, r.user, r.identity_files, transport, connect_timeout=15)
    assert link is not None, "OpenSSH's ssh is not installed"
    return replace(link, **changes)  # type: ignore[arg-type]


def do_pull_openssh(
    target: SshTarget,
    pd: PullDir,
    req: PullRequest,
    progress: Progress | None = None,
    **changes: object,
) -> PullReport:
    """``do_pull`` with the tar streams through OpenSSH's ssh (``link_to``)."""
    with connected(target) as transport:
        link = link_to(target, transport, **changes)
        return pull(transport, pd, req, progress, host_label=target.host, link=link)
