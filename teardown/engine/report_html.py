"""The report of a run as one self-contained HTML page: readable at a glance, safe to mail around.

No external assets at all (no scripts, fonts, images or style sheets from anywhere): the CSS is
inline and the charts are inline SVG, and a Content-Security-Policy forbids loading anything.

This module prepares what the page shows (texts, numbers, the charts' coordinates); the page
itself, with its colours and styles, is the Jinja2 template ``templates/report.html.j2``. The
environment escapes every value a template prints: control and formatting characters become
visible escapes (``printable``), then autoescape makes the text inert HTML, so a resource name
from the cloud can neither add markup nor forge text.

Example::

    report = build_report(journal, run_id)
    page = render_html(report, timeline_from_events(journal.events(run_id)))
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from jinja2 import Environment, PackageLoader, StrictUndefined

from teardown.core.phases import Phase
from teardown.core.text import printable
from teardown.engine.journal import EventRecord


def _shown(value: object) -> object:
    """What a template prints for ``value``: control and formatting characters written as visible
    escapes, for autoescape to escape next. Markup (a macro's output) has had both already."""
    return value if hasattr(value, "__html__") else printable(value)


_ENV = Environment(
    loader=PackageLoader("teardown.engine", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    finalize=_shown,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_ENV.filters["coord"] = lambda value: f"{value:.1f}"


def template(name: str) -> Any:
    """A page template of ``teardown/engine/templates`` (autoescaped, strict, escapes shown)."""
    return _ENV.get_template(name)


# -- what the page shows --------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One phase of one resource: a bar from its change to the resource's next change."""

    phase: str
    tip: str
    x: float
    width: float
    label: str  # the phase, or "" when the bar is too narrow for it
    label_x: float


@dataclass(frozen=True)
class TimelineRow:
    urn: str
    name: str
    y: int
    bar_y: float
    text_y: float  # the baseline of the row's texts
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Timeline:
    """The phases of each resource over the run, as coordinates in a ``WIDTH`` x ``height`` box."""

    WIDTH: ClassVar[int] = 1100
    LEFT: ClassVar[int] = 210  # where the bars start (the names are left of it)
    CHART: ClassVar[int] = WIDTH - LEFT - 16  # the bars' full width
    RIGHT: ClassVar[int] = LEFT + CHART
    TOP: ClassVar[int] = 8
    ROW: ClassVar[int] = 30
    BAR: ClassVar[int] = 20

    height: int
    axis_y: int
    axis_text_y: int
    rows: tuple[TimelineRow, ...]
    first: str  # the first and the last change (HH:MM:SS), "" when none was recorded
    last: str
    phases: tuple[str, ...]  # for the legend: the known ones in their order, then the others
    summary: str


@dataclass(frozen=True)
class MoneyBar:
    what: str  # estimated | recorded
    amount: str
    tip: str
    y: int
    width: float
    text_x: float
    text_y: float


@dataclass(frozen=True)
class Money:
    """The money chart (two bars per amount, on one scale) and the lists under it."""

    WIDTH: ClassVar[int] = 520
    LEFT: ClassVar[int] = 100  # where the bars start (the names are left of it)
    BAR: ClassVar[int] = 270  # the longest bar
    GROUP: ClassVar[int] = 50  # the height of one amount's two bars

    currency: str
    height: int
    groups: tuple[tuple[str, int, tuple[MoneyBar, ...]], ...]  # name, its baseline, its bars
    refunds: tuple[tuple[str, str, str, str, str], ...]  # name, refund, fee, consumed, orders
    pending: tuple[tuple[str, str], ...]  # order, what became of it
    arrival: str


@dataclass(frozen=True)
class ResourceRow:
    name: str
    kind: str
    billing: str
    destroy: str
    refund: str
    phase: str


@dataclass(frozen=True)
class BackupRow:
    name: str
    kind: str
    status: str
    bytes: str
    size: str
    sha256: str
    note: str


Spans = tuple[tuple[str, bool], ...]
"""A message in pieces, each with whether it was `backticked` (a command to type)."""


@dataclass(frozen=True)
class Page:
    """Everything ``report.html.j2`` shows, every text still unescaped."""

    run_id: str
    phase: str
    scope: str
    started: str
    updated: str
    tiles: tuple[tuple[str, str], ...]  # number, label
    timeline: Timeline
    money: Money
    todo: tuple[tuple[str, Spans], ...]  # name, its next step
    still_billing: tuple[tuple[str, str, str], ...]  # name, billing mode, why
    resources: tuple[ResourceRow, ...]
    backups: tuple[BackupRow, ...]
    pull_notes: tuple[str, ...]
    schema_version: str


# -- small formats --------------------------------------------------------------------------


def _dec(value: object) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)


def _money(value: object) -> str:
    return f"{_dec(value):,.2f}"


def _size(n: int) -> str:
    step = 1024.0
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < step or unit == "TiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= step
    raise AssertionError("unreachable")


def _spans(text: str) -> Spans:
    """``text`` cut into its plain pieces and its `backticked` ones."""
    parts = re.split(r"`([^`]+)`", text)
    return tuple((p, i % 2 == 1) for i, p in enumerate(parts) if p)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _parse_at(value: object) -> datetime | None:
    """An ISO time in UTC (a time without an offset is taken as UTC), or None."""
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return at.replace(tzinfo=UTC) if at.utcoffset() is None else at.astimezone(UTC)


def _when(value: object) -> str:
    """An ISO time as ``2026-11-26 16:22:42 UTC`` (as given when it is not one)."""
    at = _parse_at(value)
    return str(value) if at is None else f"{at:%Y-%m-%d %H:%M:%S} UTC"


def timeline_from_events(events: Sequence[EventRecord]) -> list[dict[str, Any]]:
    """The ``resource.phase`` events of a run as ``{urn, phase, at, detail}`` (``at``: ISO)."""
    return [
        {
            "urn": str(ev.data.get("urn", "")),
            "phase": str(ev.data.get("phase", "")),
            "at": ev.at.isoformat(),
            "detail": str(ev.data.get("detail", "")),
        }
        for ev in events
        if ev.type == "resource.phase"
    ]


# -- the timeline ---------------------------------------------------------------------------

_Event = tuple[datetime, int, dict[str, Any]]


def _slot_positions(times: list[datetime]) -> list[float]:
    """x (0..1) of each event, then of the end: half by order, half by elapsed time.

    Pure elapsed time would squeeze a run of quick steps next to one long snapshot wait into
    nothing; pure order would hide the long wait. The mix keeps both visible and monotone.
    """
    n = len(times)
    if n == 0:
        return [0.0]
    t0 = times[0]
    elapsed = [max(0.0, (t - t0).total_seconds()) for t in times]
    for i in range(1, n):  # clocks may step back a little: keep the order
        elapsed[i] = max(elapsed[i], elapsed[i - 1])
    span = elapsed[-1]
    out = []
    for k in range(n + 1):
        by_order = k / n
        if span <= 0:
            out.append(by_order)
        else:
            by_time = elapsed[min(k, n - 1)] / span if k < n else 1.0
            out.append(0.5 * by_order + 0.5 * by_time)
    return out


def _segments(name: str, slots: list[int], events: list[_Event], xs: list[float]) -> list[Segment]:
    """The bars of one resource: each phase lasts until its next change (or the run's end)."""
    out = []
    for j, slot in enumerate(slots):
        at, _, ev = events[slot]
        end = slots[j + 1] if j + 1 < len(slots) else len(events)
        x0, x1 = Timeline.LEFT + xs[slot] * Timeline.CHART, Timeline.LEFT + xs[end] * Timeline.CHART
        width = max(x1 - x0, 3.0)
        phase = str(ev.get("phase", ""))
        detail = str(ev.get("detail", ""))
        tip = f"{name}: {phase} at {at:%Y-%m-%d %H:%M:%S}.{at.microsecond // 1000:03d} UTC" + (
            f" ({detail})" if detail else ""
        )
        label = phase.replace("_", " ")
        fits = width >= len(label) * 6.6 + 8
        out.append(Segment(phase, tip, x0, width, label if fits else "", x0 + 5))
    return out


def _timeline_rows(report: dict[str, Any], events: list[_Event]) -> list[TimelineRow]:
    """One row per resource of the report, then one per resource only the events name."""
    xs = _slot_positions([at for at, _, _ in events])
    by_urn: dict[str, list[int]] = {}
    for slot, (_, _, ev) in enumerate(events):
        by_urn.setdefault(str(ev.get("urn", "")), []).append(slot)
    named: list[tuple[str, str]] = [(str(r["urn"]), str(r["name"])) for r in report["resources"]]
    known = {u for u, _ in named}
    named += [(u, u) for u in by_urn if u not in known]
    rows = []
    for i, (urn, name) in enumerate(named):
        y = Timeline.TOP + i * Timeline.ROW
        bar_y = y + (Timeline.ROW - Timeline.BAR) / 2
        bars = _segments(name, by_urn.get(urn, []), events, xs)
        rows.append(TimelineRow(urn, _clip(name, 24), y, bar_y, bar_y + 14, tuple(bars)))
    return rows


def _timeline_summary(timeline: list[dict[str, Any]]) -> str:
    times = [t for t in (_parse_at(ev.get("at")) for ev in timeline) if t is not None]
    if not times:
        return "No phase change recorded. "
    first, last = min(times), max(times)
    secs = (last - first).total_seconds()
    return (
        f"{len(timeline)} phase changes from {first:%Y-%m-%d %H:%M:%S} to "
        f"{last:%H:%M:%S} UTC ({secs:,.0f} s). "
    )


def _timeline(report: dict[str, Any], timeline: list[dict[str, Any]]) -> Timeline:
    events: list[_Event] = []
    for i, ev in enumerate(timeline):
        at = _parse_at(ev.get("at"))
        if at is not None:
            events.append((at, i, ev))
    events.sort(key=lambda x: (x[0], x[1]))
    rows = _timeline_rows(report, events)
    phases = {str(ev.get("phase", "")) for ev in timeline}
    known = [p.value for p in Phase]
    axis_y = Timeline.TOP + len(rows) * Timeline.ROW
    return Timeline(
        height=axis_y + 26,
        axis_y=axis_y + 2,
        axis_text_y=axis_y + 18,
        rows=tuple(rows),
        first=f"{events[0][0]:%H:%M:%S}" if events else "",
        last=f"{events[-1][0]:%H:%M:%S}" if events else "",
        phases=tuple([p for p in known if p in phases] + sorted(phases - set(known))),
        summary=_timeline_summary(timeline),
    )


# -- money ----------------------------------------------------------------------------------


def _money_rows(report: dict[str, Any]) -> list[tuple[str, Decimal, Decimal]]:
    m = report["money"]
    est_fee = Decimal(0)
    est_consumed = Decimal(0)
    for r in report["resources"]:
        est = r.get("estimate")
        if est and r.get("action") != "keep":
            est_fee += _dec(est.get("fee", 0))
            est_consumed += _dec(est.get("consumed", 0))
    return [
        ("Refund", _dec(m["estimated_refund"]), _dec(m["recorded_refund"])),
        ("Handling fee", est_fee, _dec(m["recorded_fee"])),
        ("Consumed", est_consumed, _dec(m["recorded_consumed"])),
    ]


def _money_bars(name: str, y: int, values: dict[str, Decimal], top: Decimal) -> list[MoneyBar]:
    bars = []
    for j, (what, value) in enumerate(values.items()):
        by = y + j * 19
        w = max(float(value / top) * Money.BAR, 1.5)
        tip = f"{name}, {what}: {_money(value)} CNY"
        bars.append(MoneyBar(what, _money(value), tip, by, w, Money.LEFT + w + 6, by + 12.5))
    return bars


def _orders(refund: dict[str, Any]) -> str:
    return ", ".join(str(o) for o in refund.get("orders", []))


def _money_view(report: dict[str, Any]) -> Money:
    rows = _money_rows(report)
    top = max([v for _, a, b in rows for v in (a, b)] + [Decimal(1)])
    groups = []
    for i, (name, estimated, recorded) in enumerate(rows):
        y = 6 + i * Money.GROUP
        bars = _money_bars(name, y, {"estimated": estimated, "recorded": recorded}, top)
        groups.append((name, y + 25, tuple(bars)))
    refunds = [
        (str(r["name"]), _money(x["refund"]), _money(x["fee"]), _money(x["consumed"]), _orders(x))
        for r in report["resources"]
        for x in r["refunds"]
    ]
    pending = [
        (
            str(p.get("order_id", p.get("id", "?"))),
            "cancelled" if p.get("status") == "succeeded" else str(p.get("status", "?")),
        )
        for p in report["pending_orders"]
    ]
    return Money(
        currency=str(report["money"].get("currency", "CNY")),
        height=len(rows) * Money.GROUP + 8,
        groups=tuple(groups),
        refunds=tuple(refunds),
        pending=tuple(pending),
        arrival=str(report["refund_arrival"]),
    )


# -- tables and lists -----------------------------------------------------------------------


def _resource_rows(report: dict[str, Any]) -> list[ResourceRow]:
    return [
        ResourceRow(
            name=str(r["name"]),
            kind=str(r["kind"]),
            billing=str(r["billing_mode"]),
            destroy=f"{r['action']}: {r['destroy'].get('status', 'not planned')}",
            refund=", ".join(_money(x["refund"]) for x in r["refunds"]) or "-",
            phase=str(r["phase"]),
        )
        for r in report["resources"]
    ]


def pull_notes(report: dict[str, Any]) -> list[str]:
    """What a person should know about the pulls: entries refused (and accepted by the rule),
    rules that copied nothing, pulls that failed for it."""
    notes: list[str] = []
    for r in report["resources"]:
        for b in r["backups"]:
            if b.get("type", b["kind"]) != "pull" and b["kind"] != "pull":
                continue
            rule = b.get("rule", "pull")
            for entry in b.get("refused", []):
                notes.append(f"{r['name']}, rule {rule!r}: not stored (accepted): {entry}")
            if b.get("files") == 0:
                notes.append(
                    f"{r['name']}, rule {rule!r}: copied no file from "
                    f"{', '.join(b.get('paths', []))} (allow_empty)"
                )
            err = str(b.get("error") or "")
            if "refused" in err or "verified 0 files" in err:
                notes.append(f"{r['name']}, rule {rule!r}: failed: {err}")
    return notes


def _backup_rows(report: dict[str, Any]) -> list[BackupRow]:
    rows = []
    for r in report["resources"]:
        for b in r["backups"]:
            kind = str(b.get("type", b["kind"]))
            size = b.get("bytes") or 0
            size_text = "-" if not size else _size(int(size))
            if size and kind == "cbr":
                size_text += " of disks"
            rows.append(
                BackupRow(
                    name=str(r["name"]),
                    kind=kind,
                    status=str(b["status"]),
                    bytes=str(size),
                    size=size_text,
                    sha256=str(b.get("sha256") or ""),
                    note=str(b.get("reuse_note") or ""),
                )
            )
    return rows


def _tiles(report: dict[str, Any]) -> list[tuple[str, str]]:
    resources = report["resources"]
    done = sum(1 for r in resources if r["phase"] == "done")
    todo = sum(1 for r in resources if r["next_step"])
    return [
        (f"{done} / {len(resources)}", "resources done"),
        (_money(report["money"]["recorded_refund"]), "CNY refunded (recorded)"),
        (str(len(report["still_billing"])), "still billing"),
        (str(todo), "need a person"),
    ]


def page_view(report: dict[str, Any], timeline: list[dict[str, Any]]) -> Page:
    """What the page shows for ``report`` (see ``render_html``), ready for the template."""
    return Page(
        run_id=str(report["run_id"]),
        phase=str(report["phase"]),
        scope=str(report["scope"]),
        started=_when(report["created_at"]),
        updated=_when(report["updated_at"]),
        tiles=tuple(_tiles(report)),
        timeline=_timeline(report, timeline),
        money=_money_view(report),
        todo=tuple(
            (str(r["name"]), _spans(str(r["next_step"])))
            for r in report["resources"]
            if r["next_step"]
        ),
        still_billing=tuple(
            (str(s["name"]), f"{s['kind']}, {s['charging']}", _still_why(s))
            for s in report["still_billing"]
        ),
        resources=tuple(_resource_rows(report)),
        backups=tuple(_backup_rows(report)),
        pull_notes=tuple(pull_notes(report)),
        schema_version=str(report["schema_version"]),
    )


def _still_why(s: dict[str, Any]) -> str:
    why = str(s["why"])
    if s.get("next_charge"):
        why += f"; auto-renew charges on {s['next_charge']}"
    if s.get("monthly_cost"):
        why += f"; about {s['monthly_cost']} CNY a month ({s['monthly_cost_note']})"
    return why


def render_html(report: dict[str, Any], timeline: list[dict[str, Any]]) -> str:
    """One self-contained HTML page for ``report`` (from ``build_report``).

    ``timeline``: the resource phase changes, as ``timeline_from_events`` returns them.
    """
    return _ENV.get_template("report.html.j2").render(page=page_view(report, timeline))


__all__ = ["Page", "page_view", "pull_notes", "render_html", "template", "timeline_from_events"]
