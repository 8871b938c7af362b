"""The sandbox's SSH servers, seen from the real OpenSSH client and from paramiko."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko  # type: ignore[import-untyped, unused-ignore]
import pytest

from teardown.sandbox.ssh import (
    SshFleet,
    SshKeys,
    SshServerSpec,
    ensure_host_key,
    ensure_keys,
    write_known_hosts,
)

FILES = {"data/a.txt": b"alpha\n", "data/sub/b.bin": bytes(range(256)) * 40, "data/empty": b""}


@dataclass
class Box:
    """One running sandbox SSH server and everything a client needs to reach it."""

    fleet: SshFleet
    keys: SshKeys
    spec: SshServerSpec
    port: int
    known_hosts: Path

    @property
    def root(self) -> Path:
        return self.spec.root


def _make_root(base: Path) -> Path:
    root = base / "root"
    for name, body in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return root


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    keys = ensure_keys(tmp_path / "ssh")
    spec = SshServerSpec(
        "ecs-1", host_key=tmp_path / "ssh" / "host_ecs-1", root=_make_root(tmp_path)
    )
    fleet = SshFleet(keys)
    try:
        port = fleet.start([spec])["ecs-1"]
        known_hosts = tmp_path / "ssh" / "known_hosts"
        write_known_hosts(known_hosts, [(port, ensure_host_key(spec.host_key))])
        yield Box(fleet, keys, spec, port, known_hosts)
    finally:
        fleet.stop()


def _connect(port: int, key: Path, known_hosts: Path, username: str = "root") -> paramiko.SSHClient:
    """A paramiko client that trusts only the host keys in ``known_hosts``."""
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        "127.0.0.1",
        port=port,
        username=username,
        key_filename=str(key),
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
        banner_timeout=10,
        auth_timeout=10,
    )
    return client


def _run(client: paramiko.SSHClient, command: str) -> tuple[bytes, bytes, int]:
    _, stdout, stderr = client.exec_command(command, timeout=10)
    out, err = stdout.read(), stderr.read()
    return out, err, stdout.channel.recv_exit_status()


def _openssh_options(box: Box, key: Path | None = None) -> list[str]:
    """Options that make OpenSSH trust nothing but the sandbox's known_hosts and one key."""
    options = [
        "StrictHostKeyChecking=yes",
        f"UserKnownHostsFile={box.known_hosts}",
        "GlobalKnownHostsFile=/dev/null",
        "IdentitiesOnly=yes",
        "BatchMode=yes",
        "ConnectTimeout=10",
    ]
    return [
        *("-F", "/dev/null"),
        *(arg for option in options for arg in ("-o", option)),
        *("-i", str(key or box.keys.client_key)),
    ]


def _openssh_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"the OpenSSH client ({name}) is not installed")
    return path


def _openssh(box: Box, command: str, key: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            _openssh_tool("ssh"),
            *_openssh_options(box, key),
            *("-p", str(box.port), "root@127.0.0.1", command),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )


def _wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or the deadline passes; return its last value."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return condition()
        time.sleep(0.02)
    return True


def _processes_with(marker: str) -> list[int]:
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


# --- the real OpenSSH client --------------------------------------------------------------------


def test_openssh_logs_in_with_a_pinned_host_key_and_sees_the_files(box: Box) -> None:
    listing = _openssh(box, f"ls {box.root / 'data'}")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.split() == ["a.txt", "empty", "sub"]

    sums = _openssh(box, f"sha256sum {box.root / 'data/sub/b.bin'} data/a.txt")
    assert sums.returncode == 0, sums.stderr
    lines = [line.split() for line in sums.stdout.splitlines()]
    assert lines == [
        [hashlib.sha256(FILES["data/sub/b.bin"]).hexdigest(), str(box.root / "data/sub/b.bin")],
        [hashlib.sha256(FILES["data/a.txt"]).hexdigest(), "data/a.txt"],
    ]


def test_openssh_scp_downloads_a_file_and_exits_zero(box: Box, tmp_path: Path) -> None:
    target = tmp_path / "copy.bin"
    source = box.root / "data/sub/b.bin"
    result = subprocess.run(
        [
            _openssh_tool("scp"),
            *_openssh_options(box),
            *("-P", str(box.port), f"root@127.0.0.1:{source}", str(target)),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == FILES["data/sub/b.bin"]


def test_openssh_refuses_a_server_whose_host_key_changed(box: Box, tmp_path: Path) -> None:
    impostor = ensure_host_key(tmp_path / "impostor_key")
    write_known_hosts(box.known_hosts, [(box.port, impostor)])
    result = _openssh(box, "true")
    assert result.returncode != 0
    assert (
        "HOST IDENTIFICATION HAS CHANGED" in result.stderr
        or "Host key verification failed" in result.stderr
    )


def test_openssh_with_a_key_that_is_not_authorized_is_refused(box: Box, tmp_path: Path) -> None:
    stranger = ensure_keys(tmp_path / "stranger")
    result = _openssh(box, "true", key=stranger.client_key)
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_paramiko_is_refused_for_another_user_or_an_unknown_key(box: Box, tmp_path: Path) -> None:
    with pytest.raises(paramiko.AuthenticationException):
        _connect(box.port, box.keys.client_key, box.known_hosts, username="admin")
    stranger = ensure_keys(tmp_path / "stranger")
    with pytest.raises(paramiko.AuthenticationException):
        _connect(box.port, stranger.client_key, box.known_hosts)


# --- paramiko exec and SFTP -----------------------------------------------------------------------


def test_paramiko_exec_streams_a_tar_of_the_data_with_exit_status_zero(box: Box) -> None:
    client = _connect(box.port, box.keys.client_key, box.known_hosts)
    try:
        out, err, status = _run(client, f"tar cf - -C {box.root} data")
    finally:
        client.close()
    assert (status, err) == (0, b"")
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        assert set(members) == set(FILES)
        for name, body in FILES.items():
            extracted = tar.extractfile(members[name])
            assert extracted is not None
            assert extracted.read() == body


def test_a_failing_command_returns_its_exit_status_and_stderr(box: Box) -> None:
    client = _connect(box.port, box.keys.client_key, box.known_hosts)
    try:
        out, err, status = _run(client, "cat data/missing")
        assert (out, status) == (b"", 1)
        assert b"data/missing" in err
        # stderr written after stdout was closed still arrives before the exit status
        out, err, status = _run(client, "echo out; exec 1>&-; sleep 0.1; echo late >&2; exit 7")
        assert (out, err, status) == (b"out\n", b"late\n", 7)
    finally:
        client.close()


def test_commands_run_in_the_data_root_with_home_and_server_id_set(box: Box) -> None:
    client = _connect(box.port, box.keys.client_key, box.known_hosts)
    try:
        out, _, status = _run(client, 'pwd; echo "$HOME"; echo "$TEARDOWN_SANDBOX_SERVER"')
    finally:
        client.close()
    assert status == 0
    assert out.decode().splitlines() == [str(box.root), str(box.root), "ecs-1"]


def test_paramiko_sftp_lists_and_reads_a_file_by_absolute_path(box: Box) -> None:
    client = _connect(box.port, box.keys.client_key, box.known_hosts)
    try:
        sftp = client.open_sftp()
        assert sorted(sftp.listdir(str(box.root / "data"))) == ["a.txt", "empty", "sub"]
        with sftp.open(str(box.root / "data/sub/b.bin"), "rb") as remote:
            assert remote.read() == FILES["data/sub/b.bin"]
        # relative paths start at the data root, as they would in a home directory
        assert sftp.normalize(".") == str(box.root)
        sftp.close()
    finally:
        client.close()


def test_a_client_speaking_garbage_does_not_stop_the_server(box: Box) -> None:
    with socket.create_connection(("127.0.0.1", box.port), timeout=5) as raw:
        raw.sendall(b"this is not SSH\r\n" * 100)
        raw.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):  # the server may answer with a reset
            while raw.recv(4096):
                pass
    client = _connect(box.port, box.keys.client_key, box.known_hosts)
    try:
        assert _run(client, "echo still here") == (b"still here\n", b"", 0)
    finally:
        client.close()


# --- fault injection ------------------------------------------------------------------------------


def _pull_all(client: paramiko.SSHClient, command: str) -> tuple[int, Exception | None, int]:
    """Read the command's stdout to the end; return (bytes, error if the stream broke, status)."""
    _, stdout, _ = client.exec_command(command)
    channel = stdout.channel
    channel.settimeout(10)
    received, error = 0, None
    try:
        while data := channel.recv(1 << 20):
            received += len(data)
    except (OSError, EOFError, paramiko.SSHException) as exc:
        error = exc
    # The exit status follows EOF; a dropped connection closes the channel without one (-1).
    channel.status_event.wait(10)
    status = channel.exit_status
    return received, error, status


def test_drop_after_bytes_cuts_the_connection_in_the_middle_of_a_stream(tmp_path: Path) -> None:
    keys = ensure_keys(tmp_path / "ssh")
    root = _make_root(tmp_path)
    size = 5_000_000
    (root / "big.bin").write_bytes(os.urandom(size))
    specs = [
        SshServerSpec("flaky", tmp_path / "host_flaky", root, drop_after_bytes=1_000_000),
        SshServerSpec("solid", tmp_path / "host_solid", root),
    ]
    with SshFleet(keys) as fleet:
        ports = fleet.start(specs)
        known_hosts = tmp_path / "known_hosts"
        write_known_hosts(
            known_hosts, [(ports[s.server_id], ensure_host_key(s.host_key)) for s in specs]
        )

        client = _connect(ports["flaky"], keys.client_key, known_hosts)
        try:
            received, error, status = _pull_all(client, "cat big.bin")
        finally:
            client.close()
        assert received <= 1_000_000 < size
        assert error is not None or status == -1  # reset, or EOF without an exit status

        client = _connect(ports["solid"], keys.client_key, known_hosts)
        try:
            assert _pull_all(client, "cat big.bin") == (size, None, 0)
        finally:
            client.close()


def test_drop_after_bytes_also_cuts_sftp_reads(tmp_path: Path) -> None:
    keys = ensure_keys(tmp_path / "ssh")
    root = _make_root(tmp_path)
    (root / "big.bin").write_bytes(os.urandom(3_000_000))
    spec = SshServerSpec("flaky", tmp_path / "host_flaky", root, drop_after_bytes=500_000)
    with SshFleet(keys) as fleet:
        port = fleet.start([spec])["flaky"]
        known_hosts = tmp_path / "known_hosts"
        write_known_hosts(known_hosts, [(port, ensure_host_key(spec.host_key))])
        client = _connect(port, keys.client_key, known_hosts)
        try:
            sftp = client.open_sftp()
            sftp.get_channel().settimeout(10)
            remote = sftp.open(str(root / "big.bin"), "rb")
            with pytest.raises((OSError, EOFError, paramiko.SSHException)):
                remote.read()
        finally:
            client.close()


# --- lifecycle ------------------------------------------------------------------------------------


def _fleet_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("sandbox-ssh")]


def test_keys_are_stable_and_stop_leaves_no_listener_thread_or_child(tmp_path: Path) -> None:
    keys = ensure_keys(tmp_path / "ssh")
    assert ensure_keys(tmp_path / "ssh") == keys
    assert (keys.client_key.stat().st_mode & 0o777) == 0o600
    spec = SshServerSpec("ecs-1", tmp_path / "host_key", _make_root(tmp_path))
    fleet = SshFleet(keys)
    port = fleet.start([spec])["ecs-1"]
    known_hosts = tmp_path / "known_hosts"
    write_known_hosts(known_hosts, [(port, ensure_host_key(spec.host_key))])
    assert (known_hosts.stat().st_mode & 0o777) == 0o600

    # A command still running when the fleet stops, with a grandchild of its own.
    marker = "31.41592"
    client = _connect(port, keys.client_key, known_hosts)
    try:
        client.exec_command(f"sleep {marker}; echo never")
        assert _wait_for(lambda: len(_processes_with(marker)) >= 2)
        fleet.stop()
        fleet.stop()  # idempotent
    finally:
        client.close()
    assert _wait_for(lambda: not _processes_with(marker)), "commands outlived stop()"
    assert fleet.ports() == {}
    assert _fleet_threads() == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()

    # Restarted on the same port with the same key file: the pinned known_hosts still holds.
    with fleet:
        assert fleet.start([SshServerSpec("ecs-1", spec.host_key, spec.root, port=port)]) == {
            "ecs-1": port
        }
        client = _connect(port, keys.client_key, known_hosts)
        try:
            assert _run(client, "echo again") == (b"again\n", b"", 0)
        finally:
            client.close()
    assert _fleet_threads() == []
