"""The whole run under each fault the sandbox can inject: whatever happens, no server is
deleted without its verified backups, and everything still billing has a line in the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from teardown.app import plan_servers, resolve_profile, run_plan
from teardown.cli.common import RUN_PHASE_EXIT
from teardown.core.phases import StepStatus
from teardown.engine.codec import plan_from_json
from teardown.engine.journal import Journal
from teardown.sandbox.runtime import Sandbox
from teardown.support.clock import SystemClock
from tests.sandbox_rig import demo_unlocked
from tests.test_main_job import FAST, SHOP, demo_config

FAULTS = {
    "throttling burst": ('[faults]\nseed = 3\nthrottle = { "*" = 0.3 }\n', "", {0}),
    "server errors": ('[faults]\nseed = 5\nserver_error = { "*" = 0.15 }\n', "", {0, 4}),
    "failing delete job": (
        '[faults]\nfailing_jobs = ["1a0c5e2a-5b7d-4c1e-9a2b-0d1e2f3a4b01"]\n',
        "",
        {4},
    ),
    "backup in error": (
        '[faults]\nsnapshot_error = ["2b1d6f3b-6c8e-4d2f-8b3c-1e2f3a4b5c02"]\n',
        "",
        {4},
    ),
    "frozen database": ("", 'blockers = ["frozen"]', {4}),
    "locked database": ("", 'blockers = ["locked"]', {4}),
}


@pytest.mark.slow
@pytest.mark.parametrize("fault", list(FAULTS))
def test_run_under_fault_keeps_backups_first_and_reports_what_bills(
    fault: str, tmp_path: Path
) -> None:
    sandbox_faults, db_blocker, exits = FAULTS[fault]
    sb = tmp_path / "sb"
    sb.mkdir()
    (sb / "sandbox.toml").write_text(
        "[durations]\ndelete_server = 0.05\nsnapshot = 0.05\ncheckpoint = 0.05\nrelease = 0.05\n"
        + sandbox_faults
    )
    # legacy-1's lock lifted: the faults here, not the lock, decide how the run ends
    scenario = Path(demo_unlocked(tmp_path)).read_text()
    if db_blocker:
        scenario = scenario.replace(
            'discount_coupon = "480.00"', f'discount_coupon = "480.00"\n{db_blocker}'
        )
    (tmp_path / "scenario.toml").write_text(scenario)
    config = demo_config(tmp_path)
    with Sandbox(sb, scenario=str(tmp_path / "scenario.toml")) as sandbox:
        profile = resolve_profile(sb / "profile.toml", {})
        plan = plan_servers(profile, SHOP, config, now=SystemClock().now(), tuning=FAST)
        outcome = run_plan(profile, plan, config, tuning=FAST)
        assert sandbox.store is not None
        live = {
            r[0] for r in sandbox.store.conn.execute("SELECT name FROM servers WHERE deleted=0")
        }
    assert RUN_PHASE_EXIT[outcome.result.phase] in exits, (
        outcome.result.phase,
        outcome.result.errors,
    )
    journal = Journal.open(Path(config.journal.path), SystemClock(), create=False)
    try:
        run = journal.run(outcome.result.run_id)
        recorded = plan_from_json(run.plan_json, "journal")
        steps = {s.step_id: s for s in journal.steps(run.id)}
        artifacts = journal.artifacts(run.id)
    finally:
        journal.close()
    billing_lines = {s["name"] for s in outcome.report["still_billing"]}
    for rp in recorded.resources:
        name = rp.resource.name
        destroyed = (
            rp.destroy is not None
            and steps.get(rp.destroy.id) is not None
            and (steps[rp.destroy.id].status is StepStatus.SUCCEEDED)
        )
        if destroyed:
            assert rp.destroy is not None
            for b in rp.backups:
                assert artifacts[b.id].verified, f"{fault}: {name} destroyed unbacked"
                made, gone = steps[b.id].outcome_at, steps[rp.destroy.id].intent_at
                assert made is not None and gone is not None and made <= gone
        elif rp.resource.billing.mode.value in ("postPaid", "prePaid", "spot"):
            assert name in billing_lines, f"{fault}: {name} still bills but the report is silent"
    for name in live & {"web-1", "db-1", "cache-1", "promo-1", "legacy-1"}:
        assert name in billing_lines, f"{fault}: {name} still exists but the report is silent"
    if db_blocker:
        db = next(r for r in outcome.report["resources"] if r["name"] == "db-1")
        assert db["next_step"], f"{fault}: no next step for db-1"
