"""SSH pulls against real SSH servers: OpenSSH sshd on 127.0.0.1, and the sandbox's servers."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import subprocess
import tarfile
import time
from dataclasses import replace
from pathlib import Path

import pytest

from teardown.adapters.ssh.connect import SshTarget, connected
from teardown.adapters.ssh.pull import PullReport, PullRequest, pull
from teardown.adapters.store import LocalStore
from teardown.core.errors import PermanentError, TransientError
from tests.ssh_hosts import Host, do_pull, sandbox_host, sshd_target
from tests.sshd import Sshd, SshdInfo, descendants


def make_tree(root: Path) -> Path:
    data = root / "srv"
    (data / "www" / "img").mkdir(parents=True)
    (data / "www" / "index.html").write_text("<h1>shop</h1>\n")
    (data / "www" / "img" / "logo.bin").write_bytes(os.urandom(300_000))
    (data / "www" / "debug.log").write_text("noise\n")
    (data / "cache").mkdir()
    (data / "cache" / "tmp.bin").write_bytes(b"x" * 1000)
    (data / "www" / "current").symlink_to("index.html")
    tool = data / "www" / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o4755)
    for i in range(50):
        (data / "www" / f"page{i}.html").write_text(f"page {i}\n" * (i + 1))
    return data


def files_under(data: Path, excluded: tuple[str, ...] = ()) -> dict[str, str]:
    out = {}
    for p in data.rglob("*"):
        if p.is_file() and not p.is_symlink() and not any(x in p.parts for x in excluded):
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return {k: v for k, v in out.items() if not k.endswith(".log")}


def test_pull_verifies_every_file_against_the_hosts_own_checksum(
    host: Host, tmp_path: Path
) -> None:
    data = make_tree(tmp_path / "src")
    store = LocalStore(tmp_path / "store")
    req = PullRequest(server="web-1", paths=(str(data),), excludes=("*.log", "cache"))
    report = do_pull(host.target, store.pull_dir("k1"), req)
    assert report.verified, report.detail
    manifest = store.pull_dir("k1").manifest()
    assert manifest is not None and manifest["verified_with"].startswith("host:")
    got = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert got == files_under(data, excluded=("cache",))
    modes = {f["path"]: f["mode"] for f in manifest["files"]}
    assert modes[str(data / "www" / "tool")] == 0o755  # setuid stripped
    assert {s["path"] for s in manifest["symlinks"]} == {str(data / "www" / "current")}


def test_stored_segments_unpack_to_the_same_bytes(host: Host, tmp_path: Path) -> None:
    data = make_tree(tmp_path / "src")
    store = LocalStore(tmp_path / "store")
    report = do_pull(host.target, store.pull_dir("k1"), PullRequest("web-1", (str(data),)))
    assert report.verified
    out = tmp_path / "restore"
    out.mkdir()
    for seg in sorted((store.pull_dir("k1").segments).glob("*.tar")):
        subprocess.run(["tar", "xf", str(seg), "-C", str(out)], check=True)
    restored = out / str(data).lstrip("/")
    for path, digest in files_under(data).items():
        rel = Path(path).relative_to(data)
        assert hashlib.sha256((restored / rel).read_bytes()).hexdigest() == digest
    assert not (os.stat(restored / "www" / "tool").st_mode & 0o6000)


def test_rerun_sends_nothing_already_verified_and_only_what_changed(
    host: Host, tmp_path: Path
) -> None:
    data = make_tree(tmp_path / "src")
    pd = LocalStore(tmp_path / "store").pull_dir("k1")
    req = PullRequest("web-1", (str(data),))
    first = do_pull(host.target, pd, req)
    assert first.verified and first.sent_bytes > 300_000
    second = do_pull(host.target, pd, req)
    assert second.verified and second.sent_bytes == 0
    (data / "www" / "index.html").write_text("<h1>new shop</h1>\n")
    os.utime(data / "www" / "index.html", (1, 1))
    third = do_pull(host.target, pd, req)
    assert third.verified and third.sent_bytes == len("<h1>new shop</h1>\n")


def test_failing_before_command_means_no_backup_and_after_still_runs(
    host: Host, tmp_path: Path
) -> None:
    data = make_tree(tmp_path / "src")
    marker = tmp_path / "after-ran"
    pd = LocalStore(tmp_path / "store").pull_dir("k1")
    req = PullRequest(
        "db-1",
        (str(data),),
        before=("echo secret-password-123 >/dev/null; exit 3",),
        after=(f"touch {marker}",),
    )
    report = do_pull(host.target, pd, req)
    assert not report.verified
    assert "before command #1 failed with exit status 3" in report.detail
    assert "secret-password-123" not in report.detail
    assert marker.exists()
    assert pd.manifest() is None and list(pd.segments.glob("*.tar")) == []


def test_before_command_timing_out_means_no_backup(host: Host, tmp_path: Path) -> None:
    data = make_tree(tmp_path / "src")
    pd = LocalStore(tmp_path / "store").pull_dir("k1")
    req = PullRequest("db-1", (str(data),), before=("sleep 5",), command_timeout=0.5)
    report = do_pull(host.target, pd, req)
    assert not report.verified and "did not complete" in report.detail


def test_before_command_output_is_part_of_the_backup(host: Host, tmp_path: Path) -> None:
    data = make_tree(tmp_path / "src")
    dump = data / "dump.sql"
    pd = LocalStore(tmp_path / "store").pull_dir("k1")
    req = PullRequest("db-1", (str(data),), before=(f"echo 'INSERT 1;' > {dump}",))
    report = do_pull(host.target, pd, req)
    assert report.verified
    manifest = pd.manifest()
    assert manifest is not None
    assert str(dump) in {f["path"] for f in manifest["files"]}


def test_missing_path_fails_the_pull(host: Host, tmp_path: Path) -> None:
    pd = LocalStore(tmp_path / "store").pull_dir("k1")
    report_or_error: PullReport | PermanentError
    try:
        report_or_error = do_pull(host.target, pd, PullRequest("x", (str(tmp_path / "nope"),)))
    except PermanentError as e:
        report_or_error = e
    assert isinstance(report_or_error, PermanentError)
    assert "listing the paths failed" in str(report_or_error)


def test_changed_host_key_is_refused_naming_host_and_fingerprint(
    fresh_sshd: Sshd, tmp_path: Path
) -> None:
    info = fresh_sshd.info
    data = make_tree(tmp_path / "src")
    target = sshd_target(info)
    fresh_sshd.rotate_host_key()
    pd = LocalStore(tmp_path / "store").pull_dir("k1")
    with pytest.raises(PermanentError) as err:
        do_pull(target, pd, PullRequest("web-1", (str(data),)))
    message = str(err.value)
    assert "CHANGED" in message and f"[127.0.0.1]:{info.port}" in message
    assert "SHA256:" in message
    assert not pd.dir.exists() or list(pd.dir.rglob("*.tar")) == []


def test_unknown_host_is_refused_unless_auto_add_is_configured(
    sshd: SshdInfo, tmp_path: Path
) -> None:
    data = make_tree(tmp_path / "src")
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    strict = replace(sshd_target(sshd), known_hosts=(str(empty),))
    with pytest.raises(PermanentError, match=r"not in known_hosts .*SHA256:"):
        do_pull(strict, LocalStore(tmp_path / "s").pull_dir("k"), PullRequest("w", (str(data),)))
    trusting = replace(strict, auto_add=True)
    report = do_pull(
        trusting, LocalStore(tmp_path / "s").pull_dir("k"), PullRequest("w", (str(data),))
    )
    assert report.verified
    assert f"[127.0.0.1]:{sshd.port}" in empty.read_text()


def test_dropped_connection_then_rerun_resends_little_and_verifies(tmp_path: Path) -> None:
    data = tmp_path / "src"
    data.mkdir()
    for i in range(20):
        (data / f"part{i:02d}.bin").write_bytes(os.urandom(1 << 20))
    fleet, target = sandbox_host(tmp_path / "h", data, drop_after_bytes=(21 << 20) // 2)
    pd = LocalStore(tmp_path / "store").pull_dir("k1")
    req = PullRequest("big", (str(data),))
    try:
        with pytest.raises(TransientError):
            do_pull(target, pd, req)
    finally:
        fleet.stop()
    kept = sum(r.size for r in pd.received().values())
    assert kept >= 2 << 20  # how much arrived before the reset varies; much of it was kept
    fleet, target = sandbox_host(tmp_path / "h", data)
    try:
        report = do_pull(target, pd, req)
    finally:
        fleet.stop()
    assert report.verified, report.detail
    resent = report.sent_bytes - (20 * (1 << 20) - kept)
    assert resent <= kept // 10, (resent, kept)


def test_killed_sshd_session_then_rerun_resends_little_and_verifies(
    sshd: SshdInfo, tmp_path: Path
) -> None:
    data = tmp_path / "src"
    data.mkdir()
    for i in range(20):
        (data / f"part{i:02d}.bin").write_bytes(os.urandom(1 << 20))
    pd = LocalStore(tmp_path / "store").pull_dir("k1")
    req = PullRequest("big", (str(data),))
    killed: list[int] = []
    sshd_pid = int((sshd.root / "sshd.pid").read_text())

    def kill_halfway(nbytes: int, _files: int) -> None:
        if nbytes >= 10 << 20 and not killed:
            for pid in descendants(sshd_pid):
                killed.append(pid)
                os.kill(pid, signal.SIGKILL)

    with pytest.raises(TransientError), connected(sshd_target(sshd)) as transport:
        pull(transport, pd, req, kill_halfway)
    assert killed
    kept = sum(r.size for r in pd.received().values())
    report = do_pull(sshd_target(sshd), pd, req)
    assert report.verified, report.detail
    resent = report.sent_bytes - (20 * (1 << 20) - kept)
    assert resent <= kept // 10, (resent, kept)


def hostile_tools(bin_dir: Path, root: Path) -> None:
    """A host whose find and tar lie: names with '..', absolute names, a symlink to /etc."""
    bin_dir.mkdir()
    good = root / "good.txt"
    good.write_text("good\n")
    listing = b"".join(
        f"{head}\0{link}\0".encode()
        for head, link in [
            (f"d 755 0 1.0 {root}", ""),
            (f"f 644 5 1.0 {good}", ""),
            (f"f 644 5 1.0 {root}/../../escape.txt", ""),
            ("f 644 5 1.0 /etc/passwd", ""),
            (f"f 644 5 1.0 {root}/bad\x1b[2Jname", ""),
            (f"l 777 4 1.0 {root}/etc-link", "/etc"),
        ]
    )
    (bin_dir / "listing").write_bytes(listing)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, body in [
            ("../../escape.txt", b"evil\n"),
            ("/abs.txt", b"evil\n"),
            (str(good).lstrip("/"), b"good\n"),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            t.addfile(info, io.BytesIO(body))
        link = tarfile.TarInfo(f"{str(root).lstrip('/')}/etc-link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc"
        t.addfile(link)
    (bin_dir / "stream.tar").write_bytes(buf.getvalue())
    (bin_dir / "find").write_text(f"#!/bin/sh\ncat {bin_dir}/listing\n")
    (bin_dir / "tar").write_text(f"#!/bin/sh\ncat >/dev/null\ncat {bin_dir}/stream.tar\n")
    for tool in ("find", "tar"):
        (bin_dir / tool).chmod(0o755)


def test_hostile_names_never_escape_and_are_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "data"
    root.mkdir()
    hostile_tools(tmp_path / "bin", root)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    fleet, target = sandbox_host(tmp_path / "h", root)
    store_root = tmp_path / "store"
    pd = LocalStore(store_root).pull_dir("k1")
    try:
        report = do_pull(target, pd, PullRequest("evil", (str(root),)))
    finally:
        fleet.stop()
    assert report.verified, report.detail
    reasons = [(r["path"], r["reason"]) for r in report.refused]
    assert any(p == f"{root}/../../escape.txt" and "'..'" in r for p, r in reasons)
    assert ("/etc/passwd", "outside the requested paths") in reasons
    assert (f"{root}/bad\x1b[2Jname", "control character in name") in reasons
    assert (f"{root}/etc-link", "symlink points outside: /etc") in reasons
    assert ("/abs.txt", "absolute name in stream") in reasons
    assert ("/../../escape.txt", "not requested (sent by host)") in reasons
    manifest = pd.manifest()
    assert manifest is not None and len(manifest["refused"]) == len(report.refused)
    assert [f["path"] for f in manifest["files"]] == [str(root / "good.txt")]
    monkeypatch.undo()  # the real tar again, for unpacking below
    outside = [p for p in tmp_path.rglob("*") if "escape" in p.name or p.name == "abs.txt"]
    assert outside == []
    out = tmp_path / "unpacked"
    out.mkdir()
    for seg in pd.segments.glob("*.tar"):
        with tarfile.open(seg) as archive:
            names = archive.getnames()
        assert all(not n.startswith("/") and ".." not in n.split("/") for n in names)
        subprocess.run(["tar", "xf", str(seg), "-C", str(out)], check=True)
    assert [p.name for p in out.rglob("*") if p.is_file()] == ["good.txt"]


def test_sftp_is_used_when_the_host_refuses_exec(tmp_path: Path) -> None:
    data = make_tree(tmp_path / "src")
    fleet, target = sandbox_host(tmp_path / "h", data, exec_allowed=False)
    pd = LocalStore(tmp_path / "store").pull_dir("k1")
    try:
        report = do_pull(target, pd, PullRequest("sftp-only", (str(data),), excludes=("*.log",)))
        refused = do_pull(
            target,
            LocalStore(tmp_path / "s2").pull_dir("k"),
            PullRequest("x", (str(data),), before=("true",)),
        )
    finally:
        fleet.stop()
    assert report.verified, report.detail
    manifest = pd.manifest()
    assert manifest is not None and manifest["verified_with"] == "sftp-reread"
    assert {f["path"]: f["sha256"] for f in manifest["files"]} == files_under(data)
    assert not refused.verified and "refuses exec" in refused.detail


def test_sftp_can_be_chosen_in_config(host: Host, tmp_path: Path) -> None:
    data = make_tree(tmp_path / "src")
    pd = LocalStore(tmp_path / "store").pull_dir("k1")
    report = do_pull(
        host.target, pd, PullRequest("w", (str(data),), method="sftp", verify_with="sftp")
    )
    assert report.verified, report.detail
    manifest = pd.manifest()
    assert manifest is not None and manifest["verified_with"] == "sftp-reread"


def test_tar_pull_verified_by_an_sftp_reread_verifies(host: Host, tmp_path: Path) -> None:
    """`verify_with = "sftp"` with the default tar method: the host hashes nothing, so every file
    is read a second time over SFTP and compared (it used to compare against nothing)."""
    data = make_tree(tmp_path / "src")
    pd = LocalStore(tmp_path / "store").pull_dir("k1")
    req = PullRequest("w", (str(data),), excludes=("*.log",), verify_with="sftp")
    report = do_pull(host.target, pd, req)
    assert report.verified, report.detail
    manifest = pd.manifest()
    assert manifest is not None and manifest["verified_with"] == "sftp-reread"
    got = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert got == files_under(data)


def test_jump_host_reaches_a_server_behind_it(sshd: SshdInfo, tmp_path: Path) -> None:
    data = make_tree(tmp_path / "src")
    fleet, behind = sandbox_host(tmp_path / "h", data)
    known = tmp_path / "known_both"
    known.write_text(sshd.known_hosts.read_text() + (tmp_path / "h" / "known_hosts").read_text())
    jump_key = sshd.client_key
    target = replace(
        behind,
        known_hosts=(str(known),),
        identity_files=(*behind.identity_files, str(jump_key)),
        jump=f"{sshd.user}@127.0.0.1:{sshd.port}",
    )
    try:
        report = do_pull(
            target, LocalStore(tmp_path / "s").pull_dir("k"), PullRequest("w", (str(data),))
        )
    finally:
        fleet.stop()
    assert report.verified, report.detail


def test_ssh_config_alias_supplies_host_port_user_and_key(sshd: SshdInfo, tmp_path: Path) -> None:
    data = make_tree(tmp_path / "src")
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host shop-web\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user}\n"
        f"  IdentityFile {sshd.client_key}\n"
    )
    target = SshTarget(
        host="shop-web", known_hosts=(str(sshd.known_hosts),), ssh_config=str(config)
    )
    report = do_pull(
        target, LocalStore(tmp_path / "s").pull_dir("k"), PullRequest("w", (str(data),))
    )
    assert report.verified, report.detail


def test_passphrase_never_appears_in_errors(sshd: SshdInfo, tmp_path: Path) -> None:
    key = tmp_path / "locked_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "right-passphrase", "-f", str(key)], check=True
    )
    target = replace(
        sshd_target(sshd), identity_files=(str(key),), passphrase="wrong-passphrase-42"
    )
    with pytest.raises(PermanentError) as err:
        do_pull(
            target, LocalStore(tmp_path / "s").pull_dir("k"), PullRequest("w", (str(tmp_path),))
        )
    assert "wrong-passphrase-42" not in str(err.value)
    assert "wrong-passphrase-42" not in repr(target)


def test_ssh_agent_keys_are_used_when_present(
    sshd: SshdInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("ssh-agent") is None:
        pytest.skip("ssh-agent is not installed")
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if sock.exists():
                break
            time.sleep(0.01)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", "-q", str(sshd.client_key)], env=env, check=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/id_* to fall back on
        data = make_tree(tmp_path / "src")
        target = replace(sshd_target(sshd), identity_files=())
        report = do_pull(
            target, LocalStore(tmp_path / "s").pull_dir("k"), PullRequest("w", (str(data),))
        )
    finally:
        agent.terminate()
        agent.wait()
    assert report.verified, report.detail
