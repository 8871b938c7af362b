"""The report of a run (also a partial one): JSON for machines, Markdown for people.

Built only from the journal (what was recorded), never from memory: a report written after a
crash and a resume says the same as one written by an uninterrupted run.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from teardown.core.model import Artifact, BillingMode, DestroyAction, ResourcePlan, Step
from teardown.core.phases import Phase
from teardown.core.text import printable
from teardown.core.views import resource_view
from teardown.engine.codec import plan_from_json
from teardown.engine.journal import Journal
from teardown.engine.report_html import pull_notes, render_html
from teardown.engine.status import run_status

REPORT_SCHEMA_VERSION = 1


def _still_billing(rp: ResourcePlan, phase: str) -> str | None:
    mode = rp.resource.billing.mode
    if mode in (BillingMode.FREE, BillingMode.UNKNOWN):
        return None
    if rp.action is DestroyAction.RETAIN:
        return "keeps billing (retainOnDelete: never destroyed by teardown or Pulumi)"
    if rp.action is DestroyAction.KEEP:
        return 'kept by policy (billing.attached_disks = "keep")'
    if rp.action is DestroyAction.KEEP_TO_EXPIRY:
        until = rp.resource.billing.expires_at
        return f"kept until it expires{f' on {until:%Y-%m-%d}' if until else ''}"
    if phase not in (Phase.DONE.value, Phase.DESTROYED.value, Phase.CLOSING.value):
        return "not destroyed in this run"
    return None


def _next_step(res: dict[str, Any], rp: ResourcePlan) -> str | None:
    if res["phase"] == Phase.BLOCKED.value:
        return "; ".join(b.message for b in rp.blockers)
    errors = [
        s["error"]
        for s in [*res["backups"], res["destroy"], *res["billing"]]
        if isinstance(s, dict) and s.get("error")
    ]
    if res["phase"] == Phase.FAILED.value:
        why = errors[-1] if errors else res["detail"]
        return f"{why}. Fix the cause, then `teardown resume {{run}} --profile ...` continues."
    return None


def _left_by_unfinished(journal: Journal, scope: str, run_id: str) -> list[dict[str, Any]]:
    """What other unfinished runs of the scope left billing: a new report never hides them."""
    out = []
    for rec in journal.unfinished_runs(scope):
        if rec.id == run_id:
            continue
        plan = plan_from_json(rec.plan_json, f"journal run {rec.id}")
        phases = journal.resource_phases(rec.id)
        for rp in plan.resources:
            phase = phases.get(rp.resource.urn, Phase.PLANNED).value
            why = _still_billing(rp, phase)
            if why:
                out.append(
                    {
                        "name": rp.resource.name,
                        "urn": rp.resource.urn,
                        "billing": rp.resource.billing.mode.value,
                        "why": f"left by unfinished run {rec.id}: {why} "
                        f"(`teardown resume {rec.id}` finishes it)",
                    }
                )
    return out


def _backup_entry(b: dict[str, Any], step: Step, art: Artifact | None) -> dict[str, Any]:
    """One backup of a resource as the report shows it: its status, rule and what it made."""
    entry: dict[str, Any] = {"kind": b["kind"], "status": b["status"]}
    if step.pull is not None:
        entry["rule"] = step.pull.name
        entry["paths"] = list(step.pull.paths)
    if b.get("error"):
        entry["error"] = b["error"]
    if b.get("reused_from"):
        entry.update(reused_from=b["reused_from"], made_at=b["made_at"])
        entry["reuse_note"] = b["reuse_note"]
    if art is not None:
        entry.update(
            {
                "type": art.kind,
                "ref": art.ref,
                "bytes": art.size,
                "sha256": art.sha256,
                "detail": art.detail,
                "copy_of": b["artifact"]["copy_of"],
            }
        )
        if art.files is not None:
            entry["files"] = art.files
        if art.refused:
            entry["refused"] = list(art.refused)
    return entry


def build_report(journal: Journal, run_id: str, *, refund_arrival: str = "") -> dict[str, Any]:
    """Everything a person needs after a run, as one JSON-ready document. ``refund_arrival``
    is the cloud's word on where refunds go and when (its provider's ``refund_arrival``)."""
    status = run_status(journal, run_id)
    plan = plan_from_json(journal.run(run_id).plan_json, f"journal run {run_id}")
    by_urn = {rp.resource.urn: rp for rp in plan.resources}
    artifacts = journal.artifacts(run_id)
    resources = []
    totals = {
        "estimated_refund": Decimal(0),
        "recorded_refund": Decimal(0),
        "recorded_fee": Decimal(0),
        "recorded_consumed": Decimal(0),
    }
    still = []
    for res in status["resources"]:
        rp = by_urn[res["urn"]]
        view = resource_view(rp)
        backups = [
            _backup_entry(b, step, artifacts.get(b["id"]))
            for b, step in zip(res["backups"], rp.backups, strict=True)
        ]
        recorded = [b["refund"] for b in res["billing"] if "refund" in b]
        for r in recorded:
            totals["recorded_refund"] += Decimal(r["refund"])
            totals["recorded_fee"] += Decimal(r["fee"])
            totals["recorded_consumed"] += Decimal(r["consumed"])
        if rp.estimate is not None and rp.action is not DestroyAction.KEEP:
            totals["estimated_refund"] += rp.estimate.refund
        billing_reason = _still_billing(rp, res["phase"])
        if billing_reason:
            still.append(
                {
                    "name": rp.resource.name,
                    "urn": rp.resource.urn,
                    "billing": rp.resource.billing.mode.value,
                    "why": billing_reason,
                }
            )
        next_step = _next_step(res, rp)
        resources.append(
            {
                "name": rp.resource.name,
                "urn": rp.resource.urn,
                "kind": rp.resource.kind.value,
                "billing_mode": rp.resource.billing.mode.value,
                "phase": res["phase"],
                "action": rp.action.value,
                "backups": backups,
                "destroy": res["destroy"],
                "billing": res["billing"],
                "estimate": view["billing"]["estimate"],
                "refunds": recorded,
                "next_step": next_step.replace("{run}", run_id) if next_step else None,
            }
        )
    still += _left_by_unfinished(journal, status["scope"], run_id)
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "run_id": run_id,
        "scope": status["scope"],
        "phase": status["phase"],
        "created_at": status["created_at"],
        "updated_at": status["updated_at"],
        "pending_orders": status["pre"],
        "resources": resources,
        "money": {k: str(v) for k, v in totals.items()} | {"currency": "CNY"},
        "refund_arrival": refund_arrival,
        "still_billing": still,
    }


def _cell(text: str) -> str:
    """A Markdown table cell: a ``|`` in a name would start another column."""
    return text.replace("|", "\\|")


def _money(x: str) -> str:
    return f"{Decimal(x):,.2f}"


def _backup_cell(b: dict[str, Any]) -> str:
    kind = b.get("type", b["kind"])
    size = b.get("bytes") or 0
    reused = f", {b['reuse_note']}" if b.get("reuse_note") else ""
    if not size:
        files = f" ({b['files']} files)" if b.get("files") == 0 else ""
        return f"{kind} {b['status']}{files}{reused}"
    if kind == "pull":
        return f"{kind} {b['status']} ({size:,} bytes, sha256 verified{reused})"
    return f"{kind} {b['status']} ({size / 2**30:,.0f} GiB of disks{reused})"


def render_markdown(report: dict[str, Any]) -> str:
    """A page a person can read at a glance (also fits a pipeline's job summary)."""
    lines = [
        f"# teardown run {report['run_id']}",
        "",
        f"Scope **{report['scope']}**: **{report['phase'].replace('_', ' ')}**.",
        "",
        "| resource | kind | billing | backups | destroy | refund (recorded) | state |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["resources"]:
        backups = ", ".join(_backup_cell(b) for b in r["backups"]) or "none needed"
        refund = ", ".join(_money(x["refund"]) for x in r["refunds"]) or "-"
        destroy = f"{r['action']}: {r['destroy'].get('status', 'not planned')}"
        lines.append(
            f"| {_cell(r['name'])} | {r['kind']} | {r['billing_mode']} | {_cell(backups)} | "
            f"{destroy} | "
            f"{refund} | {r['phase']} |"
        )
    m = report["money"]
    lines += [
        "",
        "## Money",
        "",
        f"- Estimated refunds: {_money(m['estimated_refund'])} CNY (computed from the published "
        "rules before acting).",
        f"- Recorded refunds: {_money(m['recorded_refund'])} CNY, after handling fees of "
        f"{_money(m['recorded_fee'])} CNY and consumption of {_money(m['recorded_consumed'])} CNY "
        "(read from the refund orders).",
    ]
    if report["refund_arrival"]:
        lines.append(f"- {report['refund_arrival']}")
    for r in report["resources"]:
        for x in r["refunds"]:
            lines.append(
                f"- {r['name']}: refund {_money(x['refund'])}, fee {_money(x['fee'])}, consumed "
                f"{_money(x['consumed'])} (orders {', '.join(x['orders'])})"
            )
    cancelled = [p for p in report["pending_orders"] if p["status"] == "succeeded"]
    if report["pending_orders"]:
        lines += ["", "## Orders pending payment", ""]
        lines += [
            f"- order {p.get('order_id', p['id'])}: "
            f"{'cancelled' if p in cancelled else p['status']}"
            for p in report["pending_orders"]
        ]
    notes = pull_notes(report)
    if notes:
        lines += ["", "## Pulls: refused entries and empty rules", ""]
        lines += [f"- {n}" for n in notes]
    lines += ["", "## Still billing", ""]
    lines += [f"- {s['name']} ({s['billing']}): {s['why']}" for s in report["still_billing"]] or [
        "- nothing in scope"
    ]
    todo = [r for r in report["resources"] if r["next_step"]]
    if todo:
        lines += ["", "## What a person must do", ""]
        lines += [f"- **{r['name']}**: {r['next_step']}" for r in todo]
    # Names and messages come from a cloud or a host: each line shows them, never obeys them.
    return "\n".join(printable(line) for line in lines) + "\n"


def write_report(
    report: dict[str, Any], directory: Path, timeline: list[dict[str, Any]] | None = None
) -> tuple[Path, Path, Path]:
    """Write ``report.json``, ``report.md`` and ``report.html`` (owner-only) into ``directory``.

    ``timeline``: the resource phase changes for the HTML page (``timeline_from_events``).
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = (directory / "report.json", directory / "report.md", directory / "report.html")
    bodies = (
        json.dumps(report, indent=2, sort_keys=True),
        render_markdown(report),
        render_html(report, timeline or []),
    )
    for path, body in zip(paths, bodies, strict=True):
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body)
    return paths


__all__ = ["REPORT_SCHEMA_VERSION", "build_report", "render_markdown", "write_report"]
