"""One resource's part of a plan: its action, backups, destroy, billing steps and blockers.

Pure: no I/O, no clock, deterministic ids. :func:`plan_resource` runs the named steps below in
order; :mod:`teardown.core.planner` puts the resources' parts together and orders them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Protocol

from teardown.core.config import Config, DestroyMethod, PrepaidPolicy, PullRule
from teardown.core.model import (
    DATA_KINDS,
    SURVIVES_DESTROY,
    BillingMode,
    Blocker,
    DestroyAction,
    Estimate,
    Kind,
    Origin,
    PullSpec,
    Resource,
    ResourcePlan,
    SnapshotKind,
    Step,
    StepKind,
)
from teardown.core.paths import bad_name, excluded_roots, root_of


class Estimator(Protocol):
    """A cloud's refund rules, as the planner asks them (the provider supplies one)."""

    def __call__(
        self, resource: Resource, action: DestroyAction, now: datetime, quota_used: int | None
    ) -> tuple[Estimate | None, tuple[str, str] | None]:
        """The refund estimate for ``resource`` under ``action`` at ``now`` (``quota_used``:
        the account's 5-day refunds used this year, None when unknown: the estimate then says
        what it assumed), or the rule that refuses the unsubscribe as (reason, message)."""
        ...


def step_id(scope: str, urn: str, kind: StepKind, extra: str = "") -> str:
    """A deterministic id for a step, used as its idempotency key."""
    digest = hashlib.sha256(f"{scope}\x1f{urn}\x1f{kind.value}\x1f{extra}".encode()).hexdigest()
    return digest[:20]


def pull_spec_digest(spec: PullSpec) -> str:
    """sha256 of every setting of a pull: a backup made with other settings is another backup."""
    body = {
        "name": spec.name,
        "paths": list(spec.paths),
        "excludes": list(spec.excludes),
        "before": list(spec.before),
        "after": list(spec.after),
        "method": spec.method.value,
        "allow_empty": spec.allow_empty,
        "accept_refused": list(spec.accept_refused),
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def expected_origin(r: Resource, spec: str) -> Origin:
    """What a backup of ``r`` with settings ``spec`` must be a copy of."""
    return Origin(
        account=r.account or "",
        resource_id=r.cloud_id or "",
        created_at=r.created_at.isoformat() if r.created_at else "",
        spec=spec,
    )


def backup_step(scope: str, r: Resource, kind: StepKind, name: str, spec: str) -> Step:
    """A backup step whose id depends on what it copies (account, cloud id, creation time) and
    on its settings, so no other machine's backup, nor one made with other settings, can ever
    stand in for it."""
    origin = expected_origin(r, spec)
    return Step(
        id=step_id(scope, r.urn, kind, f"{name}\x1f{origin.digest()}"),
        kind=kind,
        urn=r.urn,
        expect=origin,
    )


def _loss_accepted(r: Resource, config: Config) -> bool:
    return r.urn in config.types.accept_loss or r.name in config.types.accept_loss


def _destroy_action(r: Resource, config: Config) -> DestroyAction:
    prepaid = r.billing.mode is BillingMode.PRE_PAID
    if r.kind is Kind.VOLUME and r.parent and config.billing.attached_disks == "keep":
        return DestroyAction.KEEP
    if r.kind is Kind.ADDRESS and r.parent and config.billing.public_ips == "keep":
        return DestroyAction.KEEP
    if prepaid and config.billing.prepaid is PrepaidPolicy.KEEP_TO_EXPIRY:
        return DestroyAction.KEEP_TO_EXPIRY
    if config.destroy.method is DestroyMethod.PULUMI and r.urn.startswith("urn:pulumi:"):
        return DestroyAction.PULUMI
    return DestroyAction.UNSUBSCRIBE if prepaid else DestroyAction.DELETE


def _matches(rule: PullRule, r: Resource) -> bool:
    if not (fnmatchcase(r.name, rule.match) or fnmatchcase(r.urn, rule.match)):
        return False
    return all(r.tag(k) == v for k, v in rule.tags.items())


@dataclass
class _Part:
    """One resource's plan as it is built: what each step found."""

    r: Resource
    action: DestroyAction
    accepted: bool
    blockers: list[Blocker] = field(default_factory=list)
    warnings: list[Blocker] = field(default_factory=list)
    backups: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def block(self, code: str, message: str) -> None:
        self.blockers.append(Blocker(code=code, message=message, urn=self.r.urn))

    def warn(self, code: str, message: str) -> None:
        self.warnings.append(Blocker(code=code, message=message, urn=self.r.urn))


def plan_resource(
    r: Resource,
    config: Config,
    scope: str,
    now: datetime | None,
    *,
    keep: bool = False,
    with_parent: bool = False,
    estimator: Estimator | None = None,
    covered_by: Cover | None = None,
) -> ResourcePlan:
    """Everything the plan does to ``r``: the action, then what stops it, its backups, its
    destroy and billing steps and (with ``now`` and an ``estimator``) the refund estimate.
    ``covered_by``: a disk held by its server's whole-server cloud backup gets no backup of its
    own; its destroy and billing wait for that backup instead."""
    part = _Part(r, choose_action(r, config, keep, with_parent), _loss_accepted(r, config))
    _check_resource(part, config)
    if covered_by is None:
        _plan_backups(part, config, scope)
    destroy, billing = _destroy_and_billing(part, scope, config, covered_by, now)
    fallback = _fallback(part, scope, config, destroy)
    estimate = None
    if now is not None and estimator is not None and r.billing.mode is BillingMode.PRE_PAID:
        estimate = _estimate(part, config, now, estimator)
    return ResourcePlan(
        resource=r,
        action=part.action,
        backups=tuple(part.backups),
        destroy=destroy,
        billing=billing,
        blockers=tuple(part.blockers),
        loss_accepted=part.accepted,
        estimate=estimate,
        warnings=tuple(part.warnings),
        covered_by=covered_by.urn if covered_by else None,
        notes=tuple(part.notes),
        fallback=fallback,
    )


@dataclass(frozen=True)
class Cover:
    """A server's whole-server cloud backup that holds one of its separately bought disks."""

    urn: str
    """The server."""
    steps: tuple[str, ...]
    """Its snapshot steps (surviving kinds): the disk waits for them."""


def choose_action(r: Resource, config: Config, keep: bool, with_parent: bool) -> DestroyAction:
    """Retained by the stack, kept by the caller, destroyed with its parent, or by the rules."""
    if r.retain:
        return DestroyAction.RETAIN
    if keep:
        return DestroyAction.KEEP
    if with_parent:
        return DestroyAction.WITH_PARENT
    return _destroy_action(r, config)


def _check_resource(part: _Part, config: Config) -> None:
    """Blockers (unknown type, protected, unpaid orders kept) and warnings (lock, freeze)."""
    r = part.r
    if r.kind is Kind.UNKNOWN and not part.accepted:
        part.block(
            "unknown_type",
            f"unknown resource type {r.type} ({r.urn}): add the type to [types] stateless if it "
            "holds no data, or the URN to [types] accept_loss to accept losing its data",
        )
    if r.protected:
        part.block(
            "protected",
            f"{r.urn} is protected in the stack: unprotect it (pulumi state unprotect) or "
            "leave it out of scope",
        )
    # A lock or a freeze is the cloud's current state and may be lifted: it does not stop the
    # plan; the unsubscribe will be refused with the next step to take (and can be resumed).
    lock = r.billing.lock_order_id
    if r.billing.locked and lock and lock in r.billing.pending_order_ids:
        if config.billing.cancel_pending_orders:
            part.notes.append(
                f"{r.name} is locked by order {lock}, which is pending payment (e.g. a "
                "conversion to yearly/monthly): the plan cancels that order first, which lifts "
                "the lock"
            )
        else:
            part.block(
                "locked_by_pending_order",
                f"{r.name} is locked by order {lock}, pending payment, and "
                "billing.cancel_pending_orders is false: cancel or pay that order first",
            )
    elif r.billing.locked:
        part.warn(
            "locked",
            f"{r.name} ({r.urn}) is locked by order {lock or '?'}: "
            "ask the cloud's support to unlock it, then resume the run",
        )
    if r.billing.frozen and part.action is DestroyAction.UNSUBSCRIBE:
        part.warn(
            "frozen",
            f"{r.name} ({r.urn}) is frozen and cannot be unsubscribed: settle the account or "
            "contact support, then resume the run",
        )
    if (
        r.billing.pending_order_ids
        and not config.billing.cancel_pending_orders
        and part.action is DestroyAction.UNSUBSCRIBE
    ):
        part.block(
            "pending_order",
            f"{r.name} is in orders pending payment ({', '.join(r.billing.pending_order_ids)}) "
            "and billing.cancel_pending_orders is false: cancel them first",
        )


def _plan_backups(part: _Part, config: Config, scope: str) -> None:
    """The backups a data resource needs before it goes (also one kept to expiry: it is
    released then); a blocker when none is configured."""
    r = part.r
    kept = part.action in (DestroyAction.KEEP, DestroyAction.RETAIN)
    if r.kind not in DATA_KINDS or part.accepted or kept:
        return
    # EVS snapshots never qualify: they die with the disk.
    snap = config.backup.snapshot
    if SURVIVES_DESTROY[snap]:
        step = backup_step(scope, r, StepKind.SNAPSHOT, snap.value, f"snapshot:{snap.value}")
        days = config.backup.retention_days
        part.backups.append(replace(step, snapshot=snap, retention_days=days))
        if days == 0:
            part.warn(
                "backup_kept_forever",
                f"{r.name}: its {snap.value} backup is kept until someone deletes it "
                "(backup.retention_days = 0) and bills for its storage every month until then",
            )
    if r.kind is Kind.SERVER:
        for rule in config.backup.pull:
            if _matches(rule, r):
                _plan_pull(part, rule, scope)
    if not part.backups:
        why = (
            "EVS snapshots are deleted with their disk"
            if snap is SnapshotKind.EVS
            else "no backup is configured"
        )
        part.block(
            "no_backup",
            f'{r.name} ({r.urn}) holds data and {why}: set backup.snapshot = "cbr" or '
            '"image", add a [[backup.pull]] rule, or list it in [types] accept_loss',
        )


def _plan_pull(part: _Part, rule: PullRule, scope: str) -> None:
    """The pull step of ``rule`` for the server, or the blockers that say why its paths
    cannot be copied."""
    r = part.r
    paths = rule.paths
    if rule.paths_from_tag:
        tagged = r.tag(rule.paths_from_tag) or ""
        paths += tuple(p for p in tagged.split(";") if p)
    for p in paths:
        why = bad_name(root_of(p))
        if why:
            part.block("bad_pull_path", f"{r.name}: pull rule {rule.name!r} path {p!r}: {why}")
    if not paths:
        part.block(
            "no_pull_paths",
            f"{r.name}: pull rule {rule.name!r} takes its paths from tag "
            f"{rule.paths_from_tag!r}, which the server does not have",
        )
        return
    for root in excluded_roots(paths, rule.excludes):
        part.block(
            "excludes_everything",
            f"{r.name}: pull rule {rule.name!r} excludes everything under {root} "
            f"({', '.join(rule.excludes)}): it would copy nothing; narrow the excludes",
        )
    spec = PullSpec(
        paths=paths,
        excludes=rule.excludes,
        before=rule.before,
        after=rule.after,
        method=rule.method,
        name=rule.name,
        allow_empty=rule.allow_empty,
        accept_refused=rule.accept_refused,
    )
    step = backup_step(scope, r, StepKind.PULL, rule.name, pull_spec_digest(spec))
    part.backups.append(replace(step, pull=spec))


def _destroy_and_billing(
    part: _Part,
    scope: str,
    config: Config,
    covered_by: Cover | None = None,
    now: datetime | None = None,
) -> tuple[Step | None, tuple[Step, ...]]:
    """The destroy step (after the backups) and the billing steps the action calls for."""
    r, action = part.r, part.action
    backup_ids = tuple(s.id for s in part.backups)
    if covered_by is not None:
        backup_ids = covered_by.steps

    def billing_step(kind: StepKind, after: tuple[str, ...]) -> Step:
        return Step(id=step_id(scope, r.urn, kind), kind=kind, urn=r.urn, after=after)

    cancel_auto_renew = r.billing.auto_renew and config.billing.cancel_auto_renew
    if action is DestroyAction.RETAIN:
        return None, ()  # the engine keeps it in the cloud; so does teardown (it keeps billing)
    if action is DestroyAction.KEEP:
        return None, ((billing_step(StepKind.CANCEL_AUTO_RENEW, ()),) if cancel_auto_renew else ())
    if action is DestroyAction.KEEP_TO_EXPIRY:
        steps = []
        paid = r.billing.payments
        if now is not None and paid and not any(p.effective > now for p in paid):
            part.notes.append(f"{r.name}: no renewal is paid ahead, so none is unsubscribed")
        else:
            steps.append(billing_step(StepKind.UNSUBSCRIBE_RENEWALS, backup_ids))
        if cancel_auto_renew:
            steps.append(billing_step(StepKind.CANCEL_AUTO_RENEW, backup_ids))
            if r.kind is Kind.SERVER and (r.billing.children or _attached(r)):
                part.notes.append(
                    f"{r.name}: turning its auto-renew off also turns it off for the disks "
                    f"renewed with it ({', '.join(r.billing.children or _attached(r))})"
                )
        if r.billing.to_pay_per_use_at_expiry:
            if config.billing.switch_to_pay_per_use == "cancel":
                steps.append(billing_step(StepKind.KEEP_FROM_PAY_PER_USE, backup_ids))
            else:
                part.notes.append(
                    f"{r.name} switches to pay-per-use at expiry and keeps billing by the hour "
                    'after it (billing.switch_to_pay_per_use = "keep")'
                )
        return None, tuple(steps)
    destroy = Step(
        id=step_id(scope, r.urn, StepKind.DESTROY, action.value),
        kind=StepKind.DESTROY,
        urn=r.urn,
        after=backup_ids,
        action=action,
        delete_volumes=_delete_volumes(r, part.backups, part.accepted),
    )
    prepaid = r.billing.mode is BillingMode.PRE_PAID
    if prepaid and action is not DestroyAction.WITH_PARENT:
        return destroy, (billing_step(StepKind.RECORD_REFUND, (destroy.id,)),)
    return destroy, ()


def _attached(r: Resource) -> tuple[str, ...]:
    """The ids of a server's non-system disks."""
    return tuple(d.id for d in r.disks if not d.system)


def _fallback(part: _Part, scope: str, config: Config, destroy: Step | None) -> tuple[Step, ...]:
    """What to do when the cloud refuses an unsubscribe (a lock, a promotion, a transaction in
    progress): turn auto-renew off anyway, so that the refusal does not become a year's
    charge. After the backups, like the destroy itself."""
    r = part.r
    if destroy is None or destroy.action is not DestroyAction.UNSUBSCRIBE:
        return ()
    if not (r.billing.auto_renew and config.billing.cancel_auto_renew):
        return ()
    part.notes.append(f"{r.name}: if the unsubscribe is refused, its auto-renew is turned off")
    return (
        Step(
            id=step_id(scope, r.urn, StepKind.CANCEL_AUTO_RENEW, "fallback"),
            kind=StepKind.CANCEL_AUTO_RENEW,
            urn=r.urn,
            after=destroy.after,
        ),
    )


def _estimate(part: _Part, config: Config, now: datetime, estimator: Estimator) -> Estimate | None:
    """The refund estimate; blockers when the rules refuse the unsubscribe or the estimated
    handling fee is above ``billing.max_fee``."""
    r = part.r
    estimate, refusal = estimator(r, part.action, now, config.billing.five_day_quota_used)
    if refusal is not None:
        part.block(*refusal)
    fee_cap = config.billing.max_fee
    if estimate is None or fee_cap is None:
        return estimate
    if estimate.fee > fee_cap:
        part.block(
            "max_fee",
            f"{r.name}: estimated handling fee {estimate.fee} CNY is above billing.max_fee = "
            f"{fee_cap} CNY (estimated refund {estimate.refund} CNY); "
            'raise max_fee, or keep it to expiry (billing.prepaid = "keep_to_expiry")',
        )
    elif estimate.worst_fee is not None and estimate.worst_fee > fee_cap:
        part.block(
            "max_fee",
            f"{r.name}: in the worst case ({estimate.may_be_refused}) no refund comes and "
            f"{estimate.worst_fee} CNY is lost, above billing.max_fee = {fee_cap} CNY; "
            'raise max_fee, or keep it to expiry (billing.prepaid = "keep_to_expiry")',
        )
    return estimate


def _delete_volumes(r: Resource, backups: Sequence[Step], accepted: bool) -> bool:
    """Whether a server's data disks may be deleted with it: only when every attached disk is
    known (ECS and EVS agree), bound to the server, and backed up by a cloud backup that
    survives (or the loss is accepted). Otherwise they are detached and left (they survive)."""
    if r.kind is not Kind.SERVER or not r.disks_known or not r.disks:
        return False
    data = [d for d in r.disks if not d.system]
    if not data or not all(d.bound for d in data):
        return False
    return accepted or any(
        s.kind is StepKind.SNAPSHOT and s.snapshot is not None and SURVIVES_DESTROY[s.snapshot]
        for s in backups
    )
