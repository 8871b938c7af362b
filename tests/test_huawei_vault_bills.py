"""The Huawei adapter's backup vault, expiry policy, renewals and account-wide bills, through the
official SDK over HTTP against the sandbox (fake clock; polling sleeps move sandbox time).

The key test: ``HuaweiInventory.bills()`` lists every billing thing the sandbox's own ledger
(``still_billing``) lists, matched by cloud id.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from huaweicloudsdkbss.v2 import PeriodToOnDemandReq, UpdatePeriodToOnDemandRequest
from huaweicloudsdkcbr.v1 import ListBackupsRequest, ShowVaultRequest

from teardown.adapters.huawei import CbrSnapshotter, Clients, HuaweiBilling, HuaweiInventory
from teardown.adapters.huawei._parse import parse_time
from teardown.adapters.huawei.bills import expiry_outcome, kind_of
from teardown.adapters.huawei.profile import HuaweiProfile
from teardown.core.errors import PermanentError
from teardown.core.model import Resource, SnapshotKind
from teardown.sandbox.billing import still_billing
from teardown.sandbox.scenario import (
    DiskSpec,
    Scenario,
    ServerSpec,
    VaultSpec,
    VolumeSpec,
    load_scenario,
)
from teardown.sandbox.store import advance, parse_ts
from tests.sandbox_rig import SandboxRig, bss, cbr, running_sandbox

VAULT, DISK_VAULT = "vault-sandbox", "vault-sandbox-disk"


@dataclass
class Cloud:
    rig: SandboxRig
    clients: Clients

    def sleep(self, seconds: float) -> None:
        self.rig.advance(seconds)

    def snapshotter(self, vault_id: str = VAULT, **options: Any) -> CbrSnapshotter:
        return CbrSnapshotter(self.clients, vault_id, sleep=self.sleep, **options)

    def billing(self) -> HuaweiBilling:
        return HuaweiBilling(self.clients, sleep=self.sleep, clock=self.rig.clock.now)

    def inventory(self) -> HuaweiInventory:
        return HuaweiInventory(self.clients, sleep=self.sleep)

    def by_name(self) -> dict[str, Resource]:
        return {r.name: r for r in self.inventory().resources()}

    def ledger(self) -> list[dict[str, Any]]:
        with self.rig.store.tx() as conn:
            advance(conn, self.rig.clock.now())
            return still_billing(conn, self.rig.clock.now())

    def calls(self) -> list[str]:
        return [op for op, status in self.rig.calls() if status < 400]


def connect(rig: SandboxRig) -> Cloud:
    a = rig.app.config.account
    profile = HuaweiProfile(
        region=a.region,
        project_id=a.project_id,
        domain_id=a.domain_id,
        ak=a.ak,
        sk=a.sk,
        endpoints=rig.endpoints.as_dict(),
        vault_id=VAULT,
    )
    return Cloud(rig, Clients(profile))


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Cloud]:
    with running_sandbox(tmp_path, load_scenario("demo")) as rig:
        yield connect(rig)


def small(*vaults: VaultSpec, subs: tuple[dict[str, Any], ...] = ()) -> Scenario:
    """A 40 GB pay-per-use server, a 40 GB prepaid one, a loose 20 GB disk, and ``vaults``."""
    return Scenario(
        name="vault-bills",
        servers=(
            ServerSpec(name="web", system_disk=DiskSpec(size=40)),
            ServerSpec(name="db", charging="prePaid", system_disk=DiskSpec(size=40)),
        ),
        volumes=(VolumeSpec(name="loose", disk=DiskSpec(size=20)),),
        subscriptions=subs or ({"resource": "db", "paid": "100"},),
        vaults=vaults,
    )


def backups(cloud: Cloud, **filters: Any) -> list[Any]:
    return list(cbr(cloud.rig).list_backups(ListBackupsRequest(**filters)).backups)


# -- the vault -------------------------------------------------------------------------------


def test_the_resource_is_added_to_the_vault_before_its_checkpoint(demo: Cloud) -> None:
    web = demo.by_name()["web-1"]
    snap = demo.snapshotter()
    assert demo.rig.ids["web-1"] not in {
        r.id for r in cbr(demo.rig).show_vault(ShowVaultRequest(vault_id=VAULT)).vault.resources
    }

    ref = snap.create(web, SnapshotKind.CBR, "run1-snapshot-web-1")

    calls = demo.calls()
    assert calls.index("cbr.AddVaultResource") < calls.index("cbr.CreateCheckpoint")
    assert snap.wait(web, ref).verified
    vault = cbr(demo.rig).show_vault(ShowVaultRequest(vault_id=VAULT)).vault
    assert [r.id for r in vault.resources] == [demo.rig.ids["web-1"]]
    again = snap.create(web, SnapshotKind.CBR, "run2-snapshot-web-1")  # bound: not added twice
    assert demo.calls().count("cbr.AddVaultResource") == 1
    assert snap.wait(web, again).verified


def test_retention_is_sent_and_visible_as_each_backups_expiry(demo: Cloud) -> None:
    web = demo.by_name()["web-1"]
    snap = demo.snapshotter()

    art = snap.wait(web, snap.create(web, SnapshotKind.CBR, "k", retention_days=14))

    (backup,) = backups(demo, checkpoint_id=art.ref)
    assert parse_time(backup.expired_at) == utc(backup.created_at) + timedelta(days=14)
    kept = snap.wait(web, snap.create(web, SnapshotKind.CBR, "k2"))
    (forever,) = backups(demo, checkpoint_id=kept.ref)
    assert forever.expired_at is None  # 0: kept until someone deletes it
    for days in (-1, 36501):
        with pytest.raises(PermanentError, match="retention_days must be 0"):
            snap.create(web, SnapshotKind.CBR, "k3", retention_days=days)


def test_vaults_report_used_gb_that_grows_after_a_backup(demo: Cloud) -> None:
    snap = demo.snapshotter()
    before = snap.vaults()
    assert [(v.id, v.name, v.object_type) for v in before] == [
        (VAULT, "shop-server-backups", "server"),
        ("vault-sandbox-disk", "shop-disk-backups", "disk"),  # the project's one disk vault
    ]
    assert (before[0].used_gb, before[0].capacity_gb, before[0].charging) == (
        0.0,
        2000.0,
        "storage",
    )
    # 40 GB system disk + the attached 200 GB db-data + the attached 100 GB db-logs
    db = demo.by_name()["db-1"]
    assert sorted(d.size_gb or 0 for d in db.disks) == [40, 100, 200]

    snap.wait(db, snap.create(db, SnapshotKind.CBR, "k"))

    after = snap.vaults()
    assert after[0].used_gb == 40 + 200 + 100
    assert after[1].used_gb == 0.0  # the whole-server backup holds the disks: none of their own
    assert CbrSnapshotter(demo.clients, "").vaults() == []


def test_a_full_vault_is_refused_clearly_before_any_backup(tmp_path: Path) -> None:
    scenario = small(VaultSpec(id=VAULT, name="tiny", capacity_gb=60, auto_bind=False))
    with running_sandbox(tmp_path, scenario) as rig:
        cloud = connect(rig)
        r = cloud.by_name()
        snap = cloud.snapshotter()
        assert snap.wait(r["web"], snap.create(r["web"], SnapshotKind.CBR, "k1")).verified

        # 40 GB used of 60: CBR refuses the second 40 GB backup (BackupService.6114)
        with pytest.raises(PermanentError) as info:
            snap.create(r["db"], SnapshotKind.CBR, "k2")
        assert "vault tiny (vault-sandbox) has no room for the backup of db" in str(info.value)
        assert "40.0 GB used of 60 GB" in str(info.value)
        assert info.value.code == "BackupService.6114"
        assert len(backups(cloud)) == 1

        # full: refused before anything is sent
        rig.app.store.conn.execute("UPDATE vault_billing SET size_gb=40 WHERE vault_id=?", (VAULT,))
        sent = len(cloud.calls())
        with pytest.raises(PermanentError, match=r"40\.0 GB used of 40 GB"):
            snap.create(r["web"], SnapshotKind.CBR, "k3")
        assert cloud.calls()[sent:] == ["cbr.ShowVault"]
        assert len(backups(cloud)) == 1


def test_a_vault_of_the_other_object_type_is_refused_clearly(tmp_path: Path) -> None:
    scenario = small(
        VaultSpec(id=VAULT, auto_bind=False),
        VaultSpec(id=DISK_VAULT, object_type="disk", auto_bind=False),
    )
    with running_sandbox(tmp_path, scenario) as rig:
        cloud = connect(rig)
        web = cloud.by_name()["web"]
        with pytest.raises(PermanentError, match="needs a server backup vault, but vault") as info:
            cloud.snapshotter(DISK_VAULT).create(web, SnapshotKind.CBR, "k")
        assert "backs up disk" in str(info.value)
        loose = Resource(
            urn="cloud:huawei:evs:" + rig.ids["loose"],
            type="huaweicloud:Evs/volume:Volume",
            kind=web.kind.VOLUME,
            name="loose",
            cloud_id=rig.ids["loose"],
        )
        with pytest.raises(PermanentError, match="needs a disk backup vault"):
            cloud.snapshotter(disk_vault_id=VAULT).create(loose, SnapshotKind.CBR, "k")
        assert backups(cloud) == [] and "cbr.AddVaultResource" not in cloud.calls()


def test_a_disk_backup_goes_to_the_projects_one_disk_vault(demo: Cloud) -> None:
    data = demo.by_name()["db-data"]
    snap = demo.snapshotter()

    art = snap.wait(data, snap.create(data, SnapshotKind.CBR, "k"))

    assert art.verified
    (backup,) = backups(demo, checkpoint_id=art.ref)
    assert backup.vault_id == DISK_VAULT
    assert snap.find(data, SnapshotKind.CBR, "k") == art.ref


def test_a_disk_backup_without_a_single_disk_vault_is_refused(tmp_path: Path) -> None:
    scenario = small(
        VaultSpec(id=VAULT),
        VaultSpec(id="d1", object_type="disk"),
        VaultSpec(id="d2", object_type="disk"),
    )
    with running_sandbox(tmp_path, scenario) as rig:
        cloud = connect(rig)
        loose = Resource(
            urn="cloud:huawei:evs:x",
            type="huaweicloud:Evs/volume:Volume",
            kind=cloud.by_name()["web"].kind.VOLUME,
            name="loose",
            cloud_id=rig.ids["loose"],
        )
        with pytest.raises(
            PermanentError, match=r"2 disk vaults \(sandbox \(d1\), sandbox \(d2\)\)"
        ):
            cloud.snapshotter().create(loose, SnapshotKind.CBR, "k")
        assert cloud.snapshotter(disk_vault_id="d2").create(loose, SnapshotKind.CBR, "k")


# -- renewals and the expiry policy ------------------------------------------------------------


def test_unsubscribing_renewals_when_none_is_pending_returns_no_order(demo: Cloud) -> None:
    cache = demo.by_name()["cache-1"]
    billing = demo.billing()

    assert billing.unsubscribe_renewals(cache, "k") == ()  # CBC.99003128 is success
    assert billing.renewals_pending(cache) is False
    assert ("bss.CancelResourcesSubscription", 400) in demo.rig.calls()


def test_keep_from_pay_per_use_flips_expire_policy_1_to_0_and_is_idempotent(
    tmp_path: Path,
) -> None:
    scenario = small(subs=({"resource": "db", "paid": "100", "expire_policy": "to_pay_per_use"},))
    with running_sandbox(tmp_path, scenario) as rig:
        cloud = connect(rig)
        db, web = cloud.by_name()["db"], cloud.by_name()["web"]
        billing = cloud.billing()
        assert billing.expire_policy(db) == 1
        assert billing.expire_policy(web) is None  # pay-per-use: BSS does not know it

        billing.keep_from_pay_per_use(db, "k")
        billing.keep_from_pay_per_use(db, "k")

        assert billing.expire_policy(db) == 0
        assert cloud.calls().count("bss.UpdatePeriodToOnDemand") == 1
        billing.keep_from_pay_per_use(web, "k")  # nothing to cancel
        assert cloud.calls().count("bss.UpdatePeriodToOnDemand") == 1


def test_keep_from_pay_per_use_in_the_grace_period_is_refused_with_the_code(
    tmp_path: Path,
) -> None:
    scenario = small(subs=({"resource": "db", "expire_policy": "to_pay_per_use"},))
    with running_sandbox(tmp_path, scenario) as rig:
        cloud = connect(rig)
        db = cloud.by_name()["db"]
        rig.advance(timedelta(days=35).total_seconds())  # one month bought a day ago: expired
        with pytest.raises(PermanentError, match="still switches to pay-per-use") as info:
            cloud.billing().keep_from_pay_per_use(db, "k")
        assert info.value.code == "CBC.99003610"


# -- bills -------------------------------------------------------------------------------------


def ledger_by_id(cloud: Cloud) -> dict[str, dict[str, Any]]:
    return {b["resource_id"]: b for b in cloud.ledger()}


def bills_by_id(cloud: Cloud) -> dict[str, Any]:
    items = cloud.inventory().bills()
    by_id = {b.resource_id: b for b in items}
    assert len(by_id) == len(items)  # nothing listed twice
    return by_id


def test_bills_list_every_billing_thing_the_sandbox_ledger_lists(demo: Cloud) -> None:
    r = demo.by_name()
    snap = demo.snapshotter()
    snap.wait(r["web-1"], snap.create(r["web-1"], SnapshotKind.CBR, "k1", retention_days=7))
    snap.wait(r["db-data"], snap.create(r["db-data"], SnapshotKind.CBR, "k2"))
    body = PeriodToOnDemandReq(operation="SET_UP", resource_ids=[demo.rig.ids["cache-1"]])
    bss(demo.rig).update_period_to_on_demand(UpdatePeriodToOnDemandRequest(body=body))

    ledger = ledger_by_id(demo)
    bills = bills_by_id(demo)

    assert set(bills) == set(ledger)
    kinds = {"pending_order": "order"}
    for rid, entry in ledger.items():
        item = bills[rid]
        assert item.kind == kinds.get(entry["kind"], entry["kind"]), rid
        assert item.charging == entry["charging"], rid
        assert item.hourly_price is None and item.monthly_price is None  # no prices in the APIs
    prepaid = {rid for rid, e in ledger.items() if e["charging"] == "prepaid"}
    names = ("db-1", "db-data", "cache-1", "promo-1", "legacy-1")
    assert prepaid == {demo.rig.ids[n] for n in names}
    hourly = {rid for rid, e in ledger.items() if e["charging"] == "hourly"}
    by_hour = ("web-1", "web-1-sys", "web-1-eip", "db-logs")  # pay-per-use server, disks, EIP
    assert hourly == {demo.rig.ids[n] for n in by_hour}
    storage = {rid for rid, e in ledger.items() if e["charging"] == "storage"}
    assert storage == {VAULT, DISK_VAULT}
    assert bills[demo.rig.ids["web-1-eip"]].kind == "eip"
    for rid in prepaid:
        assert bills[rid].expire_policy == ledger[rid]["expire_policy"]
        assert bills[rid].auto_renew == ledger[rid]["auto_renew"]
        assert bills[rid].expires_at == parse_ts(ledger[rid]["expire_time"])
    cache, db = bills[demo.rig.ids["cache-1"]], bills[demo.rig.ids["db-1"]]
    assert cache.expire_policy == "to_pay_per_use" and cache.next_charge is None
    assert db.expire_policy == "auto_renew" and db.next_charge is not None
    assert demo.rig.clock.now() < db.next_charge < db.expires_at
    legacy = bills[demo.rig.ids["legacy-1"]]  # locked, but billing and renewing like db-1
    assert legacy.expire_policy == "auto_renew" and legacy.next_charge is not None
    for vault in (VAULT, DISK_VAULT):
        assert bills[vault].size_gb == ledger[vault]["size_gb"]
    assert (bills[VAULT].size_gb, bills[DISK_VAULT].size_gb) == (40, 200)
    (order,) = [b for b in bills.values() if b.charging == "order"]
    assert order.expires_at == parse_ts(ledger[order.resource_id]["pending_payment_end_time"])


def test_bills_follow_the_ledger_as_the_account_changes(demo: Cloud) -> None:
    ids = demo.rig.ids
    before = set(bills_by_id(demo))
    assert {ids["web-1"], ids["cache-1"]} <= before
    demo.rig.advance(timedelta(days=40).total_seconds())  # cache-1 expired: its grace period
    in_grace = bills_by_id(demo)
    assert set(in_grace) == set(ledger_by_id(demo))
    assert in_grace[ids["cache-1"]].expires_at is not None
    assert in_grace[ids["cache-1"]].expires_at < demo.rig.clock.now()
    demo.rig.advance(timedelta(days=20).total_seconds())  # in retention: frozen, not billing
    after = set(bills_by_id(demo))
    assert after == set(ledger_by_id(demo))
    assert ids["cache-1"] not in after
    assert not [b for b in bills_by_id(demo).values() if b.charging == "order"]  # R2


def test_assumption_bss_resource_type_codes_name_the_kind_of_a_bill() -> None:
    assert [kind_of(c) for c in ("hws.resource.type.vm", "hws.resource.type.volume")] == [
        "server",
        "volume",
    ]
    assert kind_of("hws.resource.type.ip") == "eip"
    assert kind_of("hws.resource.type.bandwidth") == "bandwidth"
    assert kind_of("hws.resource.type.cbr.vault") == "cbr.vault"  # unknown: the code's tail
    assert [expiry_outcome(p) for p in (0, 1, 2, 3, 4, 5, None)] == [
        "release",
        "to_pay_per_use",
        "release",
        "auto_renew",
        "release",
        "release",
        None,
    ]


def utc(value: object) -> datetime:
    """A time the SDK returned (a string, or a datetime when python-dateutil is installed)."""
    parsed = parse_time(value)
    assert parsed is not None, value
    return parsed
