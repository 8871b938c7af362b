"""Object-store benchmark: pulled backups into an S3 bucket via the runner versus pushed by the
servers themselves (``[backup] transfer = "push"``).

What is compared: the same ``teardown run`` twice, each on a freshly seeded sandbox of
``--servers`` pay-per-use servers (tagged ``env=bench``), each server's disk holding a
``generated.bin`` of ``--mb`` MiB of pseudo-random bytes. The config pulls every server's disks
(``[[backup.pull]] paths_from_tag = "sandbox.data"``, no cloud snapshot) into a fresh bucket of
moto's S3 server on loopback (``tests/s3_server.py``, started by this script):

- ``via-runner`` (the default): each server's files come over SSH to the runner's staging
  directory, then the runner uploads them to the bucket;
- ``push``: each server uploads its own files with curl to presigned URLs; the runner moves no
  payload bytes.

Each run is what a user runs: ``teardown run --profile ... --config ... --tag env=bench --yes
--quiet --json`` in a child process with the AWS_* credentials in its environment (the sandbox,
its SSH servers and moto run in this process, so their CPU and memory are not charged to
teardown's). Wall time is from starting the child to its exit; peak RSS is the child's own
``VmHWM`` (not wait4()'s, which would include this process's peak: see ``CHILD``).
Exit 0, every server done and every pull succeeded is required.

Printed per mode: wall time, MB/s (payload MiB / wall), bytes through the runner (via-runner: the
pulled bytes from the report's backups; push: 0, confirmed by each pull's detail saying "0
payload bytes through the runner"), bytes stored in the bucket (sum of the object sizes), peak
RSS of teardown; then the ratio push / via-runner wall time. The machine's load average and CPU
count come first.

moto keeps its objects in this process's memory (8 x 256 MiB took this process to a 3.8 GiB
peak): each mode gets its own bucket, emptied and deleted once measured, so the two modes never
hold their payload at the same time. When the payload would not fit in the available memory,
``--mb`` is lowered and a line says so.

Run it through ``scripts/bench_store``; ``--help`` lists the options. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.bench_sandbox import bench_server, write_sandbox_config, write_scenario
from teardown.sandbox.runtime import Sandbox
from tests.s3_server import S3Server, running_s3

MiB = 2**20
PREFIX = "teardown"
PUSH_DETAIL = "0 payload bytes through the runner"
CHILD = """
import atexit, sys
from pathlib import Path

def _hwm(out=Path(sys.argv.pop(1))):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            out.write_text(line.split()[1])

atexit.register(_hwm)
from teardown.cli.main import main
main()
"""
"""``teardown`` in the child, writing its peak RSS (``VmHWM``, KiB) to the file named by its first
argument at exit. Not wait4()'s ``ru_maxrss``: on Linux a child started by fork or vfork carries
the parent's peak into its own (kept at exec), and this process holds moto's objects."""


def scenario_file(root: Path, servers: int, mb: int) -> Path:
    """``servers`` pay-per-use servers tagged env=bench, each disk with ``mb`` MiB of data."""
    header = [
        'name = "store-bench"',
        f'description = "{servers} servers x {mb} MiB for scripts/bench_store"',
    ]
    return write_scenario(
        root / "store-bench.toml",
        header,
        [
            bench_server(f"node-{i:02d}", 'env = "bench"', f"node {i}", f"disk:generated_mb = {mb}")
            for i in range(servers)
        ],
    )


def write_config(root: Path, s3: S3Server, bucket: str, mode: str, parallel: int) -> Path:
    transfer = '\ntransfer = "push"' if mode == "push" else ""
    path = root / "teardown.toml"
    path.write_text(
        '[scope]\nname = "store-bench"\n'
        f'[backup]\nsnapshot = "none"{transfer}\n'
        '[[backup.pull]]\nname = "data"\npaths_from_tag = "sandbox.data"\n'
        f"[journal]\npath = {json.dumps(str(root / 'journal.db'))}\n"
        f"[store]\npath = {json.dumps(str(root / 'staging'))}\n"
        f'url = "s3://{bucket}/{PREFIX}"\n'
        f"endpoint_url = {json.dumps(s3.endpoint)}\n"
        f"region = {json.dumps(s3.region)}\n"
        f"[run]\nparallel = {parallel}\npoll_interval = 0.05\n"
    )
    return path


@dataclass
class Result:
    mode: str
    wall: float
    payload: int
    """Bytes the pulls saved (the report's backups ``bytes``)."""
    through_runner: int
    stored: int
    objects: int
    maxrss_mb: float


def bucket_bytes(s3: S3Server, bucket: str) -> tuple[int, int]:
    """(sum of object sizes, object count) of the bucket."""
    total = count = 0
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    for page in pages:
        for obj in page.get("Contents", []):
            total += obj["Size"]
            count += 1
    return total, count


def drop_bucket(s3: S3Server, bucket: str) -> None:
    client = s3.client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    for page in pages:
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys})  # type: ignore[typeddict-item]
    client.delete_bucket(Bucket=bucket)


def check_report(report: dict[str, Any], mode: str, servers: int) -> tuple[int, int]:
    """(pulled bytes, bytes through the runner) from the run's JSON report, after checking
    every server is done and every pull succeeded (in push mode: pushed by the host)."""
    resources = report["resources"]
    if len(resources) != servers:
        raise SystemExit(f"{mode}: {len(resources)} resources in the report, not {servers}")
    payload = through = 0
    for rp in resources:
        if rp["phase"] != "done":
            raise SystemExit(f"{mode}: {rp['name']} ended {rp['phase']}")
        for b in rp["backups"]:
            if b["status"] != "succeeded":
                raise SystemExit(f"{mode}: {rp['name']} backup {b['status']}: {b.get('detail')}")
            size = int(b.get("bytes") or 0)
            payload += size
            if mode == "push":
                if PUSH_DETAIL not in (b.get("detail") or ""):
                    raise SystemExit(f"{mode}: {rp['name']} was not pushed: {b.get('detail')}")
            else:
                through += size
    return payload, through


def one(mode: str, s3: S3Server, servers: int, mb: int, parallel: int, tmp_root: Path) -> Result:
    root = Path(tempfile.mkdtemp(prefix=f"bench-store-{mode}-", dir=tmp_root))
    try:
        sb_dir = root / "sb"
        # Short cloud-side durations: the transfer is what is measured.
        write_sandbox_config(
            sb_dir,
            {"delete_server": 0.1, "snapshot": 0.1, "checkpoint": 0.1, "release": 0.1},
            None,
        )
        bucket = s3.new_bucket("bench")
        config = write_config(root, s3, bucket, mode, parallel)
        with Sandbox(sb_dir, scenario=str(scenario_file(root, servers, mb))) as sb:
            hwm = root / "vmhwm.txt"
            argv = [
                sys.executable, "-c", CHILD, str(hwm), "run",
                "--profile", str(sb.layout.profile), "--config", str(config),
                "--tag", "env=bench", "--yes", "--quiet", "--json",
            ]  # fmt: skip
            env = {**os.environ, **s3.env, "NO_PROXY": "127.0.0.1,localhost"}
            out = root / "report.json"
            err = root / "stderr.txt"
            with out.open("wb") as fo, err.open("wb") as fe:
                start = time.perf_counter()
                child = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe, env=env
                )
                _, status, _usage = os.wait4(child.pid, 0)
                wall = time.perf_counter() - start
            child.returncode = os.waitstatus_to_exitcode(status)
            if child.returncode != 0:
                raise SystemExit(
                    f"{mode}: teardown run exited {child.returncode}:\n"
                    f"{err.read_text()[-4000:]}\n{out.read_text()[-2000:]}"
                )
            report = json.loads(out.read_text())
        payload, through = check_report(report, mode, servers)
        stored, objects = bucket_bytes(s3, bucket)
        drop_bucket(s3, bucket)  # moto frees the payload before the next mode
        maxrss = int(hwm.read_text()) / 1024 if hwm.exists() else float("nan")
        return Result(mode, wall, payload, through, stored, objects, maxrss)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def mem_available_mb() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def fit_mb(servers: int, mb: int) -> tuple[int, str | None]:
    """The largest MiB per server (at most ``mb``) whose payload fits in memory: moto may hold
    one mode's payload twice over (the parts of a multipart upload and the assembled object),
    and 1 GiB is kept free for everything else. One mode at a time: each bucket is dropped."""
    avail = mem_available_mb()
    if not avail:
        return mb, None
    budget = avail - 1024
    need = 2 * servers * mb
    if need <= budget:
        return mb, None
    fitted = max(1, budget // (2 * servers))
    return fitted, (
        f"--mb lowered from {mb} to {fitted}: {servers} x {mb} MiB held up to twice by moto "
        f"({need} MiB) does not fit in the {avail} MiB available (1 GiB kept free)"
    )


def show(r: Result) -> None:
    mbps = r.payload / MiB / r.wall if r.wall else 0.0
    print(
        f"{r.mode:>10}: wall {r.wall:7.2f} s  {mbps:7.1f} MiB/s  "
        f"through the runner {r.through_runner:>13,} B  "
        f"in the bucket {r.stored:>13,} B ({r.objects} objects)  "
        f"teardown peak RSS {r.maxrss_mb:6.1f} MiB"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--servers", type=int, default=8, help="sandbox servers (default 8)")
    ap.add_argument("--mb", type=int, default=256, help="MiB of data per server (default 256)")
    ap.add_argument("--parallel", type=int, default=8, help="[run] parallel, 1 to 64 (default 8)")
    ap.add_argument(
        "--mode",
        choices=("both", "via-runner", "push"),
        default="both",
        help="which transfer(s) to run (default both)",
    )
    args = ap.parse_args()
    if args.servers < 1 or args.mb < 1:
        ap.error("--servers and --mb must be at least 1")
    if not 1 <= args.parallel <= 64:
        ap.error("--parallel must be 1 to 64 ([run] parallel)")

    load1, load5, load15 = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load1:.2f} {load5:.2f} {load15:.2f}, "
        f"{mem_available_mb()} MiB memory available"
    )
    mb, why = fit_mb(args.servers, args.mb)
    if why:
        print(f"note: {why}")
    modes = ("via-runner", "push") if args.mode == "both" else (args.mode,)
    print(
        f"running: {args.servers} servers x {mb} MiB ({args.servers * mb} MiB payload), "
        f"[run] parallel = {args.parallel}, modes {', '.join(modes)}; each mode on a freshly "
        "seeded sandbox and its own bucket of one moto S3 server on 127.0.0.1 "
        "(buckets dropped between modes)"
    )
    sys.stdout.flush()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log
    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp, running_s3() as s3:
        for mode in modes:
            results[mode] = one(mode, s3, args.servers, mb, args.parallel, Path(tmp))
            show(results[mode])
            sys.stdout.flush()
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this process: sandbox, its SSH servers and moto; peak RSS {self_rss:.1f} MiB)")
    if "push" in results and "via-runner" in results:
        ratio = results["push"].wall / results["via-runner"].wall
        print(f"ratio push / via-runner wall time = {ratio:.2f}")


if __name__ == "__main__":
    main()
