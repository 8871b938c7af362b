"""Hostile text from a cloud or a host is shown, never obeyed: a server named with terminal
escape sequences and a newline cannot clear the screen or forge a line of the plan, the status
or the reports."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from click.testing import CliRunner

from teardown.cli.main import cli
from teardown.core.config import Config
from teardown.core.planner import make_plan
from teardown.core.text import printable
from teardown.engine.report import build_report, render_markdown
from teardown.engine.report_html import render_html
from tests.helpers import make_rig, server

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = "cache-1\x1b[2J\x1b[H\nFAKE LINE: all backups verified\u202e\u200b"


def forged(text: str) -> bool:
    """Whether ``text`` would let the hostile name act on a terminal or start its own line."""
    return (
        "\x1b" in text
        or "\u202e" in text
        or "\u200b" in text
        or any(line.startswith("FAKE LINE") for line in text.splitlines())
    )


def test_printable_escapes_controls_and_formatting_characters() -> None:
    assert printable(HOSTILE) == (
        "cache-1\\x1b[2J\\x1b[H\\x0aFAKE LINE: all backups verified\\u202e\\u200b"
    )
    assert printable("web-1 ünï 数据") == "web-1 ünï 数据"


def test_plan_shows_a_hostile_name_escaped(tmp_path: Path) -> None:
    doc = json.loads((ROOT / "examples" / "huawei-test-env.json").read_text())
    for r in doc["deployment"]["resources"]:
        if r["urn"].endswith("::web-1"):
            r["outputs"]["name"] = HOSTILE
    state = tmp_path / "state.json"
    state.write_text(json.dumps(doc))
    result = CliRunner().invoke(cli, ["plan", "--state", str(state)])
    assert result.exit_code == 0, result.stderr
    assert "cache-1\\x1b[2J" in result.stdout
    assert not forged(result.stdout)


def test_status_and_reports_show_a_hostile_name_escaped(tmp_path: Path) -> None:
    web = replace(server("web"), name=HOSTILE)
    rig = make_rig(tmp_path, [web], switches={"snapshot_error": [web.urn]})
    result = rig.runner.start(make_plan([web], Config(), "dev"))
    report = build_report(rig.journal, result.run_id)

    assert not forged(render_markdown(report))
    assert not forged(render_html(report, []))
    status = CliRunner().invoke(
        cli, ["status", result.run_id, "--journal", str(tmp_path / "journal.db")]
    )
    assert status.exit_code == 0, status.stderr
    assert "cache-1\\x1b[2J" in status.stdout and not forged(status.stdout)
