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

from teardown.core.model import Artifact, BillingMode, DestroyAction, Kind, ResourcePlan, Step
from teardown.core.phases import Phase
from teardown.core.text import printable
from teardown.core.views import resource_view
from teardown.engine.codec import plan_from_json
from teardown.engine.journal import VAULT_FACT, Journal
from teardown.engine.report_html import pull_notes, render_html
from teardown.engine.status import run_status

REPORT_SCHEMA_VERSION = 1


_CHARGING = {
    BillingMode.POST_PAID: "hourly",
    BillingMode.SPOT: "hourly",
    BillingMode.PRE_PAID: "prepaid",
}
"""How a billing mode charges, in the words of ``still_billing`` entries."""


def _still_billing(rp: ResourcePlan, phase: str) -> str | None:
    """Why ``rp`` still bills after the run in ``phase`` (None: it does not)."""
    mode = rp.resource.billing.mode
    if mode in (BillingMode.FREE, BillingMode.UNKNOWN):
        return None
    if rp.action is DestroyAction.RETAIN:
        return "keeps billing (retainOnDelete: never destroyed by teardown or Pulumi)"
    if rp.action is DestroyAction.KEEP:
        why = "; ".join(rp.notes) or "kept by policy"
        return f"kept ({why})"
    if rp.action is DestroyAction.KEEP_TO_EXPIRY:
        until = rp.resource.billing.expires_at
        return f"kept until it expires{f' on {until:%Y-%m-%d}' if until else ''}"
    if phase not in (Phase.DONE.value, Phase.DESTROYED.value, Phase.CLOSING.value):
        return "not destroyed in this run"
    return None


def _kind_word(rp: ResourcePlan) -> str:
    r = rp.resource
    if r.kind is Kind.ADDRESS and r.type.lower().endswith("eip:eip"):
        return "eip"
    return r.kind.value


def _billing_entry(rp: ResourcePlan, res: dict[str, Any], why: str) -> dict[str, Any]:
    """One "still billing" entry: what it is, how it charges, and when it next charges."""
    r, b = rp.resource, rp.resource.billing
    steps = [*res["billing"], *res.get("fallback", ())]
    auto_renew_off = any(
        s["kind"] == "cancel_auto_renew" and s["status"] == "succeeded" for s in steps
    )
    auto_renew = b.auto_renew and not auto_renew_off
    entry: dict[str, Any] = {
        "name": r.name,
        "urn": r.urn,
        "resource_id": r.cloud_id or r.urn,
        "kind": _kind_word(rp),
        "billing": b.mode.value,
        "charging": _CHARGING.get(b.mode, b.mode.value),
        "why": why,
    }
    if b.mode is BillingMode.PRE_PAID:
        entry["expires_at"] = b.expires_at.isoformat() if b.expires_at else None
        entry["auto_renew"] = auto_renew
        if auto_renew_off and b.auto_renew:
            entry["why"] += "; auto-renew turned off in this run"
        est = rp.estimate
        if auto_renew and est is not None and est.next_charge is not None:
            entry["next_charge"] = est.next_charge.isoformat()
            if est.next_charge_amount is not None:
                entry["next_charge_amount"] = str(est.next_charge_amount)
        if b.to_pay_per_use_at_expiry and not any(
            s["kind"] == "keep_from_pay_per_use" and s["status"] == "succeeded" for s in steps
        ):
            entry["why"] += "; switches to pay-per-use at expiry (then bills by the hour)"
    return entry


def vault_month(capacity_gb: float | None, gb_month: Decimal | None) -> str | None:
    """What a vault of ``capacity_gb`` costs a month at ``gb_month`` (None: unknown)."""
    if capacity_gb is None or gb_month is None:
        return None
    return str((Decimal(str(capacity_gb)) * gb_month).quantize(Decimal("0.01")))


def _disks_billing_with(rp: ResourcePlan) -> list[dict[str, Any]]:
    """A pay-per-use server that stays keeps its own disks (system disk, bound data disks),
    which the cloud bills on their own by the hour (a separately bought disk is a resource of
    the plan itself and has its own entry)."""
    r = rp.resource
    if r.kind is not Kind.SERVER or r.billing.mode not in (BillingMode.POST_PAID, BillingMode.SPOT):
        return []
    return [
        {
            "name": f"{r.name} {'system' if d.system else 'data'} disk",
            "urn": r.urn,
            "resource_id": d.id,
            "kind": "volume",
            "billing": r.billing.mode.value,
            "charging": "hourly",
            "why": f"a disk of {r.name}, which stays",
        }
        for d in r.disks
        if d.system or d.bound
    ]


def _vault_entries(fact: dict[str, Any] | None, gb_month: Decimal | None) -> list[dict[str, Any]]:
    """The backup vaults: each bills by its capacity while it exists, whatever it holds."""
    if not fact:
        return []
    base = {"urn": "", "kind": "vault", "billing": "storage", "charging": "storage"}
    if "error" in fact:
        why = f"holds this run's cloud backups; the vaults could not be read: {fact['error']}"
        return [base | {"name": "backup vault", "resource_id": "", "why": why}]
    days = int(fact.get("retention_days") or 0)
    kept = f"backups kept {days} days" if days else "backups kept until deleted"
    out = []
    for v in fact.get("vaults", []):
        used = v.get("used_gb") or 0
        capacity = v.get("capacity_gb")
        size = f"{used:g} of {capacity:g} GB used" if capacity else f"{used:g} GB used"
        entry = base | {
            "name": v.get("name") or v["id"],
            "resource_id": v["id"],
            "size_gb": used,
            "capacity_gb": capacity,
            "retention_days": days,
            "why": f"the {v.get('object_type', 'server')} backup vault ({size}; {kept}); "
            "it bills by its capacity until it is deleted",
        }
        cost = vault_month(capacity, gb_month)
        if cost is not None:
            entry["monthly_cost"] = cost
            entry["monthly_cost_note"] = f"estimate: {capacity:g} GB x {gb_month} per GB-month"
        out.append(entry)
    return out


def _order_entries(pre: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Orders pending payment that this run did not cancel: they bill once paid."""
    return [
        {
            "name": f"order {p.get('order_id')}",
            "urn": "",
            "resource_id": p.get("order_id") or "",
            "kind": "order",
            "billing": "order",
            "charging": "order",
            "why": f"pending payment, not cancelled ({p['status']})",
        }
        for p in pre
        if p.get("status") != "succeeded" and p.get("order_id")
    ]


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
                why = f"left by unfinished run {rec.id}: {why} (`teardown resume {rec.id}`)"
                out.append(_billing_entry(rp, {"billing": [], "fallback": []}, why))
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


def build_report(
    journal: Journal,
    run_id: str,
    *,
    refund_arrival: str = "",
    backup_gb_month: Decimal | None = None,
    public_ip_hour: Decimal | None = None,
    object_storage_gb_month: Decimal | None = None,
) -> dict[str, Any]:
    """Everything a person needs after a run, as one JSON-ready document. ``refund_arrival``
    is the cloud's word on where refunds go and when (its provider's ``refund_arrival``);
    ``backup_gb_month`` the price of backup storage (``billing.prices``), for the estimate of
    what the vault costs a month; ``public_ip_hour`` that of a public IP an hour;
    ``object_storage_gb_month`` that of the object store's storage, for what the run's pulls
    kept there cost a month (``object_store`` in the report: bytes, and the estimate or None
    when the price is unknown)."""
    status = run_status(journal, run_id)
    plan = plan_from_json(journal.run(run_id).plan_json, f"journal run {run_id}")
    by_urn = {rp.resource.urn: rp for rp in plan.resources}
    artifacts = journal.artifacts(run_id)
    resources = []
    totals = {
        "estimated_refund": Decimal(0),
        "estimated_fee": Decimal(0),
        "coupons_lost": Decimal(0),
        "recorded_refund": Decimal(0),
        "recorded_fee": Decimal(0),
        "recorded_consumed": Decimal(0),
        "backups_monthly": Decimal(0),
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
            totals["estimated_fee"] += rp.estimate.fee
            totals["coupons_lost"] += rp.estimate.coupons_lost
        billing_reason = _still_billing(rp, res["phase"])
        if billing_reason:
            entry = _billing_entry(rp, res, billing_reason)
            if entry["kind"] == "eip" and entry["charging"] == "hourly":
                entry["hourly_price"] = str(public_ip_hour) if public_ip_hour else None
            still.append(entry)
            still += _disks_billing_with(rp)
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
    still += _order_entries(status["pre"])
    for vault in _vault_entries(journal.fact(run_id, VAULT_FACT), backup_gb_month):
        still.append(vault)
        totals["backups_monthly"] += Decimal(vault.get("monthly_cost", "0"))
    still += _left_by_unfinished(journal, status["scope"], run_id)
    stored = sum(
        a.size or 0 for a in artifacts.values() if a.verified and a.ref.startswith("s3://")
    )
    object_store: dict[str, Any] | None = None
    if stored:
        monthly = (
            None
            if object_storage_gb_month is None
            else (Decimal(stored) / Decimal(1024**3) * object_storage_gb_month).quantize(
                Decimal("0.01")
            )
        )
        object_store = {
            "bytes": stored,
            "monthly_cost": None if monthly is None else str(monthly),
        }
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "run_id": run_id,
        "object_store": object_store,
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
        f"- Estimated refunds: {_money(m['estimated_refund'])} CNY, handling fees "
        f"{_money(m['estimated_fee'])} CNY, coupons lost {_money(m['coupons_lost'])} CNY "
        "(computed from the published rules before acting).",
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
    lines += [_still_line(s) for s in report["still_billing"]] or ["- nothing in scope"]
    if Decimal(m.get("backups_monthly", "0")):
        lines.append(
            f"- Backup storage: about {_money(m['backups_monthly'])} CNY a month (estimate)."
        )
    kept = report.get("object_store")
    if kept:
        cost = (
            f"about {_money(kept['monthly_cost'])} CNY a month (estimate)"
            if kept["monthly_cost"] is not None
            else "price unknown: set billing.prices.object_storage_gb_month"
        )
        lines.append(f"- Object storage: {kept['bytes']:,} bytes of pulls, {cost}.")
    todo = [r for r in report["resources"] if r["next_step"]]
    if todo:
        lines += ["", "## What a person must do", ""]
        lines += [f"- **{r['name']}**: {r['next_step']}" for r in todo]
    # Names and messages come from a cloud or a host: each line shows them, never obeys them.
    return "\n".join(printable(line) for line in lines) + "\n"


def _still_line(s: dict[str, Any]) -> str:
    """One "still billing" line: what, how it charges, why, and what it costs next."""
    line = f"- {s['name']} ({s['kind']}, {s['charging']}): {s['why']}"
    if s.get("next_charge"):
        amount = f" ({_money(s['next_charge_amount'])} CNY)" if s.get("next_charge_amount") else ""
        line += f"; auto-renew charges on {s['next_charge']}{amount}"
    elif s.get("expires_at") and s.get("auto_renew") is False:
        line += f"; no renewal: it ends when it expires on {s['expires_at'][:10]}"
    if s.get("monthly_cost"):
        line += f"; about {_money(s['monthly_cost'])} CNY a month ({s['monthly_cost_note']})"
    if "hourly_price" in s:
        price = s["hourly_price"]
        line += f"; {price} CNY an hour" if price else "; price unknown (billing.prices)"
    return line


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
