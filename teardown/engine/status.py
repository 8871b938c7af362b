"""What the journal knows about one run, as a JSON-ready view (for ``teardown status``)."""

from __future__ import annotations

from typing import Any

from teardown.core.model import Step
from teardown.core.phases import Phase
from teardown.engine.codec import plan_from_json
from teardown.engine.journal import Journal, StepRecord


def _step_status(step: Step, records: dict[str, StepRecord]) -> dict[str, Any]:
    rec = records.get(step.id)
    view: dict[str, Any] = {
        "id": step.id,
        "kind": step.kind.value,
        "status": rec.status.value if rec else "pending",
        "attempts": rec.attempt if rec else 0,
    }
    if rec and rec.error:
        view["error"] = rec.error
    if rec and rec.result.get("reused_from"):
        view["reused_from"] = rec.result["reused_from"]
        view["made_at"] = rec.result.get("made_at")
        view["reuse_note"] = (
            f"reused from run {rec.result['reused_from']} (made at {rec.result.get('made_at')})"
        )
    if step.order_id is not None:
        view["order_id"] = step.order_id
    return view


def run_status(journal: Journal, run_id: str) -> dict[str, Any]:
    """Run header plus, per resource: phase, backups, destroy, billing and errors."""
    run = journal.run(run_id)
    plan = plan_from_json(run.plan_json, f"journal run {run_id}")
    records = {r.step_id: r for r in journal.steps(run_id)}
    phases = journal.resource_phases(run_id)
    details = journal.resource_details(run_id)
    artifacts = journal.artifacts(run_id)
    refunds = {b.step_id: b.refund for b in journal.billing_records(run_id)}
    resources = []
    for rp in plan.resources:
        urn = rp.resource.urn
        backups = []
        for s in rp.backups:
            v = _step_status(s, records)
            art = artifacts.get(s.id)
            if art is not None:
                v["artifact"] = {
                    "ref": art.ref,
                    "verified": art.verified,
                    "size": art.size,
                    "sha256": art.sha256,
                    "copy_of": {
                        "account": art.origin.account,
                        "resource_id": art.origin.resource_id,
                        "created_at": art.origin.created_at,
                        "settings": art.origin.spec,
                    },
                }
                if art.host_key:
                    v["artifact"]["host_key"] = art.host_key
                if art.files is not None:
                    v["artifact"]["files"] = art.files
                if art.refused:
                    v["artifact"]["refused"] = list(art.refused)
            backups.append(v)
        billing = []
        for s in rp.billing:
            v = _step_status(s, records)
            if s.id in refunds:
                r = refunds[s.id]
                v["refund"] = {
                    "orders": list(r.order_ids),
                    "refund": str(r.refund),
                    "consumed": str(r.consumed),
                    "fee": str(r.fee),
                    "currency": r.currency,
                }
            billing.append(v)
        resources.append(
            {
                "urn": urn,
                "name": rp.resource.name,
                "kind": rp.resource.kind.value,
                "phase": phases.get(urn, Phase.PLANNED).value,
                "detail": details.get(urn, ""),
                "backups": backups,
                "destroy": {
                    "action": rp.action.value,
                    **(_step_status(rp.destroy, records) if rp.destroy else {}),
                },
                "billing": billing,
                "fallback": [_step_status(s, records) for s in rp.fallback],
            }
        )
    return {
        "run_id": run.id,
        "scope": run.scope,
        "phase": run.phase.value,
        "created_at": run.created_at.isoformat(),
        "updated_at": run.updated_at.isoformat(),
        "pre": [_step_status(s, records) for s in plan.pre],
        "resources": resources,
    }
