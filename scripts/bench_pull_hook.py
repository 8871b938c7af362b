"""What ``scripts/bench_pull`` times for teardown: one verified pull into a fresh store (a
benchmark hook: it lives beside the script, not in the package)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from teardown.adapters.ssh.connect import SshTarget, connected
from teardown.adapters.ssh.pull import PullRequest
from teardown.adapters.ssh.pull import pull as pull_paths
from teardown.adapters.store import LocalStore


def pull(info: dict[str, Any], paths: list[str], dest: Path) -> int:
    """Pull ``paths`` from the sshd described by ``info`` (host, port, user, client_key,
    known_hosts) into a store at ``dest``, verified; return the bytes stored."""
    target = SshTarget(
        host=str(info["host"]),
        port=int(info["port"]),
        user=str(info["user"]),
        identity_files=(str(info["client_key"]),),
        known_hosts=(str(info["known_hosts"]),),
        use_ssh_config=False,
    )
    with connected(target) as transport:
        report = pull_paths(
            transport, LocalStore(dest).pull_dir("bench"), PullRequest("bench", tuple(paths))
        )
    if not report.verified:
        raise RuntimeError(f"bench pull not verified: {report.detail}")
    return report.total_bytes
