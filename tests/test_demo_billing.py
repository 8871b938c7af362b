"""Issue 14 on the demo, end to end through the CLI and the official SDK against the sandbox:
nothing in scope keeps billing unseen, with either prepaid policy; `teardown bills` tells the
whole account's story before and after; the plan's money is honest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from teardown.cli.main import cli
from teardown.sandbox.runtime import Sandbox, status
from tests.sandbox_rig import DEMO_SCENARIO

ROOT = Path(__file__).resolve().parent.parent
CONFIG = (ROOT / "examples" / "sandbox-demo.toml").read_text()


@dataclass
class Demo:
    root: Path
    sandbox: Sandbox

    @property
    def profile(self) -> str:
        return str(self.root / "sb" / "profile.toml")

    def config(self, **billing: str) -> str:
        text = CONFIG.replace(".teardown/demo/", f"{self.root}/td/")
        lines = [line for line in text.splitlines() if line.split("=")[0].strip() not in billing]
        text = "\n".join(lines).replace(
            "[billing]", "[billing]\n" + "".join(f"{k} = {v}\n" for k, v in billing.items()), 1
        )
        path = self.root / f"teardown-{len(billing)}-{abs(hash(str(billing)))}.toml"
        path.write_text(text)
        return str(path)

    def teardown(self, *args: str) -> Result:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    def shop(self, command: str, config: str, *more: str) -> Result:
        return self.teardown(
            command, "--profile", self.profile, "--tag", "app=shop", "--config", config, *more
        )

    def ledger(self) -> list[dict[str, Any]]:
        """What the sandbox's own ledger says still bills, account-wide."""
        return list(status(self.root / "sb")["still_billing"])


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    sb = tmp_path / "sb"
    sb.mkdir()
    (sb / "sandbox.toml").write_text(
        "[durations]\ndelete_server = 0.1\nstop_server = 0.1\nsnapshot = 0.1\n"
        "delete_snapshot = 0.1\ncheckpoint = 0.1\nrelease = 0.1\ndelete_volume = 0.1\n"
        "delete_eip = 0.1\n"
    )
    with Sandbox(sb, scenario=str(DEMO_SCENARIO)) as sandbox:
        yield Demo(tmp_path, sandbox)


def bills(demo: Demo) -> dict[str, dict[str, Any]]:
    result = demo.teardown("bills", "--profile", demo.profile, "--json")
    assert result.exit_code == 0, result.output
    return {b["resource_id"]: b for b in json.loads(result.stdout)["bills"]}


def last_report(demo: Demo) -> dict[str, Any]:
    reports = sorted((demo.root / "td" / "runs").glob("*/report.json"))
    assert len(reports) == 1
    report: dict[str, Any] = json.loads(reports[0].read_text())
    return report


def test_bills_lists_every_billing_thing_before_and_only_what_the_report_keeps_after(
    demo: Demo,
) -> None:
    before = bills(demo)
    ledger = {e["resource_id"] for e in demo.ledger()}
    assert set(before) == ledger  # every billing resource of the scenario, by its cloud id
    kinds = {b["kind"] for b in before.values()}
    assert {"server", "volume", "eip", "vault", "order"} <= kinds
    eip = next(b for b in before.values() if b["kind"] == "eip")
    assert eip["name"] == "121.36.87.11" and eip["charging"] == "hourly"

    run = demo.shop("run", demo.config(), "--yes", "--quiet")
    assert run.exit_code == 4, run.output  # legacy-1 is locked: partially done

    after = bills(demo)
    report = last_report(demo)
    assert set(after) == {e["resource_id"] for e in report["still_billing"]}
    assert set(after) == {e["resource_id"] for e in demo.ledger()}
    left = {b["name"]: b for b in after.values()}
    assert set(left) == {"legacy-1", "shop-server-backups", "shop-disk-backups"}
    assert left["legacy-1"]["auto_renew"] is False  # the refusal did not become a renewal


def test_keep_to_expiry_exits_0_with_no_renewal_and_no_switch_to_pay_per_use(
    demo: Demo,
) -> None:
    config = demo.config(prepaid='"keep_to_expiry"')
    plan = demo.shop("plan", config, "--json")
    assert plan.exit_code == 0, plan.output
    view = {r["name"]: r for r in json.loads(plan.stdout)["resources"]}
    assert view["promo-1"]["destroy"]["action"] == "keep_to_expiry"
    promo_steps = [a["kind"] for a in view["promo-1"]["billing"]["actions"]]
    assert "keep_from_pay_per_use" in promo_steps
    assert view["db-logs"]["destroy"]["action"] == "keep"  # stays with db-1, which stays

    run = demo.shop("run", config, "--yes", "--quiet")
    assert run.exit_code == 0, run.output

    prepaid = [e for e in demo.ledger() if e["charging"] == "prepaid"]
    assert {e["name"] for e in prepaid} == {"db-1", "db-data", "cache-1", "promo-1", "legacy-1"}
    assert all(e["auto_renew"] is False for e in prepaid), prepaid
    assert all(e.get("expire_policy") != "to_pay_per_use" for e in prepaid), prepaid
    report = last_report(demo)
    assert {e["resource_id"] for e in report["still_billing"]} == {
        e["resource_id"] for e in demo.ledger()
    }


def test_the_plan_says_the_promotional_refund_may_be_refused_and_shows_totals(
    demo: Demo,
) -> None:
    text = demo.shop("plan", demo.config())
    assert text.exit_code == 0, text.output
    assert "MAY BE REFUSED bought at a promotional discount" in text.output
    assert "Totals (estimates, CNY):" in text.output and "coupons lost 480.00" in text.output
    assert "1 unsubscribe(s) may be refused" in text.output
    assert "shop-server-backups (vault-sandbox, server)" in text.output

    as_json = json.loads(demo.shop("plan", demo.config(), "--json").stdout)
    promo = next(r for r in as_json["resources"] if r["name"] == "promo-1")
    estimate = promo["billing"]["estimate"]
    assert "promotional" in estimate["may_be_refused"]
    assert as_json["totals"]["coupons_lost"] == "480.00"

    # max_fee counts the worst case: no refund comes, everything not consumed is lost
    worst = estimate["worst_fee"]
    assert float(worst) > float(estimate["fee"])
    capped = demo.shop("plan", demo.config(max_fee=estimate["fee"]), "--json")
    assert capped.exit_code == 3
    blockers = {
        r["name"]: [b["code"] for b in r["blockers"]]
        for r in json.loads(capped.stdout)["resources"]
    }
    assert blockers["promo-1"] == ["max_fee"]


def test_orders_show_charge_times_in_the_sites_zone(demo: Demo) -> None:
    result = demo.teardown("orders", "--profile", demo.profile, "--expiring", "400d")
    assert result.exit_code == 0, result.output
    assert "03:00 UTC+08:00" in result.output


def test_orders_list_pending_orders_and_the_switch_to_pay_per_use(demo: Demo) -> None:
    text = demo.teardown("orders", "--profile", demo.profile, "--expiring", "400d")
    assert "promo-1: switches to pay-per-use when it expires" in text.output
    assert "is pending payment (299.00 CNY" in text.output
    result = demo.teardown("orders", "--profile", demo.profile, "--expiring", "400d", "--json")
    view = json.loads(result.stdout)
    switching = {r["name"] for r in view["reminders"] if r["switches_to_pay_per_use"]}
    assert switching == {"promo-1"}
    assert [o["amount"] for o in view["pending_orders"]] == ["299.00"]
