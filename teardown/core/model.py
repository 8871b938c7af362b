"""The resource model and the plan: pure, frozen data shared by every layer.

Nothing here performs I/O or reads a clock. Identity is a Pulumi URN when the resource came from a
stack, or a synthetic ``cloud:<provider>:<type>:<id>`` key when it came from the cloud directly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from teardown.core.billing import Payment


class Kind(StrEnum):
    """What a resource is, as far as backing up and destroying go."""

    SERVER = "server"
    """A virtual machine: holds data on its disks and is reachable over SSH."""
    VOLUME = "volume"
    """A block storage disk: holds data."""
    ADDRESS = "address"
    """A public IP or bandwidth: holds no data, but may bill."""
    NETWORK = "network"
    """VPC, subnet, security group and similar: holds no data."""
    STATELESS = "stateless"
    """A type the user declared (in config) to hold no data."""
    UNKNOWN = "unknown"
    """A type the planner cannot classify: blocks the plan (I7)."""


DATA_KINDS = frozenset({Kind.SERVER, Kind.VOLUME})
"""Kinds whose destruction loses data unless backed up."""


class BillingMode(StrEnum):
    """How a resource is paid for (Huawei ``charging_mode``)."""

    POST_PAID = "postPaid"
    """Pay per use: deleting the resource stops billing."""
    PRE_PAID = "prePaid"
    """Yearly/monthly: released by unsubscribing; refunds follow the billing rules."""
    SPOT = "spot"
    """Spot pay-per-use: deleted like postPaid."""
    FREE = "free"
    """Not billed on its own (VPC, subnet, security group)."""
    UNKNOWN = "unknown"
    """Not known from the source (e.g. a state without ``chargingMode``)."""


class SnapshotKind(StrEnum):
    """A cloud-side backup kind."""

    CBR = "cbr"
    """A Cloud Backup and Recovery backup: stored in a vault, survives the source's deletion."""
    IMAGE = "image"
    """A full-server image (IMS): survives the server's deletion."""
    EVS = "evs"
    """An EVS disk snapshot: deleted together with its disk, so only for disks that are kept."""
    NONE = "none"
    """No cloud-side backup."""


SURVIVES_DESTROY: dict[SnapshotKind, bool] = {
    SnapshotKind.CBR: True,
    SnapshotKind.IMAGE: True,
    SnapshotKind.EVS: False,
    SnapshotKind.NONE: False,
}
"""Whether a backup of this kind outlives the destruction of its source (R22, R24 in
docs/huawei-api.md, "Billing rules")."""


class PullMethod(StrEnum):
    """How an SSH pull moves files."""

    TAR = "tar"
    """One tar stream over an exec channel (fast for many small files)."""
    SFTP = "sftp"
    """SFTP, for hosts that refuse exec."""


class DestroyAction(StrEnum):
    """How a resource is taken away."""

    DELETE = "delete"
    """Delete through the cloud API (pay-per-use, spot, free resources)."""
    UNSUBSCRIBE = "unsubscribe"
    """Unsubscribe a prepaid resource (BSS type 1): releasing it *is* its destroy."""
    PULUMI = "pulumi"
    """Destroy through the Pulumi engine (targeted ``pulumi destroy``)."""
    KEEP_TO_EXPIRY = "keep_to_expiry"
    """Leave a prepaid resource running until it expires; only its renewals are cancelled."""
    KEEP = "keep"
    """Leave it alone (by policy, e.g. a separately bought disk): reported as still billing."""
    RETAIN = "retain"
    """Pulumi ``retainOnDelete``: never destroyed by teardown; it keeps billing."""
    WITH_PARENT = "with_parent"
    """Pulumi ``deletedWith``: destroyed once, by the destroy of the resource it is deleted
    with; its backups are verified before that destroy."""


class StepKind(StrEnum):
    """One side effect the runner performs; each has an intent and an outcome in the journal."""

    CANCEL_PENDING_ORDER = "cancel_pending_order"
    """Cancel an order still pending payment (nothing provisioned; may run first, I4)."""
    SNAPSHOT = "snapshot"
    """Make a cloud-side backup and wait until it is verified."""
    PULL = "pull"
    """Pull files over SSH into the store and verify their sha256 end to end."""
    DESTROY = "destroy"
    """Delete or unsubscribe the resource (only after I1 holds)."""
    UNSUBSCRIBE_RENEWALS = "unsubscribe_renewals"
    """Unsubscribe renewal periods not yet in effect (BSS type 2)."""
    CANCEL_AUTO_RENEW = "cancel_auto_renew"
    """Turn auto-renew off on a resource that is kept (or whose unsubscribe was refused)."""
    KEEP_FROM_PAY_PER_USE = "keep_from_pay_per_use"
    """Cancel "switch to pay-per-use at expiry" on a resource kept to expiry."""
    RECORD_REFUND = "record_refund"
    """Read the unsubscribe orders of a released resource and record refund and fees."""


BACKUP_STEPS = frozenset({StepKind.SNAPSHOT, StepKind.PULL})
BILLING_STEPS = frozenset(
    {
        StepKind.CANCEL_PENDING_ORDER,
        StepKind.UNSUBSCRIBE_RENEWALS,
        StepKind.CANCEL_AUTO_RENEW,
        StepKind.KEEP_FROM_PAY_PER_USE,
        StepKind.RECORD_REFUND,
    }
)


@dataclass(frozen=True)
class Disk:
    """A disk attached to a server."""

    id: str
    size_gb: int | None = None
    system: bool = False
    """The boot disk: always deleted with its server."""
    bound: bool = True
    """Bought with the server (released with it). False: bought separately and attached."""
    device: str | None = None
    delete_on_termination: bool | None = None
    """ECS's flag on the attachment (None: not reported)."""


@dataclass(frozen=True)
class Address:
    """A network address of a resource."""

    ip: str
    public: bool = False


@dataclass(frozen=True)
class Billing:
    """How a resource bills, and the facts the billing close needs."""

    mode: BillingMode = BillingMode.UNKNOWN
    order_id: str | None = None
    expires_at: datetime | None = None
    auto_renew: bool = False
    pending_order_ids: tuple[str, ...] = ()
    """Orders pending payment that touch this resource (cancel them first, R3)."""
    locked: bool = False
    """Locked by an order in progress: needs support to unlock; blocks unsubscribing."""
    frozen: bool = False
    """Frozen (arrears, violation): blocks unsubscribing."""
    lock_order_id: str | None = None
    """The order that holds the lock, when ``locked``."""
    provisioned_at: datetime | None = None
    """When the subscription took effect (the 5-day window counts from here)."""
    payments: tuple[Payment, ...] = ()
    """What was paid, per purchase or renewal order (for refund estimates)."""
    is_main: bool = True
    """A main resource (unsubscribed on its own) or a bound child of another."""
    children: tuple[str, ...] = ()
    """Cloud ids of bound children released together with it."""
    expire_policy: int | None = None
    """BSS ``expire_policy`` (3 = auto-renew)."""
    to_pay_per_use_at_expiry: bool = False
    """Set to switch to pay-per-use when it expires (it would then bill by the hour)."""
    refusals: tuple[str, ...] = ()
    """Reasons BSS would refuse an unsubscribe (keys of ``core.billing.BLOCKER_CODES``)."""


@dataclass(frozen=True)
class Resource:
    """One thing in scope: a server, a disk, a network object, or an unknown type."""

    urn: str
    """Identity: a Pulumi URN, or ``cloud:<provider>:<type>:<id>`` for cloud-found resources."""
    type: str
    """The provider's type token, e.g. ``huaweicloud:Ecs/instance:Instance``."""
    kind: Kind
    name: str
    cloud_id: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    disks: tuple[Disk, ...] = ()
    addresses: tuple[Address, ...] = ()
    billing: Billing = field(default_factory=Billing)
    parent: str | None = None
    """URN of the resource this one is attached to (a disk's server), if known."""
    dependencies: tuple[str, ...] = ()
    protected: bool = False
    """Pulumi ``protect``: the engine will refuse to delete it."""
    account: str | None = None
    """The cloud account it lives in (``huawei:<region>:<project id>``), when read from the
    cloud: part of a backup's identity."""
    created_at: datetime | None = None
    """When the cloud created it (a re-created resource with the same URN is a new machine)."""
    disks_known: bool = False
    """True when the cloud's two views of the attached disks agreed (ECS's attachment list and
    EVS's disks attached to this server): only then may disks be deleted with the server."""
    retain: bool = False
    """Pulumi ``retainOnDelete``: the engine never deletes it in the cloud."""
    deleted_with: str | None = None
    """Pulumi ``deletedWith``: the URN whose delete also deletes this resource."""
    hooks: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Pulumi ``resourceHooks``: (hook type, hook names) pairs sorted by type, e.g.
    ``(("AfterDelete", ("teardown-after-delete-1a2b3c4d5e",)), ("BeforeDelete", (...,)))``."""
    pending_delete: bool = False
    """Pulumi ``delete: true``: an old copy of a replaced resource, still in the cloud, that the
    engine deletes on its next update or destroy. When its URN has other entries in the state
    (the live replacement, which holds the plain URN), its ``urn`` is the key
    ``<URN>#pending-delete:<cloud id>``."""

    def tag(self, key: str) -> str | None:
        """The value of tag ``key``, or None."""
        for k, v in self.tags:
            if k == key:
                return v
        return None


@dataclass(frozen=True)
class PullSpec:
    """What to pull over SSH from one server, and the commands around it."""

    paths: tuple[str, ...]
    excludes: tuple[str, ...] = ()
    before: tuple[str, ...] = ()
    """Run on the host first (e.g. a database dump); a failure means no backup and no destroy."""
    after: tuple[str, ...] = ()
    """Run on the host afterwards whether or not the transfer succeeded (e.g. unfreeze)."""
    method: PullMethod = PullMethod.TAR
    name: str = "data"
    allow_empty: bool = False
    """A pull that verifies zero files counts (otherwise it fails: it copied nothing)."""
    accept_refused: tuple[str, ...] = ()
    """Globs (on the path) of entries the host has but the pull may refuse (special files,
    symlinks out of the tree, unsafe names) without failing; any other refusal fails it."""


@dataclass(frozen=True)
class Origin:
    """What a backup is a copy of. The planner writes the expected origin on each backup step;
    the artifact records what was observed when it was made; a backup counts for a destroy only
    when the two match in full (I1)."""

    account: str = ""
    """The cloud account, region and project (``huawei:<region>:<project id>``)."""
    resource_id: str = ""
    """The resource's cloud id (for a cloud backup: as the backup's own record names it)."""
    created_at: str = ""
    """The resource's creation time, ISO 8601: a re-created resource is a new machine."""
    spec: str = ""
    """sha256 of the backup's settings: the snapshot kind, or a pull rule's name, paths,
    excludes, commands, method and completeness settings."""

    def differences(self, other: Origin) -> tuple[str, ...]:
        """The fields in which ``other`` differs from this one, as ``field: this vs other``."""
        out = []
        for name in ("account", "resource_id", "created_at", "spec"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                out.append(f"{name} {theirs or '(none)'} is not {mine or '(none)'}")
        return tuple(out)

    def digest(self) -> str:
        """A short stable digest (part of backup step ids)."""
        text = "\x1f".join((self.account, self.resource_id, self.created_at, self.spec))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Step:
    """One side effect of a plan; ``id`` is deterministic and serves as the idempotency key."""

    id: str
    kind: StepKind
    urn: str
    after: tuple[str, ...] = ()
    """Steps that must have succeeded before this one may start."""
    snapshot: SnapshotKind | None = None
    pull: PullSpec | None = None
    action: DestroyAction | None = None
    order_id: str | None = None
    expect: Origin | None = None
    """Backup steps: what the backup must be a copy of."""
    retention_days: int = 0
    """Cloud backups: days the cloud keeps the backup (0: until someone deletes it)."""
    delete_volumes: bool = False
    """Destroy of a server: delete its data disks with it (only when every attached disk is
    known, bound to the server, and backed up in a way that survives, or its loss accepted)."""


@dataclass(frozen=True)
class Blocker:
    """Why a resource (and so the plan) cannot proceed, and what a person can do about it."""

    code: str
    message: str
    urn: str


@dataclass(frozen=True)
class Artifact:
    """A backup that exists somewhere: a cloud snapshot or a pulled set of files in the store."""

    kind: str
    """``cbr``, ``image``, ``evs`` or ``pull``."""
    ref: str
    """Cloud id of the backup, or the store path of the pulled set's manifest."""
    verified: bool
    survives_destroy: bool
    size: int = 0
    sha256: str | None = None
    """For pulls: sha256 of the manifest (which holds each file's sha256)."""
    detail: str = ""
    """Why it is not verified, or what was verified."""
    origin: Origin = field(default_factory=Origin)
    """What it is a copy of: account and resource id as observed when it was made; creation
    time and settings digest of the step it was made for."""
    host_key: str = ""
    """Pulls: the ``SHA256:`` fingerprint of the host key the data came from."""
    covers: tuple[str, ...] = ()
    """Cloud backups of a server: the ids of the disks it holds an available backup of."""
    files: int | None = None
    """Pulls: files verified (None: not a pull)."""
    refused: tuple[str, ...] = ()
    """Pulls: entries refused but accepted by the rule's ``accept_refused`` (``path: why``)."""


@dataclass(frozen=True)
class Estimate:
    """What unsubscribing is expected to return, computed from the published rules (Huawei has
    no quote API): an estimate, labelled as such; the refund orders record the real figures."""

    refund: Decimal
    consumed: Decimal
    fee: Decimal
    five_day: bool
    coupons_lost: Decimal
    explanation: str
    next_charge: datetime | None = None
    """When auto-renew would next charge (for resources that are kept)."""
    next_charge_amount: Decimal | None = None
    """What that renewal would charge (the last period's price), when known."""
    assumptions: tuple[str, ...] = ()
    """What the estimate assumes that the cloud cannot tell (e.g. the 5-day quota used)."""
    may_be_refused: str = ""
    """Why the cloud may refuse the unsubscribe although no known rule refuses it (e.g. the
    purchase may have been a promotion); empty when nothing suggests it."""
    worst_fee: Decimal | None = None
    """The worst case counted against ``billing.max_fee``: when the refund may not come, what
    would be lost (paid, not consumed); None when it is the estimated fee."""


@dataclass(frozen=True)
class ResourcePlan:
    """Everything the plan does to one resource."""

    resource: Resource
    action: DestroyAction
    backups: tuple[Step, ...] = ()
    destroy: Step | None = None
    """None when the resource is kept (keep to expiry)."""
    billing: tuple[Step, ...] = ()
    blockers: tuple[Blocker, ...] = ()
    loss_accepted: bool = False
    """The config accepts losing this resource's data without backup (I7)."""
    estimate: Estimate | None = None
    warnings: tuple[Blocker, ...] = ()
    """Cloud-side conditions (a lock, a freeze) expected to refuse this resource's unsubscribe:
    the plan still runs, backs it up, and the report says what a person must do."""
    carries: tuple[str, ...] = ()
    """URNs destroyed together with this one (Pulumi ``deletedWith``): their backups must be
    verified before this destroy too."""
    covered_by: str | None = None
    """A separately bought disk: the URN of the server whose whole-server cloud backup holds
    it (it gets no backup of its own; I1 checks that backup holds this disk and survives)."""
    notes: tuple[str, ...] = ()
    """What a reader of the plan should know that is neither a blocker nor a warning (e.g.
    cancelling a server's auto-renew also cancels it for its disks)."""
    fallback: tuple[Step, ...] = ()
    """Run when the destroy fails (e.g. an unsubscribe the cloud refused): turning auto-renew
    off, so that the refusal does not turn into a renewal charge."""

    @property
    def steps(self) -> tuple[Step, ...]:
        """Backups, destroy, billing, in order, then the fallback."""
        d = (self.destroy,) if self.destroy is not None else ()
        return self.backups + d + self.billing + self.fallback


@dataclass(frozen=True)
class Plan:
    """The reviewed, pure-data description of a run."""

    scope: str
    resources: tuple[ResourcePlan, ...]
    pre: tuple[Step, ...] = ()
    """Steps that may run before any backup: cancelling pending-payment orders (I4)."""
    skipped: tuple[str, ...] = ()
    """URNs read but not part of the plan (the stack itself, providers)."""

    @property
    def blockers(self) -> tuple[Blocker, ...]:
        return tuple(b for rp in self.resources for b in rp.blockers)

    @property
    def blocked(self) -> bool:
        return any(rp.blockers for rp in self.resources)

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.pre + tuple(s for rp in self.resources for s in rp.steps)

    def resource_plan(self, urn: str) -> ResourcePlan:
        for rp in self.resources:
            if rp.resource.urn == urn:
                return rp
        raise KeyError(urn)
