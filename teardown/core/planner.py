"""The planner: resources + config -> plan. Pure: no I/O, no clock, deterministic ids."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from fnmatch import fnmatchcase

from teardown.core.config import Config, DestroyMethod, PrepaidPolicy, PullRule
from teardown.core.errors import BlastRadiusExceeded, ScopeRefused
from teardown.core.model import (
    DATA_KINDS,
    SURVIVES_DESTROY,
    BillingMode,
    Blocker,
    DestroyAction,
    Kind,
    Plan,
    PullSpec,
    Resource,
    ResourcePlan,
    SnapshotKind,
    Step,
    StepKind,
)


def step_id(scope: str, urn: str, kind: StepKind, extra: str = "") -> str:
    """A deterministic id for a step, used as its idempotency key."""
    digest = hashlib.sha256(f"{scope}\x1f{urn}\x1f{kind.value}\x1f{extra}".encode()).hexdigest()
    return digest[:20]


def check_scope(scope: str, config: Config) -> None:
    """Raise ScopeRefused when the scope name matches a refused pattern (case-insensitive)."""
    for pattern in config.scope.refuse_patterns:
        if fnmatchcase(scope.lower(), pattern.lower()):
            raise ScopeRefused(scope, pattern)


def make_plan(
    resources: Sequence[Resource],
    config: Config,
    scope: str,
    *,
    skipped: Sequence[str] = (),
) -> Plan:
    """Plan the teardown of ``resources``.

    Raises ScopeRefused or BlastRadiusExceeded before looking at any resource. Resources that
    cannot proceed get blockers (the plan is then ``blocked``); nothing is silently dropped.
    """
    check_scope(scope, config)
    population = len(resources) + len(skipped)
    if len(resources) > config.scope.max_resources:
        raise BlastRadiusExceeded(config.scope.max_resources, len(resources), population)

    resources = [_classify(r, config) for r in resources]
    urns = {r.urn for r in resources}
    # Destroy order: a resource goes after everything in the plan that depends on it, and a
    # disk goes after the server it is attached to.
    must_follow: dict[str, list[str]] = {r.urn: [] for r in resources}
    for r in resources:
        for dep in r.dependencies:
            if dep in urns and dep != r.urn:
                must_follow[dep].append(r.urn)
        if r.parent in urns and r.parent != r.urn:
            must_follow[r.urn].append(r.parent)

    pre: list[Step] = []
    seen_orders: set[str] = set()
    plans: list[ResourcePlan] = []
    for r in resources:
        if config.billing.cancel_pending_orders:
            for order in r.billing.pending_order_ids:
                if order not in seen_orders:
                    seen_orders.add(order)
                    pre.append(
                        Step(
                            id=step_id(scope, r.urn, StepKind.CANCEL_PENDING_ORDER, order),
                            kind=StepKind.CANCEL_PENDING_ORDER,
                            urn=r.urn,
                            order_id=order,
                        )
                    )
        plans.append(_plan_resource(r, config, scope))

    destroy_ids = {rp.resource.urn: rp.destroy.id for rp in plans if rp.destroy is not None}
    cancel_ids = {s.order_id: s.id for s in pre}
    ordered: list[ResourcePlan] = []
    for rp in plans:
        if rp.destroy is not None:
            # A resource in an unpaid order cannot be unsubscribed (R3): cancel the order first.
            extra = tuple(
                cancel_ids[o] for o in rp.resource.billing.pending_order_ids if o in cancel_ids
            ) + tuple(destroy_ids[u] for u in must_follow[rp.resource.urn] if u in destroy_ids)
            if extra:
                rp = replace(rp, destroy=replace(rp.destroy, after=rp.destroy.after + extra))
        ordered.append(rp)
    return Plan(scope=scope, resources=tuple(ordered), pre=tuple(pre), skipped=tuple(skipped))


def _classify(r: Resource, config: Config) -> Resource:
    """Apply ``[types] stateless``. Known data kinds keep their backups: use accept_loss."""
    if r.type in config.types.stateless and r.kind not in DATA_KINDS:
        return replace(r, kind=Kind.STATELESS)
    return r


def _loss_accepted(r: Resource, config: Config) -> bool:
    return r.urn in config.types.accept_loss or r.name in config.types.accept_loss


def _destroy_action(r: Resource, config: Config) -> DestroyAction:
    prepaid = r.billing.mode is BillingMode.PRE_PAID
    if prepaid and config.billing.prepaid is PrepaidPolicy.KEEP_TO_EXPIRY:
        return DestroyAction.KEEP_TO_EXPIRY
    if config.destroy.method is DestroyMethod.PULUMI and r.urn.startswith("urn:pulumi:"):
        return DestroyAction.PULUMI
    return DestroyAction.UNSUBSCRIBE if prepaid else DestroyAction.DELETE


def _matches(rule: PullRule, r: Resource) -> bool:
    if not (fnmatchcase(r.name, rule.match) or fnmatchcase(r.urn, rule.match)):
        return False
    return all(r.tag(k) == v for k, v in rule.tags.items())


def _plan_resource(r: Resource, config: Config, scope: str) -> ResourcePlan:
    action = _destroy_action(r, config)
    accepted = _loss_accepted(r, config)
    blockers: list[Blocker] = []

    def block(code: str, message: str) -> None:
        blockers.append(Blocker(code=code, message=message, urn=r.urn))

    if r.kind is Kind.UNKNOWN and not accepted:
        block(
            "unknown_type",
            f"unknown resource type {r.type} ({r.urn}): add the type to [types] stateless if it "
            "holds no data, or the URN to [types] accept_loss to accept losing its data",
        )
    if r.protected:
        block(
            "protected",
            f"{r.urn} is protected in the stack: unprotect it (pulumi state unprotect) or "
            "leave it out of scope",
        )
    if r.billing.locked:
        block(
            "locked",
            f"{r.name} ({r.urn}) is locked by an order in progress: contact Huawei Cloud "
            "support to unlock it; nothing was changed",
        )
    if r.billing.frozen and action is DestroyAction.UNSUBSCRIBE:
        block(
            "frozen",
            f"{r.name} ({r.urn}) is frozen and cannot be unsubscribed: settle the account or "
            "contact support",
        )
    if (
        r.billing.pending_order_ids
        and not config.billing.cancel_pending_orders
        and action is DestroyAction.UNSUBSCRIBE
    ):
        block(
            "pending_order",
            f"{r.name} is in orders pending payment ({', '.join(r.billing.pending_order_ids)}) "
            "and billing.cancel_pending_orders is false: cancel them first",
        )

    backups: list[Step] = []
    if r.kind in DATA_KINDS and not accepted:
        # A kept-to-expiry resource is released at expiry, so it needs the same surviving
        # backups as one destroyed now; EVS snapshots never qualify (they die with the disk).
        snap = config.backup.snapshot
        if SURVIVES_DESTROY[snap]:
            backups.append(
                Step(
                    id=step_id(scope, r.urn, StepKind.SNAPSHOT, snap.value),
                    kind=StepKind.SNAPSHOT,
                    urn=r.urn,
                    snapshot=snap,
                )
            )
        if r.kind is Kind.SERVER:
            for rule in config.backup.pull:
                if _matches(rule, r):
                    spec = PullSpec(
                        paths=rule.paths,
                        excludes=rule.excludes,
                        before=rule.before,
                        after=rule.after,
                        method=rule.method,
                        name=rule.name,
                    )
                    backups.append(
                        Step(
                            id=step_id(scope, r.urn, StepKind.PULL, rule.name),
                            kind=StepKind.PULL,
                            urn=r.urn,
                            pull=spec,
                        )
                    )
        if not backups:
            why = (
                "EVS snapshots are deleted with their disk"
                if snap is SnapshotKind.EVS
                else "no backup is configured"
            )
            block(
                "no_backup",
                f'{r.name} ({r.urn}) holds data and {why}: set backup.snapshot = "cbr" or '
                '"image", add a [[backup.pull]] rule, or list it in [types] accept_loss',
            )

    backup_ids = tuple(s.id for s in backups)
    destroy: Step | None = None
    billing: list[Step] = []
    prepaid = r.billing.mode is BillingMode.PRE_PAID
    if action is DestroyAction.KEEP_TO_EXPIRY:
        billing.append(
            Step(
                id=step_id(scope, r.urn, StepKind.UNSUBSCRIBE_RENEWALS),
                kind=StepKind.UNSUBSCRIBE_RENEWALS,
                urn=r.urn,
                after=backup_ids,
            )
        )
        if r.billing.auto_renew and config.billing.cancel_auto_renew:
            billing.append(
                Step(
                    id=step_id(scope, r.urn, StepKind.CANCEL_AUTO_RENEW),
                    kind=StepKind.CANCEL_AUTO_RENEW,
                    urn=r.urn,
                    after=backup_ids,
                )
            )
    else:
        destroy = Step(
            id=step_id(scope, r.urn, StepKind.DESTROY, action.value),
            kind=StepKind.DESTROY,
            urn=r.urn,
            after=backup_ids,
            action=action,
        )
        if prepaid:
            billing.append(
                Step(
                    id=step_id(scope, r.urn, StepKind.RECORD_REFUND),
                    kind=StepKind.RECORD_REFUND,
                    urn=r.urn,
                    after=(destroy.id,),
                )
            )
    return ResourcePlan(
        resource=r,
        action=action,
        backups=tuple(backups),
        destroy=destroy,
        billing=tuple(billing),
        blockers=tuple(blockers),
        loss_accepted=accepted,
    )
