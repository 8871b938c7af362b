"""Benchmark: read a synthetic 10,000-resource Pulumi export and plan it.

Generates a deterministic export (about 40% servers with 1-3 disks, 30% EVS volumes, 30% network
objects and EIPs, a few prepaid) in a temporary directory, then times ``read_state`` +
``make_plan`` from a cold start of each run (the file is re-read and re-parsed every time), and
measures peak memory with tracemalloc for one run plus the process's ru_maxrss.

Run it through ``scripts/bench_plan``; ``--help`` lists the options.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import random
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from teardown.adapters.huawei.catalog import SERVER_TYPE, VOLUME_TYPE
from teardown.adapters.pulumi.state import read_state
from teardown.core.config import Config

NETWORK_TYPES = (
    "huaweicloud:Vpc/vpc:Vpc",
    "huaweicloud:Vpc/subnet:Subnet",
    "huaweicloud:Vpc/secgroup:Secgroup",
    "huaweicloud:Vpc/secgroupRule:SecgroupRule",
    "huaweicloud:Vpc/eip:Eip",
)


def synthetic_export(count: int, seed: int = 42) -> dict[str, Any]:
    """A deployment v3 export with ``count`` modelled resources (plus the stack and a provider)."""
    rng = random.Random(seed)
    project, stack = "bench", "perf"
    prefix = f"urn:pulumi:{stack}::{project}::"

    def new_id() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    stack_urn = prefix + "pulumi:pulumi:Stack::bench-perf"
    provider_urn = prefix + "pulumi:providers:huaweicloud::default"
    provider_ref = f"{provider_urn}::{new_id()}"
    resources: list[dict[str, Any]] = [
        {"urn": stack_urn, "custom": False, "type": "pulumi:pulumi:Stack"},
        {
            "urn": provider_urn,
            "custom": True,
            "id": provider_ref.rsplit("::", 1)[1],
            "type": "pulumi:providers:huaweicloud",
            "inputs": {"region": "cn-north-4"},
            "outputs": {"region": "cn-north-4"},
        },
    ]

    def add(rtype: str, name: str, cloud_id: str, outputs: dict[str, Any], deps: list[str]) -> str:
        urn = f"{prefix}{rtype}::{name}"
        resources.append(
            {
                "urn": urn,
                "custom": True,
                "id": cloud_id,
                "type": rtype,
                "inputs": {k: v for k, v in outputs.items() if k in ("name", "chargingMode")},
                "outputs": {"id": cloud_id, **outputs},
                "parent": stack_urn,
                "provider": provider_ref,
                "dependencies": deps,
                "propertyDependencies": {},
            }
        )
        return urn

    n_servers = count * 4 // 10
    n_volumes = count * 3 // 10
    n_network = count - n_servers - n_volumes
    network_urns: list[str] = []
    for i in range(n_network):
        rtype = NETWORK_TYPES[i % len(NETWORK_TYPES)]
        outputs: dict[str, Any] = {"name": f"net-{i}", "tags": {"env": "perf"}}
        if rtype.endswith("Eip"):
            outputs = {
                "address": f"121.36.{i // 250 % 250}.{i % 250 + 1}",
                "chargingMode": "postPaid",
            }
        network_urns.append(add(rtype, f"net-{i}", new_id(), outputs, network_urns[-2:]))

    # Volumes are bought separately; about half are attached to a server below.
    volume_ids = [new_id() for _ in range(n_volumes)]
    attach_to: dict[int, list[str]] = {}
    for vid in volume_ids[: n_volumes // 2]:
        attach_to.setdefault(rng.randrange(n_servers), []).append(vid)

    server_ids = [new_id() for _ in range(n_servers)]
    server_of_volume: dict[str, str] = {}
    for i, sid in enumerate(server_ids):
        prepaid = i % 50 == 0
        disks = [{"volumeId": new_id(), "isSysVolume": True, "size": 40, "type": "SSD"}]
        for _ in range(rng.randint(0, 2)):
            disks.append({"volumeId": new_id(), "isSysVolume": False, "size": 100, "type": "SSD"})
        for vid in attach_to.get(i, []):
            disks.append({"volumeId": vid, "isSysVolume": False, "size": 200, "type": "SSD"})
            server_of_volume[vid] = sid
        outputs = {
            "name": f"srv-{i}",
            "chargingMode": "prePaid" if prepaid else "postPaid",
            "expiredTime": "2027-03-15T16:00:00Z" if prepaid else "",
            "autoRenew": "true" if prepaid else None,
            "accessIpV4": f"192.168.{i // 250 % 250}.{i % 250 + 1}",
            "publicIp": "",
            "networks": [{"fixedIpV4": f"192.168.{i // 250 % 250}.{i % 250 + 1}", "uuid": "net"}],
            "systemDiskId": disks[0]["volumeId"],
            "systemDiskSize": 40,
            "volumeAttacheds": disks,
            "tags": {"env": "perf", "role": "web" if i % 3 else "db"},
            "adminPass": {
                "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
                "ciphertext": "v1:bench",
            },
        }
        add(SERVER_TYPE, f"srv-{i}", sid, outputs, network_urns[:3])
    for i, vid in enumerate(volume_ids):
        prepaid = i % 40 == 0
        server = server_of_volume.get(vid)
        outputs = {
            "name": f"vol-{i}",
            "size": 200,
            "volumeType": "SSD",
            "chargingMode": "prePaid" if prepaid else "postPaid",
            "attachments": [{"instanceId": server, "device": "/dev/vdb"}] if server else [],
            "tags": {"env": "perf"},
        }
        add(VOLUME_TYPE, f"vol-{i}", vid, outputs, [])
    return {
        "version": 3,
        "deployment": {"manifest": {"version": "v3.142.0"}, "resources": resources},
    }


def load_planner() -> Callable[[Any, Config, str], Any] | None:
    try:
        from teardown.core.planner import make_plan
    except ImportError as e:  # the planner is optional for a parse-only measurement
        print(f"note: teardown.core.planner does not import ({e}); measuring parse only")
        return None
    return make_plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--resources", type=int, default=10_000, help="resources to generate")
    parser.add_argument("--runs", type=int, default=5, help="timed runs (best and median shown)")
    parser.add_argument("--keep", type=Path, help="also write the generated export to this path")
    args = parser.parse_args(argv)

    make_plan = load_planner()
    base = Config()
    limit = max(20_000, args.resources)
    config = dataclasses.replace(base, scope=dataclasses.replace(base.scope, max_resources=limit))

    with tempfile.TemporaryDirectory(prefix="teardown-bench-") as tmp:
        path = Path(tmp) / "export.json"
        path.write_text(json.dumps(synthetic_export(args.resources)))
        if args.keep is not None:
            args.keep.write_bytes(path.read_bytes())
        size_mb = path.stat().st_size / 1e6

        def once() -> tuple[int, int]:
            state = read_state(path)
            steps = 0
            if make_plan is not None:
                plan = make_plan(state.resources, config, "bench-perf")
                steps = len(plan.steps)
            return len(state.resources), steps

        times: list[float] = []
        parse_times: list[float] = []
        count = steps = 0
        for _ in range(args.runs):
            gc.collect()
            t0 = time.perf_counter()
            count, steps = once()
            times.append(time.perf_counter() - t0)
            gc.collect()
            t0 = time.perf_counter()
            read_state(path)
            parse_times.append(time.perf_counter() - t0)

        gc.collect()
        tracemalloc.start()
        once()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    maxrss_mb = maxrss_kb / 1024 if sys.platform != "darwin" else maxrss_kb / 1024 / 1024
    label = "parse+plan" if make_plan is not None else "parse (no planner)"
    print(f"resources: {count}")
    print(f"state file MB: {size_mb:.1f}")
    if make_plan is not None:
        print(f"plan steps: {steps}")
    print(f"{label} seconds: {min(times):.3f} (best of {args.runs})")
    print(f"{label} seconds median: {statistics.median(times):.3f}")
    print(f"parse seconds: {min(parse_times):.3f} (best of {args.runs})")
    print(f"peak memory MB: {peak / 1e6:.1f} (tracemalloc, one {label})")
    print(f"max RSS MB: {maxrss_mb:.1f} (whole process, generator included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
