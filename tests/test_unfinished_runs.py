"""Unfinished runs are never forgotten: after a run is killed during its destroys, the same
`teardown run` refuses (exit 3) with the exact resume command, and `--resume-unfinished`
finishes the old run first; nothing of the scope is left billing (real stack: the sandbox, real
SSH, the journal, a SIGKILLed subprocess)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from teardown.core.phases import RunPhase
from teardown.engine.journal import Journal
from teardown.sandbox.billing import still_billing
from teardown.sandbox.runtime import Sandbox
from teardown.support.clock import SystemClock
from tests.sandbox_rig import demo_unlocked
from tests.test_crash_matrix import VAULTS, prepare, teardown_run


def first_destroy_commit(root: Path) -> int:
    """The journal commit that records the first destroy intent of a whole run."""
    sb, cfg = prepare(root)
    with Sandbox(sb, scenario=demo_unlocked(root)):
        done = teardown_run(sb, cfg, "run", "--tag", "app=shop", "--yes")
        assert done.returncode == 0, done.stderr
    journal = Journal.open(root / "journal.db", SystemClock(), create=False)
    try:
        (run,) = journal.runs()
        for n, event in enumerate(journal.events(run.id), 1):
            if event.type == "step.intent" and event.data.get("kind") == "destroy":
                return n
    finally:
        journal.close()
    raise AssertionError("no destroy in the reference run")


def test_a_run_killed_during_destroy_is_resumed_not_forgotten(tmp_path: Path) -> None:
    kill_at = first_destroy_commit(tmp_path / "reference")
    sb, cfg = prepare(tmp_path / "real")
    with Sandbox(sb, scenario=demo_unlocked(tmp_path)) as sandbox:
        killed = teardown_run(sb, cfg, "run", "--tag", "app=shop", "--yes", crash_after=kill_at)
        assert killed.returncode == -9

        again = teardown_run(sb, cfg, "run", "--tag", "app=shop", "--yes")

        assert again.returncode == 3, again.stderr
        assert "has an unfinished run" in again.stderr
        journal = Journal.open(tmp_path / "real" / "journal.db", SystemClock(), create=False)
        (run,) = journal.runs()
        journal.close()
        assert run.phase is RunPhase.RUNNING
        expected = f"teardown resume {run.id} --profile {sb / 'profile.toml'} --config {cfg}"
        assert expected in again.stderr

        finished = teardown_run(sb, cfg, "run", "--tag", "app=shop", "--yes", "--resume-unfinished")

        assert finished.returncode == 0, finished.stderr
        assert f"resuming unfinished run {run.id}" in finished.stderr
        assert sandbox.store is not None
        conn = sqlite3.connect(sandbox.layout.state)
        conn.row_factory = sqlite3.Row
        left = still_billing(conn, SystemClock().now())  # only the vaults, by capacity
        assert all(e["kind"] == "vault" and e["charging"] == "storage" for e in left), left
        assert {e["resource_id"] for e in left} == VAULTS
        conn.close()
    journal = Journal.open(tmp_path / "real" / "journal.db", SystemClock(), create=False)
    phases = {r.id: r.phase for r in journal.runs()}
    journal.close()
    assert phases[run.id] is RunPhase.COMPLETED


def test_every_report_lists_what_unfinished_runs_of_the_scope_left_billing(
    tmp_path: Path,
) -> None:
    from teardown.core.config import Config
    from teardown.core.model import BillingMode
    from teardown.core.planner import make_plan
    from teardown.engine.codec import plan_digest, plan_to_json
    from teardown.engine.report import build_report
    from tests.helpers import make_rig, server

    web, db = server("web"), server("db", BillingMode.PRE_PAID)
    switches = {"fail": {"destroy": [{"error": "permanent", "times": 1}]}}
    rig = make_rig(tmp_path, [db, web], switches=switches, parallel=1)
    first = rig.runner.start(make_plan([db, web], Config(), "dev"))
    assert first.phase is RunPhase.PARTIALLY_FAILED  # db refused, web destroyed
    # a run of the same scope recorded elsewhere (an older teardown, another journal merged)
    other = make_plan([server("cache")], Config(), "dev")
    text = plan_to_json(other)
    rig.journal.create_run("r-other", "dev", text, plan_digest(text))

    report = build_report(rig.journal, "r-other")

    (left,) = [s for s in report["still_billing"] if s["name"] == "db"]
    assert f"left by unfinished run {first.run_id}" in left["why"]
    assert f"teardown resume {first.run_id}" in left["why"]
