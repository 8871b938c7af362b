"""The whole main job on the sandbox: inventory, plan with money, back up, destroy, billing close,
report; through the official SDK, real SSH servers and the real journal."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from teardown.app import (
    Outcome,
    Targets,
    Tuning,
    plan_servers,
    resolve_profile,
    resume_run,
    run_plan,
)
from teardown.app.config import load_config
from teardown.core.config import Config, JournalConfig, StoreConfig
from teardown.core.phases import Phase, RunPhase
from teardown.ports.provider import Account
from teardown.sandbox.billing import still_billing
from teardown.sandbox.runtime import Sandbox
from teardown.support.clock import SystemClock
from teardown.support.retry import RetryPolicy

ROOT = Path(__file__).resolve().parent.parent
FAST = Tuning(poll_interval=0.05, retry=RetryPolicy(attempts=3, initial=0.05, maximum=0.2))
SHOP = Targets(tags=(("app", "shop"),))


def fast_sandbox(root: Path, faults: str = "") -> None:
    root.mkdir(parents=True)
    (root / "sandbox.toml").write_text(
        "[durations]\ndelete_server = 0.1\nstop_server = 0.1\nsnapshot = 0.1\n"
        "delete_snapshot = 0.1\ncheckpoint = 0.1\nrelease = 0.1\n" + faults
    )


def demo_config(tmp: Path) -> Config:
    config = load_config(ROOT / "examples" / "sandbox-demo.toml")
    return replace(
        config,
        journal=JournalConfig(path=str(tmp / "journal.db")),
        store=StoreConfig(path=str(tmp / "backups")),
    )


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Sandbox, Account, Config]]:
    fast_sandbox(tmp_path / "sb")
    with Sandbox(tmp_path / "sb", scenario="demo") as sb:
        yield sb, resolve_profile(tmp_path / "sb" / "profile.toml", {}), demo_config(tmp_path)


def run_all(profile: Account, config: Config) -> Outcome:
    plan = plan_servers(profile, SHOP, config, now=SystemClock().now(), tuning=FAST)
    assert not plan.blocked, [b.message for b in plan.blockers]
    return run_plan(profile, plan, config, tuning=FAST)


def by_name(outcome: Outcome) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in outcome.report["resources"]}


def ledger_refunds(sb: Sandbox) -> dict[str, Decimal]:
    conn = sqlite3.connect(sb.layout.state)
    rows = conn.execute(
        "SELECT id, amount_after_discount FROM orders WHERE order_type = 4"
    ).fetchall()
    return {r[0]: Decimal(r[1]) for r in rows}


def test_demo_run_backs_up_destroys_and_closes_the_billing(
    demo: tuple[Sandbox, Account, Config],
) -> None:
    sb, profile, config = demo
    outcome = run_all(profile, config)
    assert outcome.result.phase is RunPhase.COMPLETED, outcome.result.errors
    res = by_name(outcome)
    assert set(res) == {"web-1", "db-1", "db-data", "cache-1"}
    assert res["web-1"]["action"] == "delete" and res["web-1"]["phase"] == Phase.DONE.value
    kinds = {b["type"] for b in res["web-1"]["backups"]}
    assert kinds == {"cbr", "pull"}
    assert res["db-1"]["action"] == "unsubscribe"
    assert res["db-1"]["estimate"] and res["db-1"]["refunds"]
    assert res["db-data"]["action"] == "unsubscribe" and res["db-data"]["refunds"]
    cache = res["cache-1"]
    assert cache["estimate"]["five_day_full_refund"] is True
    assert Decimal(cache["refunds"][0]["refund"]) == Decimal("189.00")
    assert [p["status"] for p in outcome.report["pending_orders"]] == ["succeeded"]
    assert outcome.report["still_billing"] == []
    conn = sqlite3.connect(sb.layout.state)
    conn.row_factory = sqlite3.Row
    assert still_billing(conn, SystemClock().now()) == []
    assert outcome.report_paths is not None
    assert outcome.report_paths[1].read_text().startswith("# teardown run")


def test_recorded_refunds_equal_the_ledger_to_the_cent(
    demo: tuple[Sandbox, Account, Config],
) -> None:
    sb, profile, config = demo
    outcome = run_all(profile, config)
    recorded: dict[str, Decimal] = {}
    for r in outcome.report["resources"]:
        for x in r["refunds"]:
            for order in x["orders"]:
                recorded[order] = Decimal(x["refund"])
    assert recorded and recorded == ledger_refunds(sb)
    total = sum(recorded.values(), Decimal(0))
    assert Decimal(outcome.report["money"]["recorded_refund"]) == total


def test_locked_database_is_backed_up_left_running_and_resumed_once_unlocked(
    tmp_path: Path,
) -> None:
    fast_sandbox(tmp_path / "sb")
    scenario = (
        (ROOT / "teardown/sandbox/scenarios/demo.toml")
        .read_text()
        .replace('discount_coupon = "480.00"', 'discount_coupon = "480.00"\nblockers = ["locked"]')
    )
    (tmp_path / "locked.toml").write_text(scenario)
    config = demo_config(tmp_path)
    with Sandbox(tmp_path / "sb", scenario=str(tmp_path / "locked.toml")) as sb:
        profile = resolve_profile(tmp_path / "sb" / "profile.toml", {})
        plan = plan_servers(profile, SHOP, config, now=SystemClock().now(), tuning=FAST)
        assert not plan.blocked
        outcome = run_plan(profile, plan, config, tuning=FAST)
        assert outcome.result.phase is RunPhase.PARTIALLY_FAILED  # exit code 4
        res = by_name(outcome)
        assert res["web-1"]["phase"] == "done"
        assert res["db-1"]["phase"] == "failed"
        backups = res["db-1"]["backups"]
        assert isinstance(backups, list)
        assert all(b["status"] == "succeeded" for b in backups)
        assert "support" in str(res["db-1"]["next_step"])
        assert "db-1" in {s["name"] for s in outcome.report["still_billing"]}
        # Support lifts the lock; the run is resumed.
        store = sb.store
        assert store is not None
        with store.tx() as conn:
            conn.execute("UPDATE servers SET locked=0")
            conn.execute("UPDATE subscriptions SET blockers='[]'")
        again = resume_run(profile, outcome.result.run_id, config, tuning=FAST)
        assert again.result.phase is RunPhase.COMPLETED, again.result.errors
        unsubscribes = [
            c
            for c in store.conn.execute(
                "SELECT operation, status FROM calls WHERE operation LIKE '%Unsubscri%' OR "
                "operation LIKE '%CancelResourcesSubscription%'"
            )
        ]
        succeeded = [c for c in unsubscribes if c[1] < 400]
        assert len(succeeded) == 3  # db-1, db-data, cache-1: once each


def test_failed_snapshot_keeps_that_server_and_the_others_proceed(tmp_path: Path) -> None:
    fast_sandbox(tmp_path / "sb")
    config = demo_config(tmp_path)
    with Sandbox(tmp_path / "sb", scenario="demo") as sb:
        assert sb.store is not None
        web = sb.store.conn.execute("SELECT id FROM servers WHERE name='web-1'").fetchone()[0]
    (tmp_path / "sb" / "sandbox.toml").write_text(
        (tmp_path / "sb" / "sandbox.toml").read_text() + f'\n[faults]\nsnapshot_error = ["{web}"]\n'
    )
    with Sandbox(tmp_path / "sb"):
        profile = resolve_profile(tmp_path / "sb" / "profile.toml", {})
        outcome = run_all(profile, config)
    assert outcome.result.phase is RunPhase.PARTIALLY_FAILED
    res = by_name(outcome)
    assert res["web-1"]["phase"] == "failed" and res["db-1"]["phase"] == "done"
    assert res["web-1"]["destroy"]["status"] == "pending"


def test_max_fee_below_the_estimate_blocks_the_plan_with_the_numbers(
    demo: tuple[Sandbox, Account, Config],
) -> None:
    _, profile, config = demo
    capped = replace(config, billing=replace(config.billing, max_fee=Decimal("50")))
    plan = plan_servers(profile, SHOP, capped, now=SystemClock().now(), tuning=FAST)
    assert plan.blocked
    fees = {b.message.split(":")[0]: b.message for b in plan.blockers if b.code == "max_fee"}
    assert set(fees) == {"db-1", "db-data"}  # cache-1's 5-day refund has no fee
    assert "420.00" in fees["db-1"] and "max_fee = 50" in fees["db-1"]


def test_failed_ssh_pull_keeps_that_server_and_the_others_proceed(
    demo: tuple[Sandbox, Account, Config],
) -> None:
    _, profile, config = demo
    failing = replace(config.backup.pull[0], name="web-dump", match="web-*", before=("exit 9",))
    config = replace(config, backup=replace(config.backup, pull=(*config.backup.pull, failing)))
    outcome = run_all(profile, config)
    assert outcome.result.phase is RunPhase.PARTIALLY_FAILED  # exit code 4
    res = by_name(outcome)
    assert res["web-1"]["phase"] == "failed" and res["web-1"]["destroy"]["status"] == "pending"
    assert "before command #1 failed with exit status 9" in res["web-1"]["next_step"]
    assert res["cache-1"]["phase"] == "done" and res["db-1"]["phase"] == "done"
    assert [s["name"] for s in outcome.report["still_billing"]] == ["web-1"]
