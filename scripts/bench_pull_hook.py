"""What ``scripts/bench_pull`` times for teardown: one verified pull into a fresh store (a
benchmark hook: it lives beside the script, not in the package)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from teardown.adapters.ssh import transfer
from teardown.adapters.ssh.connect import SshTarget, connected, resolve
from teardown.adapters.ssh.openssh import link_for
from teardown.adapters.ssh.pull import PullRequest
from teardown.adapters.ssh.pull import pull as pull_paths
from teardown.adapters.store import LocalStore


def pull(
    info: dict[str, Any],
    paths: list[str],
    dest: Path,
    *,
    streams: int = 2,
    client: str = "auto",
    host_hashing: bool = True,
) -> int:
    """Pull ``paths`` from the sshd described by ``info`` (host, port, user, client_key,
    known_hosts) into a store at ``dest``, verified; return the bytes stored. ``streams`` and
    ``client`` as in ``PullRequest``. ``host_hashing=False`` (a benchmark of the client side
    only, never a backup) skips the host's checksums and returns the bytes received."""
    target = SshTarget(
        host=str(info["host"]),
        port=int(info["port"]),
        user=str(info["user"]),
        identity_files=(str(info["client_key"]),),
        known_hosts=(str(info["known_hosts"]),),
        use_ssh_config=False,
    )
    r = resolve(target)
    request = PullRequest("bench", tuple(paths), streams=streams, client=client)
    store = LocalStore(dest).pull_dir("bench")
    with connected(target) as transport:
        link = link_for(r.hostname, r.port, r.user, r.identity_files, transport, connect_timeout=15)
        if not host_hashing:
            return _unhashed(transport, store, request, link)
        report = pull_paths(transport, store, request, link=link)
    if not report.verified:
        raise RuntimeError(f"bench pull not verified: {report.detail}")
    return report.total_bytes


def _unhashed(transport: Any, store: Any, request: PullRequest, link: Any) -> int:
    """The pull without the host's checksums: the client side's ceiling."""
    saved = getattr(transfer, "host_hashes")  # noqa: B009 (patched for this call only)
    setattr(transfer, "host_hashes", lambda *_args: {})  # noqa: B010
    try:
        report = pull_paths(transport, store, request, link=link)
    finally:
        setattr(transfer, "host_hashes", saved)  # noqa: B010
    if report.verified:
        raise RuntimeError("a pull without host checksums cannot verify")
    return sum(r.size for r in store.received().values())
