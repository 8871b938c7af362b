"""BSS as Huawei publishes it, and the pending-order links: one test per rule of the BSS fidelity
pass (docs/huawei-api.md, "BSS"), through the official SDK clients against the sandbox and
through the adapter. A test whose name contains ``assumption`` pins a behaviour no source
confirms (each is listed as an "Assumption:" in docs/huawei-api.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from huaweicloudsdkbss.v2 import (
    AutoRenewalResourcesReq,
    AutoRenewalResourcesRequest,
    CancelCustomerOrderReq,
    CancelCustomerOrderRequest,
    CancelResourcesSubscriptionRequest,
    ListCustomerOrdersRequest,
    ListPayPerUseCustomerResourcesRequest,
    QueryResourcesReq,
    ShowCustomerOrderDetailsRequest,
    UnsubscribeResourcesReq,
)
from huaweicloudsdkcore.exceptions.exceptions import (
    ClientRequestException,
    ServerResponseException,
)
from huaweicloudsdkecs.v2 import ShowServerRequest
from werkzeug.serving import BaseWSGIServer

from teardown.adapters.huawei import Clients, HuaweiBilling, HuaweiInventory, HuaweiProfile
from teardown.adapters.huawei._bss import DISCOUNT_COUPON_TYPES, discount_coupons
from teardown.adapters.huawei.errors import HINTS
from teardown.adapters.huawei.profile import BSS_ENDPOINTS, load_profile
from teardown.adapters.huawei.provider import HuaweiAccount
from teardown.adapters.huawei.rules import (
    BLOCKER_CODES,
    CN_FEE_TABLE,
    INTL_FEE_TABLE,
    PROMOTIONAL_CODE,
    BillingRules,
    fee_table_for,
)
from teardown.app.services import Targets, Tuning, plan_servers
from teardown.cli.main import cli
from teardown.core.config import BillingConfig, Config
from teardown.core.errors import ConfigError, PermanentError
from teardown.core.model import StepKind
from teardown.ports import OrderState
from teardown.sandbox.scenario import DiskSpec, Scenario, ServerSpec
from tests.sandbox_rig import SandboxRig, bss, ecs, running_sandbox

OTHER_REGION = "cn-south-1"


@pytest.fixture(autouse=True)
def _quick_listener_shutdown(monkeypatch: pytest.MonkeyPatch) -> None:
    """A shorter poll interval so stopping the listeners is quick."""
    serve = BaseWSGIServer.serve_forever

    def quick(self: BaseWSGIServer, poll_interval: float = 0.02) -> None:
        serve(self, poll_interval=poll_interval)

    monkeypatch.setattr(BaseWSGIServer, "serve_forever", quick)


# -- rigs ------------------------------------------------------------------------------------


@dataclass
class Cloud:
    """A running sandbox, an SDK ``BssClient`` for it and the adapter's parts."""

    rig: SandboxRig
    client: Any
    profile: HuaweiProfile

    @property
    def ids(self) -> dict[str, str]:
        return self.rig.ids

    def inventory(self) -> HuaweiInventory:
        return HuaweiInventory(Clients(self.profile), sleep=self.rig.advance)

    def billing(self) -> HuaweiBilling:
        return HuaweiBilling(
            Clients(self.profile), sleep=self.rig.advance, clock=self.rig.clock.now
        )

    def orders(self, **filters: Any) -> list[Any]:
        req = ListCustomerOrdersRequest(limit=100, **filters)
        return list(self.client.list_customer_orders(req).order_infos or [])

    def details(self, order_id: str) -> Any:
        req = ShowCustomerOrderDetailsRequest(order_id=order_id, limit=100)
        return self.client.show_customer_order_details(req)

    def resources(self, **query: Any) -> list[Any]:
        body = QueryResourcesReq(limit=500, **query)
        resp = self.client.list_pay_per_use_customer_resources(
            ListPayPerUseCustomerResourcesRequest(body=body)
        )
        return list(resp.data or [])

    def cancel(self, order_id: str) -> Any:
        body = CancelCustomerOrderReq(order_id=order_id)
        return self.client.cancel_customer_order(CancelCustomerOrderRequest(body=body))

    def unsubscribe(self, resource_id: str, kind: int = 1) -> Any:
        body = UnsubscribeResourcesReq(resource_ids=[resource_id], unsubscribe_type=kind)
        return self.client.cancel_resources_subscription(
            CancelResourcesSubscriptionRequest(body=body)
        )

    def server_metadata(self, name: str) -> dict[str, str]:
        server = ecs(self.rig).show_server(ShowServerRequest(server_id=self.ids[name])).server
        return dict(server.metadata or {})

    def order_of(self, resource: str, **filters: Any) -> str:
        """The id of the one order of ``filters`` whose ledger row names ``resource``."""
        rid = self.ids.get(resource, resource)
        rows = self.rig.store.conn.execute(
            "SELECT id FROM orders WHERE resource_ids LIKE ? AND combined_id IS NULL",
            (f'%"{rid}"%',),
        ).fetchall()
        found = {str(o.order_id) for o in self.orders(**filters)} & {str(r[0]) for r in rows}
        assert len(found) == 1, found
        return found.pop()


@contextmanager
def cloud(tmp_path: Path, scenario: Scenario) -> Iterator[Cloud]:
    with running_sandbox(tmp_path, scenario) as rig:
        a = rig.app.config.account
        profile = HuaweiProfile(
            region=a.region,
            project_id=a.project_id,
            domain_id=a.domain_id,
            ak=a.ak,
            sk=a.sk,
            endpoints=rig.endpoints.as_dict(),
            vault_id="vault-sandbox",
        )
        yield Cloud(rig, bss(rig), profile)


def prepaid(name: str, days_ago: float = 10.0) -> ServerSpec:
    return ServerSpec(
        name=name, charging="prePaid", provisioned_days_ago=days_ago, system_disk=DiskSpec(size=10)
    )


def hourly(name: str) -> ServerSpec:
    return ServerSpec(name=name, charging="postPaid", system_disk=DiskSpec(size=10))


def refused(call: Any, code: str, status: int = 400) -> Any:
    with pytest.raises((ClientRequestException, ServerResponseException)) as info:
        call()
    assert (info.value.status_code, info.value.error_code) == (status, code), info.value.error_msg
    return info.value


def orders_world() -> Scenario:
    """web: pay-per-use, being converted to yearly/monthly by a pending order that locks it;
    db: prepaid, with a pending renewal order; web-2: a purchase pending payment (nothing
    provisioned); south-db: another region's prepaid server with a pending renewal."""
    return Scenario(
        name="bss-fidelity",
        servers=(hourly("web"), prepaid("db")),
        subscriptions=({"resource": "db", "paid": "100"},),
        orders=(
            {"resource": "web", "type": "to_period", "amount": "120"},
            {"resource": "db", "type": "renew", "amount": "100"},
            {"resource": "web-2", "amount": "299"},
            {"resource": "south-db", "type": "renew", "amount": "80", "region": OTHER_REGION},
        ),
    )


# -- 1. order lines and the pending-order links ----------------------------------------------


def test_order_lines_name_a_type_code_not_a_resource_id(tmp_path: Path) -> None:
    with cloud(tmp_path, orders_world()) as c:
        every_id = set(c.ids.values())
        for o in c.orders():
            for line in c.details(o.order_id).order_line_items:
                # OrderLineItemEntityV2.commercial_resource: 商务归属的资源类型编码
                assert line.commercial_resource.startswith("hws.resource.type."), line
                assert line.commercial_resource not in every_id
                assert line.product_owner_service == line.service_type_code
        bought = c.server_metadata("db")["metering.order_id"]  # db's purchase order
        (line,) = c.details(bought).order_line_items
        assert line.commercial_resource == "hws.resource.type.vm"


def test_pending_orders_are_found_through_lock_source_and_order_resources(tmp_path: Path) -> None:
    with cloud(tmp_path, orders_world()) as c:
        ids = c.ids
        convert = c.order_of("web", order_type="11", status=6)
        renew = c.order_of("db", order_type="2", status=6)
        # (a) the ECS lock of the server being converted names the order (the SDK's
        # ServerDetail.metadata: lockSource ORDER, lockSourceId the order id).
        meta = c.server_metadata("web")
        assert (meta["lockSource"], meta["lockSourceId"], meta["lockScene"]) == (
            "ORDER",
            convert,
            "TO_PERIOD_LOCK",
        )
        # (b) ListPayPerUseCustomerResources(order_id=) returns the resources of an order.
        assert {r.resource_id for r in c.resources(order_id=renew)} == {ids["db"], ids["db-sys"]}
        assert c.resources(order_id=convert) == []  # a pay-per-use server is no such resource

        pending = {p.order_id: p for p in c.inventory().pending_orders()}
        assert pending[convert].resource_ids == (ids["web"],)
        assert pending[renew].resource_ids == (ids["db"], ids["db-sys"])
        never_paid = [p for p in pending.values() if p.order_id not in (convert, renew)]
        assert [p.resource_ids for p in never_paid if not p.regions] == [()]
        everything = {r for p in pending.values() for r in p.resource_ids}
        assert everything <= set(ids.values()) | {r.resource_id for r in c.resources()}

        by_name = {r.name: r for r in c.inventory().resources()}
        assert by_name["web"].billing.pending_order_ids == (convert,)
        assert by_name["web"].billing.lock_order_id == convert
        assert by_name["db"].billing.pending_order_ids == (renew,)


def test_assumption_cancelling_a_conversion_order_lifts_its_server_lock(tmp_path: Path) -> None:
    with cloud(tmp_path, orders_world()) as c:
        convert = c.order_of("web", order_type="11", status=6)
        c.cancel(convert)
        assert "lockSourceId" not in c.server_metadata("web")
        assert c.inventory().resources(server_ids=[c.ids["web"]])[0].billing.locked is False


def test_renewals_pending_are_found_through_the_renewal_orders_resources(tmp_path: Path) -> None:
    renewal = [{"period": "month", "paid": "100"}]
    scenario = Scenario(
        name="renewals",
        servers=(prepaid("db"), prepaid("twin")),
        subscriptions=(
            {"resource": "db", "paid": "100", "renewals": renewal},
            {"resource": "twin", "paid": "100"},
        ),
    )
    with cloud(tmp_path, scenario) as c:
        (renew,) = c.orders(order_type="2")
        assert {r.resource_id for r in c.resources(order_id=renew.order_id)} >= {c.ids["db"]}
        by_name = {r.name: r for r in c.inventory().resources()}
        billing = c.billing()
        # Both servers are ECS VMs: a line's type code could never tell them apart.
        assert billing.renewals_pending(by_name["db"]) is True
        assert billing.renewals_pending(by_name["twin"]) is False
        billing.unsubscribe_renewals(by_name["db"], "k")
        assert billing.renewals_pending(by_name["db"]) is False


# -- 2. account mode and the region ----------------------------------------------------------


def test_account_mode_is_limited_to_the_region(tmp_path: Path) -> None:
    with cloud(tmp_path, orders_world()) as c:
        (south,) = [
            str(r[0])
            for r in c.rig.store.conn.execute(
                "SELECT id FROM orders WHERE region=? AND status=6", (OTHER_REGION,)
            )
        ]
        (row,) = c.resources(order_id=south)
        assert row.region_code == OTHER_REGION  # OrderInstanceV2.region_code
        pending = {p.order_id: p for p in c.inventory().pending_orders()}
        assert pending[south].regions == (OTHER_REGION,) and pending[south].in_region is False
        here = [p for p in pending.values() if p.order_id != south]
        assert all(p.in_region for p in here)

        account = HuaweiAccount(c.profile)
        config = Config(billing=BillingConfig(pending_orders="account"))
        targets = Targets(server_ids=(c.ids["web"], c.ids["db"]))
        tuning = Tuning(sleep=c.rig.advance)
        now = c.rig.clock.now()
        plan = plan_servers(account, targets, config, now=now, tuning=tuning)
        first = [s.order_id for s in plan.pre if s.kind is StepKind.CANCEL_PENDING_ORDER]
        assert south not in first
        assert set(first) == {p.order_id for p in here}
        wide = plan_servers(account, targets, config, now=now, tuning=tuning, all_regions=True)
        assert south in {s.order_id for s in wide.pre}


def test_assumption_an_order_with_no_known_resource_counts_as_in_the_region(
    tmp_path: Path,
) -> None:
    with cloud(tmp_path, orders_world()) as c:
        (never_paid,) = [p for p in c.inventory().pending_orders() if not p.resource_ids]
        assert never_paid.amount == Decimal("299.00")
        assert (never_paid.regions, never_paid.in_region) == ((), True)


def test_all_regions_flag_is_on_plan_and_run() -> None:
    runner = CliRunner()
    for command in ("plan", "run"):
        result = runner.invoke(cli, [command, "--help"])
        assert result.exit_code == 0, result.output
        assert "--all-regions" in result.output


# -- 3. enums and codes ----------------------------------------------------------------------

STATUSES = {
    "pending_review": 1,
    "pending_refund": 2,
    "processing": 3,
    "cancelled": 4,
    "completed": 5,
    "pending_payment": 6,
    "pending_confirmation": 9,
    "pending_shipment": 10,
    "pending_receipt": 11,
    "pending_pickup": 12,
    "exchanging": 13,
}
TYPES = {
    "new": 1,
    "renew": 2,
    "change": 3,
    "to_pay_per_use": 10,
    "trial": 13,
    "to_commercial": 14,
    "fee_adjustment": 15,
}


def test_order_status_and_type_values_follow_the_sdk(tmp_path: Path) -> None:
    orders = tuple({"resource": f"s-{k}", "status": k} for k in STATUSES) + tuple(
        {"resource": f"t-{k}", "type": k, "status": "completed"} for k in TYPES
    )
    with cloud(tmp_path, Scenario(name="enums", orders=orders)) as c:
        got = {o.status for o in c.orders()}
        assert got == set(STATUSES.values())  # CustomerOrderV2.status: 1..6, 9..13
        assert {o.order_type for o in c.orders(status=5)} == set(TYPES.values())
        (shipping,) = c.orders(status=10)
        assert c.billing().order_state(shipping.order_id) is OrderState.OTHER
        with pytest.raises(ClientRequestException):
            c.cancel(shipping.order_id)  # only pending payment (6) can be cancelled (R1)


def test_discount_coupon_is_discount_type_300(tmp_path: Path) -> None:
    scenario = Scenario(
        name="coupon",
        servers=(prepaid("db"),),
        subscriptions=({"resource": "db", "paid": "200", "discount_coupon": "40"},),
    )
    with cloud(tmp_path, scenario) as c:
        (bought,) = c.orders(order_type="1")
        (item,) = bought.amount_info.discounts
        assert (item.discount_type, Decimal(str(item.discount_amount))) == ("300", Decimal(40))
        assert discount_coupons(bought.amount_info) == [item]
    assert set(DISCOUNT_COUPON_TYPES) == {"300"}  # the SDK's DiscountItemV2 docstring
    spelt = SimpleNamespace(discount_type="discount_coupon", discount_amount=40)
    assert discount_coupons(SimpleNamespace(discounts=[spelt])) == []  # no source spells it so


def test_cancel_customer_order_answers_204_with_no_body(tmp_path: Path) -> None:
    with cloud(tmp_path, orders_world()) as c:
        renew = c.order_of("db", order_type="2", status=6)
        c.cancel(renew)
        assert c.rig.calls("bss.CancelCustomerOrder") == [("bss.CancelCustomerOrder", 204)]
        assert c.details(renew).order_info.status == 4
        c.billing().order_state(renew)  # the adapter reads it back
        refused(lambda: c.cancel(renew), "CBC.99005010")


def test_renewal_unsubscribe_with_a_bandwidth_add_on_is_cbc_99003654_assumption_type_1_is_allowed(
    tmp_path: Path,
) -> None:
    scenario = Scenario(
        name="addon",
        servers=(prepaid("db"),),
        subscriptions=(
            {
                "resource": "db",
                "paid": "100",
                "renewals": [{"paid": "100"}],
                "blockers": ["bandwidth_addon"],
            },
        ),
    )
    with cloud(tmp_path, scenario) as c:
        err = refused(lambda: c.unsubscribe(c.ids["db"], kind=2), "CBC.99003654")
        assert "加油包" in err.error_msg or "add-on" in err.error_msg
        by_name = {r.name: r for r in c.inventory().resources()}
        with pytest.raises(PermanentError) as info:
            c.billing().unsubscribe_renewals(by_name["db"], "k")
        assert info.value.code == "CBC.99003654" and info.value.hint == HINTS["CBC.99003654"]
        assert len(c.unsubscribe(c.ids["db"], kind=1).order_ids) == 1


def test_fee_query_failure_is_cbc_99006066(tmp_path: Path) -> None:
    scenario = Scenario(
        name="fee",
        servers=(prepaid("db"),),
        subscriptions=({"resource": "db", "paid": "100", "blockers": ["fee_query_error"]},),
    )
    with cloud(tmp_path, scenario) as c:
        for kind in (1, 2):
            refused(lambda k=kind: c.unsubscribe(c.ids["db"], kind=k), "CBC.99006066")
    assert "resume later" in HINTS["CBC.99006066"]


def test_assumption_indirect_partner_id_from_a_customer_is_cbc_0151_access_denied(
    tmp_path: Path,
) -> None:
    with cloud(tmp_path, orders_world()) as c:
        refused(lambda: c.orders(indirect_partner_id="partner-1"), "CBC.0151", 403)
        with pytest.raises(PermanentError) as info:
            c.billing()._bss.orders(indirect_partner_id="partner-1")
        assert info.value.code == "CBC.0151" and "permission" in (info.value.hint or "")


def test_an_unexpected_bss_failure_is_cbc_0999_http_500(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from teardown.sandbox import billing as ledger

    def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("ledger unavailable")

    with cloud(tmp_path, orders_world()) as c:
        monkeypatch.setattr(ledger, "set_auto_renew", broken)
        req = AutoRenewalResourcesRequest(
            resource_id=c.ids["db"], body=AutoRenewalResourcesReq(auto_renew_times=1)
        )
        refused(lambda: c.client.auto_renewal_resources(req), "CBC.0999", 500)


def test_cancelling_a_sub_order_is_cbc_99000089_assumption_the_combined_order_is_listed(
    tmp_path: Path,
) -> None:
    scenario = Scenario(
        name="combined",
        servers=(hourly("web"), hourly("api")),
        orders=(
            {"resource": "web", "type": "to_period", "amount": "120", "combined": "cart"},
            {"resource": "api", "type": "to_period", "amount": "30", "combined": "cart"},
        ),
    )
    with cloud(tmp_path, scenario) as c:
        (combined,) = c.orders(status=6)
        subs = [s.order_id for s in combined.sub_order_infos]
        assert len(subs) == 2 and Decimal(str(combined.amount_after_discount)) == Decimal(150)
        assert len(c.details(combined.order_id).order_line_items) == 2
        lock = c.server_metadata("web")["lockSourceId"]
        assert lock in subs  # the sub-order converting web locks it
        refused(lambda: c.cancel(subs[0]), "CBC.99000089")

        (pending,) = c.inventory().pending_orders()
        assert pending.order_id == combined.order_id
        assert set(pending.resource_ids) == {c.ids["web"], c.ids["api"]}
        (web,) = c.inventory().resources(server_ids=[c.ids["web"]])
        assert web.billing.pending_order_ids == (combined.order_id,)
        with pytest.raises(PermanentError) as info:
            c.billing().cancel_order(subs[0], "k")
        assert info.value.hint == HINTS["CBC.99000089"]
        c.billing().cancel_order(combined.order_id, "k2")
        assert {c.details(s).order_info.status for s in subs} == {4}


def test_cbc_99003651_means_a_transaction_in_progress_wait_and_resume() -> None:
    for text in (
        HINTS["CBC.99003651"],
        BLOCKER_CODES["transaction_in_progress"][1],
        BLOCKER_CODES["locked"][1],
    ):
        assert "transaction" in text and "10 minutes" in text and "resume" in text
        assert "support" in text and "to unlock" not in text
    assert BLOCKER_CODES["transaction_in_progress"][0] == "CBC.99003651"


def test_promotional_refusal_code_cbc_0100_is_an_assumption() -> None:
    # api_order_00019's status-code table lists no code for a promotion; CBC.0100 (invalid
    # parameter) stands in, marked as an assumption in the code and in docs/huawei-api.md.
    assert PROMOTIONAL_CODE == "CBC.0100"
    assert BLOCKER_CODES["promotional"][0] == PROMOTIONAL_CODE
    docs = Path(__file__).parent.parent / "docs" / "huawei-api.md"
    assert "test_promotional_refusal_code_cbc_0100_is_an_assumption" in docs.read_text()


# -- 4. the site -----------------------------------------------------------------------------


def test_site_selects_the_bss_endpoint_and_the_fee_table(tmp_path: Path) -> None:
    base = {"region": "ap-southeast-1", "project_id": "p", "domain_id": "d", "ak": "a", "sk": "s"}

    def profile(site: str = "cn") -> HuaweiProfile:
        return HuaweiProfile(
            region="ap-southeast-1", project_id="p", domain_id="d", ak="a", sk="s", site=site
        )

    assert profile().endpoint("bss") == "https://bss.myhuaweicloud.com"
    intl = profile("intl")
    assert intl.endpoint("bss") == "https://bss-intl.myhuaweicloud.com" == BSS_ENDPOINTS["intl"]
    assert intl.endpoint("ecs") == "https://ecs.ap-southeast-1.myhuaweicloud.com"
    with pytest.raises(ConfigError):
        profile("eu")

    path = tmp_path / "profile.toml"
    lines = "\n".join(f'{k} = "{v}"' for k, v in base.items())
    path.write_text(f'[huawei]\n{lines}\nsite = "intl"\n')
    assert load_profile(path).site == "intl"
    path.write_text(f'[huawei]\n{lines}\nsite = "mars"\n')
    with pytest.raises(ConfigError, match=r"huawei\.site"):
        load_profile(path)
    path.write_text(f"[huawei]\n{lines}\n")
    assert load_profile(path).site == "cn"

    assert fee_table_for("intl") == INTL_FEE_TABLE
    assert BillingRules.for_site("intl").fee_table == INTL_FEE_TABLE
    assert BillingRules.for_site("cn").fee_table == CN_FEE_TABLE
    with pytest.raises(ValueError):
        fee_table_for("eu")


def test_the_plans_refund_estimate_uses_the_fee_table_of_the_profiles_site(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import UTC, datetime, timedelta

    from teardown.adapters.huawei import rules
    from teardown.adapters.huawei.provider import PROVIDER
    from teardown.core.billing import Payment
    from teardown.core.model import Billing, BillingMode, DestroyAction, Kind, Resource

    now = datetime(2026, 11, 26, tzinfo=UTC)
    start = now - timedelta(days=75)
    paid = Payment(
        order_id="CS1", cash=Decimal("4200.00"), effective=start,
        expires=start + timedelta(days=365), term_months=12,
    )  # fmt: skip
    db = Resource(
        urn="huawei:ecs:db",
        type="huaweicloud:Ecs/instance:Instance",
        kind=Kind.SERVER,
        name="db",
        cloud_id="db",
        billing=Billing(mode=BillingMode.PRE_PAID, provisioned_at=start, payments=(paid,)),
    )
    # Give the Chinese site a table of its own (none is published: see the assumption below):
    # each account's estimate must follow its own site.
    monkeypatch.setitem(rules.SITE_FEE_TABLES, "cn", ())

    def fee(site: str) -> Decimal:
        account = HuaweiAccount(
            HuaweiProfile(region="r", project_id="p", domain_id="d", ak="a", sk="s", site=site)
        )
        quote, refusal = PROVIDER.estimator(account)(db, DestroyAction.UNSUBSCRIBE, now, 0)
        assert refusal is None and quote is not None
        return quote.fee

    assert fee("intl") == Decimal("420.00")  # 10% of a 1-year term (R12)
    assert fee("cn") == Decimal("0")


def test_assumption_the_chinese_fee_table_is_the_international_one() -> None:
    # No source captured the Chinese site's percentages (R12): the intl table stands in.
    assert CN_FEE_TABLE == INTL_FEE_TABLE
    assert BillingRules.for_site("cn") == BillingRules.for_site("intl")
