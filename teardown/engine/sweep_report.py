"""The report of a ``teardown sweep``: ``sweep.json``, ``summary.md`` (a pipeline's job
summary) and ``sweep.html``, a line per scope (built by :func:`teardown.app.sweep.sweep_report`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from teardown.engine.report_html import template


def _cell(text: object) -> str:
    """A Markdown table cell: one line, and a ``|`` would start another column."""
    return " ".join(str(text).split()).replace("|", "\\|")


def render_summary(report: dict[str, Any]) -> str:
    """Markdown for a CI summary page: a line per scope, the money, what was left and why."""
    scopes = report["scopes"]
    done = sum(1 for s in scopes if s["exit_code"] == 0)
    title = "teardown sweep" + (" (dry run)" if report.get("dry_run") else "")
    lines = [
        f"# {title} {report['sweep_id']}",
        "",
        f"{done} of {len(scopes)} scope(s) completed; exit code **{report['exit_code']}**.",
        "",
        "| scope | why | result | backed up | destroyed | refunded | still billing | next step |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in scopes:
        result = s["phase"] or "not run"
        if s["error"]:
            result += f": {s['error']}"
        billing = ", ".join(f"{b.get('resource_id')} ({b.get('kind')})" for b in s["still_billing"])
        lines.append(
            f"| {_cell(s['scope'])} | {_cell(s['why'])} | {_cell(result)} | {s['backed_up']} | "
            f"{s['destroyed']} | {s['refunded']} | {_cell(billing or '-')} | "
            f"{_cell(s['next_step'] or '-')} |"
        )
    m = report["money"]
    lines += [
        "",
        f"Refunded **{m['refunded']} {m['currency']}**; fees {m['fees']}; the backup vaults "
        f"(the account's, shared by every scope) cost {m['backups_monthly']} a month.",
    ]
    if report.get("dry_run"):
        lines += ["", "## Would sweep (dry run: run again with --yes)", ""]
        lines += [
            f"- {_cell(x['scope'])}: {_cell(x['why'])}" for x in report.get("selected", [])
        ] or ["- nothing"]
    if report["left"]:
        lines += ["", "## Left alone", ""]
        lines += [f"- {_cell(x['what'])}: {_cell(x['reason'])}" for x in report["left"]]
    return "\n".join(lines) + "\n"


def render_sweep_html(report: dict[str, Any]) -> str:
    page: str = template("sweep.html.j2").render(report=report)
    return page


def write_sweep_report(report: dict[str, Any], directory: Path) -> tuple[Path, Path, Path]:
    """Write ``sweep.json``, ``summary.md`` and ``sweep.html`` (owner-only) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = (directory / "sweep.json", directory / "summary.md", directory / "sweep.html")
    bodies = (
        json.dumps(report, indent=2, sort_keys=True),
        render_summary(report),
        render_sweep_html(report),
    )
    for path, body in zip(paths, bodies, strict=True):
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body)
    return paths


__all__ = ["render_summary", "render_sweep_html", "write_sweep_report"]
