"""Crash test: the runner, in a subprocess, is SIGKILLed at random points and resumed each time.

Kill points are drawn from every journal commit of a clean run and from every side effect on the
fake cloud (killed after the effect persisted, before its outcome reached the journal). After
each resume the run must be complete, no resource destroyed without its verified backups (seen
from the cloud's own record), and no destroy or billing call made twice.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from teardown.core.model import StepKind
from tests.crash_child import scenario
from tests.fake_cloud import FakeCloud

ROOT = Path(__file__).resolve().parent.parent
SEED = int(os.environ.get("TEARDOWN_CRASH_SEED", "20261126"))
MUTATING = ("destroy", "cancel_order", "unsubscribe_renewals", "cancel_auto_renew")


def child(workdir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.crash_child", str(workdir), "run-1", *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def seed(workdir: Path, switches: dict[str, Any] | None = None) -> FakeCloud:
    resources, _ = scenario()
    return FakeCloud.create(workdir / "cloud", resources, switches=switches)


def final_state(cloud: FakeCloud) -> dict[str, Any]:
    st = cloud.read()
    return {"resources": st["resources"], "orders": st["orders"]}


def check_invariants(cloud: FakeCloud) -> None:
    _, plan = scenario()
    st = cloud.read()
    calls = [c for c in st["calls"] if "failed" not in c]
    counts = Counter(
        (c["op"], c.get("urn") or c.get("order")) for c in calls if c["op"] in MUTATING
    )
    repeated = {k: n for k, n in counts.items() if n > 1}
    assert not repeated, f"repeated calls: {repeated}"
    for call in (c for c in calls if c["op"] == "destroy"):
        rp = plan.resource_plan(call["urn"])
        for step in rp.backups:
            if step.kind is StepKind.PULL:
                assert step.id in call["backups"], f"{call['urn']} destroyed before its pull"
            else:
                snaps = [sid for sid, s in st["snapshots"].items() if s["key"].startswith(step.id)]
                assert set(snaps) & set(call["backups"]), f"{call['urn']} destroyed unbacked"


@pytest.mark.slow
def test_runner_killed_at_random_points_always_finishes_safely(tmp_path: Path) -> None:
    ref_dir = tmp_path / "reference"
    ref_cloud = seed(ref_dir)
    trace = tmp_path / "trace.txt"
    clean = child(ref_dir, "--trace", str(trace))
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.strip() == "completed"
    transitions = len(trace.read_text().splitlines())
    effects = ref_cloud.read()["effects"]
    check_invariants(ref_cloud)
    expected = final_state(ref_cloud)

    labels = trace.read_text().splitlines()
    ops = [c["op"] for c in ref_cloud.read()["calls"]]
    rng = random.Random(SEED)
    points = [("commit", n) for n in rng.sample(range(1, transitions + 1), 18)]
    points += [("effect", n) for n in rng.sample(range(1, effects + 1), min(effects, 8))]
    assert len(points) >= 20
    # The points span backup, destroy and billing: the commit just before each kill, or the
    # effect it follows, names the stage.
    stages = {labels[n - 1] for k, n in points if k == "commit"} | {
        ops[n - 1] for k, n in points if k == "effect"
    }
    assert stages & {"intent.snapshot", "intent.pull", "snapshot.create", "pull"}
    assert stages & {"intent.destroy", "destroy"}
    assert stages & {"intent.record_refund", "intent.cancel_pending_order", "cancel_order"}

    for kind, n in points:
        work = tmp_path / f"{kind}-{n}"
        if kind == "commit":
            cloud = seed(work)
            killed = child(work, "--kill-at", str(n))
        else:
            cloud = seed(work, {"kill_after_effect": n})
            killed = child(work)
        assert killed.returncode == -9, f"{kind} {n}: not killed ({killed.stderr[-500:]})"
        st = cloud.read()
        st["switches"].pop("kill_after_effect", None)
        cloud.path.write_text(json.dumps(st))

        resumed = child(work)
        assert resumed.returncode == 0, f"{kind} {n}: {resumed.stderr[-2000:]}"
        assert resumed.stdout.strip() == "completed", f"{kind} {n}: {resumed.stdout}"
        check_invariants(cloud)
        assert final_state(cloud) == expected, f"{kind} {n}: final state differs"
    print(
        f"crash points: {len(points)} (seed {SEED}, of {transitions} commits and {effects} "
        f"effects; stages hit: {sorted(stages)})"
    )
