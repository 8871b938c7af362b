"""CBR: CreateCheckpoint, ShowCheckpoint, ListBackups, ShowBackup, DeleteBackup, and the vaults:
ShowVault, ListVault, AddVaultResource, RemoveVaultResource.

A server backup is a parent backup with one child per disk; each child holds a real copy of the
disk's files under ``DIR/cbr/<backup id>``, so a restore can be checked, and it survives the
deletion of its source (R24). ListBackups shows every backup with ``children: []`` (as the
reference's example does, for a server backup too); ShowBackup lists a server backup's disk
backups in ``children``. A backup is named as the checkpoint's ``parameters.name`` (1 to 64
characters); times are UTC with no zone and microseconds (``2019-05-10T07:59:12.084695``), as in
every CBR example.

Vaults (docs/huawei-api.md, "CBR"): each has an ``object_type`` (``server`` or ``disk``) and backs
up only that type (``BackupService.6102`` otherwise); a checkpoint backs up only resources bound
to the vault (AddVaultResource), else ``BackupService.6135`` (resource not in the vault), unless
the vault auto-binds (the scenario's ``auto_bind``, true for the default vaults: the sandbox binds
the resource at the checkpoint, an assumption); a checkpoint that would take the vault's use past
its capacity is refused with ``BackupService.6114`` before anything is written (an assumption on
when: a backup is counted at the full size of its disks). A backup made with
``retention_duration_days`` expires then (``expired_at``) and is deleted with its disk backups.

DeleteBackup (``DELETE /v3/{project_id}/backups/{backup_id}``) answers 204 with no body, as the
API reference says; the reference does not say how long deletion takes, so the sandbox shows the
backup and its disk backups as ``deleting`` (a documented status) for ``durations.
delete_snapshot`` seconds, then they are gone with their files (an assumption).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from teardown.sandbox.billing import vaults
from teardown.sandbox.http import ApiError, Ctx, Reply, paged, route
from teardown.sandbox.resources import api_time, volume_data_dir
from teardown.sandbox.store import new_id, schedule, timer, ts

P = "/v3/<project_id>"
BACKUP_NOT_FOUND = "BackupService.6200"
"""404: the backup does not exist (该备份不存在)."""
CHECKPOINT_NOT_FOUND = "BackupService.6217"
"""404: the checkpoint does not exist (备份还原点不存在)."""
VAULT_NOT_FOUND = "BackupService.6105"
SKIPPED_CODES = {
    "OS::Nova::Server": "BackupService.7100",
    "OS::Cinder::Volume": "BackupService.7000",
}
"""A resource skipped by a checkpoint because it does not exist: 404 codes of the table, "the
server does not exist" (7100) and "the volume does not exist" (7000): an assumption on which
code ``skipped_resources[].code`` carries."""
TYPE_MISMATCH = "BackupService.6102"
IN_OTHER_VAULT = "BackupService.6103"
ALREADY_IN_VAULT = {
    "OS::Nova::Server": "BackupService.7116",
    "OS::Cinder::Volume": "BackupService.7006",
}
VAULT_FULL = "BackupService.6114"
NOT_IN_VAULT = "BackupService.6135"
NO_RESOURCE = "BackupService.0001"
NAME_MAX = 64
"""``CheckpointParam.name``: 1 to 64 characters (the CreateCheckpoint reference)."""
SERVER_TYPE = "OS::Nova::Server"
VOLUME_TYPE = "OS::Cinder::Volume"


def backup_dir(data_root: Path, backup_id: str) -> Path:
    """Where the files of a disk backup are kept."""
    return data_root / "cbr" / backup_id


def _resources(ctx: Ctx, params: dict[str, Any]) -> list[tuple[str, str | None]]:
    if isinstance(params.get("resources"), list):
        out: list[tuple[str, str | None]] = []
        for r in params["resources"]:
            if not isinstance(r, str):
                raise ctx.bad("parameters.resources must be a list of ids")
            out.append((r, None))
        return out
    details = params.get("resource_details")
    if isinstance(details, list):
        out = []
        for d in details:
            if not isinstance(d, dict) or not isinstance(d.get("id"), str):
                raise ctx.bad("each resource_details entry needs an id")
            out.append((d["id"], d.get("type")))
        return out
    raise ctx.bad("parameters.resources or parameters.resource_details is required")


def _copy_entry(src: str, dst: str) -> None:
    mode = os.lstat(src).st_mode
    if stat.S_ISFIFO(mode):
        os.mkfifo(dst, stat.S_IMODE(mode))
    elif stat.S_ISREG(mode):
        shutil.copy2(src, dst)
    # sockets and devices: nothing a disk image could carry that a test needs


def _copy_disk(
    ctx: Ctx,
    checkpoint: str,
    parent: str | None,
    vol: sqlite3.Row,
    vault: str,
    retention: int | None,
) -> str:
    bid = new_id()
    src = volume_data_dir(ctx.sandbox.data_dir, vol["id"])
    dest = backup_dir(ctx.sandbox.data_dir, bid)
    if src.exists():
        # A disk backup copies blocks: a FIFO or socket on the disk is copied as what it is,
        # never opened (reading a FIFO would wait for a writer forever).
        shutil.copytree(src, dest, symlinks=True, copy_function=_copy_entry)
    else:
        dest.mkdir(parents=True)
    expires = ts(ctx.now + timedelta(days=retention)) if retention else None
    ctx.conn.execute(
        "INSERT INTO backups(id, checkpoint_id, vault_id, parent_id, resource_id, resource_type, "
        "resource_name, resource_size, status, snapshot_id, bootable, system_disk, created, "
        "updated, expired_at) VALUES (?,?,?,?,?,?,?,?, 'protecting', ?,?,?,?,?,?)",
        (
            bid,
            checkpoint,
            vault,
            parent,
            vol["id"],
            VOLUME_TYPE,
            vol["name"],
            vol["size"],
            "autobk_snapshot_" + bid[:8],
            vol["bootable"],
            vol["bootable"],
            ts(ctx.now),
            ts(ctx.now),
            expires,
        ),
    )
    return bid


@dataclass
class _Outcome:
    """What a CreateCheckpoint did with each resource it was asked to back up."""

    done: list[dict[str, Any]] = field(default_factory=list)
    """The checkpoint's ``vault.resources``."""
    skipped: list[dict[str, Any]] = field(default_factory=list)
    """The checkpoint's ``vault.skipped_resources``."""
    failed: list[str] = field(default_factory=list)
    """Top-level backups that end in error, with their children (fault injection)."""
    made: list[str] = field(default_factory=list)
    """Every top-level backup made."""


@route("cbr", "POST", P + "/checkpoints", "CreateCheckpoint")
def create_checkpoint(ctx: Ctx) -> Reply:
    vault, params, retention = _checkpoint_request(ctx)
    resources = _resources(ctx, params)
    _admit(ctx, vault["id"], [rid for rid, _type in resources])
    cid = new_id()
    outcome = _Outcome()
    for rid, rtype in resources:
        _back_up(ctx, cid, vault["id"], rid, rtype, retention, outcome)
    if not outcome.done:
        raise ApiError(400, NO_RESOURCE, "none of the resources can be backed up")
    if retention:
        for bid in outcome.made:
            schedule(
                ctx.conn,
                ctx.now,
                timedelta(days=retention),
                "cbr.backup_gone",
                backup_id=bid,
                root=str(ctx.sandbox.data_dir),
            )
    ctx.conn.execute(
        "INSERT INTO checkpoints(id, vault_id, status, name, description, resources, skipped, "
        "retention_days, created) VALUES (?, ?, 'protecting', ?, ?, ?, ?, ?, ?)",
        (
            cid,
            vault["id"],
            params.get("name"),
            params.get("description"),
            json.dumps(outcome.done),
            json.dumps(outcome.skipped),
            retention,
            ts(ctx.now),
        ),
    )
    schedule(
        ctx.conn,
        ctx.now,
        timedelta(seconds=ctx.sandbox.config.durations.checkpoint),
        "cbr.checkpoint_done",
        checkpoint_id=cid,
        failed=outcome.failed,
    )
    return 200, {"checkpoint": _checkpoint_json(ctx, cid, created=True)}


def _checkpoint_request(ctx: Ctx) -> tuple[sqlite3.Row, dict[str, Any], int | None]:
    """The vault, the parameters and the retention in days of a CreateCheckpoint body."""
    spec = ctx.body().get("checkpoint")
    if not isinstance(spec, dict) or not isinstance(spec.get("vault_id"), str):
        raise ctx.bad("checkpoint.vault_id is required")
    params = spec.get("parameters") or {}
    if not isinstance(params, dict):
        raise ctx.bad("checkpoint.parameters must be an object")
    retention = params.get("retention_duration_days")
    if retention is not None and (
        isinstance(retention, bool) or not isinstance(retention, int) or not 1 <= retention <= 36500
    ):
        raise ctx.bad("retention_duration_days must be 1..36500")
    for key, low, high in (("name", 1, NAME_MAX), ("description", 0, 255)):
        value = params.get(key)
        if value is not None and (not isinstance(value, str) or not low <= len(value) <= high):
            raise ctx.bad(f"parameters.{key} must be a string of {low} to {high} characters")
    vault = ctx.conn.execute("SELECT * FROM vaults WHERE id=?", (spec["vault_id"],)).fetchone()
    if vault is None:
        raise ApiError(404, VAULT_NOT_FOUND, f"vault {spec['vault_id']} not found")
    return vault, params, retention


def _back_up(
    ctx: Ctx,
    checkpoint: str,
    vault: str,
    rid: str,
    rtype: str | None,
    retention: int | None,
    outcome: _Outcome,
) -> None:
    """Back up the live server or disk ``rid`` into ``checkpoint``, or skip it as not found."""
    server = ctx.conn.execute("SELECT * FROM servers WHERE id=? AND deleted=0", (rid,)).fetchone()
    if server is not None:
        _back_up_server(ctx, checkpoint, vault, server, retention, outcome)
        return
    vol = ctx.conn.execute("SELECT * FROM volumes WHERE id=? AND deleted=0", (rid,)).fetchone()
    if vol is not None:
        _back_up_volume(ctx, checkpoint, vault, vol, retention, outcome)
        return
    outcome.skipped.append(
        {
            "id": rid,
            "type": rtype or SERVER_TYPE,
            "name": rid,
            "code": SKIPPED_CODES.get(rtype or SERVER_TYPE, SKIPPED_CODES[SERVER_TYPE]),
            "reason": "resource not found",
        }
    )


def _back_up_server(
    ctx: Ctx,
    checkpoint: str,
    vault: str,
    server: sqlite3.Row,
    retention: int | None,
    outcome: _Outcome,
) -> None:
    """A server backup: a parent backup and one disk backup per attached disk."""
    rid = server["id"]
    disks = list(ctx.conn.execute("SELECT * FROM volumes WHERE server_id=? AND deleted=0", (rid,)))
    parent = new_id()
    size = sum(int(d["size"]) for d in disks)
    ctx.conn.execute(
        "INSERT INTO backups(id, checkpoint_id, vault_id, parent_id, resource_id, "
        "resource_type, resource_name, resource_size, status, created, updated, "
        "expired_at) VALUES (?,?,?,NULL,?,?,?,?, 'protecting', ?, ?, ?)",
        (
            parent,
            checkpoint,
            vault,
            rid,
            SERVER_TYPE,
            server["name"],
            size,
            ts(ctx.now),
            ts(ctx.now),
            ts(ctx.now + timedelta(days=retention)) if retention else None,
        ),
    )
    for d in disks:
        _copy_disk(ctx, checkpoint, parent, d, vault, retention)
    outcome.made.append(parent)
    outcome.done.append(
        {"id": rid, "name": server["name"], "type": SERVER_TYPE, "resource_size": size}
    )
    # A fault on the server or on any of its disks fails the server's backup.
    faults = ctx.sandbox.config.faults
    if any(x in faults.snapshot_error for x in (rid, *(d["id"] for d in disks))):
        outcome.failed.append(parent)


def _back_up_volume(
    ctx: Ctx,
    checkpoint: str,
    vault: str,
    vol: sqlite3.Row,
    retention: int | None,
    outcome: _Outcome,
) -> None:
    """A disk backup of one disk, on its own."""
    rid = vol["id"]
    bid = _copy_disk(ctx, checkpoint, None, vol, vault, retention)
    outcome.made.append(bid)
    outcome.done.append(
        {"id": rid, "name": vol["name"], "type": VOLUME_TYPE, "resource_size": vol["size"]}
    )
    faults = ctx.sandbox.config.faults
    if rid in faults.snapshot_error or vol["server_id"] in faults.snapshot_error:
        outcome.failed.append(bid)


@timer("cbr.checkpoint_done")
def _checkpoint_done(conn: sqlite3.Connection, p: dict[str, Any], now: datetime) -> None:
    failed = set(p.get("failed", ()))
    everything = bool(p.get("failing"))  # timers stored before faults were per backup
    status = "error" if failed or everything else "available"
    conn.execute("UPDATE checkpoints SET status=? WHERE id=?", (status, p["checkpoint_id"]))
    rows = conn.execute(
        "SELECT id, parent_id FROM backups WHERE checkpoint_id=? AND status='protecting'",
        (p["checkpoint_id"],),
    ).fetchall()
    for row in rows:
        bad = everything or row["id"] in failed or row["parent_id"] in failed
        conn.execute(
            "UPDATE backups SET status=?, updated=? WHERE id=?",
            ("error" if bad else "available", ts(now), row["id"]),
        )


def _earlier_backups(ctx: Ctx, row: sqlite3.Row, resource_id: str) -> tuple[int, int]:
    """How many backups of ``resource_id`` the checkpoint's vault held before it, and their
    size in GB."""
    found = ctx.conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(resource_size), 0) FROM backups WHERE vault_id=? "
        "AND resource_id=? AND parent_id IS NULL AND checkpoint_id != ?",
        (row["vault_id"], resource_id, row["id"]),
    ).fetchone()
    return int(found[0]), int(found[1])


def _checkpoint_json(ctx: Ctx, checkpoint_id: str, *, created: bool = False) -> dict[str, Any]:
    """A checkpoint as ShowCheckpoint answers it or, ``created``, as CreateCheckpoint does.

    Both examples of the reference (``创建备份还原点.md``, ``查询备份还原点.md``, and the worked
    example ``示例1-创建弹性云服务器备份.md``) show each resource's ``protect_status``
    ``available`` (also while the checkpoint is ``protecting``) and ``resource_size`` as a
    string. Only CreateCheckpoint's worked example has ``backup_size`` and ``backup_count``
    (``"0"`` and ``"0"``): the sandbox gives there the resource's earlier backups in the vault
    and their size in GB (an assumption on what they count, which gives the example's ``"0"``
    for a first backup), and ShowCheckpoint leaves them out. Assumption: ``protect_status`` is
    ``error`` when the checkpoint ended in ``error``."""
    row = ctx.conn.execute("SELECT * FROM checkpoints WHERE id=?", (checkpoint_id,)).fetchone()
    if row is None:
        raise ApiError(404, CHECKPOINT_NOT_FOUND, f"checkpoint {checkpoint_id} not found")
    vault = ctx.conn.execute("SELECT * FROM vaults WHERE id=?", (row["vault_id"],)).fetchone()
    resources = []
    for r in json.loads(row["resources"]):
        entry: dict[str, Any] = {
            "id": r["id"],
            "name": r["name"],
            "type": r["type"],
            "protect_status": "error" if row["status"] == "error" else "available",
            "resource_size": str(r["resource_size"]),
            "extra_info": None,
        }
        if created:
            count, size = _earlier_backups(ctx, row, r["id"])
            entry["backup_size"] = str(size)
            entry["backup_count"] = str(count)
        resources.append(entry)
    return {
        "id": row["id"],
        "status": row["status"],
        "created_at": api_time(row["created"]),
        "project_id": ctx.sandbox.config.account.project_id,
        "extra_info": {
            "name": row["name"],
            "description": row["description"],
            "retention_duration": row["retention_days"] or -1,
        },
        "vault": {
            "id": row["vault_id"],
            "name": vault["name"] if vault else "",
            "resources": resources,
            "skipped_resources": json.loads(row["skipped"]),
        },
    }


@route("cbr", "GET", P + "/checkpoints/<checkpoint_id>", "ShowCheckpoint")
def show_checkpoint(ctx: Ctx, checkpoint_id: str) -> Reply:
    return 200, {"checkpoint": _checkpoint_json(ctx, checkpoint_id)}


def _backup_name(ctx: Ctx, row: sqlite3.Row) -> tuple[str, str | None]:
    """A backup's ``name`` and ``description``. A top-level backup carries the checkpoint's
    ``parameters.name`` and ``description`` (ShowBackup's example: ``backup_name``,
    ``backup_description``, as sent to CreateCheckpoint); without a name, ``manualbk_`` and four
    hex digits (an assumption: the reference shows no unnamed manual backup). A disk backup of
    a server backup is named ``autobk_<4 hex>_<disk name>`` with no description, as the
    example's child is (``autobk_a843_ecs-1f0f-0002``: an assumption that every child is named
    so)."""
    if row["parent_id"] is not None:
        return f"autobk_{row['id'][:4]}_{row['resource_name']}", None
    cp = ctx.conn.execute(
        "SELECT name, description FROM checkpoints WHERE id=?", (row["checkpoint_id"],)
    ).fetchone()
    name = cp["name"] if cp is not None and cp["name"] else f"manualbk_{row['id'][:4]}"
    return name, cp["description"] if cp is not None else None


def _backup_json(ctx: Ctx, row: sqlite3.Row, *, children: bool = False) -> dict[str, Any]:
    """A ``BackupResp``. ``children`` (ShowBackup): a server backup lists its disk backups, as
    ShowBackup's example does; otherwise (ListBackups) ``children`` is ``[]``, as both backups of
    ListBackups' example show, one of them a server backup. Times have no zone and microseconds
    (``2019-05-10T07:59:12.084695``), as in every CBR example."""
    kids = (
        [
            _backup_json(ctx, c)
            for c in ctx.conn.execute(
                "SELECT * FROM backups WHERE parent_id=? ORDER BY system_disk DESC, id",
                (row["id"],),
            )
        ]
        if children
        else []
    )
    name, description = _backup_name(ctx, row)
    return {
        "id": row["id"],
        "checkpoint_id": row["checkpoint_id"],
        "vault_id": row["vault_id"],
        "parent_id": row["parent_id"],
        "resource_id": row["resource_id"],
        "resource_type": row["resource_type"],
        "resource_name": row["resource_name"],
        "resource_size": row["resource_size"],
        "resource_az": "cn-north-4a",
        "status": row["status"],
        "name": name,
        "description": description,
        "created_at": api_time(row["created"]),
        "updated_at": api_time(row["updated"]),
        "expired_at": api_time(row["expired_at"]),
        "image_type": "backup",
        "incremental": False,
        "project_id": ctx.sandbox.config.account.project_id,
        "extend_info": {
            "bootable": bool(row["bootable"]),
            "system_disk": bool(row["system_disk"]),
            "snapshot_id": row["snapshot_id"],
        },
        "children": kids,
    }


@route("cbr", "GET", P + "/backups", "ListBackups")
def list_backups(ctx: Ctx) -> Reply:
    offset, limit = ctx.page(1000, 1000)
    rows = list(ctx.conn.execute("SELECT * FROM backups ORDER BY created, id"))
    parent = ctx.query("parent_id")
    rows = (
        [r for r in rows if r["parent_id"] == parent]
        if parent
        else [r for r in rows if r["parent_id"] is None]
    )
    for key in ("checkpoint_id", "resource_id", "vault_id", "status", "resource_type"):
        value = ctx.query(key)
        if value:
            rows = [r for r in rows if r[key] == value]
    return 200, {
        "backups": [_backup_json(ctx, r) for r in paged(rows, offset, limit)],
        "count": len(rows),
        "offset": offset,
        "limit": limit,
    }


@route("cbr", "GET", P + "/backups/<backup_id>", "ShowBackup")
def show_backup(ctx: Ctx, backup_id: str) -> Reply:
    row = ctx.conn.execute("SELECT * FROM backups WHERE id=?", (backup_id,)).fetchone()
    if row is None:
        raise ApiError(404, BACKUP_NOT_FOUND, f"backup {backup_id} not found")
    return 200, {"backup": _backup_json(ctx, row, children=True)}


@route("cbr", "DELETE", P + "/backups/<backup_id>", "DeleteBackup")
def delete_backup(ctx: Ctx, backup_id: str) -> Reply:
    row = ctx.conn.execute("SELECT * FROM backups WHERE id=?", (backup_id,)).fetchone()
    if row is None:
        raise ApiError(404, BACKUP_NOT_FOUND, f"backup {backup_id} not found")
    if row["status"] not in ("available", "error"):
        raise ctx.bad(f"backup {backup_id} is {row['status']} and cannot be deleted now")
    ctx.conn.execute(
        "UPDATE backups SET status='deleting', updated=? WHERE id=? OR parent_id=?",
        (ts(ctx.now), backup_id, backup_id),
    )
    schedule(
        ctx.conn,
        ctx.now,
        timedelta(seconds=ctx.sandbox.config.durations.delete_snapshot),
        "cbr.backup_gone",
        backup_id=backup_id,
        root=str(ctx.sandbox.data_dir),
    )
    return 204, None


@timer("cbr.backup_gone")
def _backup_gone(conn: sqlite3.Connection, p: dict[str, Any], now: datetime) -> None:
    ids = [p["backup_id"]] + [
        r["id"] for r in conn.execute("SELECT id FROM backups WHERE parent_id=?", (p["backup_id"],))
    ]
    for bid in ids:
        conn.execute("DELETE FROM backups WHERE id=?", (bid,))
        shutil.rmtree(backup_dir(Path(p["root"]), bid), ignore_errors=True)


# -- vaults ----------------------------------------------------------------------------------


def _live_type(conn: sqlite3.Connection, resource_id: str) -> str | None:
    """``OS::Nova::Server`` or ``OS::Cinder::Volume`` for a live server or disk, else None."""
    if conn.execute("SELECT 1 FROM servers WHERE id=? AND deleted=0", (resource_id,)).fetchone():
        return SERVER_TYPE
    if conn.execute("SELECT 1 FROM volumes WHERE id=? AND deleted=0", (resource_id,)).fetchone():
        return VOLUME_TYPE
    return None


def _admit(ctx: Ctx, vault_id: str, resource_ids: list[str]) -> None:
    """Refuse a checkpoint of a live resource of another type than the vault's, or not bound
    to it (bind it when the vault auto-binds), or one that would not fit; resources that do not
    exist are left to be skipped."""
    conn = ctx.conn
    v = vaults.vault(conn, vault_id)
    assert v is not None
    needed = 0
    for rid in dict.fromkeys(resource_ids):
        actual = _live_type(conn, rid)
        if actual is None:
            continue
        if actual != v.resource_type:
            raise ApiError(
                400,
                TYPE_MISMATCH,
                f"resource {rid} ({actual}) does not match vault {vault_id}, a "
                f"{v.object_type} vault",
            )
        holder = vaults.vault_holding(conn, rid)
        if holder != vault_id:
            if holder is None and v.auto_bind:
                vaults.bind(conn, vault_id, rid, actual, ctx.now)
            else:
                where = f"it is in vault {holder}" if holder else "add it first (AddVaultResource)"
                raise ApiError(
                    400, NOT_IN_VAULT, f"resource {rid} is not in vault {vault_id}: {where}"
                )
        needed += vaults.resource_size_gb(conn, rid) or 0
    used = vaults.used_gb(conn, vault_id)
    if used + needed > v.size_gb:
        raise ApiError(
            400,
            VAULT_FULL,
            f"vault {vault_id} ({v.name}) has {used} GB of {v.size_gb} GB used; the backup "
            f"needs {needed} GB: the vault's used capacity would exceed its total capacity",
        )


def _vault_row(ctx: Ctx, vault_id: str) -> vaults.Vault:
    v = vaults.vault(ctx.conn, vault_id)
    if v is None:
        raise ApiError(404, VAULT_NOT_FOUND, f"vault {vault_id} not found")
    return v


def _vault_json(ctx: Ctx, v: vaults.Vault) -> dict[str, Any]:
    conn = ctx.conn
    resources = []
    allocated = 0
    for r in vaults.bound(conn, v.id):
        size = vaults.resource_size_gb(conn, r["resource_id"]) or 0
        allocated += size
        backups = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(resource_size), 0) FROM backups WHERE vault_id=? "
            "AND resource_id=? AND parent_id IS NULL",
            (v.id, r["resource_id"]),
        ).fetchone()
        name = conn.execute(
            "SELECT name FROM servers WHERE id=? UNION ALL SELECT name FROM volumes WHERE id=?",
            (r["resource_id"], r["resource_id"]),
        ).fetchone()
        resources.append(
            {
                "id": r["resource_id"],
                "name": name[0] if name else r["resource_id"],
                "type": r["resource_type"],
                "protect_status": "available",
                "size": size,
                "backup_size": int(backups[1]),
                "backup_count": int(backups[0]),
                "extra_info": {},
                "auto_protect": False,
            }
        )
    account = ctx.sandbox.config.account
    return {
        "id": v.id,
        "name": v.name,
        "description": "",
        "project_id": account.project_id,
        "provider_id": None,
        "resources": resources,
        "tags": [],
        "enterprise_project_id": "0",
        "auto_bind": v.auto_bind,
        "bind_rules": {"tags": []},
        "user_id": None,
        "created_at": api_time(v.created),
        "auto_expand": False,
        "smn_notify": True,
        "threshold": 80,
        "locked": False,
        "billing": {
            "allocated": allocated,
            "charging_mode": v.charging_mode,
            "cloud_type": "public",
            "consistent_level": "crash_consistent",
            "object_type": v.object_type,
            "order_id": None,
            "product_id": None,
            "protect_type": "backup",
            "size": v.size_gb,
            "spec_code": vaults.SPEC_CODES.get(v.object_type),
            "status": v.status,
            "storage_unit": None,
            "used": vaults.used_gb(conn, v.id) * vaults.MB_PER_GB,
            "frozen_scene": None,
            "is_multi_az": False,
        },
    }


@route("cbr", "GET", P + "/vaults/<vault_id>", "ShowVault")
def show_vault(ctx: Ctx, vault_id: str) -> Reply:
    return 200, {"vault": _vault_json(ctx, _vault_row(ctx, vault_id))}


@route("cbr", "GET", P + "/vaults", "ListVault")
def list_vault(ctx: Ctx) -> Reply:
    offset, limit = ctx.page(1000, 1000)
    rows = vaults.all_vaults(ctx.conn)
    ids = ctx.query("id")
    if ids:
        wanted = set(ids.split(","))
        rows = [v for v in rows if v.id in wanted]
    for key in ("name", "object_type", "status"):
        value = ctx.query(key)
        if value:
            rows = [v for v in rows if getattr(v, key) == value]
    holding = ctx.query("resource_ids")
    if holding:
        wanted = set(holding.split(","))
        rows = [
            v for v in rows if wanted & {r["resource_id"] for r in vaults.bound(ctx.conn, v.id)}
        ]
    return 200, {
        "vaults": [_vault_json(ctx, v) for v in paged(rows, offset, limit)],
        "count": len(rows),
        "limit": limit,
        "offset": offset,
    }


@route("cbr", "POST", P + "/vaults/<vault_id>/addresources", "AddVaultResource")
def add_vault_resource(ctx: Ctx, vault_id: str) -> Reply:
    v = _vault_row(ctx, vault_id)
    wanted = ctx.body().get("resources")
    if not isinstance(wanted, list) or not wanted:
        raise ctx.bad("resources must list the resources to add")
    added: list[str] = []
    for r in wanted:
        if not isinstance(r, dict) or not isinstance(r.get("id"), str) or not r["id"]:
            raise ctx.bad("each resource needs an id")
        if r.get("type") not in (SERVER_TYPE, VOLUME_TYPE):
            raise ctx.bad(f"resource {r['id']}: type must be {SERVER_TYPE} or {VOLUME_TYPE}")
        rid = r["id"]
        actual = _live_type(ctx.conn, rid)
        if actual is None:
            raise ApiError(400, NO_RESOURCE, f"resource {rid} does not exist: nothing to back up")
        if actual != r["type"] or actual != v.resource_type:
            raise ApiError(
                400,
                TYPE_MISMATCH,
                f"resource {rid} ({actual}) cannot be added to vault {vault_id}, a "
                f"{v.object_type} vault",
            )
        holder = vaults.vault_holding(ctx.conn, rid)
        if holder == vault_id or rid in added:
            raise ApiError(
                400, ALREADY_IN_VAULT[actual], f"resource {rid} is already in vault {vault_id}"
            )
        if holder is not None:
            raise ApiError(400, IN_OTHER_VAULT, f"resource {rid} is already in vault {holder}")
        vaults.bind(ctx.conn, vault_id, rid, actual, ctx.now)
        added.append(rid)
    return 200, {"add_resource_ids": added}


@route("cbr", "POST", P + "/vaults/<vault_id>/removeresources", "RemoveVaultResource")
def remove_vault_resource(ctx: Ctx, vault_id: str) -> Reply:
    """Unbind resources; their backups in the vault are deleted with them, as the reference
    says (they show ``deleting``, then are gone, as after DeleteBackup)."""
    _vault_row(ctx, vault_id)
    ids = ctx.body().get("resource_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise ctx.bad("resource_ids must list 1 to 256 resource ids")
    if len(ids) > 256:
        raise ctx.bad(f"resource_ids lists {len(ids)} ids: at most 256")
    bound = {r["resource_id"] for r in vaults.bound(ctx.conn, vault_id)}
    for rid in ids:
        if rid not in bound:
            raise ApiError(400, NOT_IN_VAULT, f"resource {rid} is not in vault {vault_id}")
    removed = list(dict.fromkeys(ids))
    for rid in removed:
        ctx.conn.execute(
            "DELETE FROM vault_resources WHERE vault_id=? AND resource_id=?", (vault_id, rid)
        )
        backups = ctx.conn.execute(
            "SELECT id FROM backups WHERE vault_id=? AND resource_id=? AND parent_id IS NULL "
            "AND status != 'deleting'",
            (vault_id, rid),
        ).fetchall()
        for b in backups:
            ctx.conn.execute(
                "UPDATE backups SET status='deleting', updated=? WHERE id=? OR parent_id=?",
                (ts(ctx.now), b["id"], b["id"]),
            )
            schedule(
                ctx.conn,
                ctx.now,
                timedelta(seconds=ctx.sandbox.config.durations.delete_snapshot),
                "cbr.backup_gone",
                backup_id=b["id"],
                root=str(ctx.sandbox.data_dir),
            )
    return 200, {"remove_resource_ids": removed}
