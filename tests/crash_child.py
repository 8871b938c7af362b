"""One run of the crash scenario in its own process: ``python -m tests.crash_child DIR RUN_ID``.

Starts the run (or resumes it when the journal already has it) against the fake cloud in DIR.
``--kill-at N`` SIGKILLs the process right after the N-th journal commit; the fake cloud's
``kill_after_effect`` switch kills it right after a side effect instead. ``--trace FILE`` appends
each commit's label to FILE (the harness counts the transitions of a clean run with it).
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

from teardown.core.config import BackupConfig, Config, PullRule
from teardown.core.errors import JournalError
from teardown.core.model import BillingMode, Plan, Resource
from teardown.core.planner import make_plan
from teardown.engine.journal import Journal
from teardown.engine.runner import Ports, Runner
from teardown.support.clock import SystemClock
from teardown.support.retry import RetryPolicy
from tests.fake_cloud import FakeCloud, fake_ports
from tests.helpers import network, server, volume


def scenario() -> tuple[list[Resource], Plan]:
    vpc = network("vpc")
    web = server("web", deps=(vpc.urn,))
    db = server("db", BillingMode.PRE_PAID, pending=("CS-1",), auto_renew=True, deps=(vpc.urn,))
    data = volume("db-data", BillingMode.PRE_PAID, parent=db.urn)
    spare = server("spare", BillingMode.SPOT, deps=(vpc.urn,))
    resources = [vpc, web, db, data, spare]
    config = Config(backup=BackupConfig(pull=(PullRule(paths=("/srv",), name="site"),)))
    return resources, make_plan(resources, config, "crash")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", type=Path)
    ap.add_argument("run_id")
    ap.add_argument("--kill-at", type=int, default=0)
    ap.add_argument("--trace", type=Path)
    args = ap.parse_args()
    commits = 0

    def on_commit(label: str) -> None:
        nonlocal commits
        commits += 1
        if args.trace:
            with open(args.trace, "a") as f:
                f.write(label + "\n")
        if commits == args.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    cloud = FakeCloud(args.dir / "cloud")
    clock = SystemClock()
    journal = Journal.open(args.dir / "journal.db", clock, on_commit=on_commit)
    snap, fetch, destroy, billing = fake_ports(cloud)
    runner = Runner(
        journal,
        Ports(snap, fetch, destroy, billing),
        clock=clock,
        retry=RetryPolicy(attempts=3, initial=0.01, maximum=0.02, jitter=0.01),
        sleep=lambda _s: None,
        parallel=2,
    )
    try:
        journal.run(args.run_id)
    except JournalError:
        result = runner.start(scenario()[1], run_id=args.run_id)
    else:
        result = runner.resume(args.run_id)
    print(result.phase.value)


if __name__ == "__main__":
    main()
