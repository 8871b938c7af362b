"""The runner with the real SSH fetcher: pulls are backup steps, and gate the destroy (I1)."""

from __future__ import annotations

import os
from pathlib import Path

from teardown.adapters.ssh.fetcher import SshFetcher
from teardown.adapters.store import LocalStore
from teardown.core.config import BackupConfig, Config, PullRule, SshConfig
from teardown.core.model import SnapshotKind, StepKind
from teardown.core.phases import Phase, RunPhase, StepStatus
from teardown.core.planner import make_plan
from teardown.engine.events import Progress
from teardown.engine.runner import Ports, Runner, RunResult
from teardown.sandbox.ssh import (
    SshFleet,
    SshServerSpec,
    ensure_host_key,
    ensure_keys,
    write_known_hosts,
)
from teardown.support.retry import RetryPolicy
from tests.helpers import Rig, make_rig, server


def run_pull(
    tmp_path: Path,
    data: Path,
    *,
    before: tuple[str, ...] = (),
    drop_after_bytes: int | None = None,
    wrong_host_key: bool = False,
    retry: RetryPolicy | None = None,
) -> tuple[Rig, RunResult, str, LocalStore]:
    """Run a one-server plan whose only backup is an SSH pull of ``data`` from a sandbox host."""
    keys = ensure_keys(tmp_path / "ssh")
    pub = ensure_host_key(tmp_path / "hostkey")
    if wrong_host_key:
        pub = ensure_host_key(tmp_path / "other-hostkey")
    fleet = SshFleet(keys)
    spec = SshServerSpec("web", tmp_path / "hostkey", data, drop_after_bytes=drop_after_bytes)
    port = fleet.start([spec])["web"]
    write_known_hosts(tmp_path / "known_hosts", [(port, pub)])
    web = server("web")
    rule = PullRule(paths=(str(data),), name="site", before=before)
    config = Config(backup=BackupConfig(snapshot=SnapshotKind.NONE, pull=(rule,)))
    rig = make_rig(tmp_path / "rig", [web])
    ssh = SshConfig(
        user="root",
        identity_file=str(keys.client_key),
        known_hosts=(str(tmp_path / "known_hosts"),),
        use_ssh_config=False,
    )
    store = LocalStore(tmp_path / "store")
    p = rig.runner.ports
    runner = Runner(
        rig.journal,
        Ports(
            p.snapshotter,
            SshFetcher(store, ssh, local_ports={web.cloud_id or "": port}),
            p.destroyer,
            p.billing,
        ),
        clock=rig.clock,
        retry=retry,
        sleep=rig.slept.append,
        observers=[rig.events.append],
    )
    try:
        result = runner.start(make_plan([web], config, "dev"))
    finally:
        fleet.stop()
    return rig, result, web.urn, store


def site(tmp_path: Path) -> Path:
    data = tmp_path / "srv"
    (data / "www").mkdir(parents=True)
    (data / "www" / "index.html").write_text("<h1>shop</h1>\n")
    return data


def test_failing_before_command_records_the_backup_failed_and_destroys_nothing(
    tmp_path: Path,
) -> None:
    rig, result, urn, _ = run_pull(tmp_path, site(tmp_path), before=("exit 7",))
    assert result.phase is RunPhase.FAILED
    assert result.phases[urn] is Phase.FAILED
    assert rig.cloud.calls("destroy") == []
    (step,) = rig.journal.steps(result.run_id)
    assert step.kind is StepKind.PULL and step.status is StepStatus.FAILED
    assert "before command #1 failed with exit status 7" in (step.error or "")
    assert rig.journal.artifacts(result.run_id) == {}


def test_verified_pull_lets_the_destroy_go_ahead_with_progress_reported(tmp_path: Path) -> None:
    rig, result, urn, _ = run_pull(tmp_path, site(tmp_path))
    assert result.phase is RunPhase.COMPLETED
    (artifact,) = rig.journal.artifacts(result.run_id).values()
    assert artifact.verified and artifact.kind == "pull" and artifact.sha256
    assert Path(artifact.ref).name == "manifest.json"
    assert [c["urn"] for c in rig.cloud.calls("destroy")] == [urn]
    progress = [e for e in rig.events if isinstance(e, Progress)]
    assert progress and progress[-1].bytes == len("<h1>shop</h1>\n")


def test_dropped_connections_are_retried_and_each_retry_resumes(tmp_path: Path) -> None:
    data = tmp_path / "srv"
    data.mkdir()
    for i in range(12):
        (data / f"chunk{i:02d}.bin").write_bytes(os.urandom(1 << 20))
    # Every session is cut after 5 MiB: only resuming lets the pull finish.
    retry = RetryPolicy(attempts=8, initial=0.5, maximum=4.0, jitter=0.5)
    rig, result, _, _ = run_pull(tmp_path, data, drop_after_bytes=5 << 20, retry=retry)
    assert result.phase is RunPhase.COMPLETED
    assert len(rig.slept) >= 2 and all(0 < s <= 4.5 for s in rig.slept)
    (artifact,) = rig.journal.artifacts(result.run_id).values()
    assert artifact.verified and artifact.size == 12 << 20


def test_changed_host_key_fails_the_backup_naming_host_and_fingerprint(tmp_path: Path) -> None:
    rig, result, _, store = run_pull(tmp_path, site(tmp_path), wrong_host_key=True)
    assert result.phase is RunPhase.FAILED  # the CLI maps this to exit code 1
    (step,) = rig.journal.steps(result.run_id)
    assert "[127.0.0.1]:" in (step.error or "") and "SHA256:" in (step.error or "")
    assert rig.slept == []  # a changed key is not retried
    assert rig.cloud.calls("destroy") == []
    assert not store.root.exists() or list(store.root.rglob("*.tar")) == []
