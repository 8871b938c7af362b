"""Issue 14 in the planner: nothing in scope keeps billing unseen (public IPs, disks covered
by their server's backup, renewals after a refusal, expiry policies, honest estimates)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from teardown.adapters.huawei.refunds import estimate
from teardown.core.billing import Payment
from teardown.core.config import BackupConfig, BillingConfig, Config, PrepaidPolicy
from teardown.core.invariants import may_destroy
from teardown.core.model import (
    Artifact,
    Billing,
    BillingMode,
    DestroyAction,
    Disk,
    Kind,
    Resource,
    StepKind,
)
from teardown.core.phases import RunPhase
from teardown.core.planner import make_plan
from teardown.core.views import plan_totals, plan_view
from teardown.engine.report import build_report
from tests.helpers import make_rig, server, urn, volume

EIP = "huaweicloud:Vpc/eip:Eip"
NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)


def eip(parent: Resource, mode: BillingMode = BillingMode.POST_PAID) -> Resource:
    return Resource(
        urn=urn(EIP, f"{parent.name}-ip"),
        type=EIP,
        kind=Kind.ADDRESS,
        name="121.36.87.11",
        cloud_id=f"eip-{parent.name}",
        billing=Billing(mode=mode),
        parent=parent.urn,
    )


def with_disk(s: Resource, disk: Resource) -> Resource:
    return replace(s, disks=(*s.disks, Disk(id=disk.cloud_id or "", size_gb=200, bound=False)))


def test_a_public_ip_is_released_after_its_server_by_default() -> None:
    web = server("web")
    plan = make_plan([web, eip(web)], Config(), "dev")
    server_rp, ip_rp = plan.resources
    assert ip_rp.action is DestroyAction.DELETE and ip_rp.backups == ()
    assert ip_rp.destroy is not None and server_rp.destroy is not None
    assert server_rp.destroy.id in ip_rp.destroy.after
    assert not plan.blocked


def test_a_prepaid_public_ip_is_unsubscribed() -> None:
    web = server("web")
    plan = make_plan([web, eip(web, BillingMode.PRE_PAID)], Config(), "dev")
    assert plan.resources[1].action is DestroyAction.UNSUBSCRIBE


def test_public_ips_keep_policy_keeps_them() -> None:
    web = server("web")
    config = Config(billing=BillingConfig(public_ips="keep"))
    plan = make_plan([web, eip(web)], config, "dev")
    assert plan.resources[1].action is DestroyAction.KEEP
    assert plan.resources[1].destroy is None


def test_the_address_and_pay_per_use_disk_of_a_kept_server_stay_with_it() -> None:
    db = server("db", BillingMode.PRE_PAID)
    logs = volume("logs", BillingMode.POST_PAID, parent=db.urn)
    config = Config(billing=BillingConfig(prepaid=PrepaidPolicy.KEEP_TO_EXPIRY))
    plan = make_plan([with_disk(db, logs), eip(db), logs], config, "dev")
    _, ip_rp, logs_rp = plan.resources
    for rp in (ip_rp, logs_rp):
        assert rp.action is DestroyAction.KEEP and rp.destroy is None
        assert any("kept with db" in n for n in rp.notes)


def test_a_separate_disk_held_by_the_server_backup_is_not_backed_up_twice() -> None:
    db = server("db", BillingMode.PRE_PAID)
    data = volume("db-data", BillingMode.PRE_PAID, parent=db.urn)
    plan = make_plan([with_disk(db, data), data], Config(), "dev")
    db_rp, data_rp = plan.resources
    assert data_rp.backups == () and data_rp.covered_by == db.urn
    snap = db_rp.backups[0]
    assert data_rp.destroy is not None and snap.id in data_rp.destroy.after
    assert not plan.blocked

    def art(covers: tuple[str, ...]) -> Artifact:
        assert snap.expect is not None
        return Artifact("cbr", "cp-1", True, True, origin=snap.expect, covers=covers)

    # I1: the disk may go only when the server's backup holds it.
    assert may_destroy(data_rp, {snap.id: art(("id-db-data",))}, cover=db_rp).ok
    refused = may_destroy(data_rp, {snap.id: art(("sys-db",))}, cover=db_rp)
    assert not refused.ok and "holds disk id-db-data" in refused.reasons[0]
    assert not may_destroy(data_rp, {}, cover=db_rp).ok
    assert not may_destroy(data_rp, {snap.id: art(("id-db-data",))}).ok  # no cover given


def test_a_disk_not_attached_to_the_server_keeps_its_own_backup() -> None:
    db = server("db")
    data = volume("db-data", parent=db.urn)  # the server's disk list does not name it
    plan = make_plan([db, data], Config(), "dev")
    assert plan.resources[1].covered_by is None
    assert [s.kind for s in plan.resources[1].backups] == [StepKind.SNAPSHOT]


def test_a_refused_unsubscribe_turns_auto_renew_off() -> None:
    db = server("db", BillingMode.PRE_PAID, auto_renew=True)
    (rp,) = make_plan([db], Config(), "dev").resources
    assert [s.kind for s in rp.fallback] == [StepKind.CANCEL_AUTO_RENEW]
    assert rp.destroy is not None and rp.fallback[0].after == rp.destroy.after
    assert any("refused" in n for n in rp.notes)
    assert plan_view(make_plan([db], Config(), "dev"))["resources"][0]["if_refused"]


def test_keep_to_expiry_cancels_the_switch_to_pay_per_use() -> None:
    db = server("db", BillingMode.PRE_PAID)
    db = replace(db, billing=replace(db.billing, to_pay_per_use_at_expiry=True))
    config = Config(billing=BillingConfig(prepaid=PrepaidPolicy.KEEP_TO_EXPIRY))
    (rp,) = make_plan([db], config, "dev").resources
    assert StepKind.KEEP_FROM_PAY_PER_USE in [s.kind for s in rp.billing]
    keep = Config(
        billing=BillingConfig(prepaid=PrepaidPolicy.KEEP_TO_EXPIRY, switch_to_pay_per_use="keep")
    )
    (rp,) = make_plan([db], keep, "dev").resources
    assert StepKind.KEEP_FROM_PAY_PER_USE not in [s.kind for s in rp.billing]
    assert any("pay-per-use" in n for n in rp.notes)


def test_cancelling_a_servers_auto_renew_says_it_covers_its_disks() -> None:
    db = server("db", BillingMode.PRE_PAID, auto_renew=True)
    data = volume("db-data", BillingMode.PRE_PAID, parent=db.urn)
    config = Config(billing=BillingConfig(prepaid=PrepaidPolicy.KEEP_TO_EXPIRY))
    rp = make_plan([with_disk(db, data), data], config, "dev").resources[0]
    assert any("also turns it off for the disks" in n and "id-db-data" in n for n in rp.notes)


def test_backups_carry_their_retention_and_keeping_forever_warns() -> None:
    (rp,) = make_plan([server("web")], Config(), "dev").resources
    assert rp.backups[0].retention_days == 30
    forever = Config(backup=BackupConfig(retention_days=0))
    (rp,) = make_plan([server("web")], forever, "dev").resources
    assert rp.backups[0].retention_days == 0
    assert [w.code for w in rp.warnings] == ["backup_kept_forever"]


# -- estimates: what they assume ------------------------------------------------------------


def prepaid(promotion: bool | None) -> Resource:
    start = NOW - timedelta(days=2)
    pay = Payment(
        order_id="CS1",
        cash=Decimal("189.00"),
        effective=start,
        expires=start + timedelta(days=30),
        term_months=1,
        promotion=promotion,
    )
    s = server("promo-1", BillingMode.PRE_PAID)
    billing = replace(s.billing, payments=(pay,), provisioned_at=start, expires_at=pay.expires)
    return replace(s, billing=billing)


def test_an_unknown_five_day_quota_is_named_as_an_assumption() -> None:
    unknown, _ = estimate(prepaid(False), DestroyAction.UNSUBSCRIBE, NOW, None)
    assert unknown is not None and unknown.five_day
    assert "five_day_quota_used" in unknown.assumptions[0]
    known, _ = estimate(prepaid(False), DestroyAction.UNSUBSCRIBE, NOW, 1)
    assert known is not None and known.assumptions == ()


def test_a_promotional_purchase_may_be_refused_and_max_fee_counts_the_worst_case() -> None:
    est, _ = estimate(prepaid(True), DestroyAction.UNSUBSCRIBE, NOW, 0)
    assert est is not None and "promotional" in est.may_be_refused
    assert est.worst_fee == est.refund + est.fee and est.worst_fee > 0
    clean, _ = estimate(prepaid(False), DestroyAction.UNSUBSCRIBE, NOW, 0)
    assert clean is not None and clean.may_be_refused == "" and clean.worst_fee is None
    unknown, _ = estimate(prepaid(None), DestroyAction.UNSUBSCRIBE, NOW, 0)
    assert unknown is not None and "cannot be ruled out" in unknown.may_be_refused

    config = Config(billing=BillingConfig(max_fee=Decimal("50"), five_day_quota_used=0))
    plan = make_plan([prepaid(True)], config, "dev", now=NOW, estimator=estimate)
    (rp,) = plan.resources
    assert rp.estimate is not None and rp.estimate.fee <= 50  # the expected fee passes...
    assert [b.code for b in rp.blockers] == ["max_fee"]  # ...the worst case does not
    assert "worst case" in rp.blockers[0].message
    totals = plan_totals(plan)
    assert Decimal(totals["worst_case_fee"]) == rp.estimate.worst_fee
    assert totals["may_be_refused"] == "1"
    assert make_plan([prepaid(False)], config, "dev", now=NOW, estimator=estimate).blocked is False


# -- the runner over the fake cloud ---------------------------------------------------------


def test_a_refused_unsubscribe_still_turns_auto_renew_off(tmp_path: Path) -> None:
    db = server("db", BillingMode.PRE_PAID, auto_renew=True)
    rig = make_rig(
        tmp_path, [db], switches={"fail": {"destroy": [{"error": "permanent", "times": 1}]}}
    )
    result = rig.runner.start(make_plan([db], Config(), "dev"))
    assert result.phase is RunPhase.FAILED
    assert [c["urn"] for c in rig.cloud.calls("cancel_auto_renew")] == [db.urn]
    report = build_report(rig.journal, result.run_id)
    entry, vault = report["still_billing"]
    assert vault["kind"] == "vault"
    assert entry["resource_id"] == "id-db" and entry["auto_renew"] is False
    assert "auto-renew turned off" in entry["why"]


def test_the_fallback_waits_for_the_backups(tmp_path: Path) -> None:
    db = server("db", BillingMode.PRE_PAID, auto_renew=True)
    rig = make_rig(tmp_path, [db], switches={"snapshot_error": [db.urn]})
    rig.runner.start(make_plan([db], Config(), "dev"))
    assert rig.cloud.calls("cancel_auto_renew") == []  # nothing verified: nothing changes


def test_a_covered_disk_is_backed_up_once_and_goes_after_the_server_backup(
    tmp_path: Path,
) -> None:
    db = server("db", BillingMode.PRE_PAID)
    data = volume("db-data", BillingMode.PRE_PAID, parent=db.urn)
    db = with_disk(db, data)
    rig = make_rig(tmp_path, [db, data])
    result = rig.runner.start(make_plan([db, data], Config(), "dev"))
    assert result.phase is RunPhase.COMPLETED, result.errors
    assert [c["urn"] for c in rig.cloud.calls("snapshot.create")] == [db.urn]
    assert {c["urn"] for c in rig.cloud.calls("destroy")} == {db.urn, data.urn}


def test_the_vault_is_in_the_report_with_its_monthly_cost(tmp_path: Path) -> None:
    web = server("web")
    rig = make_rig(tmp_path, [web])
    result = rig.runner.start(make_plan([web], Config(), "dev"))
    report = build_report(rig.journal, result.run_id, backup_gb_month=Decimal("0.10"))
    (vault,) = report["still_billing"]
    assert vault["kind"] == "vault" and vault["charging"] == "storage"
    assert vault["resource_id"] == "vault-fake" and vault["retention_days"] == 30
    assert vault["size_gb"] == 1.0 and vault["capacity_gb"] == 10
    assert vault["monthly_cost"] == "1.00"  # it bills by its capacity: 10 GB x 0.10
    assert report["money"]["backups_monthly"] == "1.00"


def test_promotion_is_read_from_discount_types_assumption() -> None:
    """Assumption (docs/huawei-api.md, R16): an order line was a promotion when its discounts
    include type 200 (促销产品折扣) or 700 (促销折扣) of the SDK's DiscountItemV2; coupons (300,
    301, 302) are not promotions; no amount details means a promotion cannot be ruled out."""
    from huaweicloudsdkbss.v2 import AmountInfomationV2, DiscountItemV2

    from teardown.adapters.huawei.inventory import _promotion

    def amounts(*types: str) -> AmountInfomationV2:
        items = [DiscountItemV2(discount_type=t, discount_amount=Decimal(1)) for t in types]
        return AmountInfomationV2(discounts=items)

    assert _promotion(amounts("200")) is True
    assert _promotion(amounts("300", "700")) is True
    assert _promotion(amounts("300", "301", "302")) is False
    assert _promotion(amounts()) is False
    assert _promotion(None) is None


def test_a_kept_public_ip_is_reported_with_its_hourly_price(tmp_path: Path) -> None:
    web = server("web")
    ip = eip(web)
    rig = make_rig(tmp_path, [web, ip])
    config = Config(billing=BillingConfig(public_ips="keep"))
    result = rig.runner.start(make_plan([web, ip], config, "dev"))
    priced = build_report(rig.journal, result.run_id, public_ip_hour=Decimal("0.30"))
    (entry,) = [e for e in priced["still_billing"] if e["kind"] == "eip"]
    assert entry["resource_id"] == "eip-web" and entry["hourly_price"] == "0.30"
    assert "kept" in entry["why"]
    unpriced = build_report(rig.journal, result.run_id)
    assert [e["hourly_price"] for e in unpriced["still_billing"] if e["kind"] == "eip"] == [None]
