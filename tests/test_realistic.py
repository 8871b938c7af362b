"""The `realistic` scenario: a server mid-conversion to yearly/monthly (locked by its pending
conversion order), a renewal in progress, a switch to pay-per-use at expiry and an order pending
shipment. teardown takes each documented next step, and nothing of the scope bills afterwards
but the backup vault."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from teardown.cli.main import cli
from teardown.sandbox.runtime import Sandbox, status

CONV = "6f5b0d7f-0a2c-4b6d-8f7a-5c6d7e8f9a08"
CONFIG = """
[scope]
name = "shop-staging"

[backup]
snapshot = "cbr"

[billing]
five_day_quota_used = 0

[journal]
path = "{root}/journal.db"

[store]
path = "{root}/backups"

[run]
poll_interval = 0.05
"""


@pytest.fixture
def realistic(tmp_path: Path) -> Iterator[Path]:
    sb = tmp_path / "sb"
    sb.mkdir()
    (sb / "sandbox.toml").write_text(
        "[durations]\ndelete_server = 0.1\nstop_server = 0.1\nsnapshot = 0.1\n"
        "delete_snapshot = 0.1\ncheckpoint = 0.1\nrelease = 0.1\n"
    )
    (tmp_path / "teardown.toml").write_text(CONFIG.format(root=tmp_path))
    with Sandbox(sb, scenario="realistic"):
        yield tmp_path


def lock_order(root: Path) -> str:
    """The order that locks conv-1 (its ECS ``lockSourceId``), read from the sandbox's state."""
    conn = sqlite3.connect(root / "sb" / "state.db")
    try:
        (order,) = conn.execute("SELECT lock_source_id FROM servers WHERE id=?", (CONV,)).fetchone()
    finally:
        conn.close()
    return str(order)


def shop(root: Path, command: str, *more: str) -> Result:
    args = [command, "--profile", str(root / "sb" / "profile.toml"), "--tag", "app=shop"]
    args += ["--config", str(root / "teardown.toml"), *more]
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_the_plan_cancels_the_conversion_order_that_locks_the_server_first(
    realistic: Path,
) -> None:
    conversion = lock_order(realistic)
    assert conversion.startswith("CS")
    result = shop(realistic, "plan", "--json")
    assert result.exit_code == 0, result.output
    plan: dict[str, Any] = json.loads(result.stdout)
    cancels = {s["order_id"]: s["id"] for s in plan["pre"]}
    assert conversion in cancels  # proposed, pending payment, before anything else
    conv = next(r for r in plan["resources"] if r["name"] == "conv-1")
    assert any(conversion in n and "cancels that order first" in n for n in conv["notes"])
    assert conv["warnings"] == []  # not "ask support": cancelling the order lifts the lock
    assert cancels[conversion] in conv["destroy"]["step"]["after"]
    renewal = next(r for r in plan["resources"] if r["name"] == "app-1")
    assert renewal["billing"]["pending_orders"]  # the renewal in progress, cancelled first
    assert set(renewal["billing"]["pending_orders"]) <= set(cancels)

    text = shop(realistic, "plan")
    assert f"conv-1 is locked by order {conversion}" in text.output


def test_the_run_completes_and_only_the_vault_still_bills(realistic: Path) -> None:
    result = shop(realistic, "run", "--yes", "--quiet")
    assert result.exit_code == 0, result.output
    left = status(realistic / "sb")["still_billing"]
    assert [(e["kind"], e["resource_id"]) for e in left] == [("vault", "vault-sandbox")]
    (report,) = (realistic / "runs").glob("*/report.json")
    still = json.loads(report.read_text())["still_billing"]
    assert [e["resource_id"] for e in still] == ["vault-sandbox"]
