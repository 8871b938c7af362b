"""One run per resource anywhere: a run claims what it acts on with tags on the resources
themselves, so a second run from another directory, with another journal, refuses (exit 3)
naming the first; heartbeats keep a long run's claim and lock alive."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkecs.v2 import (
    BatchCreateServerTagsRequest,
    BatchCreateServerTagsRequestBody,
    ServerTag,
    ShowServerTagsRequest,
)

from teardown.adapters.huawei.claims import RUN_KEY, HuaweiClaims
from teardown.adapters.huawei.clients import Clients
from teardown.adapters.huawei.inventory import HuaweiInventory
from teardown.adapters.huawei.profile import load_profile
from teardown.core.config import Config
from teardown.core.errors import ClaimHeld
from teardown.core.model import Resource
from teardown.core.planner import make_plan
from teardown.engine.journal import Journal
from teardown.engine.runner import Ports, Runner
from teardown.ports import Claim
from teardown.sandbox.runtime import Sandbox
from tests.helpers import FakeClock, make_rig, server
from tests.sandbox_rig import demo_unlocked
from tests.test_crash_matrix import prepare

ROOT = Path(__file__).resolve().parent.parent
TEARDOWN = [sys.executable, "-m", "teardown.cli.main"]


def server_tags(clients: Clients, server_id: str) -> dict[str, str]:
    resp = clients.ecs.show_server_tags(ShowServerTagsRequest(server_id))
    return {t.key: t.value for t in resp.tags or []}


def test_the_sandbox_speaks_the_ecs_and_evs_tag_apis(tmp_path: Path) -> None:
    sb_dir = tmp_path / "sb"
    sb_dir.mkdir()
    with Sandbox(sb_dir, scenario="demo") as sb:
        profile = load_profile(sb.layout.profile)
        clients = Clients(profile)
        found = {r.name: r for r in HuaweiInventory(Clients(profile)).resources()}
        web, disk = found["web-1"], found["db-data"]
        claims = HuaweiClaims(clients)
        now = FakeClock().now()

        claims.claim([web, disk], "run-a", "runner-1", now)
        held = claims.holders([web, disk])
        assert {c.run_id for c in held.values()} == {"run-a"}
        assert held[web.urn].host == "runner-1" and held[web.urn].beat == now
        assert server_tags(clients, web.cloud_id or "")[RUN_KEY] == "run-a"
        claims.release([web, disk], "run-b")  # not its claim: nothing removed
        assert len(claims.holders([web, disk])) == 2
        claims.release([web, disk], "run-a")
        assert claims.holders([web, disk]) == {}

        # the documented limits: 10 tags per server, keys of at most 36 characters
        too_many = [ServerTag(key=f"k{i}", value="v") for i in range(10)]
        for tags in (too_many, [ServerTag(key="k" * 37, value="v")]):
            body = BatchCreateServerTagsRequestBody(action="create", tags=tags)
            with pytest.raises(ClientRequestException) as info:
                clients.ecs.batch_create_server_tags(
                    BatchCreateServerTagsRequest(web.cloud_id, body)
                )
            assert info.value.status_code == 400


def test_a_live_claim_of_another_run_refuses_and_a_stale_one_does_not(tmp_path: Path) -> None:
    web = server("web")
    rig = make_rig(tmp_path, [web])
    claims = MemoryClaims()
    p = rig.runner.ports
    ports = Ports(p.snapshotter, p.fetcher, p.destroyer, p.billing, claims)
    runner = Runner(rig.journal, ports, clock=rig.clock, sleep=lambda _s: None, host="here")
    claims.claim([web], "20261126T115900Z-other", "there", rig.clock.now())

    with pytest.raises(ClaimHeld) as info:
        runner.start(make_plan([web], Config(), "dev"))
    assert "claimed by run 20261126T115900Z-other on there" in str(info.value)
    assert rig.cloud.calls("destroy") == [] and rig.journal.runs() == []

    rig.clock.advance(11 * 60)  # that run stopped beating 11 minutes ago: its claim is stale
    result = runner.start(make_plan([web], Config(), "dev"))
    assert result.phase.value == "completed"
    assert claims.holders([web]) == {}  # released at the end


def test_heartbeats_are_written_on_a_timer_during_a_long_step(tmp_path: Path) -> None:
    web = server("web")
    rig = make_rig(tmp_path, [web])
    claims = MemoryClaims()
    gate = threading.Event()
    snap = rig.runner.ports.snapshotter

    class SlowSnapshotter:  # a backup that takes a while: the heartbeat must not wait for it
        def __getattr__(self, name: str) -> object:
            return getattr(snap, name)

        def wait(self, resource: Resource, ref: str) -> object:
            gate.wait(5)
            return snap.wait(resource, ref)

    p = rig.runner.ports
    ports = Ports(SlowSnapshotter(), p.fetcher, p.destroyer, p.billing, claims)  # type: ignore[arg-type]
    runner = Runner(
        rig.journal, ports, clock=rig.clock, sleep=lambda _s: None, heartbeat_every=0.02
    )
    done = threading.Thread(target=lambda: runner.start(make_plan([web], Config(), "dev")))
    done.start()
    deadline = time.monotonic() + 5
    while claims.writes < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    gate.set()
    done.join(10)
    assert claims.writes >= 4  # the first claim, then heartbeats while the backup waited


class MemoryClaims:
    """Claims kept in memory (the Claims port), for runner tests over the fake cloud."""

    def __init__(self) -> None:
        self.held: dict[str, Claim] = {}
        self.writes = 0

    def holders(self, resources: Sequence[Resource]) -> dict[str, Claim]:
        return {r.urn: self.held[r.urn] for r in resources if r.urn in self.held}

    def claim(self, resources: Sequence[Resource], run_id: str, host: str, now: datetime) -> None:
        self.writes += 1
        for r in resources:
            self.held[r.urn] = Claim(run_id, host, now)

    def release(self, resources: Sequence[Resource], run_id: str) -> None:
        for r in resources:
            held = self.held.get(r.urn)
            if held is not None and held.run_id == run_id:
                del self.held[r.urn]

    def tag(self, resources: Sequence[Resource], tags: Sequence[tuple[str, str]]) -> None:
        raise AssertionError("runs never write notices")


def test_two_runs_from_two_directories_exactly_one_acts(tmp_path: Path) -> None:
    sb, cfg_a = prepare(tmp_path / "a")
    slow = sb / "sandbox.toml"
    # The first run must still hold its claims when the second one has started and planned:
    # a slow backup keeps it busy long enough even on a loaded machine (the second process's
    # start-up alone took over 2 s under load).
    slow.write_text(slow.read_text().replace("checkpoint = 0.05", "checkpoint = 6.0"))
    cfg_b = tmp_path / "b" / "teardown.toml"
    cfg_b.parent.mkdir()
    cfg_b.write_text(cfg_a.read_text().replace(str(tmp_path / "a"), str(tmp_path / "b")))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run(cfg: Path) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*TEARDOWN, "run", "--tag", "app=shop", "--yes", "--quiet",
             "--profile", str(sb / "profile.toml"), "--config", str(cfg)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            cwd=cfg.parent,
        )  # fmt: skip

    with Sandbox(sb, scenario=demo_unlocked(tmp_path)) as sandbox:
        clients = Clients(load_profile(sandbox.layout.profile))
        web_id = next(r.cloud_id for r in HuaweiInventory(clients).resources() if r.name == "web-1")
        first = run(cfg_a)
        deadline = time.monotonic() + 30
        while RUN_KEY not in server_tags(clients, web_id or "") and time.monotonic() < deadline:
            time.sleep(0.05)  # the first run has claimed what it acts on
        claimant = server_tags(clients, web_id or "")[RUN_KEY]
        second = run(cfg_b)
        _out_b, err_b = second.communicate(timeout=120)
        _out_a, err_a = first.communicate(timeout=120)
        conn = sqlite3.connect(sandbox.layout.state)
        counts = dict(
            conn.execute(
                "SELECT operation, COUNT(*) FROM calls WHERE status < 400 GROUP BY operation"
            ).fetchall()
        )
        conn.close()
    assert first.returncode == 0, err_a
    assert second.returncode == 3, err_b
    assert f"claimed by run {claimant}" in err_b
    assert counts["ecs.DeleteServers"] == 1
    # db-1, db-data, cache-1, promo-1, legacy-1: once each
    assert counts["bss.CancelResourcesSubscription"] == 5
    journal = Journal.open(tmp_path / "b" / "journal.db", FakeClock(), create=True)
    assert journal.runs() == []  # the refused run recorded nothing
    journal.close()
