"""Sweep benchmark: `teardown sweep` over 50 scopes of 4 sandbox servers versus over one scope.

The sandbox answers every API call after 100 ms and takes 2 s to finish a CBR backup. Each scope
(servers sharing a ``teardown:scope`` tag, a day old) is a full teardown run: plan, CBR backups
verified, destroy, billing closed. With ``--parallel-scopes 16`` the 50 scopes should finish in
at most 4x the wall time of one scope (ceil(50 / 16) = 4 rounds of scopes, so the target leaves
no room for scopes slowing each other down beyond what the sweep's fixed costs absorb).

What is compared (``--baseline both``, the default): the full sweep, in a sandbox seeded with
``--scopes`` x ``--servers-per-scope`` servers, against a one-scope sweep in a sandbox seeded
with that one scope only (``small``: what sweeping one environment costs; the target is judged
on this ratio, since finding and listing 200 servers is part of the work of sweeping 50
environments) and, for reference, against a one-scope sweep in a sandbox seeded exactly like the
full one with every other scope given to ``--exclude`` (``exclude``: the same account, so the
listing costs the same in both and the ratio shows only what the extra scopes cost). Every sweep
gets a freshly seeded sandbox.

Each sweep is what a user runs: ``teardown sweep --profile ... --config ... --tag env=bench
--older-than 6h --parallel-scopes N --yes --quiet --json`` in a child process (the sandbox runs
in this process, so its own CPU work is not charged to teardown's); the wall time is from
starting the child to its exit, its peak RSS comes from wait4(). Exit code 0 with every scope
completed is required. The journal's timestamps then say where the time went.

Run it through ``scripts/bench_sweep``; ``--help`` lists the options. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import math
import os
import pstats
import resource
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.bench_sandbox import bench_server, write_sandbox_config, write_scenario
from teardown.sandbox.config import SandboxConfig
from teardown.sandbox.runtime import Sandbox
from teardown.sandbox.store import Store

TARGET = 4.0


def scope_name(i: int, scopes: int) -> str:
    return f"env-{i:0{max(2, len(str(scopes - 1)))}d}"


def scenario_file(root: Path, scopes: int, per_scope: int) -> Path:
    """``scopes`` x ``per_scope`` pay-per-use servers, tagged env=bench and their scope, a day
    old (so ``--older-than 6h`` selects them all)."""
    servers = []
    for s in range(scopes):
        scope = scope_name(s, scopes)
        tags = f'env = "bench", "teardown:scope" = "{scope}"'
        servers += [
            bench_server(f"{scope}-node-{n}", tags, f"{scope} node {n}", "provisioned_days_ago = 1")
            for n in range(per_scope)
        ]
    header = [
        'name = "sweep-bench"',
        f'description = "{scopes} scopes x {per_scope} servers for scripts/bench_sweep"',
    ]
    return write_scenario(root / "sweep-bench.toml", header, servers)


def write_config(root: Path, run_parallel: int, poll: float) -> Path:
    """teardown.toml: CBR backups only (no pull rules, so no SSH), journal and store here."""
    path = root / "teardown.toml"
    path.write_text(
        '[backup]\nsnapshot = "cbr"\n'
        f"[journal]\npath = {json.dumps(str(root / 'journal.db'))}\n"
        f"[store]\npath = {json.dumps(str(root / 'store'))}\n"
        f"[run]\nparallel = {run_parallel}\npoll_interval = {poll}\n"
    )
    return path


class TimedSandbox(Sandbox):
    """A sandbox that says how long its SSH fleet took to start (one server per cloud server)."""

    ssh_seconds = 0.0

    def _start_ssh(self, store: Store, config: SandboxConfig) -> None:
        t0 = time.perf_counter()
        super()._start_ssh(store, config)
        self.ssh_seconds = time.perf_counter() - t0


@dataclass
class Result:
    label: str
    scopes: int
    wall: float
    child_cpu: float
    sandbox_cpu: float
    maxrss_mb: float
    sandbox_up: float
    ssh_up: float
    completed: int
    timeline: dict[str, float] = field(default_factory=dict)
    runs: list[float] = field(default_factory=list)
    steps: dict[str, list[float]] = field(default_factory=dict)
    calls: int = 0
    all_calls: list[tuple[str, int]] = field(default_factory=list)
    select_calls: list[tuple[str, int]] = field(default_factory=list)
    """API calls made before the first scope's run was created (listing, selection, planning
    of the first scope), by operation, most first."""


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def _seconds(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def where_time_went(
    journal: Path,
    state: Path,
    report: dict[str, Any],
    spawned: datetime,
    ended: datetime,
    result: Result,
) -> None:
    """From the journal's timestamps: the sweep's phases, each scope's run, each step kind; from
    the sandbox's call log: the API calls made, and those before the first scope's run."""
    conn = sqlite3.connect(journal)
    try:
        runs = conn.execute("SELECT id, created_at, updated_at FROM runs").fetchall()
        steps = conn.execute(
            "SELECT kind, intent_at, outcome_at FROM steps WHERE outcome_at IS NOT NULL"
        ).fetchall()
    finally:
        conn.close()
    result.runs = [_seconds(c, u) for _, c, u in runs]
    first_run = min((c for _, c, _ in runs), default=ended.isoformat())
    calls = sqlite3.connect(state)
    try:
        rows = calls.execute(
            "SELECT operation, at FROM calls WHERE at >= ?",
            (spawned.isoformat(),),
        ).fetchall()
    finally:
        calls.close()
    result.calls = len(rows)
    early: dict[str, int] = defaultdict(int)
    for operation, at in rows:
        if datetime.fromisoformat(at) < datetime.fromisoformat(first_run):
            early[operation] += 1
    result.select_calls = sorted(early.items(), key=lambda x: -x[1])
    every: dict[str, int] = defaultdict(int)
    for operation, _ in rows:
        every[operation] += 1
    result.all_calls = sorted(every.items(), key=lambda x: -x[1])
    by_kind: dict[str, list[float]] = defaultdict(list)
    for kind, intent, outcome in steps:
        by_kind[kind].append(_seconds(intent, outcome))
    result.steps = dict(by_kind)
    if not runs:
        return
    first = min(c for _, c, _ in runs)
    last = max(u for _, _, u in runs)
    started = report["created_at"]
    result.timeline = {
        "start-up (imports, config)": _seconds(spawned.isoformat(), started),
        "select + first scope planned": _seconds(started, first),
        "scope runs (first created .. last finished)": _seconds(first, last),
        "report + exit": _seconds(last, ended.isoformat()),
    }


def sweep_once(label: str, scopes: int, only: int | None, args: argparse.Namespace) -> Result:
    """Seed a sandbox with ``scopes`` scopes, sweep ``only`` of them (None: all), time it."""
    with tempfile.TemporaryDirectory(prefix="teardown-bench-sweep-") as tmp:
        root = Path(tmp)
        sb_dir = root / "sb"
        write_sandbox_config(
            sb_dir, {"checkpoint": args.backup_seconds, "delete_server": 1.0}, args.latency
        )
        scenario = scenario_file(root, scopes, args.servers_per_scope)
        sandbox = TimedSandbox(sb_dir, scenario=str(scenario))
        t0 = time.perf_counter()
        sandbox.start()
        try:
            sandbox_up = time.perf_counter() - t0
            config = write_config(root, args.run_parallel, args.poll_interval)
            sweep_args = [
                "sweep",
                "--profile",
                str(sb_dir / "profile.toml"),
                "--config",
                str(config),
                "--tag",
                "env=bench",
                "--older-than",
                "6h",
                "--parallel-scopes",
                str(args.parallel_scopes),
                "--yes",
                "--quiet",
                "--json",
            ]
            if scopes > 50:
                sweep_args += ["--max-scopes", str(scopes)]
            if only is not None:
                for i in range(scopes):
                    if i != only:
                        sweep_args += ["--exclude", scope_name(i, scopes)]
            command = teardown_command()
            if args.profile_out is not None and only is None:
                command = [sys.executable, str(Path(__file__).resolve()), "--child-profile"]
                command += [str(args.profile_out), "--"]
            shown = [*command, *sweep_args[:15]]
            more = f" (+ {len(sweep_args) - 15} more)" if len(sweep_args) > 15 else ""
            print(f"[{label}] {shlex.join(shown)}{more}", flush=True)
            out_path, err_path = root / "stdout.json", root / "stderr.txt"
            self_before = _cpu(resource.getrusage(resource.RUSAGE_SELF))
            with out_path.open("wb") as out, err_path.open("wb") as err:
                spawned = datetime.now(UTC)
                start = time.perf_counter()
                child = subprocess.Popen(
                    [*command, *sweep_args],
                    cwd=root,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                )
                _, status, usage = os.wait4(child.pid, 0)
                wall = time.perf_counter() - start
                ended = datetime.now(UTC)
                child.returncode = os.waitstatus_to_exitcode(status)
            sandbox_cpu = _cpu(resource.getrusage(resource.RUSAGE_SELF)) - self_before
            ssh_up = sandbox.ssh_seconds
        finally:
            sandbox.stop()
        stderr = err_path.read_text(errors="replace")
        try:
            report: dict[str, Any] = json.loads(out_path.read_text())
        except json.JSONDecodeError:
            raise SystemExit(
                f"[{label}] exit {child.returncode}, no JSON report:\n{stderr[-4000:]}"
            ) from None
        lines = report.get("scopes", [])
        completed = sum(
            1 for x in lines if x.get("exit_code") == 0 and x.get("phase") == "completed"
        )
        want = 1 if only is not None else scopes
        if child.returncode != 0 or completed != want or len(lines) != want:
            bad = [x for x in lines if x.get("exit_code") != 0][:5]
            raise SystemExit(
                f"[{label}] FAILED: exit {child.returncode}, {completed}/{want} scopes completed "
                f"({len(lines)} ran); first failures: {json.dumps(bad, indent=1)}\n{stderr[-4000:]}"
            )
        result = Result(
            label=label,
            scopes=want,
            wall=wall,
            child_cpu=_cpu(usage),
            sandbox_cpu=sandbox_cpu,
            maxrss_mb=usage.ru_maxrss / 1024,
            sandbox_up=sandbox_up,
            ssh_up=ssh_up,
            completed=completed,
        )
        where_time_went(root / "journal.db", sb_dir / "state.db", report, spawned, ended, result)
        return result


def teardown_command() -> list[str]:
    script = Path(sys.executable).parent / "teardown"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "teardown.cli.main"]


def show(result: Result, servers: int) -> None:
    print(
        f"[{result.label}] {result.scopes} scope(s) x {servers} servers: "
        f"wall {result.wall:.2f} s, {result.completed}/{result.scopes} scopes completed (exit 0)"
    )
    print(
        f"  sandbox up {result.sandbox_up:.2f} s (SSH fleet {result.ssh_up:.2f} s); "
        f"teardown CPU {result.child_cpu:.2f} s ({result.child_cpu / result.wall:.0%} of wall), "
        f"sandbox CPU {result.sandbox_cpu:.2f} s ({result.sandbox_cpu / result.wall:.0%}); "
        f"teardown peak RSS {result.maxrss_mb:.1f} MB"
    )
    for what, seconds in result.timeline.items():
        print(f"  {what:<45} {seconds:7.2f} s")
    if result.runs:
        runs = result.runs
        print(
            f"  {'scope run (journal: created .. finished)':<45} mean {statistics.mean(runs):.2f}"
            f" s, min {min(runs):.2f} s, max {max(runs):.2f} s"
        )
    early = sum(n for _, n in result.select_calls)
    top = ", ".join(f"{op} x{n}" for op, n in result.select_calls[:6])
    every = ", ".join(f"{op} x{n}" for op, n in result.all_calls[:6])
    per = result.calls / result.scopes
    print(f"  API calls: {result.calls} in all ({per:.0f} per scope): {every}")
    print(f"  API calls before the first scope's run: {early}: {top}")
    for kind, times in sorted(result.steps.items()):
        print(
            f"  step {kind:<40} n={len(times):<4} mean {statistics.mean(times):.2f} s, "
            f"max {max(times):.2f} s"
        )


def child_profile(out: Path, argv: Sequence[str]) -> None:
    """Run ``teardown`` with ``argv`` here under cProfile, every thread profiled (the sweep's
    work is in pool threads) by its own CPU time (``time.thread_time``: waiting for the API,
    a lock or the GIL counts nothing), the stats of all threads merged into ``out``."""
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    original = threading.Thread.run

    def profiled_run(self: threading.Thread) -> None:
        prof = cProfile.Profile(time.thread_time)
        with lock:
            profiles.append(prof)
        prof.enable()
        try:
            original(self)
        finally:
            prof.disable()

    threading.Thread.run = profiled_run  # type: ignore[method-assign]
    from teardown.cli.main import cli

    main_prof = cProfile.Profile(time.thread_time)
    profiles.append(main_prof)
    code: int | str | None = 0
    main_prof.enable()
    try:
        cli.main(args=list(argv), prog_name="teardown", standalone_mode=True)
    except SystemExit as e:
        code = e.code
    finally:
        main_prof.disable()
        threading.Thread.run = original  # type: ignore[method-assign]
        stats = pstats.Stats(main_prof)
        for prof in profiles:
            if prof is not main_prof:
                with contextlib.suppress(TypeError):  # a thread that ran no Python code
                    stats.add(prof)
        stats.dump_stats(str(out))
    sys.exit(code)


def print_profile(path: Path, top: int) -> None:
    print(f"CPU profile of the full sweep (cProfile, thread CPU time, all threads), top {top}:")
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(top)
    print(f"top {top} by cumulative time:")
    stats.sort_stats("cumulative").print_stats(top)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child-profile":
        rest = sys.argv[3:]
        child_profile(Path(sys.argv[2]), rest[1:] if rest[:1] == ["--"] else rest)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--scopes", type=int, default=50)
    ap.add_argument("--servers-per-scope", type=int, default=4)
    ap.add_argument("--parallel-scopes", type=int, default=16)
    ap.add_argument("--latency", type=float, default=0.1, help="seconds per API call")
    ap.add_argument("--backup-seconds", type=float, default=2.0, help="seconds per CBR backup")
    ap.add_argument(
        "--run-parallel", type=int, default=4, help="[run] parallel: resources at once per scope"
    )
    ap.add_argument("--poll-interval", type=float, default=0.2, help="[run] poll_interval")
    ap.add_argument(
        "--baseline",
        choices=["small", "exclude", "both"],
        default="both",
        help="the one-scope sweep: small: in a sandbox seeded with that scope only (what the "
        "target is judged against); exclude: in a sandbox seeded like the full one, every other "
        "scope given to --exclude (same account, so the listing costs the same); both (default)",
    )
    ap.add_argument(
        "--profile-out",
        type=Path,
        help="also profile the full sweep's CPU time (cProfile, all threads) into this file and "
        "print the top 15 (the profiler slows the sweep: its wall time is not the benchmark's)",
    )
    args = ap.parse_args()
    if args.scopes < 1 or args.servers_per_scope < 1:
        ap.error("--scopes and --servers-per-scope must be at least 1")
    if args.profile_out is not None:
        args.profile_out = args.profile_out.resolve()
    load = os.getloadavg()
    cpus = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    servers = args.servers_per_scope
    print(
        f"machine: {cpus} CPUs ({usable} usable), load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min) at start"
    )
    print(
        f"sandbox: {args.latency * 1000:.0f} ms per API call, {args.backup_seconds:g} s per CBR "
        f"backup, 1 s per server delete; config: [backup] snapshot = cbr (no pull, no SSH), "
        f"[run] parallel = {args.run_parallel}, poll_interval = {args.poll_interval:g}, "
        f"claim_settle = default; --parallel-scopes {args.parallel_scopes}"
    )
    baselines: list[Result] = []
    if args.baseline in ("small", "both"):
        baselines.append(sweep_once("1 scope, small sandbox", 1, 0, args))
        show(baselines[-1], servers)
    if args.baseline in ("exclude", "both"):
        label = f"1 scope, {args.scopes}-scope sandbox, rest excluded"
        baselines.append(sweep_once(label, args.scopes, 0, args))
        show(baselines[-1], servers)
    many = sweep_once(f"{args.scopes} scopes", args.scopes, None, args)
    show(many, servers)
    rounds = math.ceil(args.scopes / args.parallel_scopes)
    print(f"--- {args.scopes} scopes, --parallel-scopes {args.parallel_scopes}: {rounds} round(s)")
    for i, single in enumerate(baselines):
        ratio = many.wall / single.wall
        verdict = "MEETS" if ratio <= TARGET else "MISSES"
        judged = " <- the target's comparison" if i == 0 else " (for reference)"
        print(
            f"ratio {args.scopes} scopes / [{single.label}] = {many.wall:.2f} / {single.wall:.2f}"
            f" = {ratio:.2f}: target <= {TARGET:g} {verdict}{judged}"
        )
        if single.runs and many.runs:
            slow = statistics.mean(many.runs) / statistics.mean(single.runs)
            print(f"  a scope's run takes {slow:.2f}x as long in the full sweep as in this one")
    print(f"peak RSS of teardown sweep: {many.maxrss_mb:.1f} MB ({args.scopes} scopes); ", end="")
    print("; ".join(f"{b.maxrss_mb:.1f} MB ([{b.label}])" for b in baselines))
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process (the sandbox, {args.scopes * servers} servers): {own:.1f} MB")
    end = os.getloadavg()
    print(f"load average at end: {end[0]:.2f} {end[1]:.2f} {end[2]:.2f}")
    if args.profile_out is not None:
        print_profile(args.profile_out, 15)


if __name__ == "__main__":
    main()
