"""Crash matrix over the real stack: `teardown run` on the demo scenario, as a subprocess against
the sandbox (official SDK over HTTP, real SSH servers, real journal), SIGKILLed right after its
k-th journal commit for k spread over a whole run, then resumed. After each: the run completes,
nothing is destroyed before its verified backups (journal), no delete, unsubscribe or cancel is
made twice (the sandbox's own call log), and the ledger shows nothing left billing but the
backup vaults. The scenario is the demo with legacy-1's lock lifted, so that a run completes.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from teardown.core.model import BACKUP_STEPS, StepKind
from teardown.core.phases import RunPhase, StepStatus
from teardown.engine.codec import plan_from_json
from teardown.engine.journal import Journal
from teardown.sandbox.billing import still_billing
from teardown.sandbox.runtime import Sandbox
from teardown.support.clock import SystemClock
from tests.sandbox_rig import demo_unlocked

ROOT = Path(__file__).resolve().parent.parent
TEARDOWN = [sys.executable, "-m", "teardown.cli.main"]
POINTS = int(os.environ.get("TEARDOWN_CRASH_POINTS", "24"))
"""Kill points spread over a whole run: 24 in the suite, more with ``scripts/test --all``."""
EXPECTED_SUCCESSES = {
    "ecs.DeleteServers": 1,  # web-1
    "bss.CancelResourcesSubscription": 5,  # db-1, db-data, cache-1, promo-1, legacy-1
    "bss.CancelCustomerOrder": 1,  # the unpaid order
    "eip.DeletePublicip": 1,  # web-1's public IP
    "evs.DeleteVolume": 1,  # db-logs
}
VAULTS = {"vault-sandbox", "vault-sandbox-disk"}
"""What bills after a completed run: the CBR vaults (by capacity, for as long as they exist)."""


def prepare(root: Path) -> tuple[Path, Path]:
    sb = root / "sb"
    sb.mkdir(parents=True)
    (sb / "sandbox.toml").write_text(
        "[durations]\ndelete_server = 0.05\nstop_server = 0.05\nsnapshot = 0.05\n"
        "delete_snapshot = 0.05\ncheckpoint = 0.05\nrelease = 0.05\n"
    )
    cfg = root / "teardown.toml"
    cfg.write_text(
        (ROOT / "examples" / "sandbox-demo.toml")
        .read_text()
        .replace(".teardown/demo/journal.db", str(root / "journal.db"))
        .replace(".teardown/demo/backups", str(root / "backups"))
        .replace("parallel = 8", "parallel = 8\npoll_interval = 0.05")
    )
    return sb, cfg


def teardown_run(
    sb: Path, cfg: Path, *extra: str, crash_after: int | None = None
) -> subprocess.CompletedProcess[str]:
    """``teardown`` with these arguments; with ``crash_after``, through the test-only entry
    point that SIGKILLs the process after that many journal commits (``tests/crash_cli.py``)."""
    args = ["--profile", str(sb / "profile.toml"), "--config", str(cfg), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = TEARDOWN
    if crash_after is not None:
        env["TEARDOWN_CRASH_AFTER_COMMITS"] = str(crash_after)
        command = [sys.executable, "-m", "tests.crash_cli"]
    return subprocess.run(
        [*command, *extra, *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )


def journal_commits(root: Path) -> int:
    journal = Journal.open(root / "journal.db", SystemClock(), create=False)
    try:
        (run,) = journal.runs()
        return len(journal.events(run.id))
    finally:
        journal.close()


def check(root: Path, sandbox: Sandbox) -> None:
    journal = Journal.open(root / "journal.db", SystemClock(), create=False)
    try:
        (run,) = journal.runs()
        assert run.phase is RunPhase.COMPLETED, run.phase
        plan = plan_from_json(run.plan_json, "journal")
        steps = {s.step_id: s for s in journal.steps(run.id)}
        artifacts = {a: journal.artifacts(run.id)[a] for a in journal.artifacts(run.id)}
        for rp in plan.resources:
            if rp.destroy is None:
                continue
            destroy = steps[rp.destroy.id]
            assert destroy.status is StepStatus.SUCCEEDED
            for b in rp.backups:
                assert b.kind in BACKUP_STEPS
                assert artifacts[b.id].verified, f"{rp.resource.name}: unverified backup"
                made = steps[b.id].outcome_at
                assert made is not None and destroy.intent_at is not None
                assert made <= destroy.intent_at, f"{rp.resource.name} destroyed before backup"
        assert all(s.status is StepStatus.SUCCEEDED for s in steps.values()), [
            (s.kind, s.error) for s in steps.values() if s.status is not StepStatus.SUCCEEDED
        ]
        assert any(s.kind is StepKind.RECORD_REFUND for s in steps.values())
    finally:
        journal.close()
    conn = sqlite3.connect(sandbox.layout.state)
    conn.row_factory = sqlite3.Row
    counts = dict(
        conn.execute(
            "SELECT operation, COUNT(*) FROM calls WHERE status < 400 GROUP BY operation"
        ).fetchall()
    )
    for operation, n in EXPECTED_SUCCESSES.items():
        assert counts.get(operation, 0) == n, f"{operation} succeeded {counts.get(operation)} times"
    assert conn.execute("SELECT COUNT(*) FROM servers WHERE deleted=0").fetchone()[0] == 0
    left = still_billing(conn, SystemClock().now())
    assert all(e["kind"] == "vault" and e["charging"] == "storage" for e in left), left
    assert {e["resource_id"] for e in left} == VAULTS


@pytest.mark.slow
@pytest.mark.timeout(900)  # about 3 s a point: 42 points take about 2.5 minutes
def test_run_killed_at_every_stage_always_finishes_safely(tmp_path: Path) -> None:
    ref = tmp_path / "reference"
    sb_dir, cfg = prepare(ref)
    with Sandbox(sb_dir, scenario=demo_unlocked(ref)) as sandbox:
        clean = teardown_run(sb_dir, cfg, "run", "--tag", "app=shop", "--yes")
        assert clean.returncode == 0, clean.stderr
        check(ref, sandbox)
    total = journal_commits(ref)
    stride = max(1, total // POINTS)
    points = list(range(1, total + 1, stride))[:POINTS]
    killed = 0
    for k in points:
        root = tmp_path / f"k{k:03d}"
        sb_dir, cfg = prepare(root)
        with Sandbox(sb_dir, scenario=demo_unlocked(root)) as sandbox:
            first = teardown_run(sb_dir, cfg, "run", "--tag", "app=shop", "--yes", crash_after=k)
            assert first.returncode in (-9, 0), f"k={k}: {first.stderr[-800:]}"
            killed += first.returncode == -9
            journal = root / "journal.db"
            runs: list[str] = []
            if journal.exists():
                j = Journal.open(journal, SystemClock(), create=False)
                runs = [r.id for r in j.runs()]
                j.close()
            if runs:
                again = teardown_run(sb_dir, cfg, "resume", runs[0])
            else:  # killed before the run was recorded: nothing happened yet
                again = teardown_run(sb_dir, cfg, "run", "--tag", "app=shop", "--yes")
            assert again.returncode == 0, f"k={k}: {again.stderr[-1500:]}"
            check(root, sandbox)
    assert killed >= min(40, POINTS), (killed, total)
    print(f"crash matrix: {killed} kill points over {total} journal commits, 0 violations")
