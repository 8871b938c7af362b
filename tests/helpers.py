"""Builders shared by the tests: resources, a fake clock, and a runner over the fake cloud."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from teardown.core.model import Billing, BillingMode, Disk, Kind, Resource
from teardown.engine.events import Event
from teardown.engine.journal import Journal
from teardown.engine.runner import Ports, Runner
from teardown.support.retry import RetryPolicy
from tests.fake_cloud import FakeCloud, fake_ports

ECS = "huaweicloud:Ecs/instance:Instance"
EVS = "huaweicloud:Evs/volume:Volume"
VPC = "huaweicloud:Vpc/vpc:Vpc"


@dataclass
class FakeClock:
    """A clock that moves only when told to."""

    t: datetime = field(default_factory=lambda: datetime(2026, 11, 26, 12, 0, tzinfo=UTC))

    def now(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


def urn(type_: str, name: str, stack: str = "dev") -> str:
    return f"urn:pulumi:{stack}::shop::{type_}::{name}"


def server(
    name: str,
    mode: BillingMode = BillingMode.POST_PAID,
    *,
    pending: tuple[str, ...] = (),
    auto_renew: bool = False,
    deps: tuple[str, ...] = (),
    tags: tuple[tuple[str, str], ...] = (),
) -> Resource:
    return Resource(
        urn=urn(ECS, name),
        type=ECS,
        kind=Kind.SERVER,
        name=name,
        cloud_id=f"id-{name}",
        tags=tags,
        disks=(Disk(id=f"sys-{name}", size_gb=40, system=True),),
        billing=Billing(mode=mode, pending_order_ids=pending, auto_renew=auto_renew),
        dependencies=deps,
    )


def volume(
    name: str, mode: BillingMode = BillingMode.POST_PAID, parent: str | None = None
) -> Resource:
    return Resource(
        urn=urn(EVS, name),
        type=EVS,
        kind=Kind.VOLUME,
        name=name,
        cloud_id=f"id-{name}",
        billing=Billing(mode=mode),
        parent=parent,
    )


def network(name: str) -> Resource:
    return Resource(
        urn=urn(VPC, name),
        type=VPC,
        kind=Kind.NETWORK,
        name=name,
        billing=Billing(mode=BillingMode.FREE),
    )


@dataclass
class Rig:
    """A runner over a fake cloud and a real journal in a temporary directory."""

    cloud: FakeCloud
    journal: Journal
    runner: Runner
    clock: FakeClock
    events: list[Event]
    slept: list[float]


def make_rig(
    root: Path,
    resources: Sequence[Resource],
    *,
    switches: Mapping[str, Any] | None = None,
    parallel: int = 2,
    attempts: int = 3,
) -> Rig:
    cloud = FakeCloud.create(root / "cloud", resources, switches=dict(switches or {}))
    clock = FakeClock()
    journal = Journal.open(root / "journal.db", clock)
    snap, fetch, destroy, billing = fake_ports(cloud)
    events: list[Event] = []
    slept: list[float] = []
    runner = Runner(
        journal,
        Ports(snap, fetch, destroy, billing),
        clock=clock,
        retry=RetryPolicy(attempts=attempts, initial=0.5, maximum=2.0, jitter=0.1),
        sleep=slept.append,
        parallel=parallel,
        observers=[events.append],
    )
    return Rig(cloud, journal, runner, clock, events, slept)
