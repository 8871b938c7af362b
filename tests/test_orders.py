"""Renewal reminders: the pure rules (``core.reminders``) and ``teardown orders`` against a real
in-process sandbox, through the official SDK."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from teardown.adapters.huawei.billing import HuaweiBilling
from teardown.adapters.huawei.clients import Clients
from teardown.adapters.huawei.inventory import HuaweiInventory
from teardown.adapters.huawei.profile import HuaweiProfile, load_profile
from teardown.adapters.huawei.reminders import reminders
from teardown.adapters.huawei.rules import BillingRules
from teardown.cli.common import EXIT_RENEWING, EXIT_USAGE
from teardown.cli.orders import orders
from teardown.core.billing import Payment
from teardown.core.model import Billing, BillingMode, Kind, Resource
from teardown.core.reminders import Reminder, parse_window, without_expiry
from teardown.sandbox.runtime import Sandbox
from teardown.sandbox.store import parse_ts

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
CN = timezone(timedelta(hours=8))
"""The Chinese site's clock: auto-renew charges at 03:00 of it (R25)."""
DAY = timedelta(days=1)
WINDOW = timedelta(days=14)


def prepaid(
    name: str,
    *,
    provisioned_days_ago: float,
    term_days: int = 365,
    term_months: int = 12,
    paid: str = "3650.00",
    auto_renew: bool = True,
    refusals: tuple[str, ...] = (),
    expires_at: datetime | None = None,
    kind: Kind = Kind.SERVER,
) -> Resource:
    effective = NOW - timedelta(days=provisioned_days_ago)
    expires = effective + timedelta(days=term_days)
    payment = Payment(
        order_id=f"CS-{name}",
        cash=Decimal(paid),
        effective=effective,
        expires=expires,
        term_months=term_months,
    )
    return Resource(
        urn=f"cloud:huawei:ecs:{name}-id",
        type="huaweicloud:Ecs/instance:Instance",
        kind=kind,
        name=name,
        cloud_id=f"{name}-id",
        billing=Billing(
            mode=BillingMode.PRE_PAID,
            order_id=f"CS-{name}",
            expires_at=expires_at if expires_at is not None else expires,
            auto_renew=auto_renew,
            provisioned_at=effective,
            payments=(payment,),
            refusals=refusals,
        ),
    )


def one(r: Resource, *, quota_used: int = 0, window: timedelta = WINDOW) -> Reminder:
    [x] = reminders([r], now=NOW, window=window, quota_used=quota_used)
    return x


# -- the pure rules ------------------------------------------------------------------------------


def test_auto_renew_charges_seven_days_before_expiry_at_three_site_time() -> None:
    expires = datetime(2026, 12, 6, 14, 30, tzinfo=UTC)  # 22:30 on 12-06 in UTC+8
    x = one(prepaid("db-1", provisioned_days_ago=355, expires_at=expires))
    assert x.expires_at == expires
    assert x.next_charge == datetime(2026, 11, 29, 3, 0, tzinfo=CN)  # 11-28 19:00 UTC
    assert x.days_left == 10
    assert x.auto_renew and x.charge_in_window
    assert "2026-11-29 03:00 UTC+08:00" in x.explanation and "cancel auto-renew" in x.explanation


def test_the_renew_day_setting_moves_the_charge() -> None:
    r = prepaid("db-1", provisioned_days_ago=355)
    rules = BillingRules(renew_days_before_expiry=2, renew_hour_local=5)
    [x] = reminders([r], now=NOW, window=WINDOW, quota_used=0, rules=rules)
    assert x.next_charge is not None and x.expires_at is not None
    assert x.next_charge.date() == (x.expires_at - 2 * DAY).astimezone(CN).date()
    assert x.next_charge.hour == 5


def test_charge_inside_and_outside_the_window() -> None:
    soon = one(prepaid("soon", provisioned_days_ago=355))  # expires in 10 days, charges in 3
    later = one(prepaid("later", provisioned_days_ago=305))  # expires in 60 days, charges in 53
    assert soon.charge_in_window and not later.charge_in_window
    assert later.next_charge == datetime(2027, 1, 18, 3, 0, tzinfo=CN)
    assert one(
        prepaid("later", provisioned_days_ago=305), window=timedelta(weeks=8)
    ).charge_in_window
    # A window ending just before the deduction hour does not include it.
    assert not one(
        prepaid("soon", provisioned_days_ago=355), window=timedelta(hours=54)
    ).charge_in_window  # it charges at 03:00 UTC+8, 55 hours after NOW
    assert one(
        prepaid("soon", provisioned_days_ago=355), window=timedelta(hours=55)
    ).charge_in_window


def test_auto_renew_off_has_no_charge() -> None:
    x = one(prepaid("db-1", provisioned_days_ago=355, auto_renew=False))
    assert not x.auto_renew and x.next_charge is None and not x.charge_in_window
    assert "auto-renew is off" in x.explanation and "15 days of grace" in x.explanation


def test_a_passed_deduction_date_with_auto_renew_on_is_still_in_the_window() -> None:
    x = one(prepaid("db-1", provisioned_days_ago=362))  # expires in 3 days: deduction passed
    assert x.next_charge is not None and x.next_charge < NOW
    assert x.charge_in_window and "retries daily" in x.explanation


def test_days_left_is_floored() -> None:
    almost = one(prepaid("a", provisioned_days_ago=1, expires_at=NOW + timedelta(days=9, hours=23)))
    assert almost.days_left == 9
    last = one(prepaid("b", provisioned_days_ago=1, expires_at=NOW + timedelta(hours=1)))
    assert last.days_left == 0
    gone = one(prepaid("c", provisioned_days_ago=1, expires_at=NOW - timedelta(hours=1)))
    assert gone.days_left == -1 and "grace period" in gone.explanation


def test_five_day_flag_and_quota() -> None:
    new = prepaid("cache-1", provisioned_days_ago=2, term_days=30, term_months=1, paid="189.00")
    x = one(new)
    assert x.five_day and x.estimated_refund == Decimal("189.00")
    assert "5-day full refund" in x.explanation
    used_up = one(new, quota_used=10)
    assert not used_up.five_day
    assert used_up.estimated_refund is not None and used_up.estimated_refund < Decimal("189.00")
    assert "quota used up" in used_up.explanation
    old = one(prepaid("db-1", provisioned_days_ago=6))
    assert not old.five_day and "outside the 5 days full-refund window" in old.explanation


def test_refund_estimate_if_unsubscribed_today() -> None:
    # 3650.00 for 365 days, 100 days used: consumed 2400 h of 8760 h = 1000.00; fee 10% = 365.00.
    x = one(prepaid("db-1", provisioned_days_ago=100))
    assert x.estimated_refund == Decimal("2285.00")
    assert "ordinary refund" in x.explanation and "= 2285.00" in x.explanation
    # Near the end of the term consumption plus fee exceed what was paid: nothing back (R11).
    assert one(prepaid("db-1", provisioned_days_ago=355)).estimated_refund == Decimal("0.00")


def test_a_refused_unsubscribe_has_no_estimate_and_says_why() -> None:
    x = one(prepaid("db-1", provisioned_days_ago=100, refusals=("invoiced",)))
    assert x.estimated_refund is None and not x.five_day
    assert "CBC.99003643" in x.explanation and "invoiced" in x.explanation


def test_only_prepaid_resources_sorted_by_expiry() -> None:
    payg = Resource(
        urn="cloud:huawei:ecs:web",
        type="huaweicloud:Ecs/instance:Instance",
        kind=Kind.SERVER,
        name="web-1",
        billing=Billing(mode=BillingMode.POST_PAID),
    )
    unknown = Resource(
        urn="cloud:huawei:ecs:x",
        type="huaweicloud:Ecs/instance:Instance",
        kind=Kind.SERVER,
        name="no-expiry",
        billing=Billing(mode=BillingMode.PRE_PAID),
    )
    disk = prepaid("disk", provisioned_days_ago=300, kind=Kind.VOLUME)
    resources = [
        payg,
        prepaid("later", provisioned_days_ago=305),
        unknown,
        prepaid("soon", provisioned_days_ago=355),
        disk,
    ]
    out = reminders(resources, now=NOW, window=WINDOW, quota_used=0)
    assert [x.name for x in out] == ["soon", "later", "disk"]
    assert out[2].kind == "volume" and out[0].kind == "server"
    assert [r.name for r in without_expiry(resources)] == ["no-expiry"]


def test_no_payments_means_no_estimate() -> None:
    r = prepaid("db-1", provisioned_days_ago=100)
    bare = Resource(
        urn=r.urn,
        type=r.type,
        kind=r.kind,
        name=r.name,
        billing=Billing(mode=BillingMode.PRE_PAID, expires_at=NOW + DAY, auto_renew=False),
    )
    x = one(bare)
    assert x.estimated_refund is None and "no payment is known" in x.explanation


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("14d", timedelta(days=14)),
        ("48h", timedelta(hours=48)),
        ("2w", timedelta(weeks=2)),
        (" 30D ", timedelta(days=30)),
    ],
)
def test_parse_window(text: str, expected: timedelta) -> None:
    assert parse_window(text) == expected


@pytest.mark.parametrize("text", ["", "14", "d", "1.5d", "-3d", "14m", "2 weeks", "0d", "3d4h"])
def test_parse_window_rejects_with_a_clear_message(text: str) -> None:
    with pytest.raises(ValueError, match=r"48h, 14d, 2w|at least 1h"):
        parse_window(text)


# -- the command, on a real sandbox --------------------------------------------------------------

SCENARIO = """
name = "renewals"
description = "A yearly server expiring in 10 days with auto-renew on, another in 60 days."

[[servers]]
name = "renew-1"
charging = "prePaid"
provisioned_days_ago = 355
tags = { env = "test" }

[[servers]]
name = "later-1"
charging = "prePaid"
provisioned_days_ago = 305
tags = { env = "test" }

[[servers]]
name = "web-1"
charging = "postPaid"
hourly_price = "0.62"
tags = { env = "test" }

[[subscriptions]]
resource = "renew-1"
period = "year"
periods = 1
provisioned_days_ago = 355
paid = "3650.00"
auto_renew = true

[[subscriptions]]
resource = "later-1"
period = "year"
periods = 1
provisioned_days_ago = 305
paid = "3650.00"
auto_renew = true
"""

FIELDS = {
    "name",
    "urn",
    "cloud_id",
    "kind",
    "expires_at",
    "days_left",
    "auto_renew",
    "next_charge",
    "charge_in_window",
    "estimated_refund",
    "five_day",
    "explanation",
    "switches_to_pay_per_use",
}


@dataclass
class Rig:
    sandbox: Sandbox
    profile_path: Path
    profile: HuaweiProfile

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(orders, ["--profile", str(self.profile_path), *args])

    def expires(self, name: str) -> datetime:
        store = self.sandbox.store
        assert store is not None
        row = store.conn.execute(
            "SELECT s.expire_time FROM subscriptions s JOIN servers v ON v.id = s.resource_id "
            "WHERE v.name = ?",
            (name,),
        ).fetchone()
        return parse_ts(row[0])


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    root = tmp_path / "sb"
    root.mkdir()
    (root / "sandbox.toml").write_text(
        "[durations]\ndelete_server = 0.1\nstop_server = 0.1\nsnapshot = 0.1\n"
        "delete_snapshot = 0.1\ncheckpoint = 0.1\nrelease = 0.1\n"
    )
    scenario = tmp_path / "renewals.toml"
    scenario.write_text(SCENARIO)
    with Sandbox(root, scenario=str(scenario)) as sb:
        yield Rig(sb, root / "profile.toml", load_profile(root / "profile.toml"))


def _charge_at(expires: datetime) -> datetime:
    """When auto-renew charges for a subscription expiring at ``expires``: 03:00 UTC+8, seven
    days before (R25)."""
    day = expires.astimezone(CN).date() - timedelta(days=7)
    return datetime(day.year, day.month, day.day, 3, 0, tzinfo=CN)


def _charge_text(expires: datetime) -> str:
    return f"{_charge_at(expires):%Y-%m-%d %H:%M} UTC+08:00"


def test_fail_if_renewing_exits_5_naming_the_server_and_the_charge_date(rig: Rig) -> None:
    result = rig.run("--expiring", "14d", "--fail-if-renewing")
    assert result.exit_code == EXIT_RENEWING, result.output
    assert "renew-1" in result.stderr
    assert _charge_text(rig.expires("renew-1")) in result.stderr
    assert "later-1" not in result.stderr
    # The table: its header row and one row, the listed server's.
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("NAME"))
    header, row = (re.split(r"\s{2,}", line.strip()) for line in lines[start : start + 2])
    assert header == [
        "NAME", "EXPIRES", "DAYS LEFT", "AUTO-RENEW", "NEXT CHARGE",
        "EST. REFUND TODAY", "5-DAY?",
    ]  # fmt: skip
    expires = rig.expires("renew-1")
    assert row[:2] == ["renew-1", f"{expires:%Y-%m-%d %H:%M} UTC"] and row[2] in ("9", "10", "11")
    assert row[3:] == ["on", _charge_text(expires) + " !", "0.00 CNY", "no"]
    assert lines[start + 2].startswith("! auto-renew charges within 14 days")  # no other row
    assert "later-1" not in result.stdout and "web-1" not in result.stdout


def test_without_the_flag_a_renewal_is_reported_but_exits_0(rig: Rig) -> None:
    result = rig.run("--expiring", "14d")
    assert result.exit_code == 0, result.output
    assert "renew-1" in result.stdout and "cancel" in result.stdout


def test_after_cancelling_auto_renew_it_exits_0(rig: Rig) -> None:
    clients = Clients(rig.profile)
    [server] = [
        r for r in HuaweiInventory(clients).resources(tags=[("env", "test")]) if r.name == "renew-1"
    ]
    HuaweiBilling(clients).cancel_auto_renew(server, key="test-cancel-renew-1")
    result = rig.run("--expiring", "14d", "--fail-if-renewing", "--json")
    assert result.exit_code == 0, result.output
    [x] = json.loads(result.stdout)["reminders"]
    assert x["name"] == "renew-1" and x["auto_renew"] is False
    assert x["next_charge"] is None and x["charge_in_window"] is False


def test_json_has_every_field(rig: Rig) -> None:
    result = rig.run("--expiring", "14d", "--json", "--tag", "env=test")
    assert result.exit_code == 0, result.output
    view = json.loads(result.stdout)
    assert view["prepaid"] == 2 and view["window_hours"] == 14 * 24
    [x] = view["reminders"]
    assert set(x) == FIELDS
    expires = rig.expires("renew-1")
    assert x["name"] == "renew-1" and x["kind"] == "server"
    assert x["urn"] == f"cloud:huawei:ecs:{x['cloud_id']}"
    assert datetime.fromisoformat(x["expires_at"]) == expires
    assert x["days_left"] in (9, 10, 11)
    assert x["auto_renew"] is True and x["charge_in_window"] is True
    # An ISO instant in the site's clock (the text shows it as "... 03:00 UTC+08:00").
    assert datetime.fromisoformat(x["next_charge"]) == _charge_at(expires)
    assert x["next_charge"] == _charge_at(expires).isoformat()  # e.g. 2026-12-03T03:00:00+08:00
    assert Decimal(x["estimated_refund"]) == Decimal("0.00")  # 355 of 365 days used, plus fee
    assert x["five_day"] is False
    assert "auto-renew charges on" in x["explanation"]


def test_a_resource_expiring_in_60_days_is_listed_only_with_a_wide_window(rig: Rig) -> None:
    narrow = json.loads(rig.run("--expiring", "14d", "--json").stdout)
    assert [x["name"] for x in narrow["reminders"]] == ["renew-1"]
    wide = json.loads(rig.run("--expiring", "9w", "--json").stdout)
    assert [x["name"] for x in wide["reminders"]] == ["renew-1", "later-1"]
    later = wide["reminders"][1]
    assert later["days_left"] in (59, 60, 61)
    assert Decimal(later["estimated_refund"]) > 0


def test_targets_by_server_id(rig: Rig) -> None:
    ids = {r.name: r.cloud_id for r in HuaweiInventory(Clients(rig.profile)).resources()}
    later_id = ids["later-1"]
    assert later_id is not None
    # Only later-1 is looked at: renew-1's charge does not count.
    quiet = rig.run("--server", later_id, "--expiring", "14d", "--fail-if-renewing")
    assert quiet.exit_code == 0, quiet.output
    assert "No prepaid resource" in quiet.stdout and "renew-1" not in quiet.stdout
    # Its charge (about 53 days away) is inside 9 weeks.
    loud = rig.run("--server", later_id, "--expiring", "9w", "--json", "--fail-if-renewing")
    assert loud.exit_code == EXIT_RENEWING, loud.output
    [x] = json.loads(loud.stdout)["reminders"]
    assert x["name"] == "later-1" and "later-1" in loud.stderr


def test_bad_window_and_bad_tag_are_usage_errors(rig: Rig) -> None:
    bad = rig.run("--expiring", "14")
    assert bad.exit_code == EXIT_USAGE
    assert "48h, 14d, 2w" in bad.stderr
    tag = rig.run("--tag", "env")
    assert tag.exit_code == EXIT_USAGE and "KEY=VALUE" in tag.stderr
