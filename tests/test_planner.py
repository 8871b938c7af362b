"""The planner: pure, deterministic, safe by default."""

from __future__ import annotations

from dataclasses import replace

import pytest

from teardown.core.config import (
    BackupConfig,
    BillingConfig,
    Config,
    DestroyConfig,
    DestroyMethod,
    PrepaidPolicy,
    PullRule,
    ScopeConfig,
    TypesConfig,
)
from teardown.core.errors import BlastRadiusExceeded, ScopeRefused
from teardown.core.model import (
    Billing,
    BillingMode,
    DestroyAction,
    Kind,
    Resource,
    SnapshotKind,
    StepKind,
)
from teardown.core.planner import make_plan
from tests.helpers import network, server, urn, volume

RDS = "huaweicloud:Rds/instance:Instance"


def unknown(name: str = "orders-db") -> Resource:
    return Resource(urn=urn(RDS, name), type=RDS, kind=Kind.UNKNOWN, name=name)


def test_pay_per_use_server_gets_cbr_backup_then_delete_and_no_billing_steps() -> None:
    plan = make_plan([server("web")], Config(), "dev")
    (rp,) = plan.resources
    assert [s.kind for s in rp.backups] == [StepKind.SNAPSHOT]
    assert rp.backups[0].snapshot is SnapshotKind.CBR
    assert rp.action is DestroyAction.DELETE
    assert rp.destroy is not None and rp.destroy.after == (rp.backups[0].id,)
    assert rp.billing == ()
    assert not plan.blocked


def test_prepaid_server_is_unsubscribed_and_its_refund_recorded_after_destroy() -> None:
    plan = make_plan([server("db", BillingMode.PRE_PAID)], Config(), "dev")
    (rp,) = plan.resources
    assert rp.action is DestroyAction.UNSUBSCRIBE
    assert rp.destroy is not None
    assert [s.kind for s in rp.billing] == [StepKind.RECORD_REFUND]
    assert rp.billing[0].after == (rp.destroy.id,)


def test_keep_to_expiry_policy_cancels_renewals_and_auto_renew_without_destroy() -> None:
    config = Config(billing=BillingConfig(prepaid=PrepaidPolicy.KEEP_TO_EXPIRY))
    plan = make_plan([server("db", BillingMode.PRE_PAID, auto_renew=True)], config, "dev")
    (rp,) = plan.resources
    assert rp.action is DestroyAction.KEEP_TO_EXPIRY
    assert rp.destroy is None
    assert [s.kind for s in rp.billing] == [
        StepKind.UNSUBSCRIBE_RENEWALS,
        StepKind.CANCEL_AUTO_RENEW,
    ]


def test_pending_orders_are_cancelled_first_and_gate_the_destroy() -> None:
    plan = make_plan([server("db", BillingMode.PRE_PAID, pending=("CS1", "CS2"))], Config(), "d")
    assert [(s.kind, s.order_id) for s in plan.pre] == [
        (StepKind.CANCEL_PENDING_ORDER, "CS1"),
        (StepKind.CANCEL_PENDING_ORDER, "CS2"),
    ]
    destroy = plan.resources[0].destroy
    assert destroy is not None
    assert {s.id for s in plan.pre} <= set(destroy.after)


def test_unknown_type_blocks_the_plan_naming_type_and_urn() -> None:
    r = unknown()
    plan = make_plan([server("web"), r], Config(), "dev")
    assert plan.blocked
    (blocker,) = plan.blockers
    assert blocker.code == "unknown_type"
    assert RDS in blocker.message and r.urn in blocker.message


def test_unknown_type_marked_stateless_is_unblocked_and_not_backed_up() -> None:
    config = Config(types=TypesConfig(stateless=(RDS,)))
    plan = make_plan([unknown()], config, "dev")
    assert not plan.blocked
    (rp,) = plan.resources
    assert rp.resource.kind is Kind.STATELESS
    assert rp.backups == ()


def test_unknown_type_whose_loss_is_accepted_by_name_is_unblocked() -> None:
    plan = make_plan([unknown("cache")], Config(types=TypesConfig(accept_loss=("cache",))), "d")
    assert not plan.blocked
    assert plan.resources[0].loss_accepted


def test_stateless_config_does_not_remove_backups_of_a_known_data_type() -> None:
    config = Config(types=TypesConfig(stateless=(server("x").type,)))
    plan = make_plan([server("web")], config, "dev")
    assert plan.resources[0].resource.kind is Kind.SERVER
    assert plan.resources[0].backups


def test_evs_snapshot_alone_blocks_a_destroy_because_it_dies_with_the_disk() -> None:
    config = Config(backup=BackupConfig(snapshot=SnapshotKind.EVS))
    plan = make_plan([volume("data")], config, "dev")
    assert plan.blocked
    assert "deleted with their disk" in plan.blockers[0].message


def test_no_backup_configured_blocks_data_resources_but_not_networks() -> None:
    config = Config(backup=BackupConfig(snapshot=SnapshotKind.NONE))
    plan = make_plan([server("web"), network("vpc")], config, "dev")
    assert [b.urn for b in plan.blockers] == [server("web").urn]


def test_pull_rules_match_by_name_glob_and_tags() -> None:
    rule = PullRule(paths=("/var/www",), name="site", match="web-*", tags={"role": "web"})
    config = Config(backup=BackupConfig(pull=(rule,)))
    web = server("web-1", tags=(("role", "web"),))
    other = server("web-2", tags=(("role", "db"),))
    plan = make_plan([web, other], config, "dev")
    kinds = {rp.resource.name: [s.kind for s in rp.backups] for rp in plan.resources}
    assert kinds == {"web-1": [StepKind.SNAPSHOT, StepKind.PULL], "web-2": [StepKind.SNAPSHOT]}
    pull = plan.resources[0].backups[1].pull
    assert pull is not None and pull.paths == ("/var/www",)


def test_step_ids_are_deterministic_and_unique() -> None:
    resources = [server("a", BillingMode.PRE_PAID, pending=("o1",)), volume("v"), network("n")]
    one = make_plan(resources, Config(), "dev")
    two = make_plan(resources, Config(), "dev")
    ids = [s.id for s in one.steps]
    assert ids == [s.id for s in two.steps]
    assert len(ids) == len(set(ids))
    assert ids != [s.id for s in make_plan(resources, Config(), "other").steps]


def test_network_is_destroyed_after_the_resources_that_depend_on_it() -> None:
    vpc = network("vpc")
    web = server("web", deps=(vpc.urn,))
    plan = make_plan([vpc, web], Config(), "dev")
    vpc_plan, web_plan = plan.resources
    assert vpc_plan.destroy is not None and web_plan.destroy is not None
    assert web_plan.destroy.id in vpc_plan.destroy.after


def test_attached_disk_is_destroyed_after_its_server() -> None:
    db = server("db", BillingMode.PRE_PAID)
    disk = volume("db-data", BillingMode.PRE_PAID, parent=db.urn)
    plan = make_plan([db, disk], Config(), "dev")
    db_plan, disk_plan = plan.resources
    assert db_plan.destroy is not None and disk_plan.destroy is not None
    assert db_plan.destroy.id in disk_plan.destroy.after
    assert disk_plan.action is DestroyAction.UNSUBSCRIBE


def test_pulumi_destroy_method_applies_to_stack_resources() -> None:
    config = Config(destroy=DestroyConfig(method=DestroyMethod.PULUMI))
    plan = make_plan([server("web")], config, "dev")
    assert plan.resources[0].action is DestroyAction.PULUMI


@pytest.mark.parametrize(
    ("billing", "code"),
    [
        (Billing(mode=BillingMode.PRE_PAID, locked=True), "locked"),
        (Billing(mode=BillingMode.PRE_PAID, frozen=True), "frozen"),
    ],
)
def test_locked_or_frozen_prepaid_resource_is_a_warning_with_the_next_step(
    billing: Billing, code: str
) -> None:
    plan = make_plan([replace(server("db"), billing=billing)], Config(), "dev")
    assert not plan.blocked  # backed up anyway; the unsubscribe will say what to do
    (warning,) = plan.resources[0].warnings
    assert warning.code == code
    assert "support" in warning.message or "settle" in warning.message


def test_protected_resource_is_blocked() -> None:
    plan = make_plan([replace(server("web"), protected=True)], Config(), "dev")
    assert [b.code for b in plan.blockers] == ["protected"]


def test_blast_radius_error_carries_the_numbers() -> None:
    config = Config(scope=ScopeConfig(max_resources=2))
    with pytest.raises(BlastRadiusExceeded) as info:
        make_plan([server("a"), server("b"), server("c")], config, "dev", skipped=("s",))
    assert (info.value.limit, info.value.selected, info.value.population) == (2, 3, 4)


@pytest.mark.parametrize("scope", ["prod", "shop-PROD-eu", "my-production"])
def test_scopes_matching_prod_are_refused_by_default(scope: str) -> None:
    with pytest.raises(ScopeRefused) as info:
        make_plan([server("a")], Config(), scope)
    assert info.value.pattern == "*prod*"


def test_refuse_patterns_can_be_replaced() -> None:
    config = Config(scope=ScopeConfig(refuse_patterns=("live-*",)))
    assert make_plan([server("a")], config, "prod-copy").resources
    with pytest.raises(ScopeRefused):
        make_plan([server("a")], config, "live-eu")


def test_pull_paths_can_come_from_a_server_tag() -> None:
    rule = PullRule(paths_from_tag="backup.paths", excludes=("*.log",))
    tagged = server("web", tags=(("backup.paths", "/var/www;/etc/nginx"),))
    plan = make_plan([tagged], Config(backup=BackupConfig(pull=(rule,))), "dev")
    pull = plan.resources[0].backups[1].pull
    assert pull is not None and pull.paths == ("/var/www", "/etc/nginx")


def test_pull_rule_with_a_missing_path_tag_blocks_the_server() -> None:
    rule = PullRule(paths_from_tag="backup.paths")
    plan = make_plan([server("web")], Config(backup=BackupConfig(pull=(rule,))), "dev")
    assert [b.code for b in plan.blockers] == ["no_pull_paths"]


def test_estimate_and_max_fee_come_from_the_published_rules() -> None:
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from teardown.adapters.huawei.refunds import estimate
    from teardown.core.billing import Payment

    now = datetime(2026, 11, 26, tzinfo=UTC)
    start = now - timedelta(days=75)
    paid = Payment(
        order_id="CS1", cash=Decimal("4200.00"), effective=start,
        expires=start + timedelta(days=365), term_months=12,
    )  # fmt: skip
    db = replace(
        server("db", BillingMode.PRE_PAID),
        billing=Billing(mode=BillingMode.PRE_PAID, provisioned_at=start, payments=(paid,)),
    )
    # Without the cloud's rules there is no estimate (the core knows no cloud's refunds).
    (rp,) = make_plan([db], Config(), "dev", now=now).resources
    assert rp.estimate is None
    (rp,) = make_plan([db], Config(), "dev", now=now, estimator=estimate).resources
    assert rp.estimate is not None and not rp.estimate.five_day
    assert rp.estimate.fee == Decimal("420.00")
    assert rp.estimate.refund + rp.estimate.consumed + rp.estimate.fee == Decimal("4200.00")
    capped = Config(billing=BillingConfig(max_fee=Decimal("100")))
    blocked = make_plan([db], capped, "dev", now=now, estimator=estimate)
    (blocker,) = blocked.blockers
    assert blocker.code == "max_fee" and "420.00" in blocker.message and "100" in blocker.message
