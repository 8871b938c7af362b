"""A running sandbox API (real HTTP on 127.0.0.1, fake clock) and official SDK clients for it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from huaweicloudsdkbss.v2 import BssClient
from huaweicloudsdkcbr.v1 import CbrClient
from huaweicloudsdkcore.auth.credentials import BasicCredentials, GlobalCredentials
from huaweicloudsdkecs.v2 import EcsClient
from huaweicloudsdkevs.v2 import EvsClient

from teardown.sandbox.api import ApiServers, Endpoints
from teardown.sandbox.config import Account, SandboxConfig
from teardown.sandbox.http import SandboxApp
from teardown.sandbox.scenario import Scenario, seed
from teardown.sandbox.store import Store
from tests.helpers import FakeClock


@dataclass
class SandboxRig:
    app: SandboxApp
    store: Store
    clock: FakeClock
    endpoints: Endpoints
    data_dir: Path
    ids: dict[str, str] = field(default_factory=dict)
    slept: list[float] = field(default_factory=list)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def calls(self, operation: str | None = None) -> list[tuple[str, int]]:
        rows = self.store.conn.execute("SELECT operation, status FROM calls ORDER BY id")
        return [(r[0], r[1]) for r in rows if operation is None or r[0] == operation]


def ecs(rig: SandboxRig, account: Account | None = None) -> EcsClient:
    a = account or rig.app.config.account
    creds = BasicCredentials(a.ak, a.sk, a.project_id)
    return (
        EcsClient.new_builder().with_credentials(creds).with_endpoints([rig.endpoints.ecs]).build()
    )


def evs(rig: SandboxRig, account: Account | None = None) -> EvsClient:
    a = account or rig.app.config.account
    creds = BasicCredentials(a.ak, a.sk, a.project_id)
    return (
        EvsClient.new_builder().with_credentials(creds).with_endpoints([rig.endpoints.evs]).build()
    )


def cbr(rig: SandboxRig, account: Account | None = None) -> CbrClient:
    a = account or rig.app.config.account
    creds = BasicCredentials(a.ak, a.sk, a.project_id)
    return (
        CbrClient.new_builder().with_credentials(creds).with_endpoints([rig.endpoints.cbr]).build()
    )


def bss(rig: SandboxRig, account: Account | None = None) -> BssClient:
    a = account or rig.app.config.account
    creds = GlobalCredentials(a.ak, a.sk, a.domain_id)
    return (
        BssClient.new_builder().with_credentials(creds).with_endpoints([rig.endpoints.bss]).build()
    )


@contextmanager
def running_sandbox(
    root: Path, scenario: Scenario | None = None, config: SandboxConfig | None = None
) -> Iterator[SandboxRig]:
    """Start the API over a fresh store in ``root``, seeded with ``scenario``."""
    clock = FakeClock()
    store = Store(root / "state.db", _extra_schemas())
    slept: list[float] = []
    # The fake clock is not wall time: the signature-date check would refuse every request.
    cfg = replace(config or SandboxConfig(), max_request_skew_seconds=None)
    app = SandboxApp(store, cfg, clock, root, sleep=slept.append)
    ids: dict[str, str] = {}
    if scenario is not None:
        with store.tx() as conn:
            ids = seed(conn, root, scenario, clock.now())
            _seed_billing(conn, scenario, ids, clock)
    servers = ApiServers(app)
    endpoints = servers.start()
    try:
        yield SandboxRig(app, store, clock, endpoints, root, ids, slept)
    finally:
        servers.stop()
        store.close()


def _extra_schemas() -> tuple[str, ...]:
    from teardown.sandbox.billing import BSS_SCHEMA

    return (BSS_SCHEMA,)


def _seed_billing(conn: object, scenario: Scenario, ids: dict[str, str], clock: FakeClock) -> None:
    """The scenario's subscriptions, orders and 5-day quota usage (teardown/sandbox/billing/)."""
    import sqlite3

    from teardown.sandbox.billing import seed_billing

    assert isinstance(conn, sqlite3.Connection)
    seed_billing(conn, scenario, ids, clock.now())


DEMO_SCENARIO = Path(__file__).parent.parent / "teardown" / "sandbox" / "scenarios" / "demo.toml"


def demo_unlocked(directory: Path) -> str:
    """The demo scenario with legacy-1's lock already lifted by support: a run of it completes
    (exit 0). For tests about something else than the lock; the lock itself is tested on the
    demo as it is."""
    text = DEMO_SCENARIO.read_text()
    locked = "locked = true"
    assert text.count(locked) == 1, "the demo scenario's lock moved: update demo_unlocked"
    path = directory / "demo-unlocked.toml"
    path.write_text(text.replace(locked, "locked = false"))
    return str(path)
