"""The test sshd (tests/sshd.py) is a real OpenSSH server: strict clients reach it, it cleans up."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import paramiko  # type: ignore[import-untyped, unused-ignore]
import pytest

from tests.sshd import Sshd, SshdInfo, descendants, sessions_on_port

pytestmark = pytest.mark.ssh


def _connect(info: SshdInfo, known_hosts: Path | None = None) -> paramiko.SSHClient:
    """A paramiko client that trusts only the host key in ``known_hosts`` and one client key."""
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts or info.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        info.host,
        port=info.port,
        username=info.user,
        key_filename=str(info.client_key),
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
        banner_timeout=10,
        auth_timeout=10,
    )
    return client


def _run(client: paramiko.SSHClient, command: str) -> tuple[str, str, int]:
    _, stdout, stderr = client.exec_command(command, timeout=20)
    out, err = stdout.read().decode(), stderr.read().decode()
    return out, err, stdout.channel.recv_exit_status()


def _live_processes_with(marker: str) -> list[int]:
    """Pids of live processes whose command line contains ``marker`` (zombies have none)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_paramiko_with_reject_policy_runs_commands(sshd: SshdInfo, tmp_path: Path) -> None:
    body = os.urandom(300_000)
    target = tmp_path / "payload.bin"
    target.write_bytes(body)
    with _connect(sshd) as client:
        assert _run(client, "echo ok") == ("ok\n", "", 0)
        out, err, rc = _run(client, f"sha256sum {target}")
        assert rc == 0, err
        assert out.split() == [hashlib.sha256(body).hexdigest(), str(target)]
        out, _, rc = _run(client, "id -un")
        assert (out.strip(), rc) == (sshd.user, 0)


def test_paramiko_refuses_an_unknown_host(sshd: SshdInfo, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        _connect(sshd, known_hosts=empty)


def test_openssh_client_with_strict_host_key_checking(sshd: SshdInfo) -> None:
    ssh = shutil.which("ssh")
    if ssh is None:
        pytest.skip("the OpenSSH client (ssh) is not installed")
    result = subprocess.run(
        [
            ssh,
            *("-F", "/dev/null"),
            *("-o", "StrictHostKeyChecking=yes"),
            *("-o", f"UserKnownHostsFile={sshd.known_hosts}"),
            *("-o", "GlobalKnownHostsFile=/dev/null"),
            *("-o", "IdentitiesOnly=yes"),
            *("-o", "BatchMode=yes"),
            *("-o", "ConnectTimeout=10"),
            *("-i", str(sshd.client_key)),
            *("-p", str(sshd.port)),
            f"{sshd.user}@{sshd.host}",
            "echo ok",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr


def test_sftp_lists_and_downloads(sshd: SshdInfo, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    body = os.urandom(1_000_000)
    (source / "big.bin").write_bytes(body)
    (source / "small.txt").write_text("hello\n")
    with _connect(sshd) as client, client.open_sftp() as sftp:
        assert sorted(sftp.listdir(str(source))) == ["big.bin", "small.txt"]
        sftp.get(str(source / "big.bin"), str(tmp_path / "copy.bin"))
    assert (tmp_path / "copy.bin").read_bytes() == body


def test_rotated_host_key_is_refused_by_strict_paramiko(fresh_sshd: Sshd, tmp_path: Path) -> None:
    before = fresh_sshd.info
    with _connect(before) as client:
        assert _run(client, "echo ok")[0] == "ok\n"

    fresh_sshd.rotate_host_key()
    after = fresh_sshd.info
    assert after.port == before.port
    assert after.host_key_pub != before.host_key_pub
    with pytest.raises(paramiko.BadHostKeyException):
        _connect(before)  # the old known_hosts file

    trusted = fresh_sshd.write_known_hosts(tmp_path / "known_hosts.new")
    with _connect(after, known_hosts=trusted) as client:
        assert _run(client, "echo ok")[0] == "ok\n"


def test_tcp_forwarding_can_be_disabled(tmp_path: Path, sshd: SshdInfo) -> None:
    with _connect(sshd) as client:  # default: allowed
        client.get_transport().open_channel(
            "direct-tcpip", ("127.0.0.1", sshd.port), ("127.0.0.1", 0), timeout=10
        ).close()
    with (
        Sshd(tmp_path / "noforward", allow_tcp_forwarding=False) as info,
        _connect(info) as client,
        pytest.raises(paramiko.ChannelException),
    ):
        client.get_transport().open_channel(
            "direct-tcpip", ("127.0.0.1", info.port), ("127.0.0.1", 0), timeout=10
        )


def _sleepers(port: int) -> list[int]:
    """Live ``sleep 600`` processes run through an SSH session to ``port``."""
    found = []
    for pid in sessions_on_port(port):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x00600\x00":
                found.append(pid)
        except OSError:
            continue
    return found


def _wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return condition()
        time.sleep(0.05)
    return True


def test_stop_leaves_no_process_behind(fresh_sshd: Sshd) -> None:
    info = fresh_sshd.info
    listener = fresh_sshd.pid
    assert listener is not None
    clients = [_connect(info) for _ in range(3)]
    try:
        for client in clients:  # a running command per connection: more processes to clean up
            client.exec_command("sleep 600")
        assert _wait_for(lambda: len(_sleepers(info.port)) == 3), _sleepers(info.port)
        sleepers = _sleepers(info.port)
        # A client that goes away leaves its command running, orphaned: stop() must find it too.
        clients[0].close()
        assert _wait_for(lambda: len(set(sleepers) & set(descendants(listener))) == 2)
        forked = descendants(listener)
        assert _live_processes_with(str(info.config))

        fresh_sshd.stop()
        fresh_sshd.stop()  # idempotent

        assert _live_processes_with(str(info.config)) == []
        assert [pid for pid in {listener, *forked, *sleepers} if _alive(pid)] == []
        assert sessions_on_port(info.port) == []
        assert not _port_open(info.port)
    finally:
        for client in clients:
            client.close()
