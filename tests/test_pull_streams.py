"""Pull streams: OpenSSH's ssh pinned to the verified host key, parallel streams, and the store's
batched index lines. Against a real OpenSSH sshd and the sandbox's SSH servers."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from teardown.adapters.ssh import openssh
from teardown.adapters.ssh.connect import connected
from teardown.adapters.ssh.fetcher import SshFetcher
from teardown.adapters.ssh.openssh import Session, link_for
from teardown.adapters.ssh.pull import PullRequest, pull
from teardown.adapters.ssh.pull_types import Entry
from teardown.adapters.ssh.tarstream import TarParser
from teardown.adapters.ssh.transfer import SegmentSink, _finish_all, _run_parts, split_streams
from teardown.adapters.store import (
    BATCH_KEY,
    FileRecord,
    LocalStore,
    PullDir,
    _append_jsonl,
    _read_jsonl,
)
from teardown.core.config import SshConfig
from teardown.core.errors import TransientError
from teardown.core.model import Kind, PullSpec, Resource
from tests.ssh_hosts import Host, do_pull, do_pull_openssh, link_to, sandbox_host, sshd_target
from tests.sshd import SshdInfo, descendants

MiB = 1 << 20


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def unpack(segments: Path, out: Path) -> None:
    """Extract every segment in order, as a restore does."""
    out.mkdir()
    for seg in sorted(segments.glob("*.tar")):
        subprocess.run(["tar", "xf", str(seg), "-C", str(out)], check=True)


def keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.with_name(path.name + ".pub").read_text().split(" ")[1]


def record(seen: list[int], nbytes: int, _files: int) -> None:
    seen.append(nbytes)


def tree(root: Path, files: int, size: int) -> Path:
    (root / "a" / "deep").mkdir(parents=True)
    (root / "b").mkdir()
    (root / "b").chmod(0o750)
    for i in range(files):
        folder = root / ("a/deep" if i % 2 else "b")
        (folder / f"part{i:02d}.bin").write_bytes(os.urandom(size))
    (root / "a" / "small.txt").write_text("small\n")
    (root / "a" / "link").symlink_to("small.txt")
    return root


# -- through OpenSSH's ssh -----------------------------------------------------------------


def test_a_pull_through_openssh_verifies_and_stores_the_same_bytes(
    host: Host, tmp_path: Path
) -> None:
    data = tree(tmp_path / "src", 4, 300_000)
    pd = LocalStore(tmp_path / "store").pull_dir("k1")
    report = do_pull_openssh(host.target, pd, PullRequest("w", (str(data),)))
    assert report.verified, report.detail
    assert report.streamed == "openssh x1"
    assert "note" not in report.detail
    unpack(pd.segments, tmp_path / "out")
    assert digests(tmp_path / "out" / str(data).lstrip("/")) == digests(data)


def test_parallel_streams_split_by_size_and_restore_whole(sshd: SshdInfo, tmp_path: Path) -> None:
    data = tree(tmp_path / "src", 6, 3 * MiB // 2)
    for client, how in (("auto", "openssh x3"), ("paramiko", "paramiko x3")):
        pd = LocalStore(tmp_path / f"store-{client}").pull_dir("k1")
        seen: list[int] = []
        req = PullRequest("w", (str(data),), streams=3, stream_min_bytes=MiB, client=client)
        with connected(sshd_target(sshd)) as transport:
            link = link_to(sshd_target(sshd), transport)
            report = pull(transport, pd, req, functools.partial(record, seen), link=link)
        assert report.verified, report.detail
        assert report.streamed == how
        assert report.files == 7 and report.sent_bytes == 6 * (3 * MiB // 2) + 6
        assert seen == sorted(seen) and seen[-1] == report.sent_bytes  # one total, never less
        manifest = pd.manifest()
        assert manifest is not None
        assert len({f["segment"] for f in manifest["files"]}) == 3
        # the directories travel first: their segment has the lowest number
        first = min(int(p.stem) for p in pd.segments.glob("*.tar"))
        with tarfile.open(pd.segment_path(first, part=False)) as archive:
            kinds = {m.name.rsplit("/", 1)[-1]: m.type for m in archive.getmembers()}
        assert kinds["b"] == tarfile.DIRTYPE and kinds["link"] == tarfile.SYMTYPE
        out = tmp_path / f"out-{client}"
        unpack(pd.segments, out)
        restored = out / str(data).lstrip("/")
        assert digests(restored) == digests(data)
        assert (restored / "b").stat().st_mode & 0o777 == 0o750


def test_a_changed_host_key_is_never_trusted_the_pull_goes_over_the_verified_transport(
    sshd: SshdInfo, tmp_path: Path
) -> None:
    data = tree(tmp_path / "src", 2, 100_000)
    other = keygen(tmp_path / "other_host_key")
    pd = LocalStore(tmp_path / "store").pull_dir("k1")
    report = do_pull_openssh(
        sshd_target(sshd), pd, PullRequest("w", (str(data),)), host_key=f"ssh-ed25519 {other}"
    )
    assert report.verified, report.detail
    assert report.streamed == "openssh x0, paramiko x1"
    assert "Host key verification failed" in report.detail
    unpack(pd.segments, tmp_path / "out")
    assert digests(tmp_path / "out" / str(data).lstrip("/")) == digests(data)


def test_a_key_the_host_refuses_falls_back_to_paramiko(sshd: SshdInfo, tmp_path: Path) -> None:
    data = tree(tmp_path / "src", 2, 100_000)
    keygen(tmp_path / "stranger")
    pd = LocalStore(tmp_path / "store").pull_dir("k1")
    report = do_pull_openssh(
        sshd_target(sshd),
        pd,
        PullRequest("w", (str(data),)),
        identity_files=(str(tmp_path / "stranger"),),
    )
    assert report.verified, report.detail
    assert report.streamed == "openssh x0, paramiko x1"
    assert "Permission denied" in report.detail


def twenty_mib(tmp_path: Path) -> tuple[Path, PullDir, PullRequest]:
    """20 files of 1 MiB, a store for them, and the request that pulls them."""
    data = tmp_path / "src"
    data.mkdir()
    for i in range(20):
        (data / f"part{i:02d}.bin").write_bytes(os.urandom(MiB))
    return data, LocalStore(tmp_path / "store").pull_dir("k1"), PullRequest("big", (str(data),))


def test_killed_session_through_openssh_then_rerun_resends_little(
    sshd: SshdInfo, tmp_path: Path
) -> None:
    _data, pd, req = twenty_mib(tmp_path)
    killed: list[int] = []
    sshd_pid = int((sshd.root / "sshd.pid").read_text())

    def kill_halfway(nbytes: int, _files: int) -> None:
        if nbytes >= 10 * MiB and not killed:
            for pid in descendants(sshd_pid):
                killed.append(pid)
                os.kill(pid, signal.SIGKILL)

    with pytest.raises(TransientError):
        do_pull_openssh(sshd_target(sshd), pd, req, kill_halfway)
    assert killed
    kept = sum(r.size for r in pd.received().values())
    assert kept >= 2 * MiB
    report = do_pull_openssh(sshd_target(sshd), pd, req)
    assert report.verified, report.detail
    resent = report.sent_bytes - (20 * MiB - kept)
    assert resent <= kept // 10, (resent, kept)


def test_dropped_connection_through_openssh_then_rerun_verifies(tmp_path: Path) -> None:
    data, pd, req = twenty_mib(tmp_path)
    fleet, target = sandbox_host(tmp_path / "h", data, drop_after_bytes=(21 * MiB) // 2)
    try:
        with pytest.raises(TransientError):
            do_pull_openssh(target, pd, req)
    finally:
        fleet.stop()
    kept = sum(r.size for r in pd.received().values())
    fleet, target = sandbox_host(tmp_path / "h", data)
    try:
        report = do_pull_openssh(target, pd, req)
    finally:
        fleet.stop()
    assert report.verified, report.detail
    assert report.sent_bytes == 20 * MiB - kept


def test_hostile_stream_through_openssh_is_refused_as_over_paramiko(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_ssh_pull import hostile_tools

    root = tmp_path / "data"
    root.mkdir()
    hostile_tools(tmp_path / "bin", root)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    reports = []
    for name, puller in (("paramiko", do_pull), ("openssh", do_pull_openssh)):
        fleet, target = sandbox_host(tmp_path / f"h-{name}", root)
        pd = LocalStore(tmp_path / f"store-{name}").pull_dir("k1")
        try:
            reports.append((puller(target, pd, PullRequest("evil", (str(root),))), pd))
        finally:
            fleet.stop()
    (plain, _), (through_ssh, pd) = reports
    assert through_ssh.streamed == "openssh x1"
    assert through_ssh.verified and through_ssh.refused == plain.refused
    assert ("/abs.txt", "absolute name in stream") in [
        (r["path"], r["reason"]) for r in through_ssh.refused
    ]
    manifest = pd.manifest()
    assert manifest is not None
    assert [f["path"] for f in manifest["files"]] == [str(root / "good.txt")]


def test_closing_a_session_twice_leaves_other_descriptors_alone(
    sshd: SshdInfo, tmp_path: Path
) -> None:
    with connected(sshd_target(sshd)) as transport:
        session = Session(link_to(sshd_target(sshd), transport), "true")
    session.send(b"")
    assert session.read(lambda _chunk: None, 30) == (0, "")
    number = session._out
    session.close()
    # Whatever opens next may get the same number: here, on purpose.
    spare = os.open(os.devnull, os.O_RDONLY)
    os.dup2(spare, number)
    os.close(spare)
    try:
        session.close()
        os.fstat(number)  # still open: the second close did not close it
    finally:
        os.close(number)


def test_ssh_runs_pinned_without_config_prompts_or_forwarding(
    sshd: SshdInfo, tmp_path: Path
) -> None:
    with connected(sshd_target(sshd)) as transport:
        link = link_to(sshd_target(sshd), transport)
    argv = openssh.argv(link, tmp_path / "pin", "tar -cf -")
    options = dict(a.split("=", 1) for a in argv if "=" in a and not a.startswith("/"))
    assert argv[1:3] == ["-F", "/dev/null"]
    assert options["StrictHostKeyChecking"] == "yes"
    assert options["UserKnownHostsFile"] == str(tmp_path / "pin")
    assert options["GlobalKnownHostsFile"] == "/dev/null"
    assert options["HostKeyAlias"] == openssh.PIN_ALIAS
    assert options["BatchMode"] == "yes" and options["PasswordAuthentication"] == "no"
    assert options["ForwardAgent"] == "no" and options["ClearAllForwardings"] == "yes"
    assert argv[-3:] == ["--", "127.0.0.1", "tar -cf -"]
    assert link.host_key == " ".join(sshd.host_key_pub.split()[:2])


def test_no_link_for_a_jump_host_a_passphrase_or_without_ssh(
    sshd: SshdInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    with connected(sshd_target(sshd)) as transport:
        args = ("127.0.0.1", sshd.port, sshd.user, (str(sshd.client_key),), transport)
        assert link_for(*args, connect_timeout=5) is not None
        assert link_for(*args, connect_timeout=5, jump="ops@bastion") is None
        assert link_for(*args, connect_timeout=5, passphrase="secret") is None
        monkeypatch.setenv("PATH", "/nonexistent")
        assert link_for(*args, connect_timeout=5) is None


def test_the_fetcher_streams_through_openssh_unless_configured_otherwise(
    sshd: SshdInfo, tmp_path: Path
) -> None:
    data = tree(tmp_path / "src", 2, 100_000)
    server = Resource(urn="urn:srv-1", type="t", kind=Kind.SERVER, name="web-1", cloud_id="srv-1")
    spec = PullSpec(name="data", paths=(str(data),))
    for client in ("auto", "paramiko"):
        ssh = SshConfig(
            user=sshd.user,
            identity_file=str(sshd.client_key),
            known_hosts=(str(sshd.known_hosts),),
            use_ssh_config=False,
            client=client,
        )
        fetcher = SshFetcher(LocalStore(tmp_path / client), ssh, local_ports={"srv-1": sshd.port})
        artifact = fetcher.pull(server, spec, "k1", None)
        assert artifact.verified, artifact.detail
        over = "openssh" if client == "auto" else "paramiko"
        assert artifact.detail.endswith(f"verified (host:openssl) over {over} x1"), artifact.detail


# -- splitting -----------------------------------------------------------------------------


def entry(path: str, size: int, kind: str = "f") -> Entry:
    return Entry(path, kind, 0o644, size, 1.0)


def test_streams_balance_by_size_keep_listing_order_and_lead_with_directories() -> None:
    listing = [
        entry("/d", 0, "d"),
        entry("/d/a", 100),
        entry("/d/b", 10),
        entry("/d/c", 60),
        entry("/d/l", 0, "l"),
        entry("/d/e", 50),
    ]
    parts = split_streams(listing, 2, 50)
    assert [[e.path for e in p] for p in parts] == [
        ["/d", "/d/l", "/d/a", "/d/b"],
        ["/d/c", "/d/e"],
    ]
    assert split_streams(listing, 4, 200) == [listing]  # 220 bytes: one part of 200 at most
    assert len(split_streams(listing, 4, 100)) == 2
    assert len(split_streams(listing, 4, 50)) == 4
    assert len(split_streams(listing, 8, 1)) == 4  # never more parts than files
    assert split_streams([], 3, 1) == [[]]


# -- the store's index lines ---------------------------------------------------------------


def test_one_append_is_one_line_read_back_row_by_row(tmp_path: Path) -> None:
    path = tmp_path / "index.jsonl"
    rows = [vars(FileRecord(f"/srv/f{i}", i, 0o644, 1.5, "0" * 64, 1, 512 * i)) for i in range(3)]
    _append_jsonl(path, rows)
    _append_jsonl(path, [{"path": "/srv/one", "sha256": "1" * 64, "via": "host:openssl"}])
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and list(json.loads(lines[0])) == [BATCH_KEY]
    assert [r["path"] for r in _read_jsonl(path)] == ["/srv/f0", "/srv/f1", "/srv/f2", "/srv/one"]


def test_a_torn_batch_is_dropped_whole_and_odd_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "index.jsonl"
    path.write_text('{"path": "/srv/old"}\n[1, 2]\n"text"\n{"rows": [{"path": "/srv/a"}, {"pa')
    assert [r["path"] for r in _read_jsonl(path)] == ["/srv/old"]


def test_ssh_client_and_streams_are_checked_in_config() -> None:
    assert SshConfig(client="paramiko", streams=4).streams == 4
    with pytest.raises(ValueError, match="client must be auto or paramiko"):
        SshConfig(client="openssh-please")
    with pytest.raises(ValueError, match="streams must be 1 to 16"):
        SshConfig(streams=0)


def test_the_pull_benchmark_runs_every_method_and_prints_its_figures(tmp_path: Path) -> None:
    """scripts/bench_pull on tiny sets: every method succeeds and prints its figures (the
    figures themselves are for people, not for a test)."""
    script = Path(__file__).resolve().parent.parent / "scripts" / "bench_pull.py"
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            *("--dir", str(tmp_path), "--big-mib", "1", "--small-count", "40"),
            *("--rounds", "1", "--parallel", "3"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "FAILED" not in out, out
    for name in ("openssh-tar", "teardown", "teardown-nohash", "teardown-paramiko"):
        assert re.search(rf"^big +{name} +MB/s= *[\d.]+ +wall=[\d.]+s +cpu=[\d.]+s", out, re.M)
    assert re.search(r"^big +teardown/\S+ \(fastest peer\) = [\d.]+$", out, re.M), out
    assert re.search(r"^small +teardown/\S+ \(fastest peer\) wall = [\d.]+$", out, re.M), out
    assert re.search(r"^small +peak RSS \d+ MiB", out, re.M), out


def test_one_failing_stream_stops_the_others_which_keep_what_they_completed(
    tmp_path: Path,
) -> None:
    pd = LocalStore(tmp_path / "store").pull_dir("k1")
    pd.prepare()
    expected = {p: Entry(p, "f", 0o644, 0, 1.0) for p in ("/srv/a", "/srv/b")}
    first = SegmentSink(pd, expected, None)
    second = SegmentSink(pd, expected, None, shared=first.shared)
    completed = threading.Event()
    chunks_after_failure: list[int] = []

    def header(name: str, size: int) -> bytes:
        info = tarfile.TarInfo(name)
        info.size = size
        return info.tobuf(tarfile.GNU_FORMAT)

    def long_stream() -> str:
        parser = TarParser(second)
        parser.feed(header("srv/a", 5) + b"whole".ljust(512, b"\0"))  # /srv/a: complete
        parser.feed(header("srv/b", 1 << 40))  # /srv/b: a terabyte, never complete
        completed.set()
        for n in range(10_000):
            if first.shared.stop.is_set():
                chunks_after_failure.append(n)
            parser.feed(bytes(1 << 16))
        return ""

    def failing_stream() -> str:
        completed.wait(30)
        raise TransientError("tar stream: connection reset")

    notes, errors = _run_parts([failing_stream, long_stream], first.shared.stop)
    assert notes == []
    assert isinstance(errors[0], TransientError)
    assert isinstance(errors[1], EOFError) and "another stream" in str(errors[1])
    assert len(chunks_after_failure) <= 1  # it stopped at its next chunk
    _finish_all([first, second])
    assert set(pd.received()) == {"/srv/a"}
