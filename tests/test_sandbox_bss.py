"""The sandbox's BSS API and billing ledger, driven by the official ``BssClient`` over real HTTP.

One test per operation (success and an error path) and one per billing rule of
docs/huawei-api.md ("Billing rules"), named after the rule. Money is checked against figures
worked out in the test; time moves only with ``rig.advance``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from huaweicloudsdkbss.v2 import (
    AutoRenewalResourcesReq,
    AutoRenewalResourcesRequest,
    CancelAutoRenewalResourcesRequest,
    CancelCustomerOrderReq,
    CancelCustomerOrderRequest,
    CancelResourcesSubscriptionRequest,
    ListCustomerOrdersRequest,
    ListPayPerUseCustomerResourcesRequest,
    PeriodToOnDemandReq,
    QueryResourcesReq,
    ShowCustomerOrderDetailsRequest,
    ShowRefundOrderDetailsRequest,
    UnsubscribeResourcesReq,
    UpdatePeriodToOnDemandRequest,
)
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkecs.v2 import ShowServerRequest
from huaweicloudsdkevs.v2 import ShowVolumeRequest
from werkzeug.serving import BaseWSGIServer

from teardown.core.billing import add_months
from teardown.core.errors import ConfigError
from teardown.sandbox.billing import RULES, quota_used, still_billing
from teardown.sandbox.scenario import DiskSpec, Scenario, ServerSpec
from teardown.sandbox.store import advance, parse_ts, ts
from tests.sandbox_rig import SandboxRig, bss, ecs, evs, running_sandbox

HOUR = timedelta(hours=1)
CENT = Decimal("0.01")
RELEASE = 2.0  # Durations.release default


@pytest.fixture(autouse=True)
def _quick_listener_shutdown(monkeypatch: pytest.MonkeyPatch) -> None:
    """A shorter poll interval so stopping the four listeners is quick."""
    serve = BaseWSGIServer.serve_forever

    def quick(self: BaseWSGIServer, poll_interval: float = 0.02) -> None:
        serve(self, poll_interval=poll_interval)

    monkeypatch.setattr(BaseWSGIServer, "serve_forever", quick)


# -- helpers -------------------------------------------------------------------------------


def prepaid(name: str, days_ago: float = 1.0, *data: DiskSpec) -> ServerSpec:
    return ServerSpec(
        name=name,
        charging="prePaid",
        provisioned_days_ago=days_ago,
        system_disk=DiskSpec(size=10),
        data_disks=data,
    )


def world(
    *servers: ServerSpec,
    subs: tuple[dict[str, Any], ...] = (),
    orders: tuple[dict[str, Any], ...] = (),
    used: int = 0,
) -> Scenario:
    return Scenario(
        name="bss-test",
        servers=servers,
        subscriptions=subs,
        orders=orders,
        five_day_refunds_used=used,
    )


@contextmanager
def sandbox(tmp_path: Path, scenario: Scenario) -> Iterator[tuple[SandboxRig, Any]]:
    with running_sandbox(tmp_path, scenario) as rig:
        yield rig, bss(rig)


def refused(call: Callable[[], object], code: str, status: int = 400) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as info:
        call()
    assert (info.value.status_code, info.value.error_code) == (status, code), info.value.error_msg
    assert info.value.error_msg
    return info.value


def unsubscribe(client: Any, ids: list[str], kind: int = 1) -> Any:
    body = UnsubscribeResourcesReq(resource_ids=ids, unsubscribe_type=kind)
    return client.cancel_resources_subscription(CancelResourcesSubscriptionRequest(body=body))


def order(client: Any, order_id: str) -> Any:
    req = ShowCustomerOrderDetailsRequest(order_id=order_id)
    return client.show_customer_order_details(req)


def orders(client: Any, **filters: Any) -> list[Any]:
    return list(client.list_customer_orders(ListCustomerOrdersRequest(**filters)).order_infos)


def refund_lines(client: Any, order_id: str) -> list[Any]:
    req = ShowRefundOrderDetailsRequest(order_id=order_id)
    return list(client.show_refund_order_details(req).refund_infos)


def resources(client: Any, **body: Any) -> dict[str, Any]:
    req = ListPayPerUseCustomerResourcesRequest(body=QueryResourcesReq(limit=500, **body))
    return {r.resource_id: r for r in client.list_pay_per_use_customer_resources(req).data}


def dec(x: object) -> Decimal:
    return Decimal(str(x)).quantize(CENT)


def billing(rig: SandboxRig) -> list[dict[str, Any]]:
    with rig.store.tx() as conn:
        advance(conn, rig.clock.now())
        return still_billing(conn, rig.clock.now())


def used_quota(rig: SandboxRig) -> int:
    with rig.store.tx() as conn:
        return quota_used(conn, rig.clock.now())


def dump(rig: SandboxRig) -> dict[str, list[str]]:
    """Every state table (not the call log) as sorted row reprs."""
    with rig.store.tx() as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' "
                "AND name NOT IN ('calls', 'meta', 'sqlite_sequence')"
            )
        ]
        return {
            t: sorted(repr(tuple(r)) for r in conn.execute(f"SELECT * FROM {t}")) for t in names
        }


# -- operations ----------------------------------------------------------------------------


def test_list_customer_orders_filters_pages_and_orders(tmp_path: Path) -> None:
    scenario = world(
        prepaid("a", 3),
        subs=({"resource": "a", "paid": "100"},),
        orders=(
            {"resource": "b", "amount": "50", "created_days_ago": 1},
            {"resource": "c", "status": "cancelled", "created_days_ago": 2, "type": "renew"},
        ),
    )
    with sandbox(tmp_path, scenario) as (rig, client):
        everything = orders(client)
        assert len(everything) == 3
        assert [o.create_time for o in everything] == sorted(
            (o.create_time for o in everything), reverse=True
        )
        oldest_first = orders(client, order_by="createTime")
        assert [o.order_id for o in oldest_first] == [o.order_id for o in reversed(everything)]
        (pending,) = orders(client, status=6)
        assert (pending.order_type, dec(pending.amount_after_discount)) == (1, Decimal("50.00"))
        assert {o.status for o in orders(client, order_type="2")} == {4}
        assert len(orders(client, limit=1, offset=1)) == 1
        since = ts(rig.clock.now() - timedelta(days=1, hours=1))
        assert {o.order_id for o in orders(client, create_time_begin=since)} == {pending.order_id}
        refused(lambda: orders(client, limit=0), "CBC.0100")
        refused(
            lambda: orders(
                client,
                create_time_begin="2024-01-01T00:00:00Z",
                create_time_end="2026-01-01T00:00:00Z",
            ),
            "CBC.0100",
        )


def test_show_customer_order_details_shows_lines_and_the_payment_deadline(
    tmp_path: Path,
) -> None:
    scenario = world(orders=({"resource": "web-2", "amount": "299.00", "created_days_ago": 1},))
    with sandbox(tmp_path, scenario) as (rig, client):
        (pending,) = orders(client, status=6)
        detail = order(client, pending.order_id)
        created = parse_ts(detail.order_info.create_time)
        assert created == rig.clock.now() - timedelta(days=1)
        deadline = parse_ts(detail.order_info.pending_payment_end_time)
        assert deadline == created + timedelta(days=7)  # R2
        assert detail.total_count == len(detail.order_line_items) == 1
        assert dec(detail.order_line_items[0].amount_after_discount) == Decimal("299.00")
        refused(lambda: order(client, "CS-NO-SUCH-ORDER"), "CBC.0100")


def test_only_pending_payment_orders_can_be_cancelled(tmp_path: Path) -> None:
    scenario = world(
        prepaid("a"),
        subs=({"resource": "a", "paid": "10"},),
        orders=(
            {"resource": "p", "status": "pending_payment"},
            {"resource": "q", "status": "processing"},
            {"resource": "r", "status": "cancelled"},
        ),
    )
    with sandbox(tmp_path, scenario) as (_rig, client):

        def cancel(order_id: str) -> Any:
            body = CancelCustomerOrderReq(order_id=order_id)
            return client.cancel_customer_order(CancelCustomerOrderRequest(body=body))

        by_status = {o.status: o.order_id for o in orders(client)}
        cancel(by_status[6])
        assert order(client, by_status[6]).order_info.status == 4  # R1: stays listed
        for status in (3, 4, 5):  # processing, cancelled, completed
            refused(lambda s=status: cancel(by_status[s]), "CBC.99005010")  # type: ignore[misc]
        refused(lambda: cancel(by_status[6]), "CBC.99005010")  # cannot be cancelled twice
        refused(lambda: cancel("CS-NO-SUCH-ORDER"), "CBC.0100")


def test_pending_orders_are_cancelled_after_seven_days(tmp_path: Path) -> None:
    scenario = world(orders=({"resource": "web-2", "created_days_ago": 6},))
    with sandbox(tmp_path, scenario) as (rig, client):
        (pending,) = orders(client, status=6)
        rig.advance(timedelta(days=1, seconds=1).total_seconds())
        assert order(client, pending.order_id).order_info.status == 4  # R2


def test_resource_query_returns_main_and_bound_children(tmp_path: Path) -> None:
    scenario = world(
        prepaid("a", 1, DiskSpec(size=20)),
        prepaid("b"),
        subs=(
            {"resource": "a", "period": "year", "paid": "1200"},
            {"resource": "b", "paid": "100"},
        ),
    )
    with sandbox(tmp_path, scenario) as (rig, client):
        a, sys_a, data_a = rig.ids["a"], rig.ids["a-sys"], rig.ids["a-data1"]
        found = resources(client, resource_ids=[a])
        assert set(found) == {a, sys_a, data_a}
        assert (found[a].is_main_resource, found[a].parent_resource_id) == (1, None)
        assert (found[a].service_type_code, found[a].resource_type_code) == (
            "hws.service.type.ec2",
            "hws.resource.type.vm",
        )
        for child in (sys_a, data_a):
            assert (found[child].is_main_resource, found[child].parent_resource_id) == (0, a)
            assert found[child].service_type_code == "hws.service.type.ebs"
            assert found[child].resource_type_code == "hws.resource.type.volume"
            assert found[child].expire_time == found[a].expire_time
        assert parse_ts(found[a].expire_time) == add_months(parse_ts(found[a].effective_time), 12)
        assert set(resources(client, only_main_resource=1)) == {a, rig.ids["b"]}
        assert set(resources(client, resource_ids=[a], only_main_resource=1)) == {a}
        unsubscribe(client, [rig.ids["b"]])
        assert set(resources(client, status_list=[3])) == {rig.ids["b"], rig.ids["b-sys"]}
        assert rig.ids["b"] not in resources(client, status_list=[2])
        req = ListPayPerUseCustomerResourcesRequest(
            body=QueryResourcesReq(resource_ids=[f"id-{i}" for i in range(51)])
        )
        refused(lambda: client.list_pay_per_use_customer_resources(req), "CBC.0100")


def test_unsubscribe_refuses_unknown_child_postpaid_and_already_unsubscribed_ids(
    tmp_path: Path,
) -> None:
    scenario = world(
        prepaid("a"),
        ServerSpec(name="pp", charging="postPaid"),
        subs=({"resource": "a", "paid": "100"},),
    )
    with sandbox(tmp_path, scenario) as (rig, client):
        refused(lambda: unsubscribe(client, ["no-such-id"]), "CBC.99003012")
        refused(lambda: unsubscribe(client, [rig.ids["a-sys"]]), "CBC.99003185")
        refused(lambda: unsubscribe(client, [rig.ids["pp"]]), "CBC.30000067")
        refused(lambda: unsubscribe(client, [rig.ids["a"]], kind=3), "CBC.0100")
        refused(lambda: unsubscribe(client, []), "CBC.0100")
        refused(lambda: unsubscribe(client, [rig.ids["a"], rig.ids["a"]]), "CBC.0100")
        assert len(unsubscribe(client, [rig.ids["a"]]).order_ids) == 1
        refused(lambda: unsubscribe(client, [rig.ids["a"]]), "CBC.30000067")


def test_a_refused_request_changes_no_state(tmp_path: Path) -> None:
    scenario = world(
        prepaid("good"),
        prepaid("bad"),
        subs=(
            {"resource": "good", "paid": "100"},
            {"resource": "bad", "paid": "100", "blockers": ["invoiced"]},
        ),
    )
    with sandbox(tmp_path, scenario) as (rig, client):
        orders(client)  # apply anything due, so the dump compares like with like
        before = dump(rig)
        refused(lambda: unsubscribe(client, [rig.ids["good"], rig.ids["bad"]]), "CBC.99003643")
        rig.advance(RELEASE + 1)
        orders(client)
        assert dump(rig) == before
        assert used_quota(rig) == 0


# -- rules ---------------------------------------------------------------------------------


def test_unsubscribing_a_prepaid_server_releases_its_bound_children_but_not_separately_bought_disks(
    tmp_path: Path,
) -> None:
    bound = DiskSpec(size=20, name="db-bound")
    separate = DiskSpec(size=50, name="db-extra", bound=False, hourly_price=Decimal("0.30"))
    scenario = world(
        prepaid("db", 30, bound, separate),
        subs=({"resource": "db", "period": "year", "paid": "1200"},),
    )
    with sandbox(tmp_path, scenario) as (rig, client):
        ids = rig.ids
        assert set(resources(client, resource_ids=[ids["db"]])) == {
            ids["db"],
            ids["db-sys"],
            ids["db-bound"],
        }
        (order_id,) = unsubscribe(client, [ids["db"]]).order_ids
        status = {k: v.status for k, v in resources(client, resource_ids=[ids["db"]]).items()}
        assert status == {ids["db"]: 3, ids["db-sys"]: 3, ids["db-bound"]: 3}
        ecs(rig).show_server(ShowServerRequest(server_id=ids["db"]))  # released asynchronously
        rig.advance(RELEASE + 0.5)
        refused(
            lambda: ecs(rig).show_server(ShowServerRequest(server_id=ids["db"])), "Ecs.0114", 404
        )
        for gone in ("db-sys", "db-bound"):
            refused(
                lambda v=ids[gone]: evs(rig).show_volume(ShowVolumeRequest(volume_id=v)),  # type: ignore[misc]
                "EVS.5404",
                404,
            )
        left = evs(rig).show_volume(ShowVolumeRequest(volume_id=ids["db-extra"])).volume
        assert (left.status, left.attachments) == ("available", [])
        billed = {b.get("resource_id") for b in billing(rig)}
        assert ids["db-extra"] in billed  # R17: it keeps billing on its own
        assert not billed & {ids["db"], ids["db-sys"], ids["db-bound"]}
        assert order(client, order_id).order_info.order_type == 4


def test_resource_in_a_pending_payment_order_cannot_be_unsubscribed_cbc_99003100(
    tmp_path: Path,
) -> None:
    scenario = world(
        prepaid("a"),
        subs=({"resource": "a", "paid": "100"},),
        orders=({"resource": "a", "type": "renew", "amount": "100"},),
    )
    with sandbox(tmp_path, scenario) as (rig, client):
        refused(lambda: unsubscribe(client, [rig.ids["a"]]), "CBC.99003100")
        (pending,) = orders(client, status=6)
        body = CancelCustomerOrderReq(order_id=pending.order_id)
        client.cancel_customer_order(CancelCustomerOrderRequest(body=body))
        assert len(unsubscribe(client, [rig.ids["a"]]).order_ids) == 1  # R3: cancel first


def test_five_day_full_refund_within_the_window(tmp_path: Path) -> None:
    money = {"paid": "300", "flexi_coupon": "10", "stored_card": "5", "cash_coupon": "20"}
    scenario = world(
        prepaid("young", 4.9),
        prepaid("old", 5.0),
        prepaid("promo", 1.0),
        subs=(
            {"resource": "young", **money},
            {"resource": "old", **money},
            {"resource": "promo", "promotional": True, **money},
        ),
    )
    with sandbox(tmp_path, scenario) as (rig, client):
        (young,) = unsubscribe(client, [rig.ids["young"]]).order_ids
        info = order(client, young).order_info
        assert dec(info.amount_after_discount) == Decimal("315.00")  # cash + 现金券 + card (R7)
        assert dec(info.amount_info.coupon_amount) == Decimal("20.00")  # 代金券 returned
        assert dec(info.amount_info.commission_amount) == 0
        assert dec(info.amount_info.consumed_amount) == 0
        assert used_quota(rig) == 1
        for late in ("old", "promo"):  # R5 window closed at 5x24 h; R8 promotion excluded
            (oid,) = unsubscribe(client, [rig.ids[late]]).order_ids
            info = order(client, oid).order_info
            assert dec(info.amount_info.commission_amount) > 0
            assert dec(info.amount_info.coupon_amount) == 0
        assert used_quota(rig) == 1


def test_five_day_quota_is_ten_per_calendar_year(tmp_path: Path) -> None:
    scenario = world(
        prepaid("a"),
        prepaid("b"),
        subs=({"resource": "a", "paid": "100"}, {"resource": "b", "paid": "100"}),
        used=9,
    )
    with sandbox(tmp_path, scenario) as (rig, client):
        (a,) = unsubscribe(client, [rig.ids["a"]]).order_ids
        assert dec(order(client, a).order_info.amount_after_discount) == Decimal("100.00")
        assert used_quota(rig) == 10
        (b,) = unsubscribe(client, [rig.ids["b"]]).order_ids  # R6: quota used up: ordinary
        info = order(client, b).order_info
        assert dec(info.amount_info.commission_amount) == Decimal("10.00")
        assert dec(info.amount_info.consumed_amount) > 0
        assert dec(info.amount_after_discount) < Decimal("90.00")
        assert used_quota(rig) == 10
        rig.advance((parse_ts("2027-01-01T00:00:00Z") - rig.clock.now()).total_seconds())
        assert used_quota(rig) == 0  # a new calendar year


def test_five_day_quota_used_up_means_an_ordinary_refund(tmp_path: Path) -> None:
    scenario = world(prepaid("a"), subs=({"resource": "a", "paid": "100"},), used=10)
    with sandbox(tmp_path, scenario) as (rig, client):
        (a,) = unsubscribe(client, [rig.ids["a"]]).order_ids
        info = order(client, a).order_info
        assert dec(info.amount_info.commission_amount) == Decimal("10.00")
        assert used_quota(rig) == 10


def test_bound_resources_count_once_against_the_quota(tmp_path: Path) -> None:
    scenario = world(
        prepaid("a", 1, DiskSpec(size=20), DiskSpec(size=30)),
        prepaid("b", 1, DiskSpec(size=20)),
        prepaid("c"),
        subs=tuple({"resource": n, "paid": "100"} for n in ("a", "b", "c")),
        used=8,
    )
    with sandbox(tmp_path, scenario) as (rig, client):
        assert len(resources(client, resource_ids=[rig.ids["a"]])) == 4
        for name, quota in (("a", 9), ("b", 10)):
            (oid,) = unsubscribe(client, [rig.ids[name]]).order_ids
            info = order(client, oid).order_info
            assert dec(info.amount_after_discount) == Decimal("100.00"), name
            assert used_quota(rig) == quota
        (c,) = unsubscribe(client, [rig.ids["c"]]).order_ids
        assert dec(order(client, c).order_info.amount_info.commission_amount) > 0


def test_ordinary_refund_is_paid_minus_hourly_consumption_minus_fee(tmp_path: Path) -> None:
    scenario = world(
        prepaid("a", 73.3),
        subs=(
            {
                "resource": "a",
                "period": "year",
                "paid": "1000",
                "flexi_coupon": "200",
                "stored_card": "100",
                "cash_coupon": "50",
            },
        ),
    )
    with sandbox(tmp_path, scenario) as (rig, client):
        now = rig.clock.now()
        start = parse_ts(ts(now - timedelta(days=73.3)))
        total = (add_months(start, 12) - start) // HOUR
        used = (now - start) // HOUR
        paid = Decimal(1300)  # cash + 现金券 + card; 代金券 excluded (R11)
        consumed = (paid * used / total).quantize(CENT, ROUND_HALF_UP)
        fee = Decimal("130.00")  # 1-year product, first year: 10% (R12)
        (oid,) = unsubscribe(client, [rig.ids["a"]]).order_ids
        info = order(client, oid).order_info
        assert dec(info.amount_info.consumed_amount) == consumed
        assert dec(info.amount_info.commission_amount) == fee
        assert dec(info.amount_after_discount) == paid - consumed - fee
        assert dec(info.amount_info.coupon_amount) == 0  # 代金券 not returned
        assert used_quota(rig) == 0


def test_refund_never_below_zero(tmp_path: Path) -> None:
    scenario = world(prepaid("a", 29.9), subs=({"resource": "a", "paid": "100"},))
    with sandbox(tmp_path, scenario) as (rig, client):
        (oid,) = unsubscribe(client, [rig.ids["a"]]).order_ids
        info = order(client, oid).order_info
        assert dec(info.amount_after_discount) == 0  # R11: below zero, nothing is refunded
        consumed = dec(info.amount_info.consumed_amount)
        fee = dec(info.amount_info.commission_amount)
        assert consumed > Decimal(90) and consumed + fee == Decimal(100)
        assert all(dec(x.amount) >= 0 for x in refund_lines(client, oid))


def test_discount_coupons_are_not_returned(tmp_path: Path) -> None:
    money = {"paid": "200", "cash_coupon": "15", "discount_coupon": "40"}
    scenario = world(
        prepaid("new", 1),
        prepaid("old", 40),
        subs=({"resource": "new", **money}, {"resource": "old", **money}),
    )
    with sandbox(tmp_path, scenario) as (rig, client):
        (bought,) = orders(client, order_type="1", limit=1, order_by="-createTime")
        assert [d.discount_amount for d in bought.amount_info.discounts] == [40.0]
        (new,) = unsubscribe(client, [rig.ids["new"]]).order_ids
        info = order(client, new).order_info  # 5-day: money and 代金券 back, 折扣券 not (R7)
        assert dec(info.amount_after_discount) == Decimal("200.00")
        assert dec(info.amount_info.coupon_amount) == Decimal("15.00")
        assert info.amount_info.discounts == []
        (old,) = unsubscribe(client, [rig.ids["old"]]).order_ids
        info = order(client, old).order_info  # ordinary: neither coupon comes back (R11)
        assert dec(info.amount_info.coupon_amount) == 0
        assert info.amount_info.discounts == []
        assert dec(info.amount_after_discount) < Decimal("200.00")


@pytest.mark.parametrize(
    ("blocker", "code"),
    [
        ("locked", "CBC.99003651"),
        ("frozen", "CBC.99003656"),
        ("invoiced", "CBC.99003643"),
        ("promotional", "CBC.0100"),
        ("trial", "CBC.99003649"),
    ],
)
def test_locked_frozen_invoiced_promotional_and_trial_resources_are_refused_with_their_codes(
    tmp_path: Path, blocker: str, code: str
) -> None:
    scenario = world(prepaid("a"), subs=({"resource": "a", "paid": "100", "blockers": [blocker]},))
    with sandbox(tmp_path, scenario) as (rig, client):
        server = ecs(rig).show_server(ShowServerRequest(server_id=rig.ids["a"])).server
        if blocker == "frozen":
            assert server.metadata["EcmResStatus"] == "freeze"
        if blocker == "locked":
            assert server.metadata["lockSourceId"] == server.metadata["metering.order_id"]
        for kind in (1, 2):
            refused(lambda k=kind: unsubscribe(client, [rig.ids["a"]], k), code)  # type: ignore[misc]
        assert orders(client, order_type="4") == []


def test_auto_renew_is_reflected_in_expire_policy(tmp_path: Path) -> None:
    separate = DiskSpec(size=50, name="extra", bound=False, charging="prePaid")
    scenario = world(
        prepaid("a", 10, separate),
        subs=(
            {"resource": "a", "period": "year", "paid": "1200", "auto_renew": True},
            {"resource": "extra", "period": "year", "paid": "300", "auto_renew": True},
        ),
    )
    with sandbox(tmp_path, scenario) as (rig, client):
        a, sys_a, extra = rig.ids["a"], rig.ids["a-sys"], rig.ids["extra"]

        def policies() -> dict[str, int]:
            return {k: v.expire_policy for k, v in resources(client).items()}

        assert policies() == {a: 3, sys_a: 3, extra: 3}  # R28: 3 is auto-renew
        (entry,) = [b for b in billing(rig) if b.get("resource_id") == a]
        expires = parse_ts(entry["expire_time"])
        local = expires.astimezone(RULES.site_zone) - timedelta(days=7)
        assert entry["next_renewal_charge"] == ts(
            local.replace(hour=3, minute=0, second=0).astimezone(UTC)
        )  # R25: 03:00 of the site's local time, written in UTC
        client.cancel_auto_renewal_resources(CancelAutoRenewalResourcesRequest(resource_id=a))
        assert policies() == {a: 0, sys_a: 0, extra: 0}  # its attached disks too
        refused(
            lambda: client.cancel_auto_renewal_resources(
                CancelAutoRenewalResourcesRequest(resource_id=a)
            ),
            "CBC.99003605",
        )
        body = AutoRenewalResourcesReq(auto_renew_times=2, period_type="YEAR")
        client.auto_renewal_resources(AutoRenewalResourcesRequest(resource_id=a, body=body))
        assert policies() == {a: 3, sys_a: 3, extra: 0}
        bad = AutoRenewalResourcesReq(auto_renew_times=100)
        refused(
            lambda: client.auto_renewal_resources(
                AutoRenewalResourcesRequest(resource_id=a, body=bad)
            ),
            "CBC.0100",
        )
        refused(
            lambda: client.auto_renewal_resources(
                AutoRenewalResourcesRequest(resource_id="no-such-id", body=body)
            ),
            "CBC.99003012",
        )


def test_refund_order_lines_are_negative_for_money_and_positive_for_consumption_and_fees(
    tmp_path: Path,
) -> None:
    scenario = world(
        prepaid("a", 40),
        subs=(
            {
                "resource": "a",
                "period": "year",
                "paid": "1200",
                "renewals": [{"period": "year", "periods": 1, "paid": "1100"}],
            },
        ),
    )
    with sandbox(tmp_path, scenario) as (rig, client):
        (purchase,) = orders(client, order_type="1")
        (renewal,) = orders(client, order_type="2")
        (oid,) = unsubscribe(client, [rig.ids["a"]]).order_ids
        lines = refund_lines(client, oid)
        info = order(client, oid).order_info
        by_base: dict[str, list[Decimal]] = {}
        for line in lines:
            by_base.setdefault(line.base_order_id, []).append(dec(line.amount))
        assert by_base[renewal.order_id] == [Decimal("-1100.00")]  # unused renewal: in full (R13)
        money, *costs = by_base[purchase.order_id]
        assert money < 0 and len(costs) == 2 and all(c > 0 for c in costs)
        assert -sum(x for x in map(dec, (x.amount for x in lines)) if x < 0) == dec(
            info.amount_after_discount
        )
        assert sum(costs) == dec(info.amount_info.commission_amount) + dec(
            info.amount_info.consumed_amount
        )
        refused(
            lambda: client.show_refund_order_details(
                ShowRefundOrderDetailsRequest(order_id=purchase.order_id)
            ),
            "CBC.99005026",
        )


def test_ledger_answers_what_is_still_billing(tmp_path: Path) -> None:
    scenario = world(
        ServerSpec(name="web", hourly_price=Decimal("0.62"), system_disk=DiskSpec(size=10)),
        prepaid("monthly", 20),
        prepaid("yearly", 20),
        subs=(
            {"resource": "monthly", "paid": "100"},
            {"resource": "yearly", "period": "year", "paid": "1000", "auto_renew": True},
        ),
        orders=({"resource": "web-2", "amount": "299"},),
    )
    with sandbox(tmp_path, scenario) as (rig, client):
        items = {b.get("resource_id") or b["order_id"]: b for b in billing(rig)}
        ids = rig.ids
        assert items[ids["web"]]["hourly_price"] == Decimal("0.62")
        assert items[ids["web-sys"]]["billing"] == "postPaid"
        assert items[ids["monthly"]]["auto_renew"] is False
        assert items[ids["monthly"]]["next_renewal_charge"] is None
        assert items[ids["yearly"]]["expire_policy"] == "auto_renew"
        assert items[ids["yearly"]]["expire_policy_code"] == 3
        assert items[ids["yearly"]]["next_renewal_charge"] is not None
        assert ids["monthly-sys"] not in items  # billed with its server
        (pending,) = [b for b in items.values() if b["kind"] == "pending_order"]
        assert pending["amount"] == Decimal("299")
        unsubscribe(client, [ids["yearly"]])
        rig.advance(timedelta(days=11).total_seconds())  # monthly expired: grace (R26)
        items = {b.get("resource_id") or b["order_id"]: b for b in billing(rig)}
        assert ids["yearly"] not in items
        assert items[ids["monthly"]]["in_grace"] is True
        assert items[ids["monthly"]]["status"] == 5
        assert not [b for b in items.values() if b["kind"] == "pending_order"]  # expired (R2)


def test_unsubscribe_accepts_at_most_ten_ids(tmp_path: Path) -> None:
    names = [f"s{i}" for i in range(10)]
    scenario = world(
        *(prepaid(n, 10) for n in names),
        subs=tuple({"resource": n, "paid": "10"} for n in names),
    )
    with sandbox(tmp_path, scenario) as (rig, client):
        ids = [rig.ids[n] for n in names]
        refused(lambda: unsubscribe(client, [*ids, "eleventh"]), "CBC.0100")
        assert orders(client, order_type="4") == []
        reply = unsubscribe(client, ids)
        assert len(reply.order_ids) == 10 and reply.fail_resource_infos == []


def test_renewal_only_unsubscribe_keeps_the_resource_until_expiry(tmp_path: Path) -> None:
    scenario = world(
        prepaid("a", 10),
        prepaid("plain", 10),
        subs=(
            {
                "resource": "a",
                "paid": "100",
                "renewals": [{"paid": "90", "cash_coupon": "5"}, {"paid": "80"}],
            },
            {"resource": "plain", "paid": "100"},
        ),
    )
    with sandbox(tmp_path, scenario) as (rig, client):
        a = rig.ids["a"]
        before = resources(client, resource_ids=[a])
        start = parse_ts(before[a].effective_time)
        assert parse_ts(before[a].expire_time) == add_months(start, 3)
        (oid,) = unsubscribe(client, [a], kind=2).order_ids
        info = order(client, oid).order_info
        assert dec(info.amount_after_discount) == Decimal("170.00")  # R13: in full, no fee
        assert dec(info.amount_info.coupon_amount) == Decimal("5.00")
        assert dec(info.amount_info.commission_amount) == 0
        after = resources(client, resource_ids=[a])
        for rid in (a, rig.ids["a-sys"]):
            assert after[rid].status == 2
            assert parse_ts(after[rid].expire_time) == add_months(start, 1)
        rig.advance(RELEASE + 60)
        ecs(rig).show_server(ShowServerRequest(server_id=a))  # still there
        assert used_quota(rig) == 0
        refused(lambda: unsubscribe(client, [a], kind=2), "CBC.99003128")
        refused(lambda: unsubscribe(client, [rig.ids["plain"]], kind=2), "CBC.99003128")


# -- scenario validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"resource": "a", "colour": "red"}, "subscriptions[0].colour"),
        ({"resource": "nobody"}, "subscriptions[0].resource"),
        ({"resource": "a", "blockers": ["haunted"]}, "subscriptions[0].blockers"),
        ({"resource": "a", "period": "week"}, "subscriptions[0].period"),
        ({"resource": "a-sys"}, "subscriptions[0].resource"),
    ],
)
def test_scenario_billing_entries_are_validated(
    tmp_path: Path, entry: dict[str, Any], problem: str
) -> None:
    with (
        pytest.raises(ConfigError) as info,
        running_sandbox(tmp_path, world(prepaid("a"), subs=(entry,))),
    ):
        pass
    assert problem in str(info.value)


def test_scenario_orders_are_validated(tmp_path: Path) -> None:
    scenario = world(orders=({"resource": "x", "status": "paid"},))
    with (
        pytest.raises(ConfigError, match=r"orders\[0\]\.status"),
        running_sandbox(tmp_path, scenario),
    ):
        pass


# -- switch to pay-per-use at expiry (UpdatePeriodToOnDemand) ---------------------------------


def to_on_demand(client: Any, operation: str, *ids: str) -> list[Any]:
    body = PeriodToOnDemandReq(operation=operation, resource_ids=list(ids))
    reply = client.update_period_to_on_demand(UpdatePeriodToOnDemandRequest(body=body))
    return list(reply.error_details or [])


def test_update_period_to_on_demand_sets_and_cancels_expire_policy_1_assumption_cancel_means_0(
    tmp_path: Path,
) -> None:
    scenario = world(
        prepaid("a", 10),
        prepaid("b", 10),
        subs=(
            {"resource": "a", "paid": "100", "auto_renew": True},
            {"resource": "b", "paid": "100", "expire_policy": "to_pay_per_use"},
        ),
    )
    with sandbox(tmp_path, scenario) as (rig, client):
        a, sys_a, b = rig.ids["a"], rig.ids["a-sys"], rig.ids["b"]

        def policies() -> dict[str, int]:
            return {
                k: v.expire_policy for k, v in resources(client).items() if k != rig.ids["b-sys"]
            }

        assert policies() == {a: 3, sys_a: 3, b: 1}  # b seeded as "to_pay_per_use"
        entry = {x["resource_id"]: x for x in billing(rig)}
        assert (entry[b]["expire_policy"], entry[b]["expire_policy_code"]) == ("to_pay_per_use", 1)
        assert to_on_demand(client, "SET_UP", a) == []
        assert policies() == {a: 1, sys_a: 1, b: 1}  # the bound children follow
        entry = {x["resource_id"]: x for x in billing(rig)}
        assert entry[a]["expire_policy"] == "to_pay_per_use" and entry[a]["auto_renew"] is False
        assert entry[a]["next_renewal_charge"] is None
        assert to_on_demand(client, "CANCEL", a, b) == []
        assert policies() == {a: 0, sys_a: 0, b: 0}
        entry = {x["resource_id"]: x for x in billing(rig)}
        assert entry[a]["expire_policy"] == "release"


def test_assumption_cancel_to_pay_per_use_when_not_set_succeeds_and_changes_nothing(
    tmp_path: Path,
) -> None:
    scenario = world(prepaid("a", 10), subs=({"resource": "a", "auto_renew": True},))
    with sandbox(tmp_path, scenario) as (rig, client):
        before = dump(rig)
        assert to_on_demand(client, "CANCEL", rig.ids["a"]) == []
        assert dump(rig) == before
        assert resources(client)[rig.ids["a"]].expire_policy == 3


def test_update_period_to_on_demand_refusals_assumption_a_child_id_is_cbc_0100(
    tmp_path: Path,
) -> None:
    scenario = world(
        prepaid("a", 10),
        prepaid("old", 40),
        subs=({"resource": "a"}, {"resource": "old", "expire_policy": "to_pay_per_use"}),
    )
    with sandbox(tmp_path, scenario) as (rig, client):
        a, old = rig.ids["a"], rig.ids["old"]
        before = dump(rig)
        refused(lambda: to_on_demand(client, "SWITCH", a), "CBC.0100")
        refused(lambda: to_on_demand(client, "SET_UP", a, "nobody"), "CBC.99003012")
        refused(lambda: to_on_demand(client, "SET_UP", rig.ids["a-sys"]), "CBC.0100")  # a child
        refused(lambda: to_on_demand(client, "SET_UP", *(f"r{i}" for i in range(101))), "CBC.0100")
        assert dump(rig) == before  # the whole batch refused, nothing changed
        # "old" expired 10 days ago (one month bought 40 days ago): in its grace period (R26)
        (detail,) = to_on_demand(client, "CANCEL", old, a)
        assert (detail.error_code, detail.id) == ("CBC.99003610", old)  # HTTP 200
        assert resources(client)[old].expire_policy == 1


def test_a_subscription_is_either_auto_renewed_or_given_an_expire_policy(tmp_path: Path) -> None:
    entry = {"resource": "a", "auto_renew": True, "expire_policy": "to_pay_per_use"}
    with (
        pytest.raises(ConfigError, match="auto_renew and expire_policy"),
        running_sandbox(tmp_path, world(prepaid("a"), subs=(entry,))),
    ):
        pass


def test_renewal_unsubscribe_with_no_renewal_pending_is_cbc_99003128_and_changes_nothing(
    tmp_path: Path,
) -> None:
    scenario = world(prepaid("a", 10), subs=({"resource": "a", "paid": "100"},))
    with sandbox(tmp_path, scenario) as (rig, client):
        before = dump(rig)
        refused(lambda: unsubscribe(client, [rig.ids["a"]], kind=2), "CBC.99003128")
        assert dump(rig) == before
