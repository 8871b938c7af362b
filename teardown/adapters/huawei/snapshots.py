"""Cloud-side backups on Huawei Cloud: CBR checkpoints (survive the source) and EVS snapshots
(die with their disk, so only for disks that are kept).

References returned by :meth:`CbrSnapshotter.create` are the checkpoint id for CBR and
``evs:<snapshot id>`` for EVS, so :meth:`CbrSnapshotter.wait` knows what to poll.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from huaweicloudsdkcbr.v1 import (
    CheckpointParam,
    CreateCheckpointRequest,
    ListBackupsRequest,
    ShowCheckpointRequest,
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

from teardown.adapters.huawei.clients import Clients
from teardown.adapters.huawei.errors import ApiCaller, NotFound, call
from teardown.adapters.huawei.profile import account_id
from teardown.core.errors import PermanentError
from teardown.core.model import Artifact, Kind, Origin, Resource, SnapshotKind
from teardown.support.poll import poll
from teardown.support.retry import RetryPolicy

GB = 2**30
EVS_PREFIX = "evs:"
CHECKPOINT_DONE = frozenset({"available", "error", "deleting", "deleted", "error-deleting"})
SNAPSHOT_DONE = frozenset({"available", "error", "deleting", "error_deleting"})
BACKUP_PAGE = 100


def _description(resource: Resource) -> str:
    return f"teardown backup of {resource.name}"[:255]


class CbrSnapshotter(ApiCaller):
    """Implements the Snapshotter port with CBR (servers and disks) and EVS snapshots (disks).

    Example::

        snap = CbrSnapshotter(clients, profile.vault_id or "vault-sandbox")
        art = snap.wait(server, snap.create(server, SnapshotKind.CBR, key="run1-snap-web-1"))
    """

    def __init__(
        self,
        clients: Clients,
        vault_id: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = 2.0,
        timeout: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(clients, sleep=sleep, retry=retry)
        self.vault_id = vault_id
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

    def create(self, resource: Resource, kind: SnapshotKind, key: str) -> str:
        """Start a CBR checkpoint (or an EVS snapshot) named ``key``; return its reference."""
        self._check_kind(resource, kind)
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
        params = CheckpointParam(resources=[cloud_id], name=key, description=_description(resource))
        cbr_req = CreateCheckpointRequest(
            body=VaultBackupReq(checkpoint=VaultBackup(vault_id=self.vault_id, parameters=params))
        )
        created = call(
            "cbr.CreateCheckpoint",
            lambda: self.clients.cbr.create_checkpoint(cbr_req),
            idempotent=False,
        )
        return str(created.checkpoint.id)

    # -- find ------------------------------------------------------------------------------

    def find(self, resource: Resource, kind: SnapshotKind, key: str) -> str | None:
        """The reference of a backup started earlier with ``key``, or None.

        CBR: lists the resource's backups in the vault and matches the checkpoint whose name
        (``extra_info.name``) is ``key``; backup names are not relied on (the sandbox names
        backups ``manualbk_<id>`` and ignores a ``name`` filter). Backups whose own record names
        another resource are skipped, whatever the filter sent.
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
        for b in self._backups(resource_id=cloud_id, vault_id=self.vault_id):
            cid = b.checkpoint_id
            if not cid or cid in seen or b.resource_id != cloud_id:
                continue
            seen.add(cid)
            if b.name == key:
                return str(cid)
            cp = self._checkpoint(cid)
            if cp is not None and cp.extra_info is not None and cp.extra_info.name == key:
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
        may be ignored), and how many other backups the answer held."""
        answer = self._backups(checkpoint_id=checkpoint_id)
        ours = [
            b
            for b in answer
            if b.checkpoint_id == checkpoint_id and b.resource_id == resource.cloud_id
        ]
        return ours, len(answer) - len(ours)

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
            detail=f"checkpoint {checkpoint_id}: {len(ours)} backups available{ignored}",
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
