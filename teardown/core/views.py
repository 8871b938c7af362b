"""JSON-ready views of core data, shared by the CLI's text and JSON output."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from teardown.core.model import (
    SURVIVES_DESTROY,
    DestroyAction,
    Plan,
    ResourcePlan,
    Step,
    StepKind,
)

PLAN_SCHEMA_VERSION = 1


def _step_view(step: Step) -> dict[str, Any]:
    view: dict[str, Any] = {"id": step.id, "kind": step.kind.value}
    if step.snapshot is not None:
        view["snapshot"] = step.snapshot.value
        view["retention_days"] = step.retention_days
    if step.pull is not None:
        view["pull"] = {
            "name": step.pull.name,
            "paths": list(step.pull.paths),
            "excludes": list(step.pull.excludes),
            "before": len(step.pull.before),
            "after": len(step.pull.after),
            "method": step.pull.method.value,
            "allow_empty": step.pull.allow_empty,
            "accept_refused": list(step.pull.accept_refused),
        }
    if step.action is not None:
        view["action"] = step.action.value
    if step.order_id is not None:
        view["order_id"] = step.order_id
    if step.after:
        view["after"] = list(step.after)
    if step.expect is not None:
        view["copy_of"] = {
            "account": step.expect.account,
            "resource_id": step.expect.resource_id,
            "created_at": step.expect.created_at,
            "settings": step.expect.spec,
        }
    if step.kind is StepKind.DESTROY:
        view["delete_volumes"] = step.delete_volumes
    return view


def _estimate_view(rp: ResourcePlan) -> dict[str, Any] | None:
    e = rp.estimate
    if e is None:
        return None
    return {
        "refund": str(e.refund),
        "consumed": str(e.consumed),
        "fee": str(e.fee),
        "five_day_full_refund": e.five_day,
        "coupons_lost": str(e.coupons_lost),
        "currency": "CNY",
        "explanation": e.explanation,
        "next_auto_renew_charge": e.next_charge.isoformat() if e.next_charge else None,
        "next_auto_renew_amount": str(e.next_charge_amount) if e.next_charge_amount else None,
        "assumptions": list(e.assumptions),
        "may_be_refused": e.may_be_refused or None,
        "worst_fee": str(e.worst_fee) if e.worst_fee is not None else None,
        "is_estimate": True,
    }


def resource_view(rp: ResourcePlan) -> dict[str, Any]:
    """One resource of the plan: identity, billing facts and actions, backups, destroy, blockers."""
    r = rp.resource
    b = r.billing
    return {
        "urn": r.urn,
        "type": r.type,
        "kind": r.kind.value,
        "name": r.name,
        "cloud_id": r.cloud_id,
        "billing": {
            "mode": b.mode.value,
            "order_id": b.order_id,
            "expires_at": b.expires_at.isoformat() if b.expires_at else None,
            "auto_renew": b.auto_renew,
            "pending_orders": list(b.pending_order_ids),
            "actions": [_step_view(s) for s in rp.billing],
            "estimate": _estimate_view(rp),
        },
        "disks": [
            {"id": d.id, "size_gb": d.size_gb, "system": d.system, "bound": d.bound}
            for d in r.disks
        ],
        "backups": [_step_view(s) for s in rp.backups],
        "covered_by": rp.covered_by,
        "loss_accepted": rp.loss_accepted,
        "destroy": {
            "action": rp.action.value,
            "step": _step_view(rp.destroy) if rp.destroy else None,
        },
        "blockers": [{"code": x.code, "message": x.message} for x in rp.blockers],
        "carries": list(rp.carries),
        "warnings": [{"code": x.code, "message": x.message} for x in rp.warnings],
        "notes": list(rp.notes),
        "if_refused": [_step_view(s) for s in rp.fallback],
    }


def plan_view(plan: Plan) -> dict[str, Any]:
    """The whole plan as the ``teardown plan --json`` document."""
    return {
        "schema_version": PLAN_SCHEMA_VERSION,
        "scope": plan.scope,
        "blocked": plan.blocked,
        "pre": [_step_view(s) for s in plan.pre],
        "resources": [resource_view(rp) for rp in plan.resources],
        "skipped": list(plan.skipped),
        "totals": plan_totals(plan),
    }


def backup_storage(plan: Plan, gb_month: Decimal) -> dict[str, Any]:
    """What the plan's cloud backups will take while kept: each backup with the size of the
    disks it copies (an upper bound: the cloud stores what is used) and its retention. The
    vaults that hold them bill by their capacity at ``gb_month`` per GB (``billing.prices``)
    whatever they hold: the caller adds them (an estimate)."""
    items: list[dict[str, Any]] = []
    total = 0
    for rp in plan.resources:
        for s in rp.backups:
            if s.kind is not StepKind.SNAPSHOT or s.snapshot is None:
                continue
            if not SURVIVES_DESTROY[s.snapshot]:
                continue
            sizes = [d.size_gb for d in rp.resource.disks]
            known = bool(sizes) and all(x is not None for x in sizes)
            gb = sum(x or 0 for x in sizes) if known else None
            total += gb or 0
            items.append(
                {
                    "name": rp.resource.name,
                    "kind": s.snapshot.value,
                    "retention_days": s.retention_days,
                    "at_most_gb": gb,
                    "covers": [
                        c.resource.name for c in plan.resources if c.covered_by == rp.resource.urn
                    ],
                }
            )
    return {
        "backups": items,
        "at_most_gb": total,
        "price_per_gb_month": str(gb_month),
        "is_estimate": True,
    }


def plan_totals(plan: Plan) -> dict[str, str]:
    """The money of the whole plan (estimates): refunds, fees, the worst case of the fees,
    consumption, coupons lost, and what keeps billing by policy."""
    refund = fee = worst = consumed = coupons = Decimal(0)
    may_be_refused = 0
    for rp in plan.resources:
        e = rp.estimate
        if e is None or rp.action in (DestroyAction.KEEP, DestroyAction.RETAIN):
            continue
        refund += e.refund
        fee += e.fee
        worst += e.worst_fee if e.worst_fee is not None else e.fee
        consumed += e.consumed
        coupons += e.coupons_lost
        may_be_refused += bool(e.may_be_refused)
    return {
        "estimated_refund": str(refund),
        "estimated_fee": str(fee),
        "worst_case_fee": str(worst),
        "consumed": str(consumed),
        "coupons_lost": str(coupons),
        "may_be_refused": str(may_be_refused),
        "currency": "CNY",
    }
