"""Clock skew between this machine and the cloud (the sandbox's clock runs ahead)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from click.testing import CliRunner

from teardown.app import plan_servers, resolve_profile, run_plan
from teardown.cli.main import cli
from teardown.core.phases import RunPhase
from teardown.sandbox.runtime import Sandbox
from teardown.support.clock import SystemClock
from tests.sandbox_rig import demo_unlocked
from tests.test_main_job import FAST, SHOP, demo_config


def skewed(root: Path, seconds: float) -> None:
    root.mkdir(parents=True)
    (root / "sandbox.toml").write_text(
        "[durations]\ndelete_server = 0.05\nsnapshot = 0.05\ncheckpoint = 0.05\nrelease = 0.05\n"
        f"[faults]\nclock_skew_seconds = {seconds}\n"
    )


def test_a_few_minutes_of_skew_still_completes_the_run(tmp_path: Path) -> None:
    skewed(tmp_path / "sb", 240)
    config = replace(
        demo_config(tmp_path), run=replace(demo_config(tmp_path).run, poll_interval=0.05)
    )
    with Sandbox(tmp_path / "sb", scenario=demo_unlocked(tmp_path)):
        profile = resolve_profile(tmp_path / "sb" / "profile.toml", {})
        plan = plan_servers(profile, SHOP, config, now=SystemClock().now(), tuning=FAST)
        outcome = run_plan(profile, plan, config, tuning=FAST)
    assert outcome.result.phase is RunPhase.COMPLETED, outcome.result.errors
    left = outcome.report["still_billing"]  # only the vaults, which bill while they exist
    assert all(e["kind"] == "vault" and e["charging"] == "storage" for e in left), left
    assert {e["resource_id"] for e in left} == {"vault-sandbox", "vault-sandbox-disk"}


def test_an_hour_of_skew_is_refused_with_the_next_step_and_changes_nothing(tmp_path: Path) -> None:
    skewed(tmp_path / "sb", 3600)
    with Sandbox(tmp_path / "sb", scenario=demo_unlocked(tmp_path)) as sb:
        result = CliRunner().invoke(
            cli, ["plan", "--profile", str(tmp_path / "sb" / "profile.toml"), "--tag", "app=shop"]
        )
        assert sb.store is not None
        live = sb.store.conn.execute("SELECT COUNT(*) FROM servers WHERE deleted=0").fetchone()[0]
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert "APIGW.0303" in line or "clock" in line
    assert "sync it (NTP)" in line
    assert live == 5  # web-1, db-1, cache-1, promo-1, legacy-1
