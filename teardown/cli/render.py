"""CLI text rendering: rich colour on a terminal, plain text otherwise; NO_COLOR honoured."""

from __future__ import annotations

import os
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

from teardown.core.model import Kind, Plan, Step, StepKind
from teardown.core.text import printable
from teardown.core.views import plan_totals


class QuietConsole(Console):
    """A rich console for which a closed pipe only ends the printing."""

    def on_broken_pipe(self) -> None:
        """Whoever read the stream went away (``| head``): stop printing, but never stop the
        run (rich would exit with 1 here, perhaps before anything was destroyed or reported)."""
        self.quiet = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, (sys.stderr if self.stderr else sys.stdout).fileno())
        os.close(devnull)


class _SafeConsole:
    """A rich console that prints each line with control and formatting characters escaped
    (``core.text.printable``): names and messages from a cloud or a host are shown, never
    interpreted by the terminal."""

    def __init__(self) -> None:
        self._console = QuietConsole(highlight=False, soft_wrap=True)

    def print(self, text: str = "") -> None:
        self._console.print(printable(text))


def _console() -> _SafeConsole:
    return _SafeConsole()


def _describe(step: Step) -> str:
    match step.kind:
        case StepKind.SNAPSHOT:
            if step.snapshot is None:
                return "snapshot"
            kept = f"kept {step.retention_days} days" if step.retention_days else "kept forever"
            return f"{step.snapshot} backup ({kept})"
        case StepKind.PULL:
            assert step.pull is not None
            ex = f", excluding {', '.join(step.pull.excludes)}" if step.pull.excludes else ""
            cmds = f", {len(step.pull.before)} command(s) before" if step.pull.before else ""
            empty = (
                "; may copy no file (allow_empty)"
                if step.pull.allow_empty
                else "; fails if it copies no file"
            )
            refused = (
                f"; entries it may leave out: {', '.join(step.pull.accept_refused)}"
                if step.pull.accept_refused
                else "; fails on any entry it must refuse"
            )
            return (
                f"pull '{step.pull.name}' over SSH ({step.pull.method}): "
                f"{', '.join(step.pull.paths)}{ex}{cmds}{empty}{refused}"
            )
        case StepKind.CANCEL_PENDING_ORDER:
            return f"cancel pending order {step.order_id}"
        case StepKind.UNSUBSCRIBE_RENEWALS:
            return "unsubscribe renewals not yet in effect"
        case StepKind.CANCEL_AUTO_RENEW:
            return "cancel auto-renew"
        case StepKind.KEEP_FROM_PAY_PER_USE:
            return "cancel the switch to pay-per-use at expiry (it then ends at expiry)"
        case StepKind.RECORD_REFUND:
            return "record refund from the unsubscribe orders"
        case StepKind.DESTROY:
            return str(step.action)
    return step.kind.value  # pragma: no cover


def render_plan(
    plan: Plan,
    reusable: dict[str, str] | None = None,
    note: str = "",
    storage: dict[str, Any] | None = None,
) -> None:
    """Per resource: kind, billing mode, backups, destroy action, billing actions, blockers.
    ``reusable``: step id -> ``reused from run X (made at T)`` for backups a run would reuse;
    ``note``: a line under the header (an offline preview says so)."""
    reusable = reusable or {}
    out = _console()
    state = "[bold red]BLOCKED[/]" if plan.blocked else "[green]ready[/]"
    out.print(
        f"Plan for scope [bold]{escape(plan.scope)}[/]: {len(plan.resources)} resources, "
        f"{len(plan.skipped)} skipped (stack, providers): {state}"
    )
    if note:
        out.print(f"[yellow]{escape(note)}[/]")
    for step in plan.pre:
        out.print(f"  first: {escape(_describe(step))}")
    for rp in plan.resources:
        r = rp.resource
        out.print()
        out.print(f"[bold]{escape(r.name)}[/]  {r.kind}  billing {r.billing.mode}")
        out.print(f"  urn       {escape(r.urn)}")
        if rp.loss_accepted:
            backups = "none (loss accepted in config)"
        elif rp.covered_by is not None:
            backups = f"held by the whole-server backup of {_name_of(plan, rp.covered_by)}"
        elif r.kind is Kind.UNKNOWN:
            backups = "cannot tell what to back up (unknown type)"
        else:
            backups = (
                "; ".join(
                    _describe(s)
                    + (f" [{reusable[s.id]}, if still intact]" if s.id in reusable else "")
                    for s in rp.backups
                )
                or "none needed"
            )
        out.print(f"  backups   {escape(backups)}")
        out.print(f"  destroy   {rp.action}")
        billing = "; ".join(_describe(s) for s in rp.billing) or "-"
        out.print(f"  billing   {escape(billing)}")
        if rp.estimate is not None:
            e = rp.estimate
            five = " (5-day full refund)" if e.five_day else ""
            out.print(
                f"  money     estimated refund {e.refund} CNY{five}, consumed {e.consumed}, "
                f"fee {e.fee}"
                + (f", coupons lost {e.coupons_lost}" if e.coupons_lost else "")
                + f"; {escape(e.explanation)}"
            )
            if e.may_be_refused:
                out.print(f"  [yellow]MAY BE REFUSED[/] {escape(e.may_be_refused)}")
            for a in e.assumptions:
                out.print(f"  assumes   {escape(a)}")
            if e.next_charge is not None:
                amount = f" ({e.next_charge_amount} CNY)" if e.next_charge_amount else ""
                out.print(
                    f"  renews    auto-renew would charge on {e.next_charge:%Y-%m-%d %H:%M %Z}"
                    f"{amount}"
                )
        for b in rp.blockers:
            out.print(f"  [red]BLOCKER[/]   {escape(b.message)}")
        for w in rp.warnings:
            out.print(f"  [yellow]WARNING[/]   {escape(w.message)}")
        for n in rp.notes:
            out.print(f"  note      {escape(n)}")
    out.print()
    if storage and storage["backups"]:
        _render_storage(out, storage)
    kept = (storage or {}).get("object_store")
    if kept:
        price = (
            f"{kept['price_per_gb_month']} CNY per GB a month (estimate; the report gives the size)"
            if kept["price_per_gb_month"] is not None
            else "price unknown: set billing.prices.object_storage_gb_month"
        )
        days = kept["retention_days"]
        out.print(
            f"Pulls: {kept['pulls']} kept in {escape(kept['url'])} ({kept['transfer']}"
            + (f", expired after {days} days" if days else ", kept until deleted")
            + f"), {escape(price)}"
        )
    t = plan_totals(plan)
    out.print(
        f"Totals (estimates, CNY): refund {t['estimated_refund']}, handling fees "
        f"{t['estimated_fee']} (worst case {t['worst_case_fee']}), consumed {t['consumed']}, "
        f"coupons lost {t['coupons_lost']}"
        + (
            f"; {t['may_be_refused']} unsubscribe(s) may be refused"
            if t["may_be_refused"] != "0"
            else ""
        )
    )
    if plan.blocked:
        out.print(f"[red]{len(plan.blockers)} blocker(s): nothing will be changed.[/]")


def _render_storage(out: _SafeConsole, storage: dict[str, Any]) -> None:
    """The backups' storage: the vaults they go into and what those cost (estimates)."""
    days = sorted({b["retention_days"] for b in storage["backups"]})
    kept = ", ".join(f"{d} days" if d else "until deleted" for d in days)
    out.print(
        f"Backups: {len(storage['backups'])} cloud backup(s) of at most {storage['at_most_gb']} "
        f"GB, kept {kept}"
    )
    for v in storage.get("vaults", []):
        cap = v.get("capacity_gb")
        room = f"{v['used_gb']:g} of {cap:g} GB used" if cap else f"{v['used_gb']:g} GB used"
        cost = (
            f"about {v['monthly_cost']} CNY a month (estimate at {storage['price_per_gb_month']} "
            "CNY per GB-month)"
            if v.get("monthly_cost")
            else "cost unknown"
        )
        out.print(
            f"  vault     {escape(str(v['name']))} ({escape(str(v['id']))}, {v['object_type']}): "
            f"{room}; bills by its capacity while it exists: {cost}"
        )
        free = v.get("free_gb")
        if free is not None and v["object_type"] == "server" and storage["at_most_gb"] > free:
            out.print(
                f"  [yellow]WARNING[/]   the backups may need up to {storage['at_most_gb']} GB "
                f"and the vault has {free:g} GB free: a backup that does not fit fails "
                "(nothing is destroyed then)"
            )
    if storage.get("vault_error"):
        out.print(f"  vault     [yellow]could not be read[/]: {escape(storage['vault_error'])}")


def _name_of(plan: Plan, urn: str) -> str:
    for rp in plan.resources:
        if rp.resource.urn == urn:
            return rp.resource.name
    return urn


def render_status(view: dict[str, Any]) -> None:
    out = _console()
    out.print(f"Run [bold]{view['run_id']}[/] scope {escape(view['scope'])}: {view['phase']}")
    for res in view["resources"]:
        out.print()
        out.print(f"[bold]{escape(res['name'])}[/]  {res['kind']}  {res['phase']}")
        if res["detail"]:
            out.print(f"  note      {escape(res['detail'])}")
        for b in res["backups"]:
            reused = f" ({b['reuse_note']})" if b.get("reuse_note") else ""
            out.print(f"  backup    {b['kind']}: {b['status']}{escape(reused)}")
        d = res["destroy"]
        out.print(f"  destroy   {d['action']}: {d.get('status', 'not planned')}")
        for b in res["billing"]:
            extra = f" (refund {b['refund']['refund']})" if "refund" in b else ""
            out.print(f"  billing   {b['kind']}: {b['status']}{extra}")
