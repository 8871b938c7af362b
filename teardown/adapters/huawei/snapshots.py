"""Cloud-side backups on Huawei Cloud: CBR checkpoints (survive the source) and EVS snapshots
(die with their disk, so only for disks that are kept).

References returned by :meth:`CbrSnapshotter.create` are the checkpoint id for CBR and
``evs:<snapshot id>`` for EVS, so :meth:`CbrSnapshotter.wait` knows what to poll.

A CBR backup goes into a vault, which bills by its capacity for as long as it exists
(docs/huawei-api.md, "CBR"). Before each checkpoint the vault is read (ShowVault): a server needs
a vault whose ``billing.object_type`` is ``server``, a disk one whose type is ``disk``; a full
vault is refused before anything is written; a resource not yet bound to the vault is added
(AddVaultResource), as CBR requires. ``retention_days`` becomes the checkpoint's
``retention_duration_days``: CBR deletes the backup that many days after it was made.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from huaweicloudsdkcbr.v1 import (
    AddVaultResourceRequest,
    CheckpointParam,
    CreateCheckpointRequest,
    ListBackupsRequest,
    ListVaultRequest,
    ResourceCreate,
    ShowBackupRequest,
    ShowCheckpointRequest,
    ShowVaultRequest,
    VaultAddResourceReq,
    VaultBackup,
    VaultBackupReq,
)
from huaweicloudsdkevs.v2 import (
    CreateSnapshotOption,
    CreateSnapshotRequest,
    CreateSnapshotRequestBody,
    ListSnapshotsRequest,
    ShowSnapshotRequest,
)

from teardown.adapters.huawei._parse import parse_time
from teardown.adapters.huawei.clients import Clients
from teardown.adapters.huawei.errors import ApiCaller, NotFound, call
from teardown.adapters.huawei.profile import account_id
from teardown.core.errors import PermanentError
from teardown.core.model import Artifact, Kind, Origin, Resource, SnapshotKind
from teardown.ports import VaultInfo
from teardown.support.poll import poll
from teardown.support.retry import RetryPolicy

GB = 2**30
EVS_PREFIX = "evs:"
CHECKPOINT_DONE = frozenset({"available", "error", "deleting", "deleted", "error-deleting"})
SNAPSHOT_DONE = frozenset({"available", "error", "deleting", "error_deleting"})
BACKUP_PAGE = 100
MB_PER_GB = 1024
"""CBR's ``billing.used`` is in MB, ``billing.size`` (the capacity) in GB."""
SERVER_TYPE, VOLUME_TYPE = "OS::Nova::Server", "OS::Cinder::Volume"
VAULT_FULL = "BackupService.6114"
"""The vault's used capacity has exceeded its total capacity (CBR error codes)."""
NOT_IN_VAULT = "BackupService.6135"
ALREADY_IN_THIS_VAULT = frozenset({"BackupService.7116", "BackupService.7006"})
"""AddVaultResource: the server (7116) or disk (7006) is already in the vault."""
IN_OTHER_VAULT = "BackupService.6103"
MAX_RETENTION_DAYS = 36500
"""``retention_duration_days`` is 1..36500 (the SDK's ``CheckpointParam``)."""
NAME_MAX = 64
"""``CheckpointParam.name``: 1 to 64 characters (the CreateCheckpoint reference)."""


def checkpoint_name(key: str) -> str:
    """The CBR name of the backup made for ``key``: the key itself when it fits in 64
    characters, else its first 47 and 16 hex digits of its sha256 (still unique per key)."""
    if len(key) <= NAME_MAX:
        return key
    return key[:47] + "-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def _description(resource: Resource) -> str:
    return f"teardown backup of {resource.name}"[:255]


class CbrSnapshotter(ApiCaller):
    """Implements the Snapshotter port with CBR (servers and disks) and EVS snapshots (disks).

    Example::

        snap = CbrSnapshotter(clients, profile.vault_id or "vault-sandbox")
        art = snap.wait(server, snap.create(server, SnapshotKind.CBR, key="run1-snap-web-1"))

    ``vault_id`` is the vault of server backups; disk backups go to ``disk_vault_id``, or when it
    is not given and ``vault_id`` is a server vault, to the project's one disk vault (refused,
    naming them, when there is none or more than one).
    """

    def __init__(
        self,
        clients: Clients,
        vault_id: str,
        *,
        disk_vault_id: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = 2.0,
        timeout: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(clients, sleep=sleep, retry=retry)
        self.vault_id = vault_id
        self.disk_vault_id = disk_vault_id
        self._vault_ids: dict[str, str] = {}
        """``object_type`` -> the vault id resolved for it (read once)."""
        self._interval = poll_interval
        self._timeout = timeout
        self._clock = clock

    @staticmethod
    def _cloud_id(resource: Resource) -> str:
        if not resource.cloud_id:
            raise PermanentError(f"{resource.name} has no cloud id: cannot back it up")
        return resource.cloud_id

    @staticmethod
    def _check_kind(resource: Resource, kind: SnapshotKind) -> None:
        if kind is SnapshotKind.IMAGE:
            raise PermanentError("image backups are not supported yet", hint="use a CBR backup")
        if kind is SnapshotKind.EVS and resource.kind is not Kind.VOLUME:
            raise PermanentError(
                f"{resource.name}: EVS snapshots are per disk, and a server's disks die with it",
                hint="use a CBR backup",
            )
        if kind not in (SnapshotKind.CBR, SnapshotKind.EVS):
            raise PermanentError(f"{resource.name}: no cloud backup of kind {kind.value!r}")

    # -- create ----------------------------------------------------------------------------

    def create(
        self, resource: Resource, kind: SnapshotKind, key: str, *, retention_days: int = 0
    ) -> str:
        """Start a CBR checkpoint (or an EVS snapshot) named ``key``; return its reference.

        CBR: the vault must be of the resource's type and not full (PermanentError naming the
        vault, its capacity and use, before any backup); the resource is added to it first when
        it is not bound yet; ``retention_days`` > 0 is sent as ``retention_duration_days``."""
        self._check_kind(resource, kind)
        if not 0 <= retention_days <= MAX_RETENTION_DAYS:
            raise PermanentError(
                f"retention_days must be 0 (keep until deleted) to {MAX_RETENTION_DAYS}, "
                f"got {retention_days}",
                hint="CBR keeps a manual backup 1 to 36500 days (retention_duration_days)",
            )
        cloud_id = self._cloud_id(resource)
        if kind is SnapshotKind.EVS:
            option = CreateSnapshotOption(
                volume_id=cloud_id, force=True, name=key, description=_description(resource)
            )
            req = CreateSnapshotRequest(body=CreateSnapshotRequestBody(snapshot=option))
            resp = call(
                "evs.CreateSnapshot",
                lambda: self.clients.evs.create_snapshot(req),
                idempotent=False,
            )
            return EVS_PREFIX + str(resp.snapshot.id)
        vault = self._target_vault(resource)
        self._refuse_if_full(vault, resource)
        if cloud_id not in {str(r.id) for r in vault.resources or []}:
            self._add_to_vault(vault, resource, cloud_id)
        params = CheckpointParam(
            resources=[cloud_id],
            name=checkpoint_name(key),
            description=_description(resource),
            retention_duration_days=retention_days or None,
        )
        cbr_req = CreateCheckpointRequest(
            body=VaultBackupReq(checkpoint=VaultBackup(vault_id=str(vault.id), parameters=params))
        )
        try:
            created = call(
                "cbr.CreateCheckpoint",
                lambda: self.clients.cbr.create_checkpoint(cbr_req),
                idempotent=False,
            )
        except PermanentError as e:
            if e.code == VAULT_FULL:
                raise self._full(self._show_vault(str(vault.id)), resource) from e
            raise
        return str(created.checkpoint.id)

    # -- the vault -------------------------------------------------------------------------

    def vaults(self) -> list[VaultInfo]:
        """The vault of server backups and the one of disk backups (configured, or the
        project's single disk vault), as CBR reports them now."""
        if not self.vault_id and not self.disk_vault_id:
            return []
        out: list[VaultInfo] = []
        if self.vault_id:
            out.append(_vault_info(self._show_vault(self.vault_id)))
        if self.disk_vault_id:
            out.append(_vault_info(self._show_vault(self.disk_vault_id)))
        elif not any(v.object_type == "disk" for v in out):
            req = ListVaultRequest(object_type="disk", limit=1000, offset=0)
            listed = self._read("cbr.ListVault", lambda: self.clients.cbr.list_vault(req)).vaults
            disks = [v for v in listed or [] if _object_type(v) == "disk"]
            if len(disks) == 1:  # the one a disk's backup would go to
                out.append(_vault_info(disks[0]))
        return out

    def _show_vault(self, vault_id: str) -> Any:
        req = ShowVaultRequest(vault_id=vault_id)
        return self._read("cbr.ShowVault", lambda: self.clients.cbr.show_vault(req)).vault

    def _target_vault(self, resource: Resource) -> Any:
        """The vault ``resource``'s backup goes to, read now; PermanentError when the vault
        configured is of another type (server backups need a ``server`` vault, disk backups a
        ``disk`` vault) or no single disk vault can be found."""
        wanted = _object_type_for(resource)
        known = self._vault_ids.get(wanted)
        if known is not None:
            return self._show_vault(known)
        if not self.vault_id and not (wanted == "disk" and self.disk_vault_id):
            raise PermanentError(
                f"{resource.name}: no CBR vault is configured", hint="set huawei.vault_id"
            )
        configured = self.disk_vault_id if wanted == "disk" and self.disk_vault_id else None
        vault = self._show_vault(configured or self.vault_id)
        found = _object_type(vault)
        if found != wanted and wanted == "disk" and configured is None:
            vault = self._the_disk_vault(resource, vault)
        elif found != wanted:
            raise PermanentError(
                f"{resource.name}: the backup of a {resource.kind.value} needs a {wanted} backup "
                f"vault, but vault {_vault_name(vault)} backs up {found or 'an unknown type'} "
                "(billing.object_type)",
                hint=f"point the profile at a {wanted} backup vault",
            )
        self._vault_ids[wanted] = str(vault.id)
        return vault

    def _the_disk_vault(self, resource: Resource, server_vault: Any) -> Any:
        req = ListVaultRequest(object_type="disk", limit=1000, offset=0)
        listed = self._read("cbr.ListVault", lambda: self.clients.cbr.list_vault(req)).vaults
        disks = [v for v in listed or [] if _object_type(v) == "disk"]
        if len(disks) == 1:
            return disks[0]
        names = ", ".join(_vault_name(v) for v in disks)
        raise PermanentError(
            f"{resource.name} is a disk: its CBR backup needs a disk backup vault, but vault "
            f"{_vault_name(server_vault)} backs up servers and the project has "
            + (f"{len(disks)} disk vaults ({names})" if disks else "no disk vault"),
            hint="create one disk backup vault (CBR, object_type disk) or name the one to use",
        )

    def _refuse_if_full(self, vault: Any, resource: Resource) -> None:
        info = _vault_info(vault)
        if info.capacity_gb is not None and info.used_gb >= info.capacity_gb:
            raise self._full(vault, resource)

    @staticmethod
    def _full(vault: Any, resource: Resource) -> PermanentError:
        info = _vault_info(vault)
        capacity = f"{info.capacity_gb:g} GB" if info.capacity_gb is not None else "unknown"
        return PermanentError(
            f"vault {_vault_name(vault)} has no room for the backup of {resource.name}: "
            f"{info.used_gb:.1f} GB used of {capacity}",
            code=VAULT_FULL,
            hint="expand the vault or delete backups it no longer needs, then run again "
            "(a bigger vault bills more: it bills by its capacity)",
        )

    def _add_to_vault(self, vault: Any, resource: Resource, cloud_id: str) -> None:
        rtype = VOLUME_TYPE if resource.kind is Kind.VOLUME else SERVER_TYPE
        body = VaultAddResourceReq(
            resources=[ResourceCreate(id=cloud_id, type=rtype, name=resource.name[:255])]
        )
        req = AddVaultResourceRequest(vault_id=str(vault.id), body=body)
        try:
            call(
                "cbr.AddVaultResource",
                lambda: self.clients.cbr.add_vault_resource(req),
                idempotent=False,
            )
        except PermanentError as e:
            if e.code in ALREADY_IN_THIS_VAULT:
                return  # added by an earlier attempt whose answer was lost
            if e.code == IN_OTHER_VAULT:
                raise PermanentError(
                    f"{resource.name} is bound to another CBR vault than {_vault_name(vault)}",
                    code=e.code,
                    hint="remove it from that vault (its backups there are deleted with it) or "
                    "point the profile at that vault",
                ) from e
            raise

    # -- find ------------------------------------------------------------------------------

    def find(self, resource: Resource, kind: SnapshotKind, key: str) -> str | None:
        """The reference of a backup started earlier with ``key``, or None.

        CBR: lists the resource's backups in the vault and matches the backup, or else the
        checkpoint (``extra_info.name``), named :func:`checkpoint_name` of ``key`` (a backup is
        named as its checkpoint's ``parameters.name``: ShowBackup's example). Backups whose own
        record names another resource are skipped, whatever the filter sent.
        """
        self._check_kind(resource, kind)
        cloud_id = self._cloud_id(resource)
        if kind is SnapshotKind.EVS:
            req = ListSnapshotsRequest(name=key, volume_id=cloud_id)
            resp = self._read("evs.ListSnapshots", lambda: self.clients.evs.list_snapshots(req))
            for s in resp.snapshots or []:
                if s.name == key and s.volume_id == cloud_id:
                    return EVS_PREFIX + str(s.id)
            return None
        seen: set[str] = set()
        name = checkpoint_name(key)
        vault_id = self._vault_ids.get(_object_type_for(resource))
        if vault_id is None:
            vault_id = str(self._target_vault(resource).id)
        for b in self._backups(resource_id=cloud_id, vault_id=vault_id):
            cid = b.checkpoint_id
            if not cid or cid in seen or b.resource_id != cloud_id:
                continue
            seen.add(cid)
            if b.name == name:
                return str(cid)
            cp = self._checkpoint(cid)
            if cp is not None and cp.extra_info is not None and cp.extra_info.name == name:
                return str(cid)
        return None

    def _checkpoint(self, checkpoint_id: str) -> Any:
        req = ShowCheckpointRequest(checkpoint_id=checkpoint_id)
        return self._read(
            "cbr.ShowCheckpoint", lambda: self.clients.cbr.show_checkpoint(req)
        ).checkpoint

    def _backups_page(self, req: Any) -> Any:
        return self._read("cbr.ListBackups", lambda: self.clients.cbr.list_backups(req))

    def _backups(self, **filters: Any) -> list[Any]:
        out: list[Any] = []
        offset = 0
        while True:
            req = ListBackupsRequest(limit=BACKUP_PAGE, offset=offset, **filters)
            resp = self._backups_page(req)
            page = list(resp.backups or [])
            out.extend(page)
            offset += len(page)
            if not page or offset >= int(resp.count or 0):
                return out

    # -- wait ------------------------------------------------------------------------------

    def wait(self, resource: Resource, ref: str) -> Artifact:
        """Poll until terminal; verified only if the checkpoint is ``available``, skipped nothing,
        lists ``resource`` among its resources, and holds backups of ``resource`` (as their own
        records say: backups of other checkpoints or resources in the answer are ignored), each
        ``available`` with every disk backup under it. Raises TransientError when the poll
        itself keeps failing or times out."""
        if ref.startswith(EVS_PREFIX):
            return self._wait_snapshot(ref[len(EVS_PREFIX) :])
        return self._wait_checkpoint(resource, ref)

    def check(self, resource: Resource, artifact: Artifact) -> str | None:
        """Just before a destroy: None when the checkpoint still holds an ``available`` backup
        of ``resource`` (with every disk it held before); otherwise what is wrong."""
        if artifact.ref.startswith(EVS_PREFIX):
            return "an EVS snapshot does not survive the destroy of its disk"
        try:
            cp = self._checkpoint(artifact.ref)
        except NotFound:
            return f"checkpoint {artifact.ref} no longer exists"
        if cp is None:
            return f"checkpoint {artifact.ref} no longer exists"
        ours, _others = self._backups_of(resource, artifact.ref)
        if not ours:
            return f"checkpoint {artifact.ref} no longer holds a backup of {resource.name}"
        bad = [
            f"{b.resource_name or b.resource_id} is {b.status}"
            for b in _with_children(ours)
            if b.status != "available"
        ]
        if bad:
            return f"checkpoint {artifact.ref}: {'; '.join(bad)}"
        gone = sorted(set(artifact.covers) - _disks_held(ours))
        if gone:
            return f"checkpoint {artifact.ref} no longer holds disk(s) {', '.join(gone)}"
        return None

    def _poll(self, what: str, probe: Callable[[], Any | None]) -> Any:
        return poll(
            what,
            probe,
            sleep=self._sleep,
            clock=self._clock,
            interval=self._interval,
            timeout=self._timeout,
        )

    def _backups_of(self, resource: Resource, checkpoint_id: str) -> tuple[list[Any], int]:
        """The backups of ``resource`` in the checkpoint, by their own records (the filter sent
        may be ignored), each server backup with its disk backups (:meth:`_with_disks`), and
        how many other backups the answer held."""
        answer = self._backups(checkpoint_id=checkpoint_id)
        ours = [
            b
            for b in answer
            if b.checkpoint_id == checkpoint_id and b.resource_id == resource.cloud_id
        ]
        return [self._with_disks(b) for b in ours], len(answer) - len(ours)

    def _with_disks(self, backup: Any) -> Any:
        """A server backup with its disk backups. ListBackups answers ``children: []`` for a
        server backup (the reference's example); ShowBackup lists them, so it is asked when
        the list brought none. Its answer counts only when it is about the same backup, and
        only children whose ``parent_id`` (when given) is this backup are kept."""
        if backup.resource_type != SERVER_TYPE or backup.children or not backup.id:
            return backup
        req = ShowBackupRequest(backup_id=str(backup.id))
        try:
            shown = self._read("cbr.ShowBackup", lambda: self.clients.cbr.show_backup(req)).backup
        except NotFound:
            return backup
        same = shown is not None and (shown.id, shown.checkpoint_id, shown.resource_id) == (
            backup.id,
            backup.checkpoint_id,
            backup.resource_id,
        )
        if not same:
            return backup
        shown.children = [c for c in shown.children or [] if c.parent_id in (None, backup.id)]
        return shown

    def _wait_checkpoint(self, resource: Resource, checkpoint_id: str) -> Artifact:
        def probe() -> Any | None:
            cp = self._checkpoint(checkpoint_id)
            return cp if cp is not None and cp.status in CHECKPOINT_DONE else None

        cp = self._poll(f"checkpoint {checkpoint_id}", probe)
        # The account as the checkpoint's own record says (its project), in this region.
        profile = self.clients.profile
        origin = Origin(account=account_id(profile.region, cp.project_id or profile.project_id))

        def unverified(detail: str, size: int = 0) -> Artifact:
            return Artifact(
                "cbr", checkpoint_id, False, True, size=size, detail=detail, origin=origin
            )

        if cp.status != "available":
            return unverified(f"checkpoint {checkpoint_id} ended in status {cp.status}")
        skipped = list((cp.vault.skipped_resources if cp.vault else None) or [])
        if skipped:
            names = ", ".join(f"{s.name or s.id} ({s.code}: {s.reason})" for s in skipped)
            return unverified(f"checkpoint {checkpoint_id} skipped {names}")
        listed = {r.id for r in ((cp.vault.resources if cp.vault else None) or [])}
        if resource.cloud_id not in listed:
            return unverified(
                f"checkpoint {checkpoint_id} does not list {resource.name} ({resource.cloud_id}) "
                f"among its resources ({', '.join(sorted(listed)) or 'none'})"
            )
        ours, others = self._backups_of(resource, checkpoint_id)
        ignored = f" ({others} backups of other checkpoints or resources ignored)" if others else ""
        if not ours:
            return unverified(
                f"checkpoint {checkpoint_id} holds no backup of {resource.name}{ignored}"
            )
        size = sum(int(b.resource_size or 0) for b in ours) * GB
        bad = [
            f"{b.resource_name or b.resource_id} is {b.status}"
            for b in _with_children(ours)
            if b.status != "available"
        ]
        if bad:
            return unverified(f"checkpoint {checkpoint_id}: {'; '.join(bad)}", size)
        return Artifact(
            kind="cbr",
            ref=checkpoint_id,
            verified=True,
            survives_destroy=True,
            size=size,
            detail=f"checkpoint {checkpoint_id}: {len(ours)} backups available"
            f"{_dates(ours)}{ignored}",
            origin=replace(origin, resource_id=str(ours[0].resource_id)),
            covers=tuple(sorted(_disks_held(ours))),
        )

    def _wait_snapshot(self, snapshot_id: str) -> Artifact:
        req = ShowSnapshotRequest(snapshot_id=snapshot_id)

        def probe() -> Any | None:
            s = self._read("evs.ShowSnapshot", lambda: self.clients.evs.show_snapshot(req)).snapshot
            return s if s is not None and s.status in SNAPSHOT_DONE else None

        s = self._poll(f"snapshot {snapshot_id}", probe)
        size = int(s.size or 0) * GB
        ok = s.status == "available"
        return Artifact(
            kind="evs",
            ref=snapshot_id,
            verified=ok,
            survives_destroy=False,
            size=size,
            detail=(
                f"snapshot {snapshot_id} of disk {s.volume_id} available (dies with the disk)"
                if ok
                else f"snapshot {snapshot_id} ended in status {s.status}"
            ),
        )


def _object_type_for(resource: Resource) -> str:
    """The ``object_type`` of the vault a backup of ``resource`` needs."""
    return "disk" if resource.kind is Kind.VOLUME else "server"


def _object_type(vault: Any) -> str | None:
    billing = vault.billing
    return str(billing.object_type) if billing is not None and billing.object_type else None


def _vault_name(vault: Any) -> str:
    return f"{vault.name} ({vault.id})" if vault.name and vault.name != vault.id else str(vault.id)


def _vault_info(vault: Any) -> VaultInfo:
    """ShowVault's answer as the port's VaultInfo: ``billing.used`` (MB) in GB, ``billing.size``
    (GB) as the capacity."""
    billing = vault.billing
    used = (billing.used if billing is not None else None) or 0
    size = billing.size if billing is not None else None
    prepaid = billing is not None and billing.charging_mode == "pre_paid"
    return VaultInfo(
        id=str(vault.id),
        name=str(vault.name or vault.id),
        used_gb=round(float(used) / MB_PER_GB, 3),
        capacity_gb=float(size) if size else None,
        object_type=_object_type(vault) or "server",
        charging="prepaid" if prepaid else "storage",
    )


def _dates(backups: list[Any]) -> str:
    """When the backups were made and when CBR deletes them, as their records say: CBR gives
    times in UTC with no zone (``2019-05-10T07:59:12.084695``), parsed as such."""
    made = [t for t in (parse_time(b.created_at) for b in backups) if t is not None]
    ends = [t for t in (parse_time(b.expired_at) for b in backups) if t is not None]
    out = f", made {min(made).isoformat()}" if made else ""
    if ends:
        out += f", CBR deletes it at {min(ends).isoformat()} (retention)"
    return out


def _disks_held(backups: list[Any]) -> set[str]:
    """Ids of the disks with an available backup: the children of a server backup, or a disk
    backup itself."""
    held: set[str] = set()
    for b in _with_children(backups):
        if b.status == "available" and b.resource_type == "OS::Cinder::Volume" and b.resource_id:
            held.add(str(b.resource_id))
    return held


def _with_children(backups: list[Any]) -> list[Any]:
    out: list[Any] = []
    for b in backups:
        out.append(b)
        out.extend(_with_children(list(b.children or [])))
    return out


__all__ = ["EVS_PREFIX", "CbrSnapshotter"]
