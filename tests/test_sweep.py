"""``teardown sweep`` against the sandbox's ``ci-envs`` scenario: environments of several ages
and tags (see the scenario's header), each swept scope a normal teardown run."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from teardown.adapters.huawei.profile import load_profile
from teardown.cli.main import cli
from teardown.sandbox.billing import still_billing
from teardown.sandbox.runtime import Sandbox
from teardown.support.clock import SystemClock
from tests.test_notify import Hook, hook

__all__ = ["hook"]  # the webhook listener fixture, shared with test_notify.py

CONFIG = """
[backup]
snapshot = "cbr"
[[backup.pull]]
name = "data"
paths_from_tag = "sandbox.data"
[billing]
five_day_quota_used = 0
[journal]
path = "{root}/journal.db"
[store]
path = "{root}/backups"
[run]
poll_interval = 0.05
"""


@dataclass
class CiEnvs:
    root: Path
    sb: Sandbox

    @property
    def profile(self) -> Path:
        return self.sb.layout.profile

    def servers(self) -> dict[str, str]:
        """Name -> id of the servers still there."""
        conn = sqlite3.connect(self.root / "sb" / "state.db")
        try:
            rows = conn.execute("SELECT name, id FROM servers WHERE deleted=0").fetchall()
        finally:
            conn.close()
        return {str(n): str(i) for n, i in rows}

    def sweep(self, *args: str) -> Result:
        return CliRunner().invoke(
            cli,
            [
                "sweep", "--profile", str(self.profile), "--config",
                str(self.root / "teardown.toml"), "--quiet", *args,
            ],
            catch_exceptions=False,
        )  # fmt: skip


@pytest.fixture
def envs(tmp_path: Path) -> Iterator[CiEnvs]:
    sb_dir = tmp_path / "sb"
    sb_dir.mkdir()
    (sb_dir / "sandbox.toml").write_text(
        "[durations]\ndelete_server = 0.1\nstop_server = 0.1\nsnapshot = 0.1\n"
        "delete_snapshot = 0.1\ncheckpoint = 0.1\nrelease = 0.1\n"
    )
    (tmp_path / "teardown.toml").write_text(CONFIG.format(root=tmp_path))
    with Sandbox(sb_dir, scenario="ci-envs") as sb:
        yield CiEnvs(tmp_path, sb)


ALL = {
    "ci-101-web", "ci-101-db", "ci-102-web", "ci-103-app", "ci-104-app", "ci-105-web",
    "ci-105-db", "prod-db-1", "staging-1",
}  # fmt: skip
SWEPT = {"ci-101-web", "ci-101-db", "ci-103-app"}


def report_of(result: Result) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def calls(envs: CiEnvs) -> list[str]:
    assert envs.sb.store is not None
    return [r[0] for r in envs.sb.store.conn.execute("SELECT operation FROM calls ORDER BY id")]


def test_a_dry_sweep_lists_what_it_would_do_and_changes_nothing(envs: CiEnvs) -> None:
    before = len(calls(envs))
    result = envs.sweep("--tag", "env=ci", "--older-than", "6h", "--json")
    # the selection needs only the server listing: no disk, address or billing read per server
    assert set(calls(envs)[before:]) == {"ecs.ListServersDetails"}
    assert result.exit_code == 0, result.output
    report = report_of(result)
    assert report["dry_run"] is True and report["scopes"] == []
    assert {s["scope"] for s in report["selected"]} == {"ci-101", "ci-103", "prod-db"}
    assert set(envs.servers()) == ALL


def test_the_sweep_takes_exactly_the_expired_environments(
    envs: CiEnvs, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWEEP_HOOK", f"{hook.base}/hooks/sweep")
    events = envs.root / "events.jsonl"
    result = envs.sweep(
        "--tag", "env=ci", "--older-than", "6h", "--yes", "--json",
        "--events", str(events), "--notify", "${env:SWEEP_HOOK}",
    )  # fmt: skip
    report = report_of(result)
    lines = {line["scope"]: line for line in report["scopes"]}

    # exactly the expected set is gone; the rest still runs
    assert set(envs.servers()) == ALL - SWEPT
    assert set(lines) == {"ci-101", "ci-103", "prod-db"}
    assert lines["ci-101"]["exit_code"] == 0 and lines["ci-101"]["destroyed"] == 2
    assert lines["ci-103"]["exit_code"] == 0 and lines["ci-103"]["destroyed"] == 1
    assert "teardown:ttl" in lines["ci-103"]["why"]
    assert lines["prod-db"]["exit_code"] == 3 and "prod" in lines["prod-db"]["error"]
    assert lines["prod-db"]["run_id"] is None  # refused before anything ran
    assert result.exit_code == 3  # the worst scope: refused
    left = {x["what"]: x["reason"] for x in report["left"]}
    assert any("ci-102" in w for w in left) and any("ci-104" in w for w in left)
    assert any("ci-105" in w and "ci-105-db" in r for w, r in left.items())

    # every backup of a swept scope is verified: two per server (CBR and the pull)
    assert lines["ci-101"]["backed_up"] == 4 and lines["ci-103"]["backed_up"] == 2

    # the report's lines match the sandbox's ledger
    assert envs.sb.store is not None
    billing = still_billing(envs.sb.store.conn, SystemClock().now())
    gone_ids = {i for i in ids_at_start(envs) if i}
    assert not [b for b in billing if b.get("resource_id") in gone_ids]
    for line in (lines["ci-101"], lines["ci-103"]):
        assert not [b for b in line["still_billing"] if b.get("resource_id") in gone_ids]
    refund = ledger_refund(envs, "ci-101-db")
    assert refund > 0 and float(lines["ci-101"]["refunded"]) == refund

    # the account's vaults bill once, however many scopes used them
    run_report = json.loads(
        (envs.root / "runs" / lines["ci-101"]["run_id"] / "report.json").read_text()
    )
    assert report["money"]["backups_monthly"] == run_report["money"]["backups_monthly"]

    # the webhook got the summary; every event line names its scope
    (posted,) = hook.received
    assert posted.path == "/hooks/sweep" and posted.content_type == "application/json"
    text = json.loads(posted.body)["text"]
    assert "| ci-101 |" in text and "exit code **3**" in text
    scopes_seen = {json.loads(x)["scope"] for x in events.read_text().splitlines()}
    assert scopes_seen == {"ci-101", "ci-103"}  # prod-db never ran

    sweep_dir = envs.root / "sweeps" / report["sweep_id"]
    assert {p.name for p in sweep_dir.iterdir()} == {"sweep.json", "summary.md", "sweep.html"}
    summary = (sweep_dir / "summary.md").read_text()
    assert "| ci-101 |" in summary and "Left alone" in summary


def ids_at_start(envs: CiEnvs) -> set[str]:
    """The ids the swept servers had (the sandbox keeps deleted servers' rows)."""
    conn = sqlite3.connect(envs.root / "sb" / "state.db")
    try:
        rows = conn.execute(
            "SELECT id FROM servers WHERE name IN (?, ?, ?)", tuple(sorted(SWEPT))
        ).fetchall()
    finally:
        conn.close()
    return {str(r[0]) for r in rows}


def ledger_refund(envs: CiEnvs, name: str) -> float:
    conn = sqlite3.connect(envs.root / "sb" / "state.db")
    try:
        (server_id,) = conn.execute("SELECT id FROM servers WHERE name=?", (name,)).fetchone()
        rows = conn.execute(
            "SELECT amount_after_discount, resource_ids FROM orders WHERE order_type=4"
        ).fetchall()
    finally:
        conn.close()
    return sum(float(a) for a, ids in rows if server_id in json.loads(ids))


class Later(SystemClock):
    """The real clock, ``ahead`` later (the notice period has passed)."""

    ahead = timedelta(hours=25)

    def now(self) -> datetime:
        return super().now() + self.ahead


def untag(envs: CiEnvs, name: str, key: str) -> None:
    """What a person does to save an environment: remove the mark (ECS tag API)."""
    from huaweicloudsdkecs.v2 import (
        BatchDeleteServerTagsRequest,
        BatchDeleteServerTagsRequestBody,
        ServerTag,
    )

    from teardown.adapters.huawei.clients import Clients

    ecs = Clients(load_profile(envs.profile)).ecs
    body = BatchDeleteServerTagsRequestBody("delete", [ServerTag(key=key)])
    ecs.batch_delete_server_tags(BatchDeleteServerTagsRequest(envs.servers()[name], body))


def test_a_mark_then_a_sweep_that_requires_it(
    envs: CiEnvs, monkeypatch: pytest.MonkeyPatch
) -> None:
    marked = envs.sweep(
        "--tag", "env=ci", "--older-than", "6h", "--exclude", "prod-*",
        "--mark", "--notice", "24h", "--yes",
    )  # fmt: skip
    assert marked.exit_code == 0, marked.output
    assert set(envs.servers()) == ALL  # marking changes nothing else

    # before the date: nothing is swept
    early = envs.sweep("--tag", "env=ci", "--require-mark", "--yes", "--json")
    assert early.exit_code == 0, early.output
    assert report_of(early)["scopes"] == [] and set(envs.servers()) == ALL

    # someone removes ci-103's mark: that environment is saved
    untag(envs, "ci-103-app", "teardown:sweep-after")

    # after the date: the marked environments go, and only they
    monkeypatch.setattr("teardown.cli.sweep.SystemClock", Later)
    late = envs.sweep("--tag", "env=ci", "--require-mark", "--yes", "--json")
    assert late.exit_code == 0, late.output
    assert {line["scope"] for line in report_of(late)["scopes"]} == {"ci-101"}
    assert set(envs.servers()) == ALL - {"ci-101-web", "ci-101-db"}


def unreachable(envs: CiEnvs, name: str) -> Path:
    """A copy of the sandbox profile that sends ``name``'s SSH to a closed port."""
    import socket

    server_id = envs.servers()[name]
    text = envs.profile.read_text()
    port = load_profile(envs.profile).ssh_ports[server_id]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    path = envs.root / "unreachable.toml"
    path.write_text(text.replace(f'"{server_id}" = {port}', f'"{server_id}" = {closed}'))
    return path


def test_a_failing_scope_leaves_its_servers_and_resume_finishes_it(envs: CiEnvs) -> None:
    args = ["--tag", "env=ci", "--older-than", "6h", "--exclude", "prod-*", "--yes", "--json"]
    bad = unreachable(envs, "ci-103-app")
    failing = CliRunner().invoke(
        cli,
        ["sweep", "--profile", str(bad), "--config", str(envs.root / "teardown.toml"),
         "--quiet", *args],
        catch_exceptions=False,
    )  # fmt: skip
    assert failing.exit_code == 4, failing.output  # one scope failed, the other completed
    lines = {line["scope"]: line for line in report_of(failing)["scopes"]}
    assert lines["ci-101"]["exit_code"] == 0
    assert lines["ci-103"]["exit_code"] in (1, 4) and lines["ci-103"]["run_id"]
    assert "--resume" in lines["ci-103"]["next_step"]
    assert "ci-103-app" in envs.servers()  # its backup failed: it still runs
    assert "ci-101-web" not in envs.servers()

    resumed = envs.sweep("--resume", "--yes", "--json")
    assert resumed.exit_code == 0, resumed.output
    after = {line["scope"]: line for line in report_of(resumed)["scopes"]}
    assert after["ci-103"]["exit_code"] == 0 and after["ci-103"]["destroyed"] == 1
    assert after["ci-101"] == lines["ci-101"]  # completed before: kept as it was
    assert "ci-103-app" not in envs.servers()
