"""The planner: resources + config -> plan. Pure: no I/O, no clock, deterministic ids."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from fnmatch import fnmatchcase

from teardown.core.billing import (
    BLOCKER_CODES,
    BillingRules,
    RuleRefusal,
    Subscription,
    auto_renew_charge_at,
    quote_renewal_unsubscribe,
    quote_unsubscribe,
)
from teardown.core.config import Config, DestroyMethod, PrepaidPolicy, PullRule
from teardown.core.errors import BlastRadiusExceeded, ResourceRefused, ScopeRefused
from teardown.core.model import (
    DATA_KINDS,
    SURVIVES_DESTROY,
    BillingMode,
    Blocker,
    DestroyAction,
    Estimate,
    Kind,
    Origin,
    Plan,
    PullSpec,
    Resource,
    ResourcePlan,
    SnapshotKind,
    Step,
    StepKind,
)
from teardown.core.paths import bad_name, excluded_roots, root_of
from teardown.core.text import fold as basic_fold

SCOPE_TAG = "teardown:scope"
"""A resource tagged with another scope's name belongs to that scope."""

Fold = Callable[[str], str]

RULES = BillingRules()
"""The published rules with their documented defaults (the sandbox uses the same)."""


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


def check_scope(scope: str, config: Config, fold: Fold = basic_fold) -> None:
    """Raise ScopeRefused when the scope name matches a refused pattern, compared after
    normalisation and look-alike folding (``fold``)."""
    name = fold(scope)
    for pattern in config.scope.refuse_patterns:
        if fnmatchcase(name, fold(pattern)):
            raise ScopeRefused(scope, pattern)


def check_tags(resources: Sequence[Resource], config: Config, fold: Fold = basic_fold) -> None:
    """Raise ResourceRefused when any resource carries a refused tag (``scope.refuse_tags``),
    compared after normalisation and look-alike folding."""
    patterns = [
        (fold(k), fold(v)) for k, _, v in (t.partition("=") for t in config.scope.refuse_tags)
    ]
    for r in resources:
        for key, value in r.tags:
            fk, fv = fold(key), fold(value)
            for (pk, pv), raw in zip(patterns, config.scope.refuse_tags, strict=True):
                if fnmatchcase(fk, pk) and fnmatchcase(fv, pv):
                    raise ResourceRefused(r.name, f"{key}={value}", raw)


def foreign(
    r: Resource, scope: str, selectors: Sequence[tuple[str, str]], fold: Fold = basic_fold
) -> str | None:
    """Why ``r`` belongs to another scope, or None: it is tagged ``teardown:scope`` with another
    scope's name, or carries a selector's key with another value (a disk of another environment
    attached to a server of this one)."""
    owner = r.tag(SCOPE_TAG)
    if owner is not None and fold(owner) != fold(scope):
        return f"{r.name} is tagged {SCOPE_TAG}={owner}, not {scope}"
    for key, value in selectors:
        theirs = r.tag(key)
        if theirs is not None and fold(theirs) != fold(value):
            return f"{r.name} is tagged {key}={theirs}, and this scope selects {key}={value}"
    return None


def make_plan(
    resources: Sequence[Resource],
    config: Config,
    scope: str,
    *,
    skipped: Sequence[str] = (),
    now: datetime | None = None,
    orders: Sequence[str] = (),
    keep_kinds: frozenset[Kind] = frozenset(),
    selectors: Sequence[tuple[str, str]] = (),
    include_foreign: bool = False,
    fold: Fold = basic_fold,
) -> Plan:
    """Plan the teardown of ``resources``.

    Raises ScopeRefused or BlastRadiusExceeded before looking at any resource. Resources that
    cannot proceed get blockers (the plan is then ``blocked``); nothing is silently dropped.
    With ``now``, prepaid resources get refund estimates (and ``max_fee`` is enforced);
    ``orders`` are account-level orders pending payment to cancel first. Resources of
    ``keep_kinds`` are left alone (e.g. a stack's network, when servers are destroyed through the
    cloud API and the rest is left for ``pulumi destroy``). A resource tagged for another scope
    (``foreign``; ``selectors`` are the tags the targets were chosen by) is a blocker, or a
    warning with ``include_foreign``. Names and tags are compared after ``fold``.
    """
    check_scope(scope, config, fold)
    population = len(resources) + len(skipped)
    if len(resources) > config.scope.max_resources:
        raise BlastRadiusExceeded(config.scope.max_resources, len(resources), population)
    check_tags(resources, config, fold)

    resources = [_classify(r, config) for r in resources]
    urns = {r.urn for r in resources}
    # deletedWith: the child is destroyed once, by its parent's destroy (when the parent is
    # here and is destroyed by this plan).
    destroyed = {r.urn for r in resources if not r.retain and r.kind not in keep_kinds}
    carried = {
        r.urn: r.deleted_with
        for r in resources
        if r.deleted_with in destroyed and r.deleted_with != r.urn and r.urn in destroyed
    }
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
        rp = _plan_resource(r, config, scope, now, r.kind in keep_kinds, r.urn in carried)
        why = foreign(r, scope, selectors, fold)
        if why is not None:
            note = Blocker("foreign", f"{why}: it belongs to another scope", r.urn)
            if include_foreign:
                rp = replace(rp, warnings=(*rp.warnings, note))
            else:
                note = replace(note, message=note.message + " (--include-foreign to take it)")
                rp = replace(rp, blockers=(*rp.blockers, note))
        plans.append(rp)
    if config.billing.cancel_pending_orders:
        for order in orders:
            if order not in seen_orders:
                seen_orders.add(order)
                urn = f"order:{order}"
                pre.append(
                    Step(
                        id=step_id(scope, urn, StepKind.CANCEL_PENDING_ORDER, order),
                        kind=StepKind.CANCEL_PENDING_ORDER,
                        urn=urn,
                        order_id=order,
                    )
                )

    by_urn = {rp.resource.urn: rp for rp in plans}
    # A parent that carries deletedWith children destroys them: it waits for their backups, and
    # they wait for its destroy (which is theirs).
    for child, parent in carried.items():
        p_rp, c_rp = by_urn[parent], by_urn[child]
        if p_rp.destroy is None or c_rp.destroy is None:
            continue
        parent_destroy = p_rp.destroy.id
        by_urn[parent] = replace(
            p_rp,
            carries=(*p_rp.carries, child),
            destroy=replace(
                p_rp.destroy, after=p_rp.destroy.after + tuple(s.id for s in c_rp.backups)
            ),
        )
        by_urn[child] = replace(
            c_rp, destroy=replace(c_rp.destroy, after=(*c_rp.destroy.after, parent_destroy))
        )
    destroy_ids = {u: rp.destroy.id for u, rp in by_urn.items() if rp.destroy is not None}
    cancel_ids = {s.order_id: s.id for s in pre}
    ordered: list[ResourcePlan] = []
    for rp in (by_urn[r.urn] for r in resources):
        if rp.destroy is not None and rp.action is not DestroyAction.WITH_PARENT:
            # A resource in an unpaid order cannot be unsubscribed (R3): cancel the order first.
            extra = tuple(
                cancel_ids[o] for o in rp.resource.billing.pending_order_ids if o in cancel_ids
            ) + tuple(
                destroy_ids[u]
                for u in must_follow[rp.resource.urn]
                if u in destroy_ids and carried.get(u) != rp.resource.urn
            )
            if extra:
                rp = replace(rp, destroy=replace(rp.destroy, after=rp.destroy.after + extra))
        ordered.append(rp)
    return Plan(
        scope=scope, resources=tuple(_block_cycles(ordered)), pre=tuple(pre), skipped=tuple(skipped)
    )


def _block_cycles(plans: list[ResourcePlan]) -> list[ResourcePlan]:
    """A destroy order with a cycle can never run: each resource on it gets a blocker that
    names the whole cycle (``a -> b -> a``)."""
    by_step = {rp.destroy.id: rp for rp in plans if rp.destroy is not None}
    edges = {
        sid: [a for a in rp.destroy.after if a in by_step]
        for sid, rp in by_step.items()
        if rp.destroy is not None
    }
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in edges:
        if node not in state:
            visit(node)
    if not cycles:
        return plans
    blocked: dict[str, list[Blocker]] = {}
    for cycle in cycles:
        names = " -> ".join(by_step[s].resource.name for s in reversed(cycle))
        for sid in set(cycle):
            urn = by_step[sid].resource.urn
            blocked.setdefault(urn, []).append(
                Blocker(
                    "dependency_cycle",
                    f"the destroy order has a cycle: {names} (each must go before the next); "
                    "break it in the stack, or leave one of them out",
                    urn,
                )
            )
    return [
        replace(rp, blockers=(*rp.blockers, *blocked[rp.resource.urn]))
        if rp.resource.urn in blocked
        else rp
        for rp in plans
    ]


def _classify(r: Resource, config: Config) -> Resource:
    """Apply ``[types] stateless``. Known data kinds keep their backups: use accept_loss."""
    if r.type in config.types.stateless and r.kind not in DATA_KINDS:
        return replace(r, kind=Kind.STATELESS)
    return r


def _loss_accepted(r: Resource, config: Config) -> bool:
    return r.urn in config.types.accept_loss or r.name in config.types.accept_loss


def _destroy_action(r: Resource, config: Config) -> DestroyAction:
    prepaid = r.billing.mode is BillingMode.PRE_PAID
    if r.kind is Kind.VOLUME and r.parent and config.billing.attached_disks == "keep":
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


def _plan_resource(
    r: Resource,
    config: Config,
    scope: str,
    now: datetime | None,
    keep: bool = False,
    with_parent: bool = False,
) -> ResourcePlan:
    if r.retain:
        action = DestroyAction.RETAIN
    elif keep:
        action = DestroyAction.KEEP
    elif with_parent:
        action = DestroyAction.WITH_PARENT
    else:
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
    warnings: list[Blocker] = []
    # A lock or a freeze is the cloud's current state and may be lifted: it does not stop the
    # plan; the unsubscribe will be refused with the next step to take (and can be resumed).
    if r.billing.locked:
        warnings.append(
            Blocker(
                "locked",
                f"{r.name} ({r.urn}) is locked by order {r.billing.lock_order_id or '?'}: "
                "contact Huawei Cloud support to unlock it, then resume the run",
                r.urn,
            )
        )
    if r.billing.frozen and action is DestroyAction.UNSUBSCRIBE:
        warnings.append(
            Blocker(
                "frozen",
                f"{r.name} ({r.urn}) is frozen and cannot be unsubscribed: settle the account or "
                "contact support, then resume the run",
                r.urn,
            )
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
    kept = action in (DestroyAction.KEEP, DestroyAction.RETAIN)
    if r.kind in DATA_KINDS and not accepted and not kept:
        # A kept-to-expiry resource is released at expiry, so it needs the same surviving
        # backups as one destroyed now; EVS snapshots never qualify (they die with the disk).
        snap = config.backup.snapshot
        if SURVIVES_DESTROY[snap]:
            step = backup_step(scope, r, StepKind.SNAPSHOT, snap.value, f"snapshot:{snap.value}")
            backups.append(replace(step, snapshot=snap))
        if r.kind is Kind.SERVER:
            for rule in config.backup.pull:
                if _matches(rule, r):
                    paths = rule.paths
                    if rule.paths_from_tag:
                        tagged = r.tag(rule.paths_from_tag) or ""
                        paths += tuple(p for p in tagged.split(";") if p)
                    for p in paths:
                        why = bad_name(root_of(p))
                        if why:
                            block(
                                "bad_pull_path",
                                f"{r.name}: pull rule {rule.name!r} path {p!r}: {why}",
                            )
                    if not paths:
                        block(
                            "no_pull_paths",
                            f"{r.name}: pull rule {rule.name!r} takes its paths from tag "
                            f"{rule.paths_from_tag!r}, which the server does not have",
                        )
                        continue
                    for root in excluded_roots(paths, rule.excludes):
                        block(
                            "excludes_everything",
                            f"{r.name}: pull rule {rule.name!r} excludes everything under "
                            f"{root} ({', '.join(rule.excludes)}): it would copy nothing; "
                            "narrow the excludes",
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
                    backups.append(replace(step, pull=spec))
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
    if action is DestroyAction.RETAIN:
        pass  # the engine keeps it in the cloud; so does teardown (it keeps billing)
    elif action is DestroyAction.KEEP:
        if r.billing.auto_renew and config.billing.cancel_auto_renew:
            billing.append(
                Step(
                    id=step_id(scope, r.urn, StepKind.CANCEL_AUTO_RENEW),
                    kind=StepKind.CANCEL_AUTO_RENEW,
                    urn=r.urn,
                )
            )
    elif action is DestroyAction.KEEP_TO_EXPIRY:
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
            delete_volumes=_delete_volumes(r, backups, accepted),
        )
        if prepaid and action is not DestroyAction.WITH_PARENT:
            billing.append(
                Step(
                    id=step_id(scope, r.urn, StepKind.RECORD_REFUND),
                    kind=StepKind.RECORD_REFUND,
                    urn=r.urn,
                    after=(destroy.id,),
                )
            )
    estimate = None
    if now is not None and prepaid and r.billing.payments:
        estimate, refusal = _estimate(r, action, config, now)
        if refusal is not None:
            block(refusal[0], refusal[1])
        fee_cap = config.billing.max_fee
        if estimate is not None and fee_cap is not None and estimate.fee > fee_cap:
            block(
                "max_fee",
                f"{r.name}: estimated handling fee {estimate.fee} CNY is above billing.max_fee = "
                f"{fee_cap} CNY (estimated refund {estimate.refund} CNY); "
                'raise max_fee, or keep it to expiry (billing.prepaid = "keep_to_expiry")',
            )
    return ResourcePlan(
        resource=r,
        action=action,
        backups=tuple(backups),
        destroy=destroy,
        billing=tuple(billing),
        blockers=tuple(blockers),
        loss_accepted=accepted,
        estimate=estimate,
        warnings=tuple(warnings),
    )


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


def _estimate(
    r: Resource, action: DestroyAction, config: Config, now: datetime
) -> tuple[Estimate | None, tuple[str, str] | None]:
    """A refund estimate from the published rules, or the rule that refuses the unsubscribe."""
    b = r.billing
    sub = Subscription(
        resource_id=r.cloud_id or r.urn,
        provisioned_at=b.provisioned_at or b.payments[0].effective,
        payments=b.payments,
        is_main=b.is_main,
        bound_children=b.children,
        blockers=frozenset(x for x in b.refusals if x in BLOCKER_CODES),
        locked_by_order=b.lock_order_id if b.locked else None,
    )
    next_charge = (
        auto_renew_charge_at(b.expires_at, RULES) if b.auto_renew and b.expires_at else None
    )
    try:
        if action in (DestroyAction.UNSUBSCRIBE, DestroyAction.PULUMI):
            quote = quote_unsubscribe(sub, now, config.billing.five_day_quota_used, RULES)
        elif action is DestroyAction.KEEP_TO_EXPIRY and any(p.effective > now for p in b.payments):
            quote = quote_renewal_unsubscribe(sub, now)
        else:
            return Estimate(
                Decimal(0),
                Decimal(0),
                Decimal(0),
                False,
                Decimal(0),
                "kept: nothing is refunded",
                next_charge,
            ), None
    except RuleRefusal as e:
        if e.reason in ("locked", "frozen"):
            return None, None  # already blocked with the next step to take
        return None, (e.reason or "refused", f"{r.name}: {e.message} ({e.code})")
    return (
        Estimate(
            refund=quote.refund,
            consumed=quote.consumed,
            fee=quote.fee,
            five_day=quote.five_day,
            coupons_lost=quote.coupons_lost,
            explanation=quote.explanation,
            next_charge=next_charge,
        ),
        None,
    )
