"""The planner: resources + config -> plan. Pure: no I/O, no clock, deterministic ids.

:func:`make_plan` checks the scope, plans each resource (:mod:`teardown.core.resource_plan`),
adds the cancellation of orders pending payment, and orders the destroys (dependents first, a
disk after its server, ``deletedWith`` children with their parent); a cycle blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from fnmatch import fnmatchcase

from teardown.core.config import Config, DestroyMethod
from teardown.core.errors import BlastRadiusExceeded, ResourceRefused, ScopeRefused
from teardown.core.model import (
    DATA_KINDS,
    SURVIVES_DESTROY,
    Blocker,
    DestroyAction,
    Kind,
    Plan,
    Resource,
    ResourcePlan,
    Step,
    StepKind,
)
from teardown.core.resource_plan import (
    Cover,
    Estimator,
    backup_step,
    choose_action,
    expected_origin,
    plan_resource,
    pull_spec_digest,
    step_id,
)
from teardown.core.text import fold as basic_fold

SCOPE_TAG = "teardown:scope"
"""A resource tagged with another scope's name belongs to that scope."""

Fold = Callable[[str], str]


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
    estimator: Estimator | None = None,
) -> Plan:
    """Plan the teardown of ``resources``.

    Raises ScopeRefused or BlastRadiusExceeded before looking at any resource. Resources that
    cannot proceed get blockers (the plan is then ``blocked``); nothing is silently dropped.
    With ``now`` and the cloud's ``estimator``, prepaid resources get refund estimates (and
    ``max_fee`` is enforced); ``orders`` are account-level orders pending payment to cancel
    first. Resources of ``keep_kinds`` are left alone (e.g. a stack's network, when servers are
    destroyed through the cloud API and the rest is left for ``pulumi destroy``). A resource
    tagged for another scope (``foreign``; ``selectors`` are the tags the targets were chosen
    by) is a blocker, or a warning with ``include_foreign``. Names and tags are compared after
    ``fold``.
    """
    check_scope(scope, config, fold)
    population = len(resources) + len(skipped)
    if len(resources) > config.scope.max_resources:
        raise BlastRadiusExceeded(config.scope.max_resources, len(resources), population)
    check_tags(resources, config, fold)

    resources = [_classify(r, config) for r in resources]
    # deletedWith: the child is destroyed once, by its parent's destroy (when the parent is
    # here and is destroyed by this plan).
    destroyed = {r.urn for r in resources if not r.retain and r.kind not in keep_kinds}
    carried = {
        r.urn: r.deleted_with
        for r in resources
        if r.deleted_with in destroyed and r.deleted_with != r.urn and r.urn in destroyed
    }
    if config.destroy.method is DestroyMethod.PULUMI:
        carried.update(_copies_carried(resources, destroyed))
    plans: list[ResourcePlan] = []
    planned: dict[str, ResourcePlan] = {}
    for r in _parents_first(resources):
        parent = planned.get(r.parent or "")
        kept_with = parent is not None and parent.destroy is None and r.urn not in carried
        rp = plan_resource(
            r,
            config,
            scope,
            now,
            keep=r.kind in keep_kinds or (kept_with and _goes_on_its_own(r, config)),
            with_parent=r.urn in carried,
            estimator=estimator,
            covered_by=_cover(r, parent),
        )
        if kept_with and parent is not None and rp.action is DestroyAction.KEEP:
            rp = replace(rp, notes=(*rp.notes, f"kept with {parent.resource.name}, which stays"))
        planned[r.urn] = rp
    for r in resources:
        rp = planned[r.urn]
        why = foreign(r, scope, selectors, fold)
        if why is not None:
            note = Blocker("foreign", f"{why}: it belongs to another scope", r.urn)
            if include_foreign:
                rp = replace(rp, warnings=(*rp.warnings, note))
            else:
                note = replace(note, message=note.message + " (--include-foreign to take it)")
                rp = replace(rp, blockers=(*rp.blockers, note))
        plans.append(rp)
    pre = _order_cancellations(resources, orders, config, scope)
    by_urn = _carry(plans, carried)
    ordered = _order_destroys(resources, by_urn, carried, pre)
    return Plan(
        scope=scope, resources=tuple(_block_cycles(ordered)), pre=tuple(pre), skipped=tuple(skipped)
    )


def _copies_carried(resources: Sequence[Resource], destroyed: set[str]) -> dict[str, str]:
    """Old copies of replaced resources (``pending_delete``), keyed ``<URN>#...`` beside their
    live replacement (docs/pulumi-state.md) -> that URN: a Pulumi destroy of the URN also
    deletes its copies, so the live resource's destroy carries them and waits for their
    backups, as for deletedWith."""
    out: dict[str, str] = {}
    for r in resources:
        live = r.urn.split("#", 1)[0]
        if r.pending_delete and live != r.urn and live in destroyed and r.urn in destroyed:
            out[r.urn] = live
    return out


def _parents_first(resources: Sequence[Resource]) -> list[Resource]:
    """The resources with every parent (a disk's or a public IP's server) before its
    children, otherwise in the order they came."""
    urns = {r.urn for r in resources}
    first = [r for r in resources if r.parent not in urns]
    return first + [r for r in resources if r.parent in urns]


def _goes_on_its_own(r: Resource, config: Config) -> bool:
    """A child of a server that stays would be deleted on its own (a pay-per-use disk or public
    IP): keep it with its server instead (deleting an attached disk or the address of a
    running server is not what keeping the server means)."""
    return r.kind in (Kind.VOLUME, Kind.ADDRESS) and _kind_action(r, config) is DestroyAction.DELETE


def _kind_action(r: Resource, config: Config) -> DestroyAction:
    return choose_action(r, config, keep=False, with_parent=False)


def _cover(r: Resource, parent: ResourcePlan | None) -> Cover | None:
    """A separately bought disk attached to a server whose whole-server cloud backup holds its
    disks: that backup covers it (no second backup of the same disk)."""
    if r.kind is not Kind.VOLUME or parent is None or parent.resource.kind is not Kind.SERVER:
        return None
    if not any(d.id == r.cloud_id and not d.system for d in parent.resource.disks):
        return None
    steps = tuple(
        s.id
        for s in parent.backups
        if s.kind is StepKind.SNAPSHOT and s.snapshot is not None and SURVIVES_DESTROY[s.snapshot]
    )
    return Cover(urn=parent.resource.urn, steps=steps) if steps else None


def _order_cancellations(
    resources: Sequence[Resource], orders: Sequence[str], config: Config, scope: str
) -> list[Step]:
    """One step per order pending payment (the resources', then the account's), each once;
    none when ``billing.cancel_pending_orders`` is off."""
    if not config.billing.cancel_pending_orders:
        return []
    pre: list[Step] = []
    seen: set[str] = set()
    owned = [(r.urn, o) for r in resources for o in r.billing.pending_order_ids]
    for urn, order in [*owned, *((f"order:{o}", o) for o in orders)]:
        if order not in seen:
            seen.add(order)
            pre.append(
                Step(
                    id=step_id(scope, urn, StepKind.CANCEL_PENDING_ORDER, order),
                    kind=StepKind.CANCEL_PENDING_ORDER,
                    urn=urn,
                    order_id=order,
                )
            )
    return pre


def _carry(plans: list[ResourcePlan], carried: dict[str, str]) -> dict[str, ResourcePlan]:
    """A parent that carries deletedWith children destroys them: it waits for their backups,
    and they wait for its destroy (which is theirs)."""
    by_urn = {rp.resource.urn: rp for rp in plans}
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
    return by_urn


def _order_destroys(
    resources: Sequence[Resource],
    by_urn: dict[str, ResourcePlan],
    carried: dict[str, str],
    pre: Sequence[Step],
) -> list[ResourcePlan]:
    """Each destroy after the cancellation of its unpaid orders (an order pending payment
    blocks an unsubscribe), after the destroys of everything that depends on it, and a disk's
    after its server's; in the order the resources came."""
    urns = {r.urn for r in resources}
    must_follow: dict[str, list[str]] = {r.urn: [] for r in resources}
    for r in resources:
        for dep in r.dependencies:
            if dep in urns and dep != r.urn:
                must_follow[dep].append(r.urn)
        if r.parent in urns and r.parent != r.urn:
            must_follow[r.urn].append(r.parent)
    destroy_ids = {u: rp.destroy.id for u, rp in by_urn.items() if rp.destroy is not None}
    cancel_ids = {s.order_id: s.id for s in pre}
    ordered: list[ResourcePlan] = []
    for rp in (by_urn[r.urn] for r in resources):
        if rp.destroy is not None and rp.action is not DestroyAction.WITH_PARENT:
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
    return ordered


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


__all__ = [
    "SCOPE_TAG",
    "Estimator",
    "backup_step",
    "check_scope",
    "check_tags",
    "expected_origin",
    "foreign",
    "make_plan",
    "pull_spec_digest",
    "step_id",
]
