"""CBR: CreateCheckpoint, ShowCheckpoint, ListBackups, ShowBackup, DeleteBackup.

A server backup is a parent backup with one child per disk; each child holds a real copy of the
disk's files under ``DIR/cbr/<backup id>``, so a restore can be checked, and it survives the
deletion of its source (R24). The sandbox's vaults accept any server or disk of the account, so
no separate "add to vault" call is needed (a real vault must have the resource bound first).

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

from teardown.sandbox.http import ApiError, Ctx, Reply, paged, route
from teardown.sandbox.resources import volume_data_dir
from teardown.sandbox.store import new_id, schedule, timer, ts

P = "/v3/<project_id>"
NOT_FOUND = "BackupService.6016"
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


@route("cbr", "POST", P + "/checkpoints", "CreateCheckpoint")
def create_checkpoint(ctx: Ctx) -> Reply:
    vault, params, retention = _checkpoint_request(ctx)
    resources = _resources(ctx, params)
    cid = new_id()
    outcome = _Outcome()
    for rid, rtype in resources:
        _back_up(ctx, cid, vault["id"], rid, rtype, retention, outcome)
    if not outcome.done:
        raise ApiError(400, "BackupService.6010", "none of the resources can be backed up")
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
    return 200, {"checkpoint": _checkpoint_json(ctx, cid)}


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
    for key in ("name", "description"):
        if params.get(key) is not None and not isinstance(params[key], str):
            raise ctx.bad(f"parameters.{key} must be a string")
    vault = ctx.conn.execute("SELECT * FROM vaults WHERE id=?", (spec["vault_id"],)).fetchone()
    if vault is None:
        raise ApiError(404, NOT_FOUND, f"vault {spec['vault_id']} not found")
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
            "code": "BackupService.6010",
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


def _checkpoint_json(ctx: Ctx, checkpoint_id: str) -> dict[str, Any]:
    row = ctx.conn.execute("SELECT * FROM checkpoints WHERE id=?", (checkpoint_id,)).fetchone()
    if row is None:
        raise ApiError(404, NOT_FOUND, f"checkpoint {checkpoint_id} not found")
    vault = ctx.conn.execute("SELECT * FROM vaults WHERE id=?", (row["vault_id"],)).fetchone()
    resources = json.loads(row["resources"])
    return {
        "id": row["id"],
        "status": row["status"],
        "created_at": row["created"],
        "project_id": ctx.sandbox.config.account.project_id,
        "extra_info": {
            "name": row["name"],
            "description": row["description"],
            "retention_duration": row["retention_days"] or -1,
        },
        "vault": {
            "id": row["vault_id"],
            "name": vault["name"] if vault else "",
            "resources": [
                {
                    "id": r["id"],
                    "name": r["name"],
                    "type": r["type"],
                    "protect_status": row["status"],
                    "resource_size": str(r["resource_size"]),
                    "backup_size": "0",
                    "backup_count": "1",
                    "extra_info": "{}",
                }
                for r in resources
            ],
            "skipped_resources": json.loads(row["skipped"]),
        },
    }


@route("cbr", "GET", P + "/checkpoints/<checkpoint_id>", "ShowCheckpoint")
def show_checkpoint(ctx: Ctx, checkpoint_id: str) -> Reply:
    return 200, {"checkpoint": _checkpoint_json(ctx, checkpoint_id)}


def _backup_json(ctx: Ctx, row: sqlite3.Row) -> dict[str, Any]:
    children = [
        _backup_json(ctx, c)
        for c in ctx.conn.execute(
            "SELECT * FROM backups WHERE parent_id=? ORDER BY system_disk DESC, id", (row["id"],)
        )
    ]
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
        "name": "manualbk_" + row["id"][:8],
        "created_at": row["created"],
        "updated_at": row["updated"],
        "expired_at": row["expired_at"],
        "image_type": "backup",
        "incremental": False,
        "project_id": ctx.sandbox.config.account.project_id,
        "extend_info": {
            "bootable": bool(row["bootable"]),
            "system_disk": bool(row["system_disk"]),
            "snapshot_id": row["snapshot_id"],
        },
        "children": children,
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
        raise ApiError(404, NOT_FOUND, f"backup {backup_id} not found")
    return 200, {"backup": _backup_json(ctx, row)}


@route("cbr", "DELETE", P + "/backups/<backup_id>", "DeleteBackup")
def delete_backup(ctx: Ctx, backup_id: str) -> Reply:
    row = ctx.conn.execute("SELECT * FROM backups WHERE id=?", (backup_id,)).fetchone()
    if row is None:
        raise ApiError(404, NOT_FOUND, f"backup {backup_id} not found")
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
