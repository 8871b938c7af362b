"""Shared pytest fixtures. ``sshd``: one real OpenSSH sshd on 127.0.0.1 for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ssh_hosts import Host, sandbox_host, sshd_target
from tests.sshd import Sshd, SshdInfo, unavailable_reason


def _skip_without_sshd() -> None:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"no test sshd: {reason}")


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdInfo]:
    """A real OpenSSH sshd for the current user, shared by the session (skips when impossible)."""
    _skip_without_sshd()
    server = Sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def fresh_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """A started sshd of the test's own, for tests that rotate its host key or stop it."""
    _skip_without_sshd()
    server = Sshd(tmp_path_factory.mktemp("fresh-sshd"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["openssh", "sandbox"])
def host(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Host]:
    """An SSH host to pull from: the session's OpenSSH sshd, then a sandbox SSH server."""
    if request.param == "openssh":
        info: SshdInfo = request.getfixturevalue("sshd")
        yield Host("openssh", sshd_target(info))
        return
    fleet, target = sandbox_host(tmp_path / "sandbox-host", tmp_path)
    try:
        yield Host("sandbox", target, fleet)
    finally:
        fleet.stop()
