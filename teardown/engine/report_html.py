"""The report of a run as one self-contained HTML page: readable at a glance, safe to mail around.

No external assets at all (no scripts, fonts, images or style sheets from anywhere): the CSS is
inline and the charts are inline SVG, and a Content-Security-Policy forbids loading anything.
Every string taken from the report is escaped: resource names come from the cloud.

Example::

    report = build_report(journal, run_id)
    page = render_html(report, timeline_from_events(journal.events(run_id)))
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from teardown.core.text import printable
from teardown.engine.journal import EventRecord

PHASE_COLOURS: dict[str, str] = {
    "planned": "#cbd5e1",
    "backing_up": "#60a5fa",
    "verified": "#a78bfa",
    "destroying": "#f59e0b",
    "destroyed": "#fb923c",
    "closing": "#2dd4bf",
    "done": "#22c55e",
    "failed": "#ef4444",
    "blocked": "#64748b",
}
"""One colour per resource phase (the timeline and the phase badges)."""

RUN_COLOURS: dict[str, str] = {
    "completed": "#15803d",
    "partially_failed": "#b45309",
    "failed": "#b91c1c",
    "blocked": "#475569",
    "running": "#1d4ed8",
}
"""One colour per run phase (the header badge)."""

STATUS_COLOURS: dict[str, str] = {
    "succeeded": "#15803d",
    "failed": "#b91c1c",
    "started": "#1d4ed8",
    "pending": "#64748b",
}

_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f1f5f9;color:#0f172a;
 font:14px/1.45 system-ui,-apple-system,"Segoe UI","DejaVu Sans",Arial,sans-serif}
main{max-width:1160px;margin:0 auto;padding:20px 20px 32px}
header{background:#0f172a;color:#f8fafc;border-radius:10px;padding:16px 20px;
 display:flex;flex-wrap:wrap;align-items:center;gap:8px 18px}
header h1{font-size:20px;margin:0;font-weight:650;letter-spacing:.2px}
header .meta{color:#cbd5e1;font-size:13px}
header .meta b{color:#f8fafc;font-weight:600}
.badge{display:inline-block;border-radius:999px;padding:2px 10px;font-size:12px;
 font-weight:650;color:#fff;white-space:nowrap}
header .badge{font-size:14px;padding:4px 14px}
.tiles{display:grid;grid-template-columns:repeat(4,1fr);gap:12px;margin:14px 0}
.tile{background:#fff;border-radius:10px;padding:10px 14px;border:1px solid #e2e8f0}
.tile .n{font-size:22px;font-weight:700}
.tile .l{color:#475569;font-size:12px;text-transform:uppercase;letter-spacing:.4px}
section{background:#fff;border-radius:10px;border:1px solid #e2e8f0;padding:12px 16px;
 margin:0 0 14px}
section h2{font-size:15px;margin:0 0 8px;font-weight:650}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:14px;margin:0 0 14px}
.grid2 section{margin:0}
.grid2>div{display:flex;flex-direction:column;gap:14px}
.note{color:#475569;font-size:12px;margin:6px 0 0}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;color:#334155;margin-top:4px}
.legend i{display:inline-block;width:11px;height:11px;border-radius:3px;margin-right:5px;
 vertical-align:-1px}
table{border-collapse:collapse;width:100%;font-size:13px}
th{text-align:left;color:#475569;font-weight:600;font-size:12px;border-bottom:1px solid #cbd5e1;
 padding:5px 8px}
td{border-bottom:1px solid #e2e8f0;padding:5px 8px;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px "DejaVu Sans Mono",Menlo,Consolas,monospace;background:#f1f5f9;
 border-radius:4px;padding:1px 4px}
ul.items{margin:0;padding-left:18px}
ul.items li{margin:3px 0}
.ok{color:#15803d;font-weight:600}
.todo li{color:#7f1d1d}
svg text{font-family:system-ui,-apple-system,"Segoe UI","DejaVu Sans",Arial,sans-serif}
footer{color:#64748b;font-size:12px;text-align:center;margin-top:6px}
"""


def _e(value: object) -> str:
    """Escape anything for HTML text and attribute values (control and formatting characters
    written as visible escapes first)."""
    return html.escape(printable(value), quote=True)


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


def _badge(text: str, colour: str) -> str:
    return f'<span class="badge" style="background:{colour}">{_e(text.replace("_", " "))}</span>'


def _phase_badge(phase: str) -> str:
    return _badge(phase, PHASE_COLOURS.get(phase, "#64748b"))


def _status_badge(status: str) -> str:
    return _badge(status, STATUS_COLOURS.get(status, "#64748b"))


def _inline_code(text: str) -> str:
    """Escape ``text``, then show its `backticked` spans as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(text))


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

_TL_WIDTH = 1100
_TL_LABEL = 210
_TL_ROW = 30
_TL_BAR = 20
_TL_TOP = 8


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


def _timeline_svg(report: dict[str, Any], timeline: list[dict[str, Any]]) -> str:
    events = []
    for i, ev in enumerate(timeline):
        at = _parse_at(ev.get("at"))
        if at is not None:
            events.append((at, i, ev))
    events.sort(key=lambda x: (x[0], x[1]))
    xs = _slot_positions([at for at, _, _ in events])
    chart = _TL_WIDTH - _TL_LABEL - 16

    def x_of(slot: int) -> float:
        return _TL_LABEL + xs[slot] * chart

    by_urn: dict[str, list[int]] = {}
    for slot, (_, _, ev) in enumerate(events):
        by_urn.setdefault(str(ev.get("urn", "")), []).append(slot)
    rows: list[tuple[str, str]] = [(str(r["urn"]), str(r["name"])) for r in report["resources"]]
    known = {u for u, _ in rows}
    rows += [(u, u) for u in by_urn if u not in known]

    height = _TL_TOP + len(rows) * _TL_ROW + 26
    parts = [
        f'<svg id="timeline" role="img" aria-label="phases of each resource over the run" '
        f'viewBox="0 0 {_TL_WIDTH} {height}" width="100%" preserveAspectRatio="xMinYMin meet">'
    ]
    for i, (row_urn, name) in enumerate(rows):
        y = _TL_TOP + i * _TL_ROW
        if i % 2 == 0:
            parts.append(
                f'<rect x="0" y="{y}" width="{_TL_WIDTH}" height="{_TL_ROW}" fill="#f8fafc"/>'
            )
        parts.append(
            f'<text x="8" y="{y + _TL_ROW / 2 + 4:.1f}" font-size="13" font-weight="600" '
            f'fill="#0f172a"><title>{_e(row_urn)}</title>{_e(_clip(name, 24))}</text>'
        )
        slots = by_urn.get(row_urn, [])
        bar_y = y + (_TL_ROW - _TL_BAR) / 2
        if not slots:
            parts.append(
                f'<rect x="{_TL_LABEL}" y="{bar_y:.1f}" width="{chart}" height="{_TL_BAR}" '
                'rx="4" fill="none" stroke="#94a3b8" stroke-dasharray="4 3"/>'
                f'<text x="{_TL_LABEL + 8}" y="{bar_y + 14:.1f}" font-size="12" fill="#64748b">'
                "no phase change recorded</text>"
            )
            continue
        for j, slot in enumerate(slots):
            at, _, ev = events[slot]
            end = slots[j + 1] if j + 1 < len(slots) else len(events)
            x0, x1 = x_of(slot), x_of(end)
            width = max(x1 - x0, 3.0)
            phase = str(ev.get("phase", ""))
            colour = PHASE_COLOURS.get(phase, "#94a3b8")
            detail = str(ev.get("detail", ""))
            tip = f"{name}: {phase} at {at:%Y-%m-%d %H:%M:%S}.{at.microsecond // 1000:03d} UTC" + (
                f" ({detail})" if detail else ""
            )
            parts.append(
                f'<g><title>{_e(tip)}</title><rect x="{x0:.1f}" y="{bar_y:.1f}" '
                f'width="{width:.1f}" height="{_TL_BAR}" rx="3" fill="{colour}" '
                'stroke="#fff" stroke-width="1"/>'
            )
            label = phase.replace("_", " ")
            if width >= len(label) * 6.6 + 8:
                parts.append(
                    f'<text x="{x0 + 5:.1f}" y="{bar_y + 14:.1f}" font-size="11" '
                    f'fill="#0f172a">{_e(label)}</text>'
                )
            parts.append("</g>")
    axis_y = _TL_TOP + len(rows) * _TL_ROW
    parts.append(
        f'<line x1="{_TL_LABEL}" y1="{axis_y + 2}" x2="{_TL_LABEL + chart}" y2="{axis_y + 2}" '
        'stroke="#94a3b8"/>'
    )
    if events:
        first, last = events[0][0], events[-1][0]
        parts.append(
            f'<text x="{_TL_LABEL}" y="{axis_y + 18}" font-size="12" fill="#475569">'
            f"{_e(f'{first:%H:%M:%S}')} UTC</text>"
            f'<text x="{_TL_LABEL + chart}" y="{axis_y + 18}" font-size="12" fill="#475569" '
            f'text-anchor="end">{_e(f"{last:%H:%M:%S}")} UTC</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _timeline_section(report: dict[str, Any], timeline: list[dict[str, Any]]) -> str:
    times = [t for t in (_parse_at(ev.get("at")) for ev in timeline) if t is not None]
    if times:
        first, last = min(times), max(times)
        secs = (last - first).total_seconds()
        when = (
            f"{len(timeline)} phase changes from {first:%Y-%m-%d %H:%M:%S} to "
            f"{last:%H:%M:%S} UTC ({secs:,.0f} s). "
        )
    else:
        when = "No phase change recorded. "
    phases = {str(ev.get("phase", "")) for ev in timeline}
    seen = [p for p in PHASE_COLOURS if p in phases] + sorted(phases - set(PHASE_COLOURS))
    legend = "".join(
        f'<span><i style="background:{PHASE_COLOURS.get(p, "#94a3b8")}"></i>'
        f"{_e(p.replace('_', ' '))}</span>"
        for p in seen
    )
    return (
        "<section><h2>Timeline</h2>"
        + _timeline_svg(report, timeline)
        + f'<div class="legend">{legend}</div>'
        + f'<p class="note">{_e(when)}Bar lengths mix order and elapsed time, so quick steps '
        "stay visible; hover a bar for its exact time and detail.</p></section>"
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


def _money_svg(report: dict[str, Any]) -> str:
    rows = _money_rows(report)
    top = max([v for _, a, b in rows for v in (a, b)] + [Decimal(1)])
    width, label, bar_max = 520, 100, 270
    group = 50
    height = len(rows) * group + 8
    parts = [
        f'<svg id="money" role="img" aria-label="estimated and recorded money" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet">'
    ]
    for i, (name, estimated, recorded) in enumerate(rows):
        y = 6 + i * group
        parts.append(
            f'<text x="0" y="{y + 25}" font-size="13" font-weight="600" fill="#0f172a">'
            f"{_e(name)}</text>"
        )
        for j, (what, value, fill) in enumerate(
            (("estimated", estimated, "#93c5fd"), ("recorded", recorded, "#1d4ed8"))
        ):
            by = y + j * 19
            w = max(float(value / top) * bar_max, 1.5)
            parts.append(
                f"<g><title>{_e(f'{name}, {what}: {_money(value)} CNY')}</title>"
                f'<rect x="{label}" y="{by}" width="{w:.1f}" height="16" rx="2" fill="{fill}"/>'
                f'<text x="{label + w + 6:.1f}" y="{by + 12.5}" font-size="12" fill="#0f172a">'
                f'{_e(_money(value))} <tspan fill="#64748b">{_e(what)}</tspan></text></g>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _money_section(report: dict[str, Any]) -> str:
    items = []
    for r in report["resources"]:
        for x in r["refunds"]:
            orders = ", ".join(str(o) for o in x.get("orders", []))
            items.append(
                f"<li><b>{_e(r['name'])}</b>: refund {_e(_money(x['refund']))}, fee "
                f"{_e(_money(x['fee']))}, consumed {_e(_money(x['consumed']))} "
                f'<span class="note">(orders {_e(orders)})</span></li>'
            )
    pending = [
        f"<li>order <code>{_e(p.get('order_id', p.get('id', '?')))}</code>: "
        f"{'cancelled' if p.get('status') == 'succeeded' else _e(p.get('status', '?'))}</li>"
        for p in report["pending_orders"]
    ]
    return (
        f"<section><h2>Money ({_e(report['money'].get('currency', 'CNY'))})</h2>"
        + _money_svg(report)
        + '<div class="legend"><span><i style="background:#93c5fd"></i>estimated before acting'
        '</span><span><i style="background:#1d4ed8"></i>recorded from the refund orders</span>'
        "</div>"
        + (f'<ul class="items">{"".join(items)}</ul>' if items else "")
        + (
            f'<p class="note"><b>Orders pending payment</b></p><ul class="items">'
            f"{''.join(pending)}</ul>"
            if pending
            else ""
        )
        + f'<p class="note">{_e(report["refund_arrival"])}</p></section>'
    )


# -- tables and lists -----------------------------------------------------------------------


def _resources_section(report: dict[str, Any]) -> str:
    rows = []
    for r in report["resources"]:
        refund = ", ".join(_money(x["refund"]) for x in r["refunds"]) or "-"
        destroy = r["destroy"].get("status", "not planned")
        rows.append(
            f"<tr><td><b>{_e(r['name'])}</b></td><td>{_e(r['kind'])}</td>"
            f"<td>{_e(r['billing_mode'])}</td><td>{_e(r['action'])}: {_e(destroy)}</td>"
            f'<td class="num">{_e(refund)}</td><td>{_phase_badge(str(r["phase"]))}</td></tr>'
        )
    return (
        "<section><h2>Resources</h2><table><thead><tr><th>resource</th><th>kind</th>"
        '<th>billing</th><th>destroy</th><th class="num">refund (recorded)</th><th>state</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


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


def _backups_section(report: dict[str, Any]) -> str:
    rows = []
    for r in report["resources"]:
        for b in r["backups"]:
            kind = str(b.get("type", b["kind"]))
            size = b.get("bytes") or 0
            size_text = "-" if not size else _size(int(size))
            if size and kind == "cbr":
                size_text += " of disks"
            sha = b.get("sha256")
            sha_cell = f'<code title="{_e(sha)}">{_e(str(sha)[:12])}</code>' if sha else "-"
            note = _e(b.get("reuse_note") or "")
            rows.append(
                f"<tr><td><b>{_e(r['name'])}</b></td><td>{_e(kind)}</td>"
                f"<td>{_status_badge(str(b['status']))}</td>"
                f'<td class="num" title="{_e(size)} bytes">{_e(size_text)}</td>'
                f"<td>{sha_cell}</td><td>{note}</td></tr>"
            )
    body = "".join(rows) or '<tr><td colspan="6">no backups in this run</td></tr>'
    notes = "".join(f"<li>{_e(n)}</li>" for n in pull_notes(report))
    extra = (
        f'<h3>Pulls: refused entries and empty rules</h3><ul id="pull-notes">{notes}</ul>'
        if notes
        else ""
    )
    return (
        '<section><h2>Backups</h2><table id="backups"><thead><tr><th>resource</th><th>kind</th>'
        '<th>status</th><th class="num">size</th><th>sha256</th><th>note</th></tr></thead>'
        f"<tbody>{body}</tbody></table>{extra}</section>"
    )


def _still_billing_section(report: dict[str, Any]) -> str:
    still = report["still_billing"]
    if still:
        body = '<ul class="items">' + "".join(
            f"<li><b>{_e(s['name'])}</b> ({_e(s['billing'])}): {_e(s['why'])}</li>" for s in still
        )
        body += "</ul>"
    else:
        body = '<p class="ok">Nothing in scope still bills.</p>'
    return f'<section id="still-billing"><h2>Still billing</h2>{body}</section>'


def _todo_section(report: dict[str, Any]) -> str:
    todo = [r for r in report["resources"] if r["next_step"]]
    if todo:
        body = '<ul class="items todo">' + "".join(
            f"<li><b>{_e(r['name'])}</b>: {_inline_code(str(r['next_step']))}</li>" for r in todo
        )
        body += "</ul>"
    else:
        body = '<p class="ok">Nothing: no resource needs a person.</p>'
    return f'<section id="todo"><h2>What a person must do</h2>{body}</section>'


def _tiles(report: dict[str, Any]) -> str:
    resources = report["resources"]
    done = sum(1 for r in resources if r["phase"] == "done")
    todo = sum(1 for r in resources if r["next_step"])
    tiles = [
        (f"{done} / {len(resources)}", "resources done"),
        (f"{_money(report['money']['recorded_refund'])}", "CNY refunded (recorded)"),
        (str(len(report["still_billing"])), "still billing"),
        (str(todo), "need a person"),
    ]
    return (
        '<div class="tiles">'
        + "".join(
            f'<div class="tile"><div class="n">{_e(n)}</div><div class="l">{_e(label)}</div></div>'
            for n, label in tiles
        )
        + "</div>"
    )


def render_html(report: dict[str, Any], timeline: list[dict[str, Any]]) -> str:
    """One self-contained HTML page for ``report`` (from ``build_report``).

    ``timeline``: the resource phase changes, as ``timeline_from_events`` returns them.
    """
    run_id = str(report["run_id"])
    phase = str(report["phase"])
    header = (
        f"<header><h1>teardown run {_e(run_id)}</h1>"
        f"{_badge(phase, RUN_COLOURS.get(phase, '#475569'))}"
        f'<span class="meta">scope <b>{_e(report["scope"])}</b></span>'
        f'<span class="meta">started <b>{_e(_when(report["created_at"]))}</b></span>'
        f'<span class="meta">updated <b>{_e(_when(report["updated_at"]))}</b></span></header>'
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>teardown run {_e(run_id)}: {_e(phase.replace('_', ' '))}</title>"
        f"<style>{_CSS}</style></head><body><main>"
        + header
        + _tiles(report)
        + _timeline_section(report, timeline)
        + '<div class="grid2">'
        + _money_section(report)
        + "<div>"
        + _todo_section(report)
        + _still_billing_section(report)
        + "</div></div>"
        + _resources_section(report)
        + _backups_section(report)
        + f"<footer>Built from the journal (report schema {_e(report['schema_version'])}). "
        "This page loads nothing from anywhere.</footer>" + "</main></body></html>\n"
    )


__all__ = ["PHASE_COLOURS", "render_html", "timeline_from_events"]
