"""Benchmark: pull a big and a small file set over SSH from a real OpenSSH sshd on 127.0.0.1.

Compares, in the same run and against the same server (``tests.sshd.Sshd``):

- ``openssh-tar``: ``ssh HOST 'tar cf - -C PARENT SET' | tar xf - -C DEST`` (default cipher),
- ``rsync``: ``rsync -a -e 'ssh ...' HOST:SRC/ DEST/``,
- ``teardown``: ``bench_pull_hook.pull(info, paths, dest)`` (``scripts/bench_pull_hook.py``), a
  verified pull with ``--parallel`` streams (default 2);
- ``teardown-nohash``: the same pull with the host's checksums skipped: not a backup (it cannot
  verify), the client side's ceiling, since on loopback the host's hashing shares the same cores;
- ``teardown-paramiko``: the verified pull with its streams over paramiko instead of OpenSSH's
  ``ssh`` (``[ssh] client = "paramiko"``).

Big set: 4 files x 256 MiB random (``--big-mib``); small set: 20,000 files x 4 KiB in 100
folders (``--small-count``). Each run goes into a fresh empty destination on the same filesystem as
the sources (a temporary directory under ``--dir``, default /tmp); the result of each run is checked
outside the timed part (file count and bytes; for teardown, which may store an archive and a
manifest instead of extracting, the byte count ``pull`` returns). The page cache is not dropped
(that needs root): every set is read once before measuring so that every method sees a warm cache,
and ``sync`` runs between runs so that one run's writeback does not land in the next.
MB/s = payload bytes / wall seconds (MB = 10^6 bytes), connection included; each figure is the
median of ``--rounds`` runs, the methods taking turns within each round. ``cpu`` is the client's
CPU seconds (user + system of this process and of the processes it waited for: ``ssh``,
``rsync``, ``tar``), ``machine`` all CPU seconds the machine spent meanwhile (/proc/stat: both
ends, since the host is this machine). Each set ends with teardown's ratio against the fastest
peer (and each peer), and the peak RSS of this process, in which teardown runs.

Run it through ``scripts/bench_pull``; ``--help`` lists the options.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.sshd import Sshd, SshdInfo, unavailable_reason  # noqa: E402

HOOK_MODULE = "bench_pull_hook"  # scripts/bench_pull_hook.py, beside this script
PullHook = Callable[[dict[str, Any], list[str], Path], int]
CHUNK = 4 << 20
SMALL_DIRS = 100
SMALL_SIZE = 4096


@dataclasses.dataclass(frozen=True)
class FileSet:
    name: str  # "big" or "small"
    path: Path  # the set's directory (its parent holds only sets)
    files: int
    payload: int  # bytes


@dataclasses.dataclass
class Result:
    walls: list[float] = dataclasses.field(default_factory=list)
    cpus: list[float] = dataclasses.field(default_factory=list)
    machine: list[float] = dataclasses.field(default_factory=list)
    error: str | None = None
    stored: tuple[int, int] = (0, 0)  # files, bytes in the last destination

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)


PEERS = ("openssh-tar", "rsync")


def busy_seconds() -> float:
    """CPU seconds the whole machine spent busy so far (all but idle and iowait)."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> float:
    """This process's CPU seconds plus those of the children it waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


# --- the data sets ------------------------------------------------------------------------------


def make_big(path: Path, count: int, mib: int) -> FileSet:
    path.mkdir(parents=True)
    for i in range(count):
        with (path / f"big-{i}.bin").open("wb") as out:
            left = mib << 20
            while left:
                n = min(CHUNK, left)
                out.write(os.urandom(n))
                left -= n
    return FileSet("big", path, count, count * (mib << 20))


def make_small(path: Path, count: int) -> FileSet:
    per_dir = -(-count // SMALL_DIRS)
    made = 0
    for d in range(SMALL_DIRS):
        folder = path / f"d{d:03d}" / "sub"
        folder.mkdir(parents=True)
        for f in range(min(per_dir, count - made)):
            (folder / f"f{f:04d}.dat").write_bytes(os.urandom(SMALL_SIZE))
            made += 1
        if made == count:
            break
    return FileSet("small", path, count, count * SMALL_SIZE)


def warm_up(fileset: FileSet) -> None:
    """Read every file once so that every method starts from a warm page cache."""
    subprocess.run(
        f"find {shlex.quote(str(fileset.path))} -type f -exec cat {{}} + > /dev/null",
        shell=True,
        check=True,
    )


def tally(dest: Path) -> tuple[int, int]:
    """(regular files, bytes) under ``dest``."""
    files = size = 0
    for folder, _, names in os.walk(dest):
        for name in names:
            st = os.lstat(os.path.join(folder, name))
            files += 1
            size += st.st_size
    return files, size


# --- the methods --------------------------------------------------------------------------------


def ssh_command(info: SshdInfo) -> list[str]:
    return [
        "ssh",
        *("-F", "/dev/null"),
        *("-o", "StrictHostKeyChecking=yes"),
        *("-o", f"UserKnownHostsFile={info.known_hosts}"),
        *("-o", "GlobalKnownHostsFile=/dev/null"),
        *("-o", "IdentitiesOnly=yes"),
        *("-o", "BatchMode=yes"),
        *("-i", str(info.client_key)),
        *("-p", str(info.port)),
    ]


def run_shell(script: str) -> None:
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", script],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"exit {result.returncode}: {result.stderr.strip()[-500:]}")


def openssh_tar(info: SshdInfo, fileset: FileSet, dest: Path) -> None:
    remote = shlex.join(["tar", "cf", "-", "-C", str(fileset.path.parent), fileset.path.name])
    ssh = shlex.join([*ssh_command(info), f"{info.user}@{info.host}", remote])
    run_shell(f"{ssh} | tar xf - -C {shlex.quote(str(dest))}")


def rsync(info: SshdInfo, fileset: FileSet, dest: Path) -> None:
    script = shlex.join(
        [
            "rsync",
            "-a",
            "-e",
            shlex.join(ssh_command(info)),
            f"{info.user}@{info.host}:{fileset.path}/",
            f"{dest}/",
        ]
    )
    run_shell(script)


def load_hook() -> tuple[PullHook | None, str]:
    """The teardown pull hook, or None and why not."""
    try:
        module = importlib.import_module(HOOK_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name is not None and HOOK_MODULE.startswith(exc.name):
            return None, "not available yet"
        return None, f"cannot import {HOOK_MODULE}: {exc!r}"
    except Exception as exc:
        return None, f"cannot import {HOOK_MODULE}: {exc!r}"
    hook = getattr(module, "pull", None)
    if not callable(hook):
        return None, f"{HOOK_MODULE} has no pull()"
    return hook, ""


def teardown_pull(hook: PullHook, **options: Any) -> Callable[[SshdInfo, FileSet, Path], None]:
    """Teardown's pull through the hook, with ``options`` (streams, client, host_hashing)."""

    def run(info: SshdInfo, fileset: FileSet, dest: Path) -> None:
        info_dict = {
            key: str(value) if isinstance(value, Path) else value
            for key, value in dataclasses.asdict(info).items()
        }
        pulled = functools.partial(hook, **options)(info_dict, [str(fileset.path)], dest)
        if pulled < fileset.payload:
            raise RuntimeError(f"pull() returned {pulled} bytes, payload is {fileset.payload}")

    return run


# --- the run ------------------------------------------------------------------------------------


def measure(
    methods: dict[str, Callable[[SshdInfo, FileSet, Path], None]],
    info: SshdInfo,
    fileset: FileSet,
    work: Path,
    rounds: int,
) -> dict[str, Result]:
    results = {name: Result() for name in methods}
    for r in range(rounds):
        for name, method in methods.items():
            result = results[name]
            if result.error is not None:
                continue
            dest = work / f"dst-{fileset.name}-{name}-{r}"
            dest.mkdir()
            subprocess.run(["sync"], check=False)
            cpu, machine = cpu_seconds(), busy_seconds()
            start = time.perf_counter()
            try:
                method(info, fileset, dest)
            except Exception as exc:
                result.error = f"{type(exc).__name__}: {exc}"
            wall = time.perf_counter() - start
            cpu, machine = cpu_seconds() - cpu, busy_seconds() - machine
            if result.error is None:
                files, size = result.stored = tally(dest)
                # teardown stores archives and a manifest, not one file per member: its pull()
                # returning fewer bytes than the payload is its failure check.
                extracted = not name.startswith("teardown")
                if extracted and (files, size) != (fileset.files, fileset.payload):
                    result.error = (
                        f"wrong result: {files} files, {size} bytes "
                        f"(expected {fileset.files}, {fileset.payload})"
                    )
                else:
                    result.walls.append(wall)
                    result.cpus.append(cpu)
                    result.machine.append(machine)
            shutil.rmtree(dest)
    return results


def report(fileset: FileSet, results: dict[str, Result]) -> None:
    for name, result in results.items():
        if result.error is not None:
            print(f"{fileset.name:<5} {name:<17} FAILED  {result.error}", flush=True)
            continue
        spread = f"{min(result.walls):.3f}-{max(result.walls):.3f}s"
        files, size = result.stored
        stored = name.startswith("teardown")
        layout = f", stored as {files} files of {size} bytes" if stored else ""
        print(
            f"{fileset.name:<5} {name:<17} MB/s={fileset.payload / result.wall / 1e6:6.1f}"
            f"  wall={result.wall:.3f}s  cpu={statistics.median(result.cpus):.2f}s"
            f"  machine={statistics.median(result.machine):.2f}s  (runs {spread}{layout})",
            flush=True,
        )


def ratios(fileset: FileSet, results: dict[str, Result]) -> None:
    """teardown's ratio against each peer and the fastest one: throughput for the big set
    (higher is better), wall time for the small set (lower is better)."""
    ours = results.get("teardown")
    peers = {
        name: r for name, r in results.items() if name in PEERS and r.error is None and r.walls
    }
    if ours is None or ours.error is not None or not peers:
        return
    fastest = min(peers, key=lambda name: peers[name].wall)
    for other in (fastest, *sorted(set(peers) - {fastest})):
        label = f"teardown/{other}" + (" (fastest peer)" if other == fastest else "")
        theirs = peers[other]
        if fileset.name == "big":
            print(f"{fileset.name:<5} {label} = {theirs.wall / ours.wall:.2f}", flush=True)
        else:
            print(f"{fileset.name:<5} {label} wall = {ours.wall / theirs.wall:.2f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="where to make the sets and destinations (default: /tmp)",
    )
    parser.add_argument("--big-mib", type=int, help="size of each big file, MiB (default 256)")
    parser.add_argument("--big-count", type=int, default=4, help="number of big files")
    parser.add_argument("--small-count", type=int, help="number of 4 KiB files (default 20000)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per method and set")
    parser.add_argument(
        "--quick", action="store_true", help="defaults of 64 MiB big files and 5,000 small files"
    )
    parser.add_argument("--only", choices=["big", "small"], help="measure one set only")
    parser.add_argument(
        "--parallel",
        type=int,
        default=2,
        help="teardown's streams per pull ([ssh] streams; default 2)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the sets and the sshd dir")
    args = parser.parse_args(argv)
    if args.big_mib is None:
        args.big_mib = 64 if args.quick else 256
    if args.small_count is None:
        args.small_count = 5_000 if args.quick else 20_000
    reason = unavailable_reason()
    if reason is not None:
        print(f"cannot run a test sshd here: {reason}", file=sys.stderr)
        return 2
    args.dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="teardown-bench-pull-", dir=args.dir))
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"work dir {work} ({os.cpu_count()} CPUs, load average {load})", flush=True)

    methods: dict[str, Callable[[SshdInfo, FileSet, Path], None]] = {"openssh-tar": openssh_tar}
    if shutil.which("rsync"):
        methods["rsync"] = rsync
    else:
        print("rsync: not installed, skipped")
    hook, why = load_hook()
    if hook is None:
        print(f"teardown: {why}")
    else:
        methods["teardown"] = teardown_pull(hook, streams=args.parallel)
        methods["teardown-nohash"] = teardown_pull(hook, streams=args.parallel, host_hashing=False)
        methods["teardown-paramiko"] = teardown_pull(hook, streams=args.parallel, client="paramiko")

    server = Sshd(work / "sshd")
    try:
        started = time.perf_counter()
        sets: list[FileSet] = []
        if args.only in (None, "big"):
            sets.append(make_big(work / "src" / "big", args.big_count, args.big_mib))
        if args.only in (None, "small"):
            sets.append(make_small(work / "src" / "small", args.small_count))
        print(f"made the sets in {time.perf_counter() - started:.1f}s", flush=True)
        info = server.start()
        login = subprocess.run(
            [*ssh_command(info), f"{info.user}@{info.host}", "true"],
            stdin=subprocess.DEVNULL,
            check=False,
        )
        started = time.perf_counter()
        subprocess.run(
            [*ssh_command(info), f"{info.user}@{info.host}", "true"],
            stdin=subprocess.DEVNULL,
            check=True,
        )
        print(
            f"sshd {info.host}:{info.port} user {info.user}; "
            f"'ssh true' takes {time.perf_counter() - started:.3f}s"
            + ("" if login.returncode == 0 else " (first login failed)"),
            flush=True,
        )
        for fileset in sets:
            warm_up(fileset)
            mib = fileset.payload / (1 << 20)
            print(f"-- {fileset.name}: {fileset.files} files, {mib:.0f} MiB", flush=True)
            results = measure(methods, info, fileset, work, args.rounds)
            report(fileset, results)
            ratios(fileset, results)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{fileset.name:<5} peak RSS {peak:.0f} MiB (this process: teardown runs in it)")
    finally:
        server.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
