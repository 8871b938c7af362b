"""A fake cloud for tests: state in a JSON file, failure switches, and a record of every call
(never shipped in the package).

It implements the Snapshotter, Fetcher, Destroyer and Billing ports well enough for the runner's
tests and the crash harness: state survives the process (so a SIGKILLed run can be resumed against
it), every side effect is counted, and each destroy records which surviving backups existed at
that moment, so tests can check I1 from the cloud's side rather than trusting the journal.

Switches live in the state file under ``"switches"``:

- ``fail``: ``{op: [{"error": "transient"|"permanent", "times": n}]}`` raises on the next n calls;
- ``snapshot_error``: URNs whose snapshots end in ``error``;
- ``corrupt_pull``: URNs whose pulled copy differs from the source (a checksum mismatch);
- ``foreign_snapshots``: URNs whose snapshots come back recorded as another resource's (a
  cloud answer that ignored a filter);
- ``kill_after_effect``: SIGKILL this process right after the n-th side effect is persisted
  (the effect happened, its outcome never reaches the journal).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from teardown.core.errors import PermanentError, TransientError
from teardown.core.model import (
    SURVIVES_DESTROY,
    Artifact,
    BillingMode,
    DestroyAction,
    Origin,
    PullSpec,
    Resource,
    SnapshotKind,
)
from teardown.ports import (
    DestroyResult,
    OrderState,
    Presence,
    ProgressCallback,
    RefundRecord,
    VaultInfo,
)

State = dict[str, Any]


class FakeCloud:
    """The shared on-disk state behind the fake ports."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "cloud.json"
        self._lock = threading.RLock()

    @classmethod
    def create(
        cls,
        root: Path,
        resources: Sequence[Resource],
        *,
        switches: dict[str, Any] | None = None,
    ) -> FakeCloud:
        """Seed a fake cloud holding ``resources`` (and their pending orders) under ``root``."""
        root.mkdir(parents=True, exist_ok=True)
        cloud = cls(root)
        state: State = {
            "resources": {},
            "orders": {},
            "snapshots": {},
            "pulls": {},
            "calls": [],
            "effects": 0,
            "switches": switches or {},
        }
        for r in resources:
            state["resources"][r.urn] = {
                "account": r.account or "",
                "cloud_id": r.cloud_id or "",
                "deleted_with": r.deleted_with,
                "presence": Presence.EXISTS.value,
                "prepaid": r.billing.mode is BillingMode.PRE_PAID,
                "auto_renew": r.billing.auto_renew,
                "renewals_pending": r.billing.mode is BillingMode.PRE_PAID,
            }
            for order in r.billing.pending_order_ids:
                state["orders"][order] = OrderState.PENDING_PAYMENT.value
            remote = root / "remote" / _safe(r.urn)
            remote.mkdir(parents=True, exist_ok=True)
            (remote / "data.txt").write_text(f"data of {r.urn}\n" * 64)
        cloud._write(state)
        return cloud

    # -- persistence ---------------------------------------------------------------------

    def read(self) -> State:
        with self._lock:
            data: State = json.loads(self.path.read_text())
            return data

    def _write(self, state: State) -> None:
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(state, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    @contextmanager
    def _state(self) -> Iterator[State]:
        with self._lock:
            state = self.read()
            yield state
            self._write(state)

    def _switch(self, state: State, op: str) -> None:
        """Raise the next configured failure for ``op`` (and count it down)."""
        for entry in state["switches"].get("fail", {}).get(op, []):
            if entry.get("times", 0) > 0:
                entry["times"] -= 1
                state["calls"].append({"op": op, "failed": entry["error"]})
                self._write(state)
                if entry["error"] == "transient":
                    raise TransientError(f"fake {op}: throttled")
                raise PermanentError(f"fake {op}: refused", code="Fake.0001")

    def _effect(self, state: State, call: dict[str, Any]) -> None:
        """Record a side effect, persist it, and die here if the crash switch says so."""
        state["effects"] += 1
        state["calls"].append(call)
        self._write(state)
        kill_at = state["switches"].get("kill_after_effect")
        if kill_at is not None and state["effects"] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def calls(self, op: str | None = None) -> list[dict[str, Any]]:
        return [c for c in self.read()["calls"] if op is None or c.get("op") == op]

    def surviving_backups(self, state: State, urn: str) -> list[str]:
        snaps = [
            sid
            for sid, s in state["snapshots"].items()
            if s["urn"] == urn and s["status"] == "available" and s["survives"]
        ]
        pulls = [k for k, p in state["pulls"].items() if p["urn"] == urn and p["verified"]]
        return snaps + pulls


def _safe(urn: str) -> str:
    return hashlib.sha256(urn.encode()).hexdigest()[:16]


class FakeSnapshotter:
    """Snapshots complete on the first ``wait``; ``snapshot_error`` URNs end in error."""

    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud = cloud

    def create(
        self, resource: Resource, kind: SnapshotKind, key: str, *, retention_days: int = 0
    ) -> str:
        with self.cloud._state() as st:
            self.cloud._switch(st, "snapshot.create")
            sid = f"snap-{len(st['snapshots']) + 1}"
            st["snapshots"][sid] = {
                "urn": resource.urn,
                "kind": kind.value,
                "key": key,
                "status": "creating",
                "survives": SURVIVES_DESTROY[kind],
                "retention_days": retention_days,
            }
            self.cloud._effect(st, {"op": "snapshot.create", "urn": resource.urn, "key": key})
        return sid

    def vaults(self) -> list[VaultInfo]:
        """One vault of 10 GB holding every surviving snapshot, 1 GB each."""
        snaps = self.cloud.read()["snapshots"].values()
        used = sum(1.0 for s in snaps if s.get("survives") and s.get("status") != "deleted")
        return [VaultInfo(id="vault-fake", name="fake-vault", used_gb=used, capacity_gb=10)]

    def find(self, resource: Resource, kind: SnapshotKind, key: str) -> str | None:
        st = self.cloud.read()
        for sid, s in st["snapshots"].items():
            if s["key"] == key and s["urn"] == resource.urn:
                return str(sid)
        return None

    def wait(self, resource: Resource, ref: str) -> Artifact:
        with self.cloud._state() as st:
            self.cloud._switch(st, "snapshot.wait")
            s = st["snapshots"][ref]
            if s["status"] == "creating":
                bad = s["urn"] in st["switches"].get("snapshot_error", [])
                s["status"] = "error" if bad else "available"
            ok = s["status"] == "available"
            owner = st["resources"].get(s["urn"], {})
            resource_id = owner.get("cloud_id", "")
            if s["urn"] in st["switches"].get("foreign_snapshots", []):
                resource_id = "someone-else"
            return Artifact(
                kind=s["kind"],
                ref=ref,
                verified=ok,
                survives_destroy=bool(s["survives"]),
                detail="available" if ok else f"snapshot status {s['status']}",
                origin=Origin(account=owner.get("account", ""), resource_id=resource_id),
                covers=()
                if s["urn"] in st["switches"].get("uncovered", [])
                else tuple(d.id for d in resource.disks if not d.system),
            )

    def check(self, resource: Resource, artifact: Artifact) -> str | None:
        s = self.cloud.read()["snapshots"].get(artifact.ref)
        if s is None:
            return f"snapshot {artifact.ref} no longer exists"
        if s["status"] != "available":
            return f"snapshot {artifact.ref} is {s['status']}"
        return None

    def delete(self, ref: str) -> None:
        """Delete a snapshot behind the runner's back (a person in the console, retention)."""
        with self.cloud._state() as st:
            st["snapshots"].pop(ref, None)


class FakeFetcher:
    """Copies the fake remote files into ``store/`` with real sha256 checks."""

    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud = cloud

    def pull(
        self, resource: Resource, spec: PullSpec, key: str, progress: ProgressCallback | None
    ) -> Artifact:
        with self.cloud._state() as st:
            self.cloud._switch(st, "pull")
            corrupt = resource.urn in st["switches"].get("corrupt_pull", [])
        src_dir = self.cloud.root / "remote" / _safe(resource.urn)
        dest_dir = self.cloud.root / "store" / key
        dest_dir.mkdir(parents=True, exist_ok=True)
        manifest: dict[str, str] = {}
        total = 0
        for src in sorted(src_dir.iterdir()):
            data = src.read_bytes()
            if corrupt:
                data = data[:-1] + b"X"
            tmp = dest_dir / (src.name + ".part")
            tmp.write_bytes(data)
            got = hashlib.sha256(tmp.read_bytes()).hexdigest()
            want = hashlib.sha256(src.read_bytes()).hexdigest()
            if got != want:
                tmp.unlink()
                return Artifact(
                    "pull", str(dest_dir), False, True, detail=f"sha256 mismatch for {src.name}"
                )
            tmp.replace(dest_dir / src.name)
            manifest[src.name] = got
            total += len(data)
            if progress:
                progress(total, len(manifest))
        body = json.dumps(manifest, sort_keys=True).encode()
        (dest_dir / "manifest.json").write_bytes(body)
        art = Artifact(
            "pull",
            str(dest_dir),
            True,
            True,
            size=total,
            sha256=hashlib.sha256(body).hexdigest(),
            detail=f"{len(manifest)} files",
            origin=self._origin(resource),
            files=len(manifest),
        )
        with self.cloud._state() as st:
            st["pulls"][key] = {"urn": resource.urn, "verified": True, "sha256": art.sha256}
            self.cloud._effect(st, {"op": "pull", "urn": resource.urn, "key": key})
        return art

    def _origin(self, resource: Resource) -> Origin:
        owner = self.cloud.read()["resources"].get(resource.urn, {})
        return Origin(account=owner.get("account", ""), resource_id=owner.get("cloud_id", ""))

    def find(self, resource: Resource, spec: PullSpec, key: str) -> Artifact | None:
        p = self.cloud.read()["pulls"].get(key)
        if p is None or p["urn"] != resource.urn:
            return None
        dest = self.cloud.root / "store" / key
        return Artifact(
            "pull",
            str(dest),
            bool(p["verified"]),
            True,
            sha256=p["sha256"],
            origin=self._origin(resource),
        )

    def check(self, resource: Resource, spec: PullSpec, artifact: Artifact) -> str | None:
        manifest = Path(artifact.ref) / "manifest.json"
        try:
            body = manifest.read_bytes()
        except FileNotFoundError:
            return f"{manifest} is missing"
        if hashlib.sha256(body).hexdigest() != artifact.sha256:
            return f"{manifest} changed since it was verified"
        return None


class FakeDestroyer:
    """Deletes or unsubscribes at once; records the surviving backups seen at destroy time."""

    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud = cloud

    def destroy(
        self, resource: Resource, action: DestroyAction, key: str, *, delete_volumes: bool = False
    ) -> DestroyResult:
        with self.cloud._state() as st:
            self.cloud._switch(st, "destroy")
            res = st["resources"].setdefault(resource.urn, {"presence": "exists"})
            if res["presence"] == Presence.GONE.value:
                raise PermanentError(f"fake destroy: {resource.urn} does not exist")
            res["presence"] = Presence.GONE.value
            for other in st["resources"].values():  # Pulumi deletedWith: gone with their parent
                if other.get("deleted_with") == resource.urn:
                    other["presence"] = Presence.GONE.value
            orders: tuple[str, ...] = ()
            if action is DestroyAction.UNSUBSCRIBE:
                orders = (f"unsub-{_safe(resource.urn)}",)
                res["unsubscribe_orders"] = list(orders)
            self.cloud._effect(
                st,
                {
                    "op": "destroy",
                    "urn": resource.urn,
                    "action": action.value,
                    "key": key,
                    "delete_volumes": delete_volumes,
                    "backups": self.cloud.surviving_backups(st, resource.urn),
                },
            )
        return DestroyResult(Presence.GONE, job_id=f"job-{key}", order_ids=orders)

    def presence(self, resource: Resource) -> Presence:
        st = self.cloud.read()
        self_state = st["resources"].get(resource.urn)
        return Presence(self_state["presence"]) if self_state else Presence.EXISTS


class FakeBilling:
    """Orders and subscriptions; every mutating call is counted."""

    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud = cloud

    def cancel_order(self, order_id: str, key: str) -> None:
        with self.cloud._state() as st:
            self.cloud._switch(st, "cancel_order")
            if st["orders"].get(order_id) != OrderState.PENDING_PAYMENT.value:
                raise PermanentError(
                    f"order {order_id} is not pending payment", code="CBC.99005010"
                )
            st["orders"][order_id] = OrderState.CANCELLED.value
            self.cloud._effect(st, {"op": "cancel_order", "order": order_id, "key": key})

    def order_state(self, order_id: str) -> OrderState:
        return OrderState(self.cloud.read()["orders"].get(order_id, OrderState.NOT_FOUND.value))

    def unsubscribe_renewals(self, resource: Resource, key: str) -> tuple[str, ...]:
        with self.cloud._state() as st:
            self.cloud._switch(st, "unsubscribe_renewals")
            res = st["resources"][resource.urn]
            if not res.get("renewals_pending"):
                return ()  # nothing will renew: success (CBC.99003128 in Huawei's terms)
            res["renewals_pending"] = False
            self.cloud._effect(
                st,
                {
                    "op": "unsubscribe_renewals",
                    "urn": resource.urn,
                    "key": key,
                    "backups": self.cloud.surviving_backups(st, resource.urn),
                },
            )
        return (f"renew-{_safe(resource.urn)}",)

    def renewals_pending(self, resource: Resource) -> bool:
        return bool(self.cloud.read()["resources"][resource.urn].get("renewals_pending"))

    def cancel_auto_renew(self, resource: Resource, key: str) -> None:
        with self.cloud._state() as st:
            self.cloud._switch(st, "cancel_auto_renew")
            st["resources"][resource.urn]["auto_renew"] = False
            self.cloud._effect(st, {"op": "cancel_auto_renew", "urn": resource.urn, "key": key})

    def auto_renew(self, resource: Resource) -> bool:
        return bool(self.cloud.read()["resources"][resource.urn].get("auto_renew"))

    def keep_from_pay_per_use(self, resource: Resource, key: str) -> None:
        with self.cloud._state() as st:
            self.cloud._switch(st, "keep_from_pay_per_use")
            st["resources"][resource.urn]["expire_policy"] = 0
            self.cloud._effect(st, {"op": "keep_from_pay_per_use", "urn": resource.urn, "key": key})

    def expire_policy(self, resource: Resource) -> int | None:
        res = self.cloud.read()["resources"].get(resource.urn)
        return None if res is None else res.get("expire_policy")

    def refund(self, resource: Resource, order_ids: tuple[str, ...] = ()) -> RefundRecord:
        with self.cloud._state() as st:
            self.cloud._switch(st, "refund")
            res = st["resources"].get(resource.urn, {})
            if res.get("presence") != Presence.GONE.value:
                raise PermanentError(f"{resource.urn} has not been released; no refund order yet")
            st["calls"].append({"op": "refund", "urn": resource.urn})
        return RefundRecord(
            tuple(res.get("unsubscribe_orders", [])),
            Decimal("10.00"),
            Decimal("2.00"),
            Decimal("0"),
        )


def fake_ports(cloud: FakeCloud) -> tuple[FakeSnapshotter, FakeFetcher, FakeDestroyer, FakeBilling]:
    """The four fake ports over one fake cloud."""
    return FakeSnapshotter(cloud), FakeFetcher(cloud), FakeDestroyer(cloud), FakeBilling(cloud)
