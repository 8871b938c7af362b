"""More faults around an SSH pull: a host that lies about checksums or sizes, a full store disk,
and a file too large to hold in memory. None of them may let the destroy go ahead."""

from __future__ import annotations

import errno
import hashlib
import os
import resource
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from teardown.adapters.ssh.pull import PullReport, PullRequest
from teardown.adapters.store import LocalStore, PullDir
from teardown.core.errors import PermanentError, TransientError
from teardown.core.model import StepKind
from teardown.core.phases import Phase, RunPhase, StepStatus
from tests.ssh_hosts import do_pull, sandbox_host
from tests.test_runner_ssh import run_pull

ZEROS = "0" * 64


def _real(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.skip(f"{tool} is not installed")
    return found


def _script(bin_dir: Path, name: str, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def lying_hashers(bin_dir: Path, victim: str) -> None:
    """``openssl`` and ``sha256sum`` that answer honestly, except all zeros for ``victim``."""
    name = victim.replace(".", r"\.")
    _script(
        bin_dir,
        "openssl",
        f'"{_real("openssl")}" "$@" | sed \'s/^[0-9a-f]\\{{64\\}} \\*\\(.*\\/{name}\\)$/'
        f"{ZEROS} *\\1/'\n",
    )
    _script(
        bin_dir,
        "sha256sum",
        f'"{_real("sha256sum")}" "$@" | sed -z \'s/^[0-9a-f]\\{{64\\}}  \\(.*\\/{name}\\)$/'
        f"{ZEROS}  \\1/'\n",
    )


def lying_find(bin_dir: Path, victim: str, size: int) -> None:
    """A ``find`` that reports ``size`` bytes for ``victim`` (NUL-separated -printf records)."""
    name = victim.replace(".", r"\.")
    _script(
        bin_dir,
        "find",
        f'"{_real("find")}" "$@" | sed -z \'s/^f \\([0-7]*\\) [0-9]* \\(.*\\/{name}\\)$/'
        f"f \\1 {size} \\2/'\n",
    )


def small_site(root: Path) -> Path:
    data = root / "srv"
    (data / "www").mkdir(parents=True)
    (data / "www" / "index.html").write_text("<h1>shop</h1>\n")
    (data / "www" / "victim.txt").write_bytes(os.urandom(50_000))
    (data / "www" / "other.txt").write_text("other\n")
    return data


def sandbox_pull(root: Path, data: Path, pd: PullDir, req: PullRequest) -> PullReport:
    fleet, target = sandbox_host(root, data)
    try:
        return do_pull(target, pd, req)
    finally:
        fleet.stop()


@pytest.mark.parametrize("verify_with", ["openssl", "sha256sum"])
def test_a_lying_remote_sha256_fails_the_backup_and_nothing_is_destroyed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verify_with: str
) -> None:
    data = small_site(tmp_path)
    victim = data / "www" / "victim.txt"
    lying_hashers(tmp_path / "bin", "victim.txt")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    pd = LocalStore(tmp_path / "store").pull_dir("k1")
    req = PullRequest("web-1", (str(data),), verify_with=verify_with)
    report = sandbox_pull(tmp_path / "h", data, pd, req)
    assert report.verified is False
    assert f"{victim}: sha256 differs (host {ZEROS[:12]}" in report.detail
    assert "1 of 3 files not verified" in report.detail
    assert report.manifest_path is None and pd.manifest() is None
    assert not pd.manifest_path.exists()
    # The mismatching file is forgotten, so a rerun fetches it again; the others are kept.
    assert str(victim) not in pd.received()
    assert str(data / "www" / "index.html") in pd.received()

    # Through the runner (auto: the fake openssl is first on PATH): the destroy never happens.
    rig, result, urn, store = run_pull(tmp_path / "runner", data)
    assert result.phase is RunPhase.FAILED
    assert result.phases[urn] is Phase.FAILED
    assert rig.cloud.calls("destroy") == []
    (step,) = rig.journal.steps(result.run_id)
    assert step.kind is StepKind.PULL and step.status is StepStatus.FAILED
    assert f"{victim}: sha256 differs" in (step.error or "")
    assert list(store.root.rglob("manifest.json")) == []
    assert all(not a.verified for a in rig.journal.artifacts(result.run_id).values())

    # The host stops lying: the rerun fetches only the forgotten file and verifies.
    monkeypatch.undo()
    again = sandbox_pull(tmp_path / "h", data, pd, req)
    assert again.verified, again.detail
    assert again.sent_bytes == victim.stat().st_size
    manifest = pd.manifest()
    assert manifest is not None
    got = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert got[str(victim)] == hashlib.sha256(victim.read_bytes()).hexdigest()


def test_a_remote_file_that_changes_size_during_the_pull_is_not_verified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = small_site(tmp_path)
    victim = data / "www" / "victim.txt"
    real_size = victim.stat().st_size
    lying_find(tmp_path / "bin", "victim.txt", real_size + 4096)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    pd = LocalStore(tmp_path / "store").pull_dir("k1")
    report = sandbox_pull(tmp_path / "h", data, pd, PullRequest("web-1", (str(data),)))
    assert report.verified is False
    assert f"{victim}: size differs (host {real_size + 4096}, got {real_size})" in report.detail
    assert pd.manifest() is None and not pd.manifest_path.exists()
    assert str(victim) not in pd.received()

    rig, result, urn, store = run_pull(tmp_path / "runner", data)
    assert result.phase is RunPhase.FAILED
    assert result.phases[urn] is Phase.FAILED
    assert rig.cloud.calls("destroy") == []
    (step,) = rig.journal.steps(result.run_id)
    assert step.status is StepStatus.FAILED
    assert f"{victim}: size differs" in (step.error or "")
    assert list(store.root.rglob("manifest.json")) == []


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_store_disk_full_fails_the_backup_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "src"
    data.mkdir()
    for i in range(5):
        (data / f"part{i}.bin").write_bytes(os.urandom(1 << 20))
    req = PullRequest("big", (str(data),))
    with tmpfs(tmp_path / "small", "2m") as small:
        pd = LocalStore(small / "store").pull_dir("k1")
        fleet, target = sandbox_host(tmp_path / "h", data)
        try:
            outcome: PullReport | TransientError | PermanentError | OSError
            try:
                outcome = do_pull(target, pd, req)
            except (TransientError, PermanentError, OSError) as e:
                outcome = e
            # The store filled up: never a verified backup, never a manifest.
            assert not isinstance(outcome, PullReport) or not outcome.verified, outcome
            if isinstance(outcome, OSError):
                assert outcome.errno == errno.ENOSPC
            else:
                text = str(outcome) if isinstance(outcome, Exception) else outcome.detail
                assert "No space left on device" in text, text
            assert pd.manifest() is None and not pd.manifest_path.exists()
            # Every finalized segment is a whole tar whose files are all in the index.
            received = pd.received()
            for seg in pd.segments.glob("*.tar"):
                listed = subprocess.run(
                    ["tar", "tf", str(seg)], capture_output=True, text=True, check=True
                ).stdout.split()
                files = [name for name in listed if not name.endswith("/")]  # not directories
                assert all("/" + name in received for name in files), (listed, received)
            assert sum(r.size for r in received.values()) < 2 << 20

            # More space: the rerun completes, resends what was lost, and verifies.
            subprocess.run(["mount", "-o", "remount,size=64m", str(small)], check=True)
            report = do_pull(target, pd, req)
        finally:
            fleet.stop()
        assert report.verified, report.detail
        manifest = pd.manifest()
        assert manifest is not None and len(manifest["files"]) == 5
        assert list(pd.segments.glob("*.part")) == []
        want = {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(data.iterdir())}
        assert {f["path"]: f["sha256"] for f in manifest["files"]} == want


@pytest.mark.slow
def test_an_oversized_remote_file_streams_without_loading_it_in_memory(tmp_path: Path) -> None:
    data = tmp_path / "src"
    data.mkdir()
    big = data / "huge.img"
    size = 300 << 20
    with open(big, "wb") as out:
        out.write(b"head")
        os.truncate(out.fileno(), size)
    (data / "small.txt").write_text("small\n")
    pd = LocalStore(tmp_path / "store").pull_dir("k1")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    report = sandbox_pull(tmp_path / "h", data, pd, PullRequest("big", (str(data),)))
    growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert report.verified, report.detail
    assert report.total_bytes == size + len("small\n")
    assert growth_mib < 100, f"peak RSS grew by {growth_mib:.0f} MiB for a 300 MiB file"
    manifest = pd.manifest()
    assert manifest is not None
    expected = hashlib.sha256()
    with open(big, "rb") as src:
        while chunk := src.read(4 << 20):
            expected.update(chunk)
    sums = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert sums[str(big)] == expected.hexdigest()


def test_store_disk_full_through_the_runner_records_the_pull_failed(tmp_path: Path) -> None:
    data = tmp_path / "src"
    data.mkdir()
    for i in range(5):
        (data / f"part{i}.bin").write_bytes(os.urandom(1 << 20))
    with tmpfs(tmp_path / "small", "2m") as small:
        (tmp_path / "runner").mkdir()
        (tmp_path / "runner" / "store").symlink_to(small)
        rig, result, urn, store = run_pull(tmp_path / "runner", data)
        assert result.phase is RunPhase.FAILED
        assert result.phases[urn] is Phase.FAILED
        assert rig.cloud.calls("destroy") == []
        (step,) = rig.journal.steps(result.run_id)
        assert step.status is StepStatus.FAILED
        assert "No space left on device" in (step.error or "")
        assert "backup store is full" in (step.error or "")
        assert list(store.root.rglob("manifest.json")) == []
