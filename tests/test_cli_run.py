"""`teardown plan|run` against a running sandbox, as a pipeline would call them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sandbox_rig import demo_unlocked

ROOT = Path(__file__).resolve().parent.parent
DEMO_SERVERS = {"web-1", "db-1", "cache-1", "promo-1", "legacy-1"}
TEARDOWN = [sys.executable, "-m", "teardown.cli.main"]


def teardown(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TEARDOWN, *args], capture_output=True, text=True, timeout=120, cwd=cwd,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Path]:
    sb = tmp_path / "sb"
    sb.mkdir()
    (sb / "sandbox.toml").write_text(
        "[durations]\ndelete_server = 0.1\nsnapshot = 0.1\ncheckpoint = 0.1\nrelease = 0.1\n"
    )
    scenario = demo_unlocked(tmp_path)
    up = teardown(
        "sandbox", "up", "--dir", str(sb), "--scenario", scenario, "--detach", cwd=tmp_path
    )
    assert up.returncode == 0, up.stderr
    try:
        yield sb
    finally:
        teardown("sandbox", "down", "--dir", str(sb), cwd=tmp_path)


def args(sb: Path) -> list[str]:
    return [
        "--profile", str(sb / "profile.toml"), "--tag", "app=shop",
        "--config", str(ROOT / "examples" / "sandbox-demo.toml"),
    ]  # fmt: skip


def test_plan_json_shows_the_money_for_each_prepaid_server(sandbox: Path) -> None:
    proc = teardown("plan", *args(sandbox), "--json", cwd=sandbox.parent)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    money = {r["name"]: r["billing"]["estimate"] for r in doc["resources"]}
    assert money["cache-1"]["five_day_full_refund"] is True
    assert money["db-1"]["fee"] == "420.00" and money["db-1"]["is_estimate"] is True
    assert money["db-1"]["next_auto_renew_charge"]
    assert [p["kind"] for p in doc["pre"]] == ["cancel_pending_order"]


def test_run_without_yes_in_a_pipeline_plans_and_stops(sandbox: Path) -> None:
    proc = teardown("run", *args(sandbox), cwd=sandbox.parent)
    assert proc.returncode == 3
    assert "not confirmed" in proc.stderr and "--yes" in proc.stderr
    status = json.loads(
        teardown("sandbox", "status", "--dir", str(sandbox), "--json", cwd=sandbox.parent).stdout
    )
    assert {s["name"] for s in status["servers"]} == DEMO_SERVERS


def test_run_yes_does_the_job_and_writes_the_report(sandbox: Path) -> None:
    proc = teardown("run", *args(sandbox), "--yes", "--json", cwd=sandbox.parent)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["phase"] == "completed"
    left = report["still_billing"]  # only the vaults, which bill while they exist
    assert all(e["kind"] == "vault" and e["charging"] == "storage" for e in left), left
    assert {e["resource_id"] for e in left} == {"vault-sandbox", "vault-sandbox-disk"}
    runs = list((sandbox.parent / ".teardown" / "demo" / "runs").iterdir())
    assert [p.name for p in sorted(runs[0].iterdir())] == [
        "report.html",
        "report.json",
        "report.md",
    ]
    assert "AK" not in (runs[0] / "report.md").read_text()


def test_no_profile_and_no_environment_is_a_usage_error(tmp_path: Path) -> None:
    proc = teardown("plan", "--tag", "app=shop", cwd=tmp_path)
    assert proc.returncode == 2
    assert "HUAWEICLOUD_SDK_AK" in proc.stderr


STACK = ROOT / "examples" / "sandbox-demo-stack.json"


def test_exported_stack_is_planned_with_the_clouds_facts(sandbox: Path) -> None:
    proc = teardown(
        "plan", "--state", str(STACK), "--profile", str(sandbox / "profile.toml"),
        "--config", str(ROOT / "examples" / "sandbox-demo.toml"), "--json", cwd=sandbox.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    actions = {r["name"]: r["destroy"]["action"] for r in doc["resources"]}
    assert actions["web-1"] == "delete" and actions["db-1"] == "unsubscribe"
    assert actions["shop-vpc"] == "keep"  # as the run does: left for `pulumi destroy`
    db = next(r for r in doc["resources"] if r["name"] == "db-1")
    assert db["urn"].startswith("urn:pulumi:dev::shop-sandbox::")
    assert db["billing"]["estimate"]["fee"] == "420.00"  # the order came from the cloud


def test_stack_destroyed_through_the_cloud_then_reconcile_commands(sandbox: Path) -> None:
    proc = teardown(
        "run", "--state", str(STACK), "--destroy-with", "cloud",
        "--profile", str(sandbox / "profile.toml"),
        "--config", str(ROOT / "examples" / "sandbox-demo.toml"), "--yes", cwd=sandbox.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "pulumi refresh --stack dev --yes" in proc.stderr
    assert "pulumi state delete --stack dev --yes 'urn:pulumi:dev::shop-sandbox::" in proc.stderr
    assert "huaweicloud:Vpc/vpc:Vpc" not in proc.stderr  # kept for pulumi destroy
    status = json.loads(
        teardown("sandbox", "status", "--dir", str(sandbox), "--json", cwd=sandbox.parent).stdout
    )
    # the stack's servers are gone; the two the stack does not hold are not its to destroy
    assert {s["name"] for s in status["servers"]} == {"promo-1", "legacy-1"}


def test_state_with_destroy_with_pulumi_is_a_usage_error(tmp_path: Path) -> None:
    for command in ("plan", "run"):
        proc = teardown(command, "--state", str(STACK), "--destroy-with", "pulumi", cwd=tmp_path)
        assert proc.returncode == 2 and "--destroy-with pulumi: needs --stack" in proc.stderr


def test_stack_without_the_pulumi_cli_is_one_line_of_guidance(tmp_path: Path) -> None:
    env_path = tmp_path / "empty-bin"
    env_path.mkdir()
    proc = subprocess.run(
        [*TEARDOWN, "plan", "--stack", "dev"], capture_output=True, text=True, cwd=tmp_path,
        env={"PATH": str(env_path), "HOME": str(tmp_path)}, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "pulumi CLI is not installed" in line and "--state" in line
