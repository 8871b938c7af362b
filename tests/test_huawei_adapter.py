"""The Huawei adapter, through the official SDK over HTTP, against the sandbox (fake clock).

Polling sleeps are ``rig.advance``: each poll moves sandbox time, and no test ever waits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from huaweicloudsdkecs.v2 import ListServersDetailsRequest, ShowJobRequest

from teardown.adapters.huawei import (
    CbrSnapshotter,
    Clients,
    HuaweiBilling,
    HuaweiDestroyer,
    HuaweiInventory,
    HuaweiProfile,
    call,
    load_profile,
    profile_from_env,
)
from teardown.core.errors import ConfigError, PermanentError, TransientError
from teardown.core.model import BillingMode, DestroyAction, Kind, Resource, SnapshotKind
from teardown.ports import OrderState, Presence
from teardown.sandbox.api import Endpoints
from teardown.sandbox.config import Account, Faults, SandboxConfig, decide
from teardown.sandbox.runtime import Layout, write_profile
from teardown.sandbox.scenario import Scenario, ServerSpec, load_scenario
from teardown.support.retry import RetryPolicy
from tests.sandbox_rig import SandboxRig, running_sandbox

FAST = RetryPolicy(attempts=4, initial=0.5, maximum=5)


@dataclass
class Cloud:
    """A running sandbox and the adapter's parts wired to it."""

    rig: SandboxRig
    profile: HuaweiProfile
    clients: Clients
    slept: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.rig.advance(seconds)

    def inventory(self) -> HuaweiInventory:
        return HuaweiInventory(self.clients, sleep=self.sleep)

    def snapshotter(self) -> CbrSnapshotter:
        return CbrSnapshotter(self.clients, "vault-sandbox", sleep=self.sleep)

    def destroyer(self) -> HuaweiDestroyer:
        return HuaweiDestroyer(self.clients, sleep=self.sleep)

    def billing(self) -> HuaweiBilling:
        return HuaweiBilling(self.clients, sleep=self.sleep, clock=self.rig.clock.now)

    def by_name(self) -> dict[str, Resource]:
        return {r.name: r for r in self.inventory().resources()}

    def faults(self, faults: Faults) -> None:
        self.rig.app.config = replace(self.rig.app.config, faults=faults)


def profile_for(rig: SandboxRig, account: Account | None = None) -> HuaweiProfile:
    a = account or rig.app.config.account
    return HuaweiProfile(
        region=a.region,
        project_id=a.project_id,
        domain_id=a.domain_id,
        ak=a.ak,
        sk=a.sk,
        endpoints=rig.endpoints.as_dict(),
        vault_id="vault-sandbox",
    )


def start(
    root: Path, scenario: Scenario | None, config: SandboxConfig | None = None
) -> Iterator[Cloud]:
    with running_sandbox(root, scenario, config) as rig:
        profile = profile_for(rig)
        yield Cloud(rig, profile, Clients(profile))


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Cloud]:
    yield from start(tmp_path, load_scenario("demo"))


def small(*servers: ServerSpec, subscriptions: tuple[dict[str, object], ...] = ()) -> Scenario:
    return Scenario(name="adapter-test", servers=servers, subscriptions=subscriptions)


# -- profile ---------------------------------------------------------------------------------


def test_profile_written_by_sandbox_up_loads_with_the_sandbox_vault(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    config = SandboxConfig()
    endpoints = Endpoints(
        ecs="http://127.0.0.1:1", evs="http://127.0.0.1:2", cbr="http://127.0.0.1:3",
        bss="http://127.0.0.1:4",
    )  # fmt: skip
    write_profile(layout, config, endpoints, pid=123)

    profile = load_profile(layout.profile)

    assert profile.ak == config.account.ak
    assert profile.project_id == config.account.project_id
    assert profile.endpoint("bss") == "http://127.0.0.1:4"
    assert profile.vault_id == "vault-sandbox"
    assert profile.ssh_user == "root"
    assert profile.known_hosts == str(layout.known_hosts)
    assert config.account.sk not in repr(profile)


def test_real_endpoints_derive_from_the_region() -> None:
    p = HuaweiProfile("cn-north-4", "p", "d", "ak", "sk")

    assert p.endpoint("ecs") == "https://ecs.cn-north-4.myhuaweicloud.com"
    assert p.endpoint("cbr") == "https://cbr.cn-north-4.myhuaweicloud.com"
    assert p.endpoint("bss") == "https://bss.myhuaweicloud.com"


HEAD = '[huawei]\nregion="r"\nproject_id="p"\ndomain_id="d"\n'
SK = 'sk="SECRET-SK"\n'


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (f"{HEAD}{SK}", "huawei.ak: missing"),
        (f'{HEAD}ak="a"\nsk=42\n', "huawei.sk: must be"),
        (f'{HEAD}ak="a"\n{SK}[huawei.endpoints]\necs="http://x"\n', "endpoints.evs: missing"),
        (f'{HEAD}ak="a"\n{SK}x=1\n', "huawei.x: unknown key"),
        ('[huawei]\nsk = "SECRET-SK\n', "not valid TOML"),
        ("[ssh]\nuser='root'\n", "huawei: missing"),
    ],
)  # fmt: skip
def test_profile_errors_name_the_key_and_never_the_secret(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "profile.toml"
    path.write_text(text)

    with pytest.raises(ConfigError) as info:
        load_profile(path)

    assert info.value.source == str(path)
    assert problem in info.value.problem
    assert "SECRET-SK" not in str(info.value)
    assert "\n" not in str(info.value)


def test_profile_from_env_reads_the_sdk_and_pulumi_names() -> None:
    pulumi = {
        "HW_ACCESS_KEY": "AK1",
        "HW_SECRET_KEY": "SK1",
        "HW_REGION_NAME": "cn-south-1",
        "HW_PROJECT_ID": "proj",
        "HW_DOMAIN_ID": "dom",
    }
    p = profile_from_env(pulumi)
    assert p is not None
    assert (p.ak, p.sk, p.region, p.project_id, p.domain_id) == (
        "AK1", "SK1", "cn-south-1", "proj", "dom",
    )  # fmt: skip
    sdk = profile_from_env({**pulumi, "HUAWEICLOUD_SDK_AK": "AK2", "HUAWEICLOUD_SDK_SK": "SK2"})
    assert sdk is not None and (sdk.ak, sdk.sk) == ("AK2", "SK2")
    assert profile_from_env({"PATH": "/bin"}) is None
    with pytest.raises(ConfigError, match="HW_PROJECT_ID"):
        profile_from_env({k: v for k, v in pulumi.items() if k != "HW_PROJECT_ID"})


# -- inventory -------------------------------------------------------------------------------


def test_demo_inventory_reads_servers_disks_and_billing(demo: Cloud) -> None:
    resources = demo.inventory().resources(tags=[("app", "shop")])
    names = [r.name for r in resources]
    r = {x.name: x for x in resources}
    ids = demo.rig.ids
    now = demo.rig.clock.now()

    assert set(names) == {
        "web-1", "121.36.87.11", "db-1", "db-data", "db-logs", "cache-1", "promo-1", "legacy-1",
    }  # fmt: skip
    assert len(names) == len(set(names))  # nothing listed twice
    # Each separately bought disk and the EIP are listed right after their server.
    assert names.index("db-data") == names.index("db-1") + 1
    assert names.index("db-logs") == names.index("db-data") + 1
    assert names.index("121.36.87.11") == names.index("web-1") + 1

    web = r["web-1"]
    assert web.urn == f"cloud:huawei:ecs:{ids['web-1']}"
    assert web.kind is Kind.SERVER and web.type == "huaweicloud:Ecs/instance:Instance"
    assert web.billing.mode is BillingMode.POST_PAID
    assert [(d.system, d.bound, d.size_gb) for d in web.disks] == [(True, True, 40)]
    assert ("role", "web") in web.tags and list(web.tags) == sorted(web.tags)
    assert {(a.ip, a.public) for a in web.addresses} == {
        ("192.168.0.11", False),
        ("121.36.87.11", True),
    }

    db = r["db-1"]
    b = db.billing
    assert b.mode is BillingMode.PRE_PAID and b.order_id
    assert b.expires_at is not None
    assert timedelta(days=285) < b.expires_at - now < timedelta(days=295)
    assert b.auto_renew and b.expire_policy == 3
    assert b.is_main and b.children == (ids["db-1-sys"],)
    assert b.provisioned_at == now - timedelta(days=75)
    assert len(b.payments) == 1
    pay = b.payments[0]
    assert (pay.cash, pay.discount_coupon, pay.term_months) == (
        Decimal("4200.00"), Decimal("480.00"), 12,
    )  # fmt: skip
    disks = {d.id: d for d in db.disks}
    assert disks[ids["db-1-sys"]].system and disks[ids["db-1-sys"]].bound
    assert disks[ids["db-data"]].bound is False and disks[ids["db-data"]].size_gb == 200
    assert disks[ids["db-logs"]].bound is False and disks[ids["db-logs"]].size_gb == 100
    assert set(disks) == {ids["db-1-sys"], ids["db-data"], ids["db-logs"]}

    data = r["db-data"]
    assert data.urn == f"cloud:huawei:evs:{ids['db-data']}"
    assert data.kind is Kind.VOLUME and data.type == "huaweicloud:Evs/volume:Volume"
    assert data.parent == db.urn
    assert data.billing.mode is BillingMode.PRE_PAID
    assert data.billing.order_id != b.order_id
    assert data.billing.payments[0].cash == Decimal("1260.00")

    logs = r["db-logs"]  # bought separately, pay-per-use: bills by the hour until deleted
    assert logs.urn == f"cloud:huawei:evs:{ids['db-logs']}"
    assert logs.kind is Kind.VOLUME and logs.parent == db.urn
    assert logs.billing.mode is BillingMode.POST_PAID and not logs.billing.payments

    eip = r["121.36.87.11"]  # web-1's public IP: an EIP that bills on its own until released
    assert eip.urn == f"cloud:huawei:eip:{ids['web-1-eip']}" and eip.cloud_id == ids["web-1-eip"]
    assert eip.kind is Kind.ADDRESS and eip.type == "huaweicloud:Vpc/eip:Eip"
    assert eip.parent == web.urn
    assert eip.billing.mode is BillingMode.POST_PAID

    cache = r["cache-1"].billing
    assert cache.provisioned_at == now - timedelta(days=2)
    assert not cache.auto_renew
    assert cache.payments[0].cash_coupon == Decimal("20.00")
    assert cache.payments[0].term_months == 1

    promo = r["promo-1"].billing  # bought at a promotional discount (discount type 200)
    assert promo.mode is BillingMode.PRE_PAID and not promo.auto_renew
    assert promo.provisioned_at == now - timedelta(days=10)
    assert [p.promotion for p in promo.payments] == [True]
    assert promo.payments[0].cash == Decimal("59.00") and promo.payments[0].term_months == 1
    assert not r["db-1"].billing.payments[0].promotion

    legacy = r["legacy-1"].billing  # held by an order in progress: unsubscribe is refused
    assert legacy.mode is BillingMode.PRE_PAID and legacy.locked
    assert legacy.lock_order_id == legacy.order_id
    assert legacy.auto_renew and legacy.expire_policy == 3
    assert legacy.payments[0].cash == Decimal("2400.00") and legacy.payments[0].term_months == 12
    assert not b.locked and not cache.locked


def test_inventory_by_server_id_and_by_tag(demo: Cloud) -> None:
    inv = demo.inventory()
    ids = demo.rig.ids

    by_id = inv.resources(server_ids=[ids["web-1"], "no-such-server"])
    by_tag = inv.resources(tags=[("role", "cache")])
    both = inv.resources(server_ids=[ids["web-1"], ids["cache-1"]], tags=[("role", "web")])

    # web-1's EIP comes with its server (it is released after the server is deleted).
    assert [r.name for r in by_id] == ["web-1", "121.36.87.11"]
    assert [r.name for r in by_tag] == ["cache-1"]
    assert [r.name for r in both] == ["web-1", "121.36.87.11"]
    assert by_id[1].parent == by_id[0].urn


def test_pending_orders_lists_the_unpaid_order(demo: Cloud) -> None:
    ledger = demo.rig.store.conn.execute(
        "SELECT id, amount_after_discount FROM orders WHERE status=6"
    ).fetchall()

    orders = demo.inventory().pending_orders()

    assert [(o.order_id, o.amount) for o in orders] == [
        (row[0], Decimal(row[1]).quantize(Decimal("0.01"))) for row in ledger
    ]
    o = orders[0]
    assert o.amount == Decimal("299.00")
    assert o.created == demo.rig.clock.now() - timedelta(days=1)
    assert o.pay_by == o.created + timedelta(days=7)


def test_a_pending_renewal_order_is_attached_to_its_resource(tmp_path: Path) -> None:
    scenario = Scenario(
        name="pending-renewal",
        servers=(ServerSpec(name="db", charging="prePaid", provisioned_days_ago=30),),
        subscriptions=({"resource": "db", "period": "month", "paid": "100"},),
        orders=({"resource": "db", "type": "renew", "amount": "100"},),
    )
    for cloud in start(tmp_path, scenario):
        (db,) = cloud.inventory().resources()
        (pending,) = cloud.inventory().pending_orders()
        # Found by ListPayPerUseCustomerResources(order_id=): the server and its bound disk.
        ids = cloud.rig.ids
        assert pending.resource_ids == (ids["db"], ids["db-sys"])
        assert db.billing.pending_order_ids == (pending.order_id,)


# -- backups ---------------------------------------------------------------------------------


def test_cbr_backup_is_verified_and_found_by_its_key(demo: Cloud) -> None:
    web = demo.by_name()["web-1"]
    snap = demo.snapshotter()

    ref = snap.create(web, SnapshotKind.CBR, "run1-snapshot-web-1")
    art = snap.wait(web, ref)

    assert art.verified and art.survives_destroy
    assert (art.kind, art.ref) == ("cbr", ref)
    assert art.size == 40 * 2**30
    assert "1 backups available" in art.detail
    assert demo.slept  # the poll moved sandbox time instead of waiting
    assert snap.find(web, SnapshotKind.CBR, "run1-snapshot-web-1") == ref
    assert snap.find(web, SnapshotKind.CBR, "another-key") is None


def test_cbr_backup_with_snapshot_error_is_not_verified(demo: Cloud) -> None:
    web = demo.by_name()["web-1"]
    demo.faults(Faults(snapshot_error=(demo.rig.ids["web-1"],)))
    snap = demo.snapshotter()

    art = snap.wait(web, snap.create(web, SnapshotKind.CBR, "k"))

    assert not art.verified
    assert "error" in art.detail


def test_evs_snapshot_of_a_kept_disk_does_not_survive_destroy(demo: Cloud) -> None:
    data = demo.by_name()["db-data"]
    snap = demo.snapshotter()

    ref = snap.create(data, SnapshotKind.EVS, "keep-db-data")
    art = snap.wait(data, ref)

    assert art.verified and not art.survives_destroy and art.kind == "evs"
    assert art.size == 200 * 2**30
    assert snap.find(data, SnapshotKind.EVS, "keep-db-data") == ref


def test_image_backups_are_refused(demo: Cloud) -> None:
    web = demo.by_name()["web-1"]

    with pytest.raises(PermanentError, match="image backups are not supported yet"):
        demo.snapshotter().create(web, SnapshotKind.IMAGE, "k")


# -- destroy ---------------------------------------------------------------------------------


def test_delete_web_server_waits_for_its_job(demo: Cloud) -> None:
    web = demo.by_name()["web-1"]
    d = demo.destroyer()
    assert d.presence(web) is Presence.EXISTS

    result = d.destroy(web, DestroyAction.DELETE, "run1-destroy-web-1")

    assert result.presence is Presence.GONE and result.job_id
    job = call(
        "ecs.ShowJob",
        lambda: demo.clients.ecs.show_job(ShowJobRequest(job_id=result.job_id)),
        idempotent=True,
    )
    assert job.status == "SUCCESS"
    assert d.presence(web) is Presence.GONE
    assert "web-1" not in demo.by_name()


def test_a_failed_delete_job_is_a_permanent_error(demo: Cloud) -> None:
    web = demo.by_name()["web-1"]
    demo.faults(Faults(failing_jobs=(demo.rig.ids["web-1"],)))

    with pytest.raises(PermanentError, match="injected failure") as info:
        demo.destroyer().destroy(web, DestroyAction.DELETE, "k")

    assert info.value.code == "Ecs.0501"
    assert demo.destroyer().presence(web) is Presence.EXISTS


def test_deleting_a_prepaid_server_is_refused_with_a_hint(demo: Cloud) -> None:
    db = demo.by_name()["db-1"]

    with pytest.raises(PermanentError) as info:
        demo.destroyer().destroy(db, DestroyAction.DELETE, "k")

    assert info.value.code == "Ecs.0513"
    assert info.value.hint is not None and "unsubscribe" in info.value.hint


def test_pulumi_and_keep_actions_are_not_this_adapters_job(demo: Cloud) -> None:
    web = demo.by_name()["web-1"]
    for action in (DestroyAction.PULUMI, DestroyAction.KEEP, DestroyAction.KEEP_TO_EXPIRY):
        with pytest.raises(PermanentError):
            demo.destroyer().destroy(web, action, "k")


def test_unsubscribing_db_leaves_its_separately_bought_disk_billing(demo: Cloud) -> None:
    r = demo.by_name()
    db, data = r["db-1"], r["db-data"]
    d = demo.destroyer()

    result = d.destroy(db, DestroyAction.UNSUBSCRIBE, "run1-destroy-db-1")

    assert result.presence is Presence.GONE and len(result.order_ids) == 1
    assert d.presence(db) is Presence.GONE
    assert d.presence(data) is Presence.EXISTS
    after = demo.by_name()
    assert "db-1" not in after and "db-data" not in after  # the disk is detached now
    billing = demo.billing()
    assert billing.auto_renew(data)  # still subscribed, still renewing
    sub = demo.rig.store.conn.execute(
        "SELECT status FROM subscriptions WHERE resource_id=?", (demo.rig.ids["db-data"],)
    ).fetchone()
    assert sub[0] == 2  # in use: still billing


def test_refund_matches_the_ledger_to_the_cent(demo: Cloud) -> None:
    db = demo.by_name()["db-1"]
    result = demo.destroyer().destroy(db, DestroyAction.UNSUBSCRIBE, "k")
    row = demo.rig.store.conn.execute(
        "SELECT id, amount_after_discount, commission, consumed FROM orders "
        "WHERE order_type=4 AND base_order_id=?",
        (db.billing.order_id,),
    ).fetchone()

    record = demo.billing().refund(db, result.order_ids)
    found = demo.billing().refund(db, ())

    assert record.order_ids == (row[0],) == result.order_ids
    assert (record.refund, record.fee, record.consumed) == (
        Decimal(row[1]), Decimal(row[2]), Decimal(row[3]),
    )  # fmt: skip
    assert record.refund > 0 and record.fee > 0 and record.consumed > 0  # an ordinary refund
    assert record.currency == "CNY"
    assert found == record


def test_unsubscribing_a_server_in_a_pending_order_says_cancel_it_first(tmp_path: Path) -> None:
    scenario = Scenario(
        name="blocked",
        servers=(ServerSpec(name="db", charging="prePaid"),),
        subscriptions=({"resource": "db", "paid": "100"},),
        orders=({"resource": "db", "type": "renew", "amount": "100"},),
    )
    for cloud in start(tmp_path, scenario):
        (db,) = cloud.inventory().resources()
        with pytest.raises(PermanentError) as info:
            cloud.destroyer().destroy(db, DestroyAction.UNSUBSCRIBE, "k")
        assert info.value.code == "CBC.99003100"
        assert "cancel that order first" in str(info.value)

        (order,) = db.billing.pending_order_ids
        cloud.billing().cancel_order(order, "k2")
        result = cloud.destroyer().destroy(db, DestroyAction.UNSUBSCRIBE, "k3")
        assert result.presence is Presence.GONE


# -- billing ---------------------------------------------------------------------------------


def test_cancelling_the_pending_order(demo: Cloud) -> None:
    billing = demo.billing()
    (order,) = demo.inventory().pending_orders()
    assert billing.order_state(order.order_id) is OrderState.PENDING_PAYMENT

    billing.cancel_order(order.order_id, "run1-cancel")

    assert billing.order_state(order.order_id) is OrderState.CANCELLED
    assert billing.order_state("CS0000000000NONE") is OrderState.NOT_FOUND
    with pytest.raises(PermanentError) as info:
        billing.cancel_order(order.order_id, "again")
    assert info.value.code == "CBC.99005010"
    assert demo.inventory().pending_orders() == []


def test_cancel_auto_renew_twice_is_a_no_op_the_second_time(demo: Cloud) -> None:
    db = demo.by_name()["db-1"]
    billing = demo.billing()
    assert billing.auto_renew(db)

    billing.cancel_auto_renew(db, "k")
    billing.cancel_auto_renew(db, "k")

    assert not billing.auto_renew(db)
    assert demo.rig.calls("bss.CancelAutoRenewalResources") == [
        ("bss.CancelAutoRenewalResources", 200),
        ("bss.CancelAutoRenewalResources", 400),
    ]


def test_unsubscribing_renewals_keeps_the_server_to_expiry(tmp_path: Path) -> None:
    scenario = small(
        ServerSpec(name="db", charging="prePaid", provisioned_days_ago=10),
        subscriptions=(
            {
                "resource": "db",
                "period": "month",
                "paid": "100",
                "renewals": [{"period": "month", "paid": "100"}],
            },
        ),
    )
    for cloud in start(tmp_path, scenario):
        (db,) = cloud.inventory().resources()
        billing = cloud.billing()
        assert billing.renewals_pending(db)

        orders = billing.unsubscribe_renewals(db, "k")

        assert len(orders) == 1
        assert not billing.renewals_pending(db)
        assert cloud.destroyer().presence(db) is Presence.EXISTS
        record = billing.refund(db, orders)
        assert (record.refund, record.fee, record.consumed) == (
            Decimal("100.00"),
            Decimal(0),
            Decimal(0),
        )
        # Nothing left to unsubscribe: Huawei's CBC.99003128 is success, and no order.
        cancels = cloud.rig.calls("bss.CancelResourcesSubscription")
        assert billing.unsubscribe_renewals(db, "k") == ()
        assert cloud.rig.calls("bss.CancelResourcesSubscription") == [
            *cancels,
            ("bss.CancelResourcesSubscription", 400),  # CBC.99003128, taken as done
        ]
        assert not billing.renewals_pending(db)
        assert cloud.destroyer().presence(db) is Presence.EXISTS  # still kept to its expiry


# -- errors ----------------------------------------------------------------------------------


def _burst_seed(operation: str, rate: float) -> int:
    """A seed whose first two calls of ``operation`` are faulted and the third is not."""
    for seed in range(10_000):
        if [decide(seed, operation, n, rate) for n in (1, 2, 3)] == [True, True, False]:
            return seed
    raise AssertionError("no seed found")  # pragma: no cover


def test_throttling_and_server_errors_are_retried_and_a_400_is_not(demo: Cloud) -> None:
    ids = demo.rig.ids

    # A burst of two 429s, then success: retried inside the read, sleeping between attempts.
    seed = _burst_seed("throttle:ecs.ListServersDetails", 0.5)
    demo.faults(Faults(seed=seed, throttle={"ecs.ListServersDetails": 0.5}))
    slept: list[float] = []
    inv = HuaweiInventory(demo.clients, sleep=slept.append)
    assert [r.name for r in inv.resources(server_ids=[ids["web-1"]])] == ["web-1", "121.36.87.11"]
    assert demo.rig.calls("ecs.ListServersDetails") == [
        ("ecs.ListServersDetails", 429),
        ("ecs.ListServersDetails", 429),
        ("ecs.ListServersDetails", 200),
    ]
    assert len(slept) == 2

    # A 500 on every call: four attempts, then a TransientError.
    demo.faults(Faults(server_error={"ecs.ShowServer": 1.0}))
    slept.clear()
    web = demo.by_name()["web-1"]
    with pytest.raises(TransientError) as info:
        HuaweiDestroyer(demo.clients, sleep=slept.append).presence(web)
    assert "ecs.ShowServer failed: HTTP 500" in str(info.value)
    assert [s for _, s in demo.rig.calls("ecs.ShowServer")] == [500] * 4
    assert len(slept) == 3

    # Throttled mutating calls are not retried here (the runner reconciles first).
    demo.faults(Faults(throttle={"bss.CancelCustomerOrder": 1.0}))
    with pytest.raises(TransientError):
        demo.billing().cancel_order("CS0000000000NONE", "k")
    assert len(demo.rig.calls("bss.CancelCustomerOrder")) == 1

    # A 400 on a read: permanent at once, no retry, no sleep.
    demo.faults(Faults())
    slept.clear()
    with pytest.raises(PermanentError) as bad:
        call(
            "ecs.ListServersDetails",
            lambda: demo.clients.ecs.list_servers_details(ListServersDetailsRequest(limit=5000)),
            idempotent=True,
            retry=FAST,
            sleep=slept.append,
        )
    assert bad.value.code == "Ecs.0005"
    assert demo.rig.calls("ecs.ListServersDetails")[-1] == ("ecs.ListServersDetails", 400)
    assert slept == []


def test_credentials_never_appear_in_errors_or_repr(demo: Cloud) -> None:
    good = demo.profile
    wrong = replace(good, sk="WRONG-SECRET-" + hashlib.sha256(b"x").hexdigest()[:12])
    clients = Clients(wrong)

    with pytest.raises(PermanentError) as info:
        HuaweiInventory(clients, sleep=demo.sleep).resources()

    text = f"{info.value} {info.value!r} {info.value.hint}"
    assert info.value.code == "APIGW.0301"
    assert "check the AK/SK and project id in the profile" in text
    for secret in (wrong.sk, good.sk):
        assert secret not in text
        assert secret not in repr(wrong) and secret not in repr(clients)
        assert secret not in repr(good)


def test_an_unreachable_endpoint_is_transient(demo: Cloud) -> None:
    endpoints = {**demo.profile.endpoints, "ecs": "http://127.0.0.1:9"}
    clients = Clients(replace(demo.profile, endpoints=endpoints), timeout=(2.0, 2.0))
    slept: list[float] = []

    with pytest.raises(TransientError, match=r"ecs\.ListServersDetails"):
        HuaweiInventory(clients, sleep=slept.append).resources()

    assert len(slept) == 3
