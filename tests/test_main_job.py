"""The whole main job on the sandbox: inventory, plan with money, back up, destroy, billing close,
report; through the official SDK, real SSH servers and the real journal."""

from __future__ import annotations

import json
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
from teardown.core.model import Plan, StepKind
from teardown.core.phases import Phase, RunPhase
from teardown.engine.journal import Journal
from teardown.engine.status import run_status
from teardown.ports.provider import Account
from teardown.sandbox.runtime import Sandbox, status
from teardown.support.clock import SystemClock
from teardown.support.retry import RetryPolicy
from tests.sandbox_rig import demo_unlocked

ROOT = Path(__file__).resolve().parent.parent
FAST = Tuning(poll_interval=0.05, retry=RetryPolicy(attempts=3, initial=0.05, maximum=0.2))
SHOP = Targets(tags=(("app", "shop"),))
EIP = "121.36.87.11"
"""web-1's public IP: an EIP of its own, listed (and released) after web-1."""
VAULTS = ("vault-sandbox", "vault-sandbox-disk")
"""The demo's CBR vaults: they bill by capacity while they exist, whatever a run does."""


def fast_sandbox(root: Path, faults: str = "") -> None:
    root.mkdir(parents=True)
    (root / "sandbox.toml").write_text(
        "[durations]\ndelete_server = 0.1\nstop_server = 0.1\nsnapshot = 0.1\n"
        "delete_snapshot = 0.1\ncheckpoint = 0.1\nrelease = 0.1\ndelete_volume = 0.1\n"
        "delete_eip = 0.1\n" + faults
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


@pytest.fixture
def unlocked(tmp_path: Path) -> Iterator[tuple[Sandbox, Account, Config]]:
    """The demo with legacy-1's lock lifted: for tests about something else than the lock."""
    fast_sandbox(tmp_path / "sb")
    with Sandbox(tmp_path / "sb", scenario=demo_unlocked(tmp_path)) as sb:
        yield sb, resolve_profile(tmp_path / "sb" / "profile.toml", {}), demo_config(tmp_path)


def plan_all(profile: Account, config: Config) -> Plan:
    plan = plan_servers(profile, SHOP, config, now=SystemClock().now(), tuning=FAST)
    assert not plan.blocked, [b.message for b in plan.blockers]
    return plan


def run_all(profile: Account, config: Config) -> Outcome:
    return run_plan(profile, plan_all(profile, config), config, tuning=FAST)


def by_name(outcome: Outcome) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in outcome.report["resources"]}


def sandbox_still_billing(sb: Sandbox) -> list[dict[str, Any]]:
    """What the sandbox's own ledger says still bills, account-wide (``sandbox status``)."""
    return list(status(sb.layout.root)["still_billing"])


def ids_of(sb: Sandbox) -> dict[str, str]:
    """Every server, disk and EIP of the sandbox, deleted or not: name -> cloud id."""
    conn = sqlite3.connect(sb.layout.state)
    try:
        rows = conn.execute(
            "SELECT name, id FROM servers UNION ALL SELECT name, id FROM volumes "
            "UNION ALL SELECT public_ip, id FROM eips"
        ).fetchall()
    finally:
        conn.close()
    return {name: rid for name, rid in rows}


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
    plan = plan_all(profile, config)
    planned = {rp.resource.name: rp for rp in plan.resources}
    db_urn = planned["db-1"].resource.urn
    # A disk bought separately and attached to db-1 is inside db-1's whole-server backup.
    assert planned["db-data"].covered_by == db_urn and planned["db-logs"].covered_by == db_urn
    assert not planned["db-data"].backups and not planned["db-logs"].backups
    # legacy-1's unsubscribe may be refused: if so, auto-renew is turned off instead.
    assert [s.kind for s in planned["legacy-1"].fallback] == [StepKind.CANCEL_AUTO_RENEW]

    outcome = run_plan(profile, plan, config, tuning=FAST)

    # Partially done (exit 4), and only because of legacy-1, whose unsubscribe was refused.
    assert outcome.result.phase is RunPhase.PARTIALLY_FAILED
    legacy_urn = planned["legacy-1"].resource.urn
    assert set(outcome.result.errors) == {legacy_urn}, outcome.result.errors
    res = by_name(outcome)
    assert set(res) == {
        "web-1", EIP, "db-1", "db-data", "db-logs", "cache-1", "promo-1", "legacy-1",
    }  # fmt: skip
    assert {n: r["phase"] for n, r in res.items() if r["phase"] != Phase.DONE.value} == {
        "legacy-1": Phase.FAILED.value
    }

    # legacy-1: backed up, refused (CBC.99003651), auto-renew turned off, still billing.
    legacy = res["legacy-1"]
    assert legacy["action"] == "unsubscribe" and legacy["destroy"]["status"] == "failed"
    assert "CBC.99003651" in legacy["destroy"]["error"]
    assert {b["type"] for b in legacy["backups"]} == {"cbr", "pull"}
    assert all(b["status"] == "succeeded" for b in legacy["backups"])
    assert "support" in str(legacy["next_step"]) and not legacy["refunds"]
    journal = Journal.open(Path(config.journal.path), SystemClock(), create=False)
    try:
        recorded = run_status(journal, outcome.result.run_id)
    finally:
        journal.close()
    fallback = next(r for r in recorded["resources"] if r["name"] == "legacy-1")["fallback"]
    assert [(s["kind"], s["status"]) for s in fallback] == [("cancel_auto_renew", "succeeded")]
    conn = sqlite3.connect(sb.layout.state)
    conn.row_factory = sqlite3.Row
    ids = ids_of(sb)
    sub = conn.execute(
        "SELECT auto_renew, expire_policy FROM subscriptions WHERE resource_id=?",
        (ids["legacy-1"],),
    ).fetchone()
    assert sub["auto_renew"] == 0 and sub["expire_policy"] != 3  # 3: auto-renew (R28)
    server = conn.execute("SELECT deleted FROM servers WHERE id=?", (ids["legacy-1"],)).fetchone()
    assert server["deleted"] == 0  # kept, billing to its expiry
    (entry,) = [e for e in outcome.report["still_billing"] if e["name"] == "legacy-1"]
    assert entry["auto_renew"] is False and "auto-renew turned off in this run" in entry["why"]

    # web-1 and its EIP: backed up, deleted, then the EIP released (it billed on its own).
    assert res["web-1"]["action"] == "delete" and res["web-1"]["phase"] == Phase.DONE.value
    assert {b["type"] for b in res["web-1"]["backups"]} == {"cbr", "pull"}
    eip = res[EIP]
    assert eip["kind"] == "address" and eip["billing_mode"] == "postPaid"
    assert eip["action"] == "delete" and eip["destroy"]["status"] == "succeeded"
    assert conn.execute("SELECT deleted FROM eips WHERE id=?", (ids[EIP],)).fetchone()[0] == 1
    calls = [r[0] for r in conn.execute("SELECT operation FROM calls WHERE status < 400")]
    assert calls.index("ecs.DeleteServers") < calls.index("eip.DeletePublicip")

    # db-1 with its two disks: one whole-server CBR backup, then unsubscribed / deleted.
    assert res["db-1"]["action"] == "unsubscribe"
    assert res["db-1"]["estimate"] and res["db-1"]["refunds"]
    assert [b["type"] for b in res["db-1"]["backups"]].count("cbr") == 1
    assert res["db-data"]["action"] == "unsubscribe" and res["db-data"]["refunds"]
    assert res["db-logs"]["action"] == "delete" and res["db-logs"]["billing_mode"] == "postPaid"
    assert res["db-data"]["backups"] == [] and res["db-logs"]["backups"] == []
    whole = conn.execute(
        "SELECT resource_id, COUNT(*) FROM backups WHERE parent_id IS NULL GROUP BY resource_id"
    ).fetchall()
    backed_up = {r[0]: r[1] for r in whole}
    assert backed_up[ids["db-1"]] == 1
    assert ids["db-data"] not in backed_up and ids["db-logs"] not in backed_up
    inside = {
        r[0]
        for r in conn.execute(
            "SELECT b.resource_name FROM backups b JOIN backups s ON b.parent_id = s.id "
            "WHERE s.resource_id=?",
            (ids["db-1"],),
        )
    }
    assert inside == {"db-1-sys", "db-data", "db-logs"}
    for disk in ("db-data", "db-logs"):
        row = conn.execute("SELECT deleted FROM volumes WHERE id=?", (ids[disk],)).fetchone()
        assert row[0] == 1, disk

    # cache-1's 5-day full refund; promo-1's unsubscribe, which might have been refused, was not.
    cache = res["cache-1"]
    assert cache["estimate"]["five_day_full_refund"] is True
    assert Decimal(cache["refunds"][0]["refund"]) == Decimal("189.00")
    promo = res["promo-1"]
    assert promo["estimate"]["may_be_refused"] and promo["action"] == "unsubscribe"
    assert promo["destroy"]["status"] == "succeeded" and promo["refunds"]
    assert [p["status"] for p in outcome.report["pending_orders"]] == ["succeeded"]

    # What still bills: legacy-1 and the two vaults, nothing else.
    assert sorted(e["resource_id"] for e in outcome.report["still_billing"]) == sorted(
        [ids["legacy-1"], *VAULTS]
    )
    assert outcome.report_paths is not None
    assert outcome.report_paths[1].read_text().startswith("# teardown run")


def test_after_the_demo_run_the_report_lists_exactly_what_the_sandbox_bills(
    demo: tuple[Sandbox, Account, Config],
) -> None:
    sb, profile, config = demo
    before = sandbox_still_billing(sb)
    outcome = run_all(profile, config)
    assert outcome.result.phase is RunPhase.PARTIALLY_FAILED  # legacy-1 is locked

    report = outcome.report["still_billing"]
    ledger = sandbox_still_billing(sb)
    assert len(ledger) < len(before)  # the run did stop billing
    # The same things, each once, matched by cloud id: nothing billing goes unreported and the
    # report claims nothing the cloud no longer bills.
    assert sorted(e["resource_id"] for e in report) == sorted(e["resource_id"] for e in ledger)
    assert len({e["resource_id"] for e in report}) == len(report)
    sandbox_by_id = {e["resource_id"]: e for e in ledger}
    for entry in report:
        theirs = sandbox_by_id[entry["resource_id"]]
        assert (entry["kind"], entry["charging"]) == (theirs["kind"], theirs["charging"]), entry
        assert entry["name"] == theirs["name"]
        if entry["charging"] == "storage":
            assert (entry["size_gb"], entry["capacity_gb"]) == (
                theirs["size_gb"],
                theirs["capacity_gb"],
            )
        if entry["charging"] == "prepaid":
            assert entry["auto_renew"] == theirs["auto_renew"] is False
    assert {e["resource_id"] for e in ledger} == {ids_of(sb)["legacy-1"], *VAULTS}


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
    # The demo without legacy-1's lock (this test is about db-1's), db-1 locked instead.
    scenario = (
        Path(demo_unlocked(tmp_path))
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
        # db-1 is refused; its two disks wait for it (they are in its backup); the rest is done.
        assert {n: r["phase"] for n, r in res.items() if r["phase"] != "done"} == {
            "db-1": "failed",
            "db-data": "failed",
            "db-logs": "failed",
        }
        assert res["web-1"]["phase"] == "done" and res["legacy-1"]["phase"] == "done"
        assert res["db-data"]["destroy"]["status"] == "pending"
        assert res["db-logs"]["destroy"]["status"] == "pending"
        backups = res["db-1"]["backups"]
        assert isinstance(backups, list) and backups
        assert all(b["status"] == "succeeded" for b in backups)
        assert "support" in str(res["db-1"]["next_step"])
        billing = outcome.report["still_billing"]
        assert {s["name"] for s in billing} == {
            "db-1", "db-data", "db-logs", "shop-server-backups", "shop-disk-backups",
        }  # fmt: skip
        assert sorted(s["resource_id"] for s in billing) == sorted(
            s["resource_id"] for s in sandbox_still_billing(sb)
        )
        # Support lifts the lock; the run is resumed.
        store = sb.store
        assert store is not None
        with store.tx() as conn:
            conn.execute("UPDATE servers SET locked=0")
            conn.execute("UPDATE subscriptions SET blockers='[]'")
        again = resume_run(profile, outcome.result.run_id, config, tuning=FAST)
        assert again.result.phase is RunPhase.COMPLETED, again.result.errors
        assert {s["resource_id"] for s in again.report["still_billing"]} == set(VAULTS)
        assert {s["resource_id"] for s in sandbox_still_billing(sb)} == set(VAULTS)
        unsubscribes = [
            c
            for c in store.conn.execute(
                "SELECT operation, status FROM calls WHERE operation LIKE '%Unsubscri%' OR "
                "operation LIKE '%CancelResourcesSubscription%'"
            )
        ]
        succeeded = [c for c in unsubscribes if c[1] < 400]
        # db-1 (refused once, then accepted), db-data, cache-1, promo-1, legacy-1: once each.
        assert len(succeeded) == 5
        unsubscribed = [
            json.loads(r[0])
            for r in store.conn.execute(
                "SELECT base.resource_ids FROM orders u JOIN orders base ON u.base_order_id = "
                "base.id WHERE u.order_type = 4"
            )
        ]
        ids = ids_of(sb)
        names = ("db-1", "db-data", "cache-1", "promo-1", "legacy-1")
        assert sorted(unsubscribed) == sorted([ids[n]] for n in names)


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
    # cache-1's 5-day refund has no fee; promo-1's (5.90, 39.33 at worst if its promotion is
    # charged back) is under the cap; legacy-1's lock does not change its estimated fee.
    assert set(fees) == {"db-1", "db-data", "legacy-1"}
    assert {b.code for b in plan.blockers} == {"max_fee"}
    assert "420.00" in fees["db-1"] and "max_fee = 50" in fees["db-1"]
    assert "126.00" in fees["db-data"] and "240.00" in fees["legacy-1"]


def test_failed_ssh_pull_keeps_that_server_and_the_others_proceed(
    unlocked: tuple[Sandbox, Account, Config],
) -> None:
    sb, profile, config = unlocked
    failing = replace(config.backup.pull[0], name="web-dump", match="web-*", before=("exit 9",))
    config = replace(config, backup=replace(config.backup, pull=(*config.backup.pull, failing)))
    outcome = run_all(profile, config)
    assert outcome.result.phase is RunPhase.PARTIALLY_FAILED  # exit code 4
    res = by_name(outcome)
    assert res["web-1"]["phase"] == "failed" and res["web-1"]["destroy"]["status"] == "pending"
    assert "before command #1 failed with exit status 9" in res["web-1"]["next_step"]
    assert {n: r["phase"] for n, r in res.items() if r["phase"] != "done"} == {
        "web-1": "failed",
        EIP: "failed",  # released only after its server is deleted: waits for web-1
    }
    assert res[EIP]["destroy"]["status"] == "pending"
    billing = outcome.report["still_billing"]
    assert [s["name"] for s in billing if s["kind"] != "vault"] == [
        "web-1",
        "web-1 system disk",  # EVS bills a pay-per-use server's disk on its own
        EIP,
    ]
    reported = {s["resource_id"] for s in billing}
    ledger = {s["resource_id"] for s in sandbox_still_billing(sb)}
    assert reported == ledger
    assert ids_of(sb)["web-1-sys"] in reported
