"""A second cloud for tests: ``fakecloud``, a provider registered through the public registry
(``teardown.app.providers.register``), over the fake ports of :mod:`tests.fake_cloud`.

It shows what adding a provider takes (CONTRIBUTING.md, "Adding a provider"): a type catalog,
a profile table, an account that makes the ports, refund rules and words on refunds. A profile
for it is a TOML file with a ``[fakecloud]`` table naming the fake cloud's directory::

    [fakecloud]
    root = "/tmp/x/cloud"

The directory holds ``cloud.json`` (the fake ports' state, see ``FakeCloud``) and
``inventory.json``: the servers and disks the account has, as plain JSON.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from teardown.core.errors import ConfigError
from teardown.core.model import (
    Billing,
    BillingMode,
    DestroyAction,
    Estimate,
    Kind,
    Plan,
    Resource,
)
from teardown.core.reminders import Reminder
from teardown.core.resource_plan import Estimator
from teardown.ports import BillItem, Claim, PendingOrder, Presence
from teardown.ports.provider import PROVIDER_API, Account, Catalog, Sleep, SshDefaults
from tests.fake_cloud import FakeBilling, FakeCloud, FakeDestroyer, FakeSnapshotter

NAME = "fakecloud"
SERVER = "fakecloud:compute:Server"
DISK = "fakecloud:storage:Disk"
CATALOG = Catalog(
    kinds={SERVER: Kind.SERVER, DISK: Kind.VOLUME, "fakecloud:net:Network": Kind.NETWORK},
    server_type=SERVER,
    volume_type=DISK,
)
ACCOUNT = "fakecloud:test-account"
ARRIVAL = "Refunds go to the fake wallet at once."
FEE = Decimal("1.50")


def write_inventory(root: Path, entries: Sequence[dict[str, Any]]) -> list[Resource]:
    """Seed a fake cloud at ``root`` with these servers/disks (``id``, ``name``, ``kind``
    ``server``|``volume``, ``tags``, ``prepaid``, ``paid``); returns them as resources."""
    resources = [_resource(e) for e in entries]
    FakeCloud.create(root, resources)
    (root / "inventory.json").write_text(json.dumps(list(entries)))
    return resources


def _resource(e: Mapping[str, Any]) -> Resource:
    kind = Kind(e.get("kind", "server"))
    prepaid = bool(e.get("prepaid"))
    return Resource(
        urn=f"{NAME}:{kind.value}:{e['id']}",
        type=SERVER if kind is Kind.SERVER else DISK,
        kind=kind,
        name=e["name"],
        cloud_id=e["id"],
        tags=tuple(sorted(e.get("tags", {}).items())),
        account=ACCOUNT,
        billing=Billing(mode=BillingMode.PRE_PAID if prepaid else BillingMode.POST_PAID),
    )


class FakeInventory:
    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud = cloud

    def resources(
        self, server_ids: Sequence[str] = (), tags: Sequence[tuple[str, str]] = ()
    ) -> list[Resource]:
        entries = json.loads((self.cloud.root / "inventory.json").read_text())
        state = self.cloud.read()["resources"]
        out = []
        for r in map(_resource, entries):
            if state.get(r.urn, {}).get("presence") == Presence.GONE.value:
                continue
            if server_ids and r.cloud_id not in server_ids:
                continue
            if not all(r.tag(k) == v for k, v in tags):
                continue
            out.append(r)
        return out

    def servers(self, tags: Sequence[tuple[str, str]]) -> list[Resource]:
        return [r for r in self.resources((), tags) if r.kind is Kind.SERVER]

    def pending_orders(self) -> list[PendingOrder]:
        return []

    def bills(self) -> list[BillItem]:
        return []


class FakeClaims:
    """Claims kept in ``claims.json`` next to the fake cloud's state."""

    def __init__(self, root: Path) -> None:
        self.path = root / "claims.json"

    def _read(self) -> dict[str, dict[str, str]]:
        data: dict[str, dict[str, str]] = (
            json.loads(self.path.read_text()) if self.path.exists() else {}
        )
        return data

    def holders(self, resources: Sequence[Resource]) -> dict[str, Claim]:
        data = self._read()
        return {
            r.urn: Claim(data[r.urn]["run"], data[r.urn]["host"], None)
            for r in resources
            if r.urn in data
        }

    def claim(self, resources: Sequence[Resource], run_id: str, host: str, now: datetime) -> None:
        data = self._read()
        data.update({r.urn: {"run": run_id, "host": host} for r in resources})
        self.path.write_text(json.dumps(data))

    def release(self, resources: Sequence[Resource], run_id: str) -> None:
        data = self._read()
        for r in resources:
            if data.get(r.urn, {}).get("run") == run_id:
                del data[r.urn]
        self.path.write_text(json.dumps(data))

    def tag(self, resources: Sequence[Resource], tags: Sequence[tuple[str, str]]) -> None:
        path = self.path.with_name("tags.json")
        data = json.loads(path.read_text()) if path.exists() else {}
        for r in resources:
            data.setdefault(r.urn, {}).update(dict(tags))
        path.write_text(json.dumps(data))


@dataclass(frozen=True)
class FakeAccount:
    root: Path
    provider: str = NAME
    where: str = "the fake test account"

    @property
    def cloud(self) -> FakeCloud:
        return FakeCloud(self.root)

    @property
    def ssh(self) -> SshDefaults:
        return SshDefaults()

    def check_runnable(self, plan: Plan) -> None:
        return None

    def inventory(self, sleep: Sleep) -> FakeInventory:
        return FakeInventory(self.cloud)

    def snapshotter(self, sleep: Sleep, poll_interval: float) -> FakeSnapshotter:
        return FakeSnapshotter(self.cloud)

    def destroyer(self, sleep: Sleep, poll_interval: float) -> FakeDestroyer:
        return FakeDestroyer(self.cloud)

    def billing(self) -> FakeBilling:
        return FakeBilling(self.cloud)

    def claims(self, sleep: Sleep) -> FakeClaims:
        return FakeClaims(self.root)


def fake_estimate(
    resource: Resource, action: DestroyAction, now: datetime, quota_used: int | None
) -> tuple[Estimate | None, tuple[str, str] | None]:
    """The fake cloud's refund rule: a flat fee of 1.50, the rest of 10.00 comes back."""
    zero = Decimal(0)
    refund = Decimal("10.00") - FEE
    return Estimate(refund, zero, FEE, False, zero, "fake rule: a flat fee of 1.50"), None


class FakeProvider:
    api_version = PROVIDER_API
    name = NAME
    catalog = CATALOG
    refund_arrival = ARRIVAL
    credential_env = ("FAKECLOUD_TOKEN",)
    env_help = "FAKECLOUD_ROOT"

    def open(self, path: Path, env: Mapping[str, str]) -> FakeAccount:
        table = tomllib.loads(path.read_text())[NAME]
        if not isinstance(table.get("root"), str):
            raise ConfigError(str(path), f"{NAME}.root: missing")
        return FakeAccount(Path(table["root"]))

    def from_env(self, env: Mapping[str, str]) -> FakeAccount | None:
        root = env.get("FAKECLOUD_ROOT")
        return FakeAccount(Path(root)) if root else None

    def from_pulumi_config(
        self, stack_config: Mapping[str, str], env: Mapping[str, str]
    ) -> FakeAccount | None:
        return None

    def estimator(self, account: Account) -> Estimator:
        return fake_estimate

    def reminders(
        self,
        account: Account,
        resources: Sequence[Resource],
        *,
        now: datetime,
        window: timedelta,
        quota_used: int,
    ) -> list[Reminder]:
        return []
