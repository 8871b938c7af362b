"""A run whose pulls live in an object store (``[store] url``), against the sandbox and moto's
S3 server on loopback: backups in the bucket, checked there before the destroy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from teardown.adapters.object_fetcher import INDEX, MANIFEST, ObjectStoreFetcher
from teardown.adapters.objstore import ObjectStore
from teardown.adapters.ssh.fetcher import SshFetcher
from teardown.adapters.store import LocalStore
from teardown.adapters.store_urls import retention_rule
from teardown.app.config import load_config
from teardown.cli.main import cli
from teardown.core.config import SshConfig
from teardown.core.model import PullSpec
from teardown.engine.journal import Journal
from teardown.sandbox.runtime import Sandbox
from teardown.support.clock import SystemClock
from tests.s3_server import S3Server, s3_endpoint

__all__ = ["s3_endpoint"]  # the fixture

CONFIG = """
[scope]
name = "ci-103"
[backup]
snapshot = "none"
[[backup.pull]]
name = "data"
paths_from_tag = "sandbox.data"
[journal]
path = "{root}/journal.db"
[store]
path = "{root}/staging"
url = "s3://{bucket}/teardown"
endpoint_url = "{endpoint}"
region = "{region}"
[run]
poll_interval = 0.05
"""


@dataclass
class World:
    root: Path
    sb: Sandbox
    s3: S3Server
    bucket: str

    def objects(self) -> list[str]:
        found = self.s3.client().list_objects_v2(Bucket=self.bucket, Prefix="teardown/")
        return sorted(o["Key"] for o in found.get("Contents", []))


@pytest.fixture
def world(
    tmp_path: Path, s3_endpoint: S3Server, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    sb_dir = tmp_path / "sb"
    sb_dir.mkdir()
    (sb_dir / "sandbox.toml").write_text(
        "[durations]\ndelete_server = 0.1\nsnapshot = 0.1\ncheckpoint = 0.1\nrelease = 0.1\n"
    )
    bucket = s3_endpoint.new_bucket()
    (tmp_path / "teardown.toml").write_text(
        CONFIG.format(
            root=tmp_path, bucket=bucket, endpoint=s3_endpoint.endpoint, region=s3_endpoint.region
        )
    )
    for key, value in s3_endpoint.env.items():
        monkeypatch.setenv(key, value)
    with Sandbox(sb_dir, scenario="ci-envs") as sb:
        yield World(tmp_path, sb, s3_endpoint, bucket)


def run(world: World, *args: str) -> Any:
    return CliRunner().invoke(
        cli,
        [
            "run", "--profile", str(world.sb.layout.profile), "--config",
            str(world.root / "teardown.toml"), "--yes", "--quiet", "--json", *args,
        ],
        catch_exceptions=False,
    )  # fmt: skip


def test_a_run_keeps_its_pulls_in_the_bucket_checked_there_before_the_destroy(
    world: World,
) -> None:
    result = run(world, "--tag", "teardown:scope=ci-103")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (rp,) = report["resources"]
    assert rp["phase"] == "done" and rp["destroy"]["status"] == "succeeded"
    (pull,) = rp["backups"]
    prefix = f"s3://{world.bucket}/teardown/backups/"
    assert pull["status"] == "succeeded" and pull["ref"].startswith(prefix)
    assert pull["ref"].endswith("/" + MANIFEST) and pull["files"] >= 1

    # the backup is in the bucket, manifest and index included; nothing is left on the runner
    key = pull["ref"].removeprefix(prefix).removesuffix("/" + MANIFEST)
    stored = world.objects()
    assert f"teardown/backups/{key}/{MANIFEST}" in stored
    assert f"teardown/backups/{key}/{INDEX}" in stored
    assert any("/segments/" in k for k in stored)
    staging = world.root / "staging"
    assert not [p for p in staging.iterdir() if p.is_dir()] if staging.exists() else True

    # the journal's artifact is checked against the bucket: intact, then tampered
    config = load_config(world.root / "teardown.toml")
    store = ObjectStore.open(config.store, world.s3.env)
    fetcher = ObjectStoreFetcher(SshFetcher(LocalStore(staging), SshConfig()), store)
    with Journal.open(world.root / "journal.db", SystemClock(), create=False) as journal:
        (artifact,) = journal.artifacts(report["run_id"]).values()
    spec = PullSpec(name="data", paths=("/",))
    assert fetcher.check(_resource(), spec, artifact) is None
    segment = next(k for k in stored if "/segments/" in k)
    world.s3.client().put_object(Bucket=world.bucket, Key=segment, Body=b"changed bytes")
    problem = fetcher.check(_resource(), spec, artifact)
    assert problem is not None and segment.rsplit("/", 1)[-1] in problem

    # another machine (empty staging) finds the verified pull in the bucket: nothing is sent
    found = fetcher.find(_resource(), spec, key)
    assert found is not None and found.verified and found.ref == pull["ref"]


def _resource() -> Any:
    from teardown.core.model import Kind, Resource

    return Resource(
        urn="urn:x", type="huaweicloud:Ecs/instance:Instance", kind=Kind.SERVER, name="ci-103"
    )


def test_a_second_runner_on_the_scope_is_refused_naming_the_holder(world: World) -> None:
    """Another machine's run holds the scope's lock in the bucket (written as that run's
    would be): this run is refused, exit 3, naming it, and changes nothing."""
    config = load_config(world.root / "teardown.toml")
    store = ObjectStore.open(config.store, world.s3.env)
    other = {"run_id": "20261130T040000Z-0ther1", "host": "runner-b", "pid": 4242}
    assert store.lock("ci-103", other).acquired
    result = run(world, "--tag", "teardown:scope=ci-103")
    assert result.exit_code == 3, result.output
    assert "20261130T040000Z-0ther1" in result.stderr and "runner-b" in result.stderr
    assert not [k for k in world.objects() if "/backups/" in k]  # nothing was backed up
    assert store.unlock("ci-103", other)  # still the other run's lock


def test_a_run_killed_during_backups_is_resumed_from_the_bucket_on_a_fresh_machine(
    world: World,
) -> None:
    import os
    import subprocess
    import sys

    common = [
        "--profile", str(world.sb.layout.profile), "--config", str(world.root / "teardown.toml"),
    ]  # fmt: skip
    env = {**os.environ, "TEARDOWN_CRASH_AT": "phase.verified"}
    killed = subprocess.run(
        [sys.executable, "-m", "tests.crash_cli", "run", *common, "--tag",
         "teardown:scope=ci-103", "--yes", "--quiet"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    (run_id,) = {k.split("/")[2] for k in world.objects() if k.startswith("teardown/runs/")}
    assert "ci-103-app" in servers(world)  # killed before its destroy

    # a fresh machine: no journal, no staging, only the bucket
    for path in (world.root / "journal.db", world.root / "staging"):
        if path.is_dir():
            import shutil

            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for leftover in world.root.glob("journal.db-*"):
        leftover.unlink()
    resumed = CliRunner().invoke(
        cli, ["resume", run_id, *common, "--json", "--quiet"], catch_exceptions=False
    )
    assert resumed.exit_code == 0, resumed.output
    assert "fetched run" in resumed.stderr
    report = json.loads(resumed.stdout)
    (rp,) = report["resources"]
    assert rp["phase"] == "done" and rp["destroy"]["status"] == "succeeded"
    (pull,) = rp["backups"]
    assert "verified earlier" in pull["detail"]  # found in the bucket, not sent again
    assert "ci-103-app" not in servers(world)
    assert f"teardown/runs/{run_id}/report.json" in world.objects()


def servers(world: World) -> set[str]:
    import sqlite3

    conn = sqlite3.connect(world.root / "sb" / "state.db")
    try:
        return {str(r[0]) for r in conn.execute("SELECT name FROM servers WHERE deleted=0")}
    finally:
        conn.close()


def test_a_whole_run_in_push_mode_moves_no_payload_through_the_runner(world: World) -> None:
    """``transfer = "push"``: the sandbox server uploads its files to the bucket itself (curl
    with presigned URLs); each object's checksum is confirmed before the destroy."""
    cfg = world.root / "teardown.toml"
    text = cfg.read_text().replace('snapshot = "none"', 'snapshot = "none"\ntransfer = "push"')
    text = text.replace('region = "', 'retention_days = 7\nregion = "')
    cfg.write_text(text + "[billing.prices]\nobject_storage_gb_month = 0.12\n")
    result = run(world, "--tag", "teardown:scope=ci-103")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (rp,) = report["resources"]
    (pull,) = rp["backups"]
    assert "pushed by the host" in pull["detail"], pull["detail"]
    kept = report["object_store"]  # what the run keeps in the bucket, and its monthly cost
    assert kept["bytes"] == pull["bytes"] > 0 and kept["monthly_cost"] is not None
    run_dir = f"teardown/runs/{report['run_id']}/"
    assert {run_dir + "journal.db", run_dir + "report.json"} <= set(world.objects())
    assert "0 payload bytes through the runner" in pull["detail"]
    assert rp["phase"] == "done" and rp["destroy"]["status"] == "succeeded"
    key = pull["ref"].split("/backups/", 1)[1].removesuffix("/" + MANIFEST)
    assert any(k.startswith(f"teardown/backups/{key}/files/") for k in world.objects())
    staging = world.root / "staging"
    assert not staging.exists() or not any(staging.iterdir())

    # the bucket expires the backups after [store] retention_days; the run verifies from there
    store = ObjectStore.open(load_config(cfg).store, world.s3.env)
    rule = retention_rule(store)
    assert rule is not None and rule["Expiration"]["Days"] == 7
    verified = CliRunner().invoke(cli, ["verify", report["run_id"], "--config", str(cfg)])
    assert verified.exit_code == 0, verified.output


def test_the_whole_demo_in_push_mode_keeps_everything_in_the_bucket(
    tmp_path: Path, s3_endpoint: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ACCEPTANCE: the demo scenario (its lock lifted) with ``store.url`` and ``transfer =
    "push"``: every pull pushed by its server and confirmed by the store's checksum before its
    server is destroyed, the report and journal in the bucket, no payload through the runner."""
    from tests.sandbox_rig import demo_unlocked

    sb_dir = tmp_path / "sb"
    sb_dir.mkdir()
    (sb_dir / "sandbox.toml").write_text(
        "[durations]\ndelete_server = 0.1\nsnapshot = 0.1\ncheckpoint = 0.1\nrelease = 0.1\n"
    )
    bucket = s3_endpoint.new_bucket()
    cfg = tmp_path / "teardown.toml"
    cfg.write_text(
        CONFIG.format(
            root=tmp_path, bucket=bucket, endpoint=s3_endpoint.endpoint, region=s3_endpoint.region
        )
        .replace('name = "ci-103"', 'name = "shop-test"')
        .replace('snapshot = "none"', 'snapshot = "cbr"\ntransfer = "push"')
    )
    for key, value in s3_endpoint.env.items():
        monkeypatch.setenv(key, value)
    with Sandbox(sb_dir, scenario=demo_unlocked(tmp_path)) as sb:
        world = World(tmp_path, sb, s3_endpoint, bucket)
        result = run(world, "--tag", "app=shop")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        servers = [rp for rp in report["resources"] if rp["kind"] == "server"]
        assert len(servers) == 5
        for rp in servers:
            pulls = [b for b in rp["backups"] if b["kind"] == "pull"]
            assert pulls, rp["name"]
            for pull in pulls:
                assert pull["status"] == "succeeded", (rp["name"], pull)
                assert "0 payload bytes through the runner" in pull["detail"], pull["detail"]
                assert pull["ref"].startswith(f"s3://{bucket}/teardown/backups/")
            assert rp["destroy"]["status"] == "succeeded", rp["name"]
        run_dir = f"teardown/runs/{report['run_id']}/"
        assert {run_dir + "journal.db", run_dir + "report.json"} <= set(world.objects())
        staging = tmp_path / "staging"
        assert not staging.exists() or not any(p.is_dir() for p in staging.iterdir())


def test_the_plan_says_where_the_pulls_go_and_at_what_price(world: World) -> None:
    cfg = world.root / "teardown.toml"
    text = cfg.read_text().replace('region = "', 'retention_days = 30\nregion = "')
    cfg.write_text(text + "[billing.prices]\nobject_storage_gb_month = 0.12\n")
    result = CliRunner().invoke(
        cli,
        ["plan", "--profile", str(world.sb.layout.profile), "--config", str(cfg),
         "--tag", "teardown:scope=ci-103", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    kept = json.loads(result.stdout)["backup_storage"]["object_store"]
    assert kept == {
        "url": f"s3://{world.bucket}/teardown",
        "transfer": "via-runner",
        "pulls": 1,
        "retention_days": 30,
        "price_per_gb_month": "0.12",
    }
    text_plan = CliRunner().invoke(
        cli,
        ["plan", "--profile", str(world.sb.layout.profile), "--config", str(cfg),
         "--tag", "teardown:scope=ci-103"],
    )  # fmt: skip
    assert f"kept in s3://{world.bucket}/teardown" in text_plan.stdout
