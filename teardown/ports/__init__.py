"""Ports: one narrow Protocol per capability the engine needs from the outside world.

Adapters (``teardown.adapters``) implement them for a real cloud, the sandbox, SSH, Pulumi, or a
fake. Every method raises only ``teardown.core.errors`` types: ``TransientError`` when retrying may
help, ``PermanentError`` when it will not. Every mutating method takes the step's idempotency key so
a reconciling run can find the effect of a call whose outcome was lost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from teardown.core.model import Artifact, DestroyAction, PullSpec, Resource, SnapshotKind


class Clock(Protocol):
    """Time, as a port, so the journal and runner can be tested with a fake clock."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


@dataclass(frozen=True)
class PendingOrder:
    """An order pending payment: nothing is provisioned until it is paid; cancel it first."""

    order_id: str
    amount: Decimal
    resource_ids: tuple[str, ...]
    """Ids of the resources the order touches, as the cloud's API links them to it (may be
    empty: a purchase provisions nothing until it is paid)."""
    created: datetime | None
    pay_by: datetime | None
    """When the cloud cancels it automatically unless it is paid."""
    regions: tuple[str, ...] = ()
    """The regions of the resources it touches (empty when none is known)."""
    in_region: bool = True
    """False when every resource it touches is in another region than the profile's: only
    orders in the region are cancelled in ``billing.pending_orders = "account"`` mode unless
    every region is asked for (an order whose resources are unknown counts as in the region)."""


@dataclass(frozen=True)
class BillItem:
    """One thing that costs money in the account, as the cloud reports it (``teardown bills``
    and the report's "still billing"): a prepaid subscription, a pay-per-use resource, backup
    storage, or an order pending payment."""

    resource_id: str
    """The cloud id (an order id for a pending order)."""
    kind: str
    """``server``, ``volume``, ``eip``, ``bandwidth``, ``vault`` or ``order``."""
    name: str
    charging: str
    """``hourly`` (pay-per-use), ``prepaid`` (yearly/monthly), ``storage`` (per GB-month) or
    ``order`` (pending payment)."""
    hourly_price: Decimal | None = None
    """Pay-per-use: the price per hour when the cloud or the price table says it."""
    monthly_price: Decimal | None = None
    """Prepaid: the price of one month; storage: the estimated cost of one month."""
    expires_at: datetime | None = None
    auto_renew: bool = False
    expire_policy: str | None = None
    """What happens at expiry: ``release``, ``auto_renew``, ``to_pay_per_use`` (None: unknown)."""
    next_charge: datetime | None = None
    """Prepaid with auto-renew: when the renewal would be charged."""
    size_gb: float | None = None
    """Storage: GB in use."""
    capacity_gb: float | None = None
    """Storage: the capacity (what a Huawei CBR vault bills by)."""
    parent_id: str | None = None
    """The server a disk or public IP is attached to."""


@dataclass(frozen=True)
class VaultInfo:
    """A backup vault teardown writes cloud backups into. Huawei's CBR vault bills by its
    capacity (per GB and hour), whatever it holds."""

    id: str
    name: str
    used_gb: float
    """Storage in use (what bills)."""
    capacity_gb: float | None = None
    """Capacity: what the vault bills by; a backup that does not fit fails (None: unknown)."""
    object_type: str = "server"
    """``server`` (whole-server backups) or ``disk`` (disk backups), as the cloud requires."""
    charging: str = "storage"


class Inventory(Protocol):
    """Reads what exists. Never changes anything."""

    def resources(
        self, server_ids: Sequence[str] = (), tags: Sequence[tuple[str, str]] = ()
    ) -> list[Resource]:
        """The servers with these ids (or every one with all these tags; every server of the
        account with neither), each followed by its separately bought disks, with billing facts.
        Ids that do not exist are left out. The cloud's filters may be ignored: callers
        re-check what came back.

        Raises PermanentError for bad credentials or scope, TransientError for throttling/5xx.
        """
        ...

    def servers(self, tags: Sequence[tuple[str, str]]) -> list[Resource]:
        """The servers carrying every tag, as one listing gives them: name, tags, creation time
        and account, but no disks, addresses or billing facts (a quick look, e.g. what
        ``teardown sweep`` selects from; plan with :meth:`resources`). The cloud's filters may
        be ignored: callers re-check what came back."""
        ...

    def pending_orders(self) -> list[PendingOrder]:
        """Every order of the account pending payment, with the resource ids its lines name."""
        ...

    def bills(self) -> list[BillItem]:
        """Everything in the account and region that costs money now: prepaid subscriptions
        in force, pay-per-use servers, disks and public IPs, backup vaults, pending orders."""
        ...


class Snapshotter(Protocol):
    """Cloud-side backups (CBR server backup, image, EVS snapshot).

    Example::

        ref = snap.create(server, SnapshotKind.CBR, key="a1b2c3")
        art = snap.wait(server, ref)   # polls until available or error
        problem = snap.check(server, art)   # just before the destroy: still there?
    """

    def create(
        self, resource: Resource, kind: SnapshotKind, key: str, *, retention_days: int = 0
    ) -> str:
        """Start a backup named after ``key``; return its cloud id. Does not wait.

        ``retention_days`` is sent to the cloud (the backup is deleted that many days after it
        was made); 0 keeps it until someone deletes it. The resource is added to the vault
        first when the cloud requires it. PermanentError when the vault has no room for it.
        """
        ...

    def vaults(self) -> list[VaultInfo]:
        """The vaults backups go into (for servers, for disks), as the cloud reports them now;
        empty when no vault kind of backup is used by this snapshotter. They bill while they
        exist, backups or not."""
        ...

    def find(self, resource: Resource, kind: SnapshotKind, key: str) -> str | None:
        """The id of a backup earlier started with ``key``, or None (used to reconcile)."""
        ...

    def wait(self, resource: Resource, ref: str) -> Artifact:
        """Poll until the backup is terminal; return it, ``verified`` only if fully usable.

        Only what the cloud returned counts: backups whose own record names another checkpoint
        or another resource than ``resource`` are ignored, whatever filter was sent. The
        artifact's ``origin`` carries the account and resource id observed, ``covers`` the disks
        held. A backup that ended in error, skipped a resource, or holds no backup of
        ``resource`` is returned with verified=False and the reason in ``detail``; raises
        TransientError only for failures of the poll itself.
        """
        ...

    def check(self, resource: Resource, artifact: Artifact) -> str | None:
        """Just before a destroy: None when the backup ``artifact`` still exists, is available
        and holds ``resource``; otherwise what is wrong (deleted, in error, other resource).

        Raises TransientError when the cloud cannot be asked right now.
        """
        ...


ProgressCallback = Callable[[int, int], None]
"""Called with (bytes so far, files so far) while pulling."""


class Fetcher(Protocol):
    """Pulls data from a server over SSH into the backup store, verifying sha256 end to end."""

    def pull(
        self, resource: Resource, spec: PullSpec, key: str, progress: ProgressCallback | None
    ) -> Artifact:
        """Run ``before`` commands, pull ``spec.paths``, run ``after`` commands; verify each file.

        Idempotent: files already verified in the store under ``key`` are not sent again.
        Returns an Artifact with verified=False (and the reason) when any checksum, size or count
        differs or a ``before`` command failed; raises TransientError for connection failures.
        """
        ...

    def find(self, resource: Resource, spec: PullSpec, key: str) -> Artifact | None:
        """The verified artifact stored earlier under ``key``, or None."""
        ...

    def check(self, resource: Resource, spec: PullSpec, artifact: Artifact) -> str | None:
        """Just before a destroy: None when the stored copy ``artifact`` still exists and matches
        its recorded checksums (the manifest's sha256, and the files: all of them for a small
        store, sizes plus a rolling sample for a large one); otherwise what is wrong."""
        ...


class Presence(StrEnum):
    """What the cloud says about a resource."""

    EXISTS = "exists"
    GOING = "going"
    """Deletion or release is under way."""
    GONE = "gone"


@dataclass(frozen=True)
class DestroyResult:
    """What a destroy call returned."""

    presence: Presence
    job_id: str | None = None
    order_ids: tuple[str, ...] = ()


class Destroyer(Protocol):
    """Deletes or unsubscribes resources. Called only after the engine checked I1."""

    def destroy(
        self, resource: Resource, action: DestroyAction, key: str, *, delete_volumes: bool = False
    ) -> DestroyResult:
        """Delete (pay-per-use) or unsubscribe (prepaid) the resource and wait until it is gone.

        ``delete_volumes``: a server's data disks go with it (the plan decided they may);
        otherwise they are detached and survive. Raises PermanentError when the cloud refuses
        (locked, frozen, prepaid delete).
        """
        ...

    def presence(self, resource: Resource) -> Presence:
        """Ask the cloud whether the resource still exists (used to reconcile, never guessed)."""
        ...


class OrderState(StrEnum):
    """What the billing side says about an order."""

    PENDING_PAYMENT = "pending_payment"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    OTHER = "other"
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class RefundRecord:
    """Money recorded from the orders themselves after a release."""

    order_ids: tuple[str, ...]
    refund: Decimal
    consumed: Decimal
    fee: Decimal
    currency: str = "CNY"


class Billing(Protocol):
    """Orders, subscriptions and refunds (Huawei BSS)."""

    def cancel_order(self, order_id: str, key: str) -> None:
        """Cancel an order pending payment. PermanentError when its state does not allow it."""
        ...

    def order_state(self, order_id: str) -> OrderState:
        """The order's current state (used to reconcile a cancel)."""
        ...

    def unsubscribe_renewals(self, resource: Resource, key: str) -> tuple[str, ...]:
        """Unsubscribe renewal periods not yet in effect (type 2); return the new order ids.
        No such period (Huawei CBC.99003128) is success with no order: nothing will renew."""
        ...

    def renewals_pending(self, resource: Resource) -> bool:
        """True while renewal periods not yet in effect remain (used to reconcile)."""
        ...

    def cancel_auto_renew(self, resource: Resource, key: str) -> None:
        """Turn auto-renew off. Idempotent: already off is success."""
        ...

    def auto_renew(self, resource: Resource) -> bool:
        """Whether auto-renew is on."""
        ...

    def keep_from_pay_per_use(self, resource: Resource, key: str) -> None:
        """Cancel "switch to pay-per-use at expiry" on a prepaid resource, so that it ends at
        expiry (grace period, then release) instead of billing by the hour. Idempotent."""
        ...

    def expire_policy(self, resource: Resource) -> int | None:
        """The resource's current expiry policy as the cloud reports it (Huawei
        ``expire_policy``: 0 grace period, 1 switch to pay-per-use, 2 delete, 3 auto-renew,
        4 freeze, 5 delete from retention); None when the cloud does not know the resource."""
        ...

    def refund(self, resource: Resource, order_ids: tuple[str, ...]) -> RefundRecord:
        """Read the unsubscribe orders of a released resource (``order_ids`` as the unsubscribe
        returned them; empty when the outcome was lost, then search by the resource's orders);
        record refund, consumption, fee."""
        ...


@dataclass(frozen=True)
class Claim:
    """A run's claim on a cloud resource, as the resource itself carries it."""

    run_id: str
    host: str
    beat: datetime | None
    """When the claiming run last said it was alive (None: unreadable)."""


class Claims(Protocol):
    """Claims on cloud resources, visible to people and to every run, wherever its journal is.

    Example::

        claims.claim(resources, run_id, host, now)    # before acting, and again as a heartbeat
        claims.holders(resources)                     # {urn: Claim} of whoever claims each now
        claims.release(resources, run_id)             # when done
    """

    def holders(self, resources: Sequence[Resource]) -> dict[str, Claim]:
        """URN -> the claim each resource carries now; resources gone or unclaimed are left
        out. Raises TransientError when the cloud cannot be asked."""
        ...

    def claim(self, resources: Sequence[Resource], run_id: str, host: str, now: datetime) -> None:
        """Write (or refresh) this run's claim on each resource that still exists."""
        ...

    def release(self, resources: Sequence[Resource], run_id: str) -> None:
        """Remove this run's claim from each resource that still carries it."""
        ...

    def tag(self, resources: Sequence[Resource], tags: Sequence[tuple[str, str]]) -> None:
        """Write these tags on each resource that still exists: notices for people, who may
        change or remove them (``teardown:sweep-after``, written by ``sweep --mark``)."""
        ...


__all__ = [
    "Artifact",
    "Billing",
    "Claim",
    "Claims",
    "Clock",
    "DestroyResult",
    "Destroyer",
    "Fetcher",
    "Inventory",
    "OrderState",
    "Presence",
    "ProgressCallback",
    "RefundRecord",
    "Snapshotter",
]
