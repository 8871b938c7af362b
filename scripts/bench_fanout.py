"""Fan-out benchmark: a full `teardown run` over 16 sandbox servers versus over one.

The sandbox answers every API call after 100 ms and takes 2 s to finish a CBR backup, like a
real region on a good day. With enough parallelism, 16 servers should take about as long as one:
the target is at most 1.5x. Prints both wall times and the ratio. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.bench_sandbox import bench_server, write_sandbox_config, write_scenario
from teardown.adapters.huawei.profile import load_profile
from teardown.app import Targets, Tuning, plan_servers, run_plan
from teardown.core.config import (
    BackupConfig,
    Config,
    JournalConfig,
    RunConfig,
    ScopeConfig,
    StoreConfig,
)
from teardown.core.phases import RunPhase
from teardown.sandbox.runtime import Sandbox
from teardown.support.clock import SystemClock
from teardown.support.retry import RetryPolicy


def scenario_file(root: Path, servers: int) -> Path:
    return write_scenario(
        root / "fanout.toml",
        ['name = "fanout"'],
        [bench_server(f"node-{i:02d}", 'env = "bench"', f"node {i}") for i in range(servers)],
    )


def one(servers: int, latency: float, backup: float, parallel: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sb_dir = root / "sb"
        write_sandbox_config(sb_dir, {"checkpoint": backup, "delete_server": 1.0}, latency)
        with Sandbox(sb_dir, scenario=str(scenario_file(root, servers))):
            profile = load_profile(sb_dir / "profile.toml")
            config = Config(
                scope=ScopeConfig(name="fanout"),
                backup=BackupConfig(),
                journal=JournalConfig(path=str(root / "journal.db")),
                store=StoreConfig(path=str(root / "store")),
                run=RunConfig(parallel=parallel),
            )
            tuning = Tuning(poll_interval=0.2, retry=RetryPolicy(attempts=3, initial=0.2))
            start = time.perf_counter()
            plan = plan_servers(
                profile,
                Targets(tags=(("env", "bench"),)),
                config,
                now=SystemClock().now(),
                tuning=tuning,
            )
            outcome = run_plan(profile, plan, replace(config), tuning=tuning)
            wall = time.perf_counter() - start
            if outcome.result.phase is not RunPhase.COMPLETED:
                raise SystemExit(f"run ended {outcome.result.phase}: {outcome.result.errors}")
            return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--servers", type=int, default=16)
    ap.add_argument("--latency", type=float, default=0.1, help="seconds per API call")
    ap.add_argument("--backup", type=float, default=2.0, help="seconds per CBR backup")
    ap.add_argument("--parallel", type=int, default=16)
    args = ap.parse_args()
    single = one(1, args.latency, args.backup, args.parallel)
    print(f"1 server:    {single:.2f} s")
    many = one(args.servers, args.latency, args.backup, args.parallel)
    print(f"{args.servers} servers:  {many:.2f} s")
    print(f"ratio {args.servers}/1 = {many / single:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
