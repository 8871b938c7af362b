"""SSH hosts to pull from in tests: a real OpenSSH sshd on 127.0.0.1 or a sandbox SSH server,
used by the ``host`` fixture (``conftest.py``) that runs a test against each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from teardown.adapters.ssh.connect import SshTarget, connected
from teardown.adapters.ssh.pull import PullReport, PullRequest, pull
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
