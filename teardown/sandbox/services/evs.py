"""EVS: ListVolumes, ShowVolume, DeleteVolume, CreateSnapshot, ShowSnapshot, ListSnapshots,
DeleteSnapshot, and ShowJob (on its own listener: the path collides with ECS's).

A missing volume or snapshot is HTTP 404 ``EVS.5404`` (the EVS error-code table). DeleteVolume
refuses a yearly/monthly disk with 400 ``EVS.1035`` and a disk whose status is not one of
``available``, ``error``, ``error_extending``, ``error_restoring``, ``error_rollbacking`` (an
attached disk is ``in-use``) with 400 ``EVS.1046``; otherwise it answers 200 with a ``job_id``
(job type ``deleteVolume``; ShowJob says ``INIT``, then ``RUNNING``, then ``SUCCESS``, as ECS
jobs do), the disk shows ``deleting`` until the job succeeds, then it is gone with its files and
its snapshots (R22).

Times (a disk's ``created_at``, ``updated_at``, ``attached_at``, a snapshot's) are UTC with no
zone and microseconds, as the EVS reference shows them (``2016-05-25T02:42:10.856332``); a disk's
``bootable`` is the string ``"true"`` or ``"false"``.

Assumptions (codes docs/huawei-api.md does not list): snapshotting an in-use disk without
``force`` is HTTP 400 ``EVS.2067``; when a disk is both yearly/monthly and attached,
DeleteVolume answers ``EVS.1035``.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from teardown.sandbox.http import ApiError, Ctx, Reply, paged, route
from teardown.sandbox.resources import (
    INIT_SECONDS,
    api_time,
    delete_volume,
    volume_json,
    volume_row,
)
from teardown.sandbox.store import dumps, new_id, schedule, timer, ts

NOT_FOUND = "EVS.5404"
FORCE_NEEDED = "EVS.2067"
PERIODIC_VOLUME = "EVS.1035"
BAD_STATUS_FOR_DELETE = "EVS.1046"
DELETABLE = frozenset(
    {"available", "error", "error_extending", "error_restoring", "error_rollbacking"}
)
"""Disk statuses DeleteVolume accepts (the EVS error-code table, ``EVS.1046``)."""
P = "/v2/<project_id>"


@route("evs", "GET", P + "/cloudvolumes/detail", "ListVolumes")
def list_volumes(ctx: Ctx) -> Reply:
    offset, limit = ctx.page(1000, 1000)
    rows = list(ctx.conn.execute("SELECT * FROM volumes WHERE deleted=0 ORDER BY created, id"))
    for key, column in (("server_id", "server_id"), ("status", "status"), ("id", "id")):
        value = ctx.query(key)
        if value:
            rows = [r for r in rows if r[column] == value]
    name = ctx.query("name")
    if name:
        rows = [r for r in rows if name in r["name"]]
    ids = ctx.request.args.getlist("ids")
    if ids:
        wanted = {i.strip(" []'\"") for raw in ids for i in raw.split(",")}
        rows = [r for r in rows if r["id"] in wanted]
    return 200, {
        "count": len(rows),
        "volumes": [volume_json(r, ctx.sandbox.data_dir) for r in paged(rows, offset, limit)],
        "volumes_links": [],
    }


@route("evs", "GET", P + "/cloudvolumes/<volume_id>", "ShowVolume")
def show_volume(ctx: Ctx, volume_id: str) -> Reply:
    return 200, {"volume": volume_json(volume_row(ctx.conn, volume_id), ctx.sandbox.data_dir)}


@route("evs", "DELETE", P + "/cloudvolumes/<volume_id>", "DeleteVolume")
def delete_volume_api(ctx: Ctx, volume_id: str) -> Reply:
    row = volume_row(ctx.conn, volume_id)
    if row["order_id"] or row["charging_mode"] == "prePaid":
        raise ApiError(400, PERIODIC_VOLUME, "periodic volume can not be deleted!")
    if row["status"] not in DELETABLE:
        raise ApiError(
            400,
            BAD_STATUS_FOR_DELETE,
            "volume status must be available, error, error_extending, error_restoring, "
            "error_rollbacking when delete volume!",
        )
    job_id = new_id()
    entities = {
        "volume_id": row["id"],
        "name": row["name"],
        "size": row["size"],
        "volume_type": row["volume_type"],
    }
    ctx.conn.execute(
        "INSERT INTO jobs(id, service, job_type, status, begin_time, entities) "
        "VALUES (?, 'evs', 'deleteVolume', 'INIT', ?, ?)",
        (job_id, ts(ctx.now), dumps(entities)),
    )
    duration = ctx.sandbox.config.durations.delete_volume
    started = timedelta(seconds=min(INIT_SECONDS, max(duration, 0.0) / 4))
    schedule(ctx.conn, ctx.now, started, "evs.job_started", job_id=job_id)
    ctx.conn.execute(
        "UPDATE volumes SET status='deleting', updated=? WHERE id=?", (ts(ctx.now), row["id"])
    )
    schedule(
        ctx.conn,
        ctx.now,
        timedelta(seconds=duration),
        "evs.volume_deleted",
        job_id=job_id,
        volume_id=row["id"],
        data_root=str(ctx.sandbox.data_dir),
    )
    return 200, {"job_id": job_id}


@timer("evs.job_started")
def _job_started(conn: sqlite3.Connection, p: dict[str, Any], now: datetime) -> None:
    conn.execute("UPDATE jobs SET status='RUNNING' WHERE id=? AND status='INIT'", (p["job_id"],))


@timer("evs.volume_deleted")
def _volume_deleted(conn: sqlite3.Connection, p: dict[str, Any], now: datetime) -> None:
    delete_volume(conn, p["volume_id"], now, Path(p["data_root"]))
    conn.execute("UPDATE jobs SET status='SUCCESS', end_time=? WHERE id=?", (ts(now), p["job_id"]))


def snapshot_json(row: sqlite3.Row, project_id: str) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "status": row["status"],
        "volume_id": row["volume_id"],
        "size": row["size"],
        "metadata": json.loads(row["metadata"]),
        "created_at": api_time(row["created"]),
        "updated_at": api_time(row["updated"]),
        "os-extended-snapshot-attributes:project_id": project_id,
        "os-extended-snapshot-attributes:progress": "100%"
        if row["status"] == "available"
        else "0%",
    }


def _snapshot_row(ctx: Ctx, snapshot_id: str) -> sqlite3.Row:
    row = ctx.conn.execute("SELECT * FROM snapshots WHERE id=?", (snapshot_id,)).fetchone()
    if row is None:
        raise ApiError(404, NOT_FOUND, f"snapshot {snapshot_id} could not be found")
    return row  # type: ignore[no-any-return]


@route("evs", "POST", P + "/cloudsnapshots", "CreateSnapshot")
def create_snapshot(ctx: Ctx) -> Reply:
    spec = ctx.body().get("snapshot")
    if not isinstance(spec, dict) or not isinstance(spec.get("volume_id"), str):
        raise ctx.bad("snapshot.volume_id is required")
    name = spec.get("name") or "snapshot-" + ctx.now.strftime("%Y%m%d%H%M%S")
    if not isinstance(name, str) or len(name.encode()) > 255:
        raise ctx.bad("snapshot.name must be a string of at most 255 bytes")
    if name.startswith("autobk_snapshot_"):
        raise ctx.bad("snapshot names starting with autobk_snapshot_ are reserved for CBR")
    description = spec.get("description")
    if description is not None and (
        not isinstance(description, str) or len(description.encode()) > 255
    ):
        raise ctx.bad("snapshot.description must be a string of at most 255 bytes")
    metadata = spec.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ctx.bad("snapshot.metadata must be an object")
    volume = volume_row(ctx.conn, spec["volume_id"])
    if volume["status"] == "in-use" and spec.get("force") is not True:
        raise ApiError(400, FORCE_NEEDED, "the disk is in use: set force=true to snapshot it")
    sid = new_id()
    ctx.conn.execute(
        "INSERT INTO snapshots(id, volume_id, name, description, status, size, metadata, "
        "created, updated) VALUES (?, ?, ?, ?, 'creating', ?, ?, ?, ?)",
        (
            sid,
            volume["id"],
            name,
            description,
            volume["size"],
            dumps(metadata),
            ts(ctx.now),
            ts(ctx.now),
        ),
    )
    faults = ctx.sandbox.config.faults
    bad = volume["id"] in faults.snapshot_error or volume["server_id"] in faults.snapshot_error
    schedule(
        ctx.conn,
        ctx.now,
        timedelta(seconds=ctx.sandbox.config.durations.snapshot),
        "evs.snapshot_done",
        snapshot_id=sid,
        status="error" if bad else "available",
    )
    row = _snapshot_row(ctx, sid)
    return 202, {"snapshot": snapshot_json(row, ctx.sandbox.config.account.project_id)}


@timer("evs.snapshot_done")
def _snapshot_done(conn: sqlite3.Connection, p: dict[str, Any], now: datetime) -> None:
    conn.execute(
        "UPDATE snapshots SET status=?, updated=? WHERE id=? AND status='creating'",
        (p["status"], ts(now), p["snapshot_id"]),
    )


@route("evs", "GET", P + "/cloudsnapshots/detail", "ListSnapshots")
def list_snapshots(ctx: Ctx) -> Reply:
    offset, limit = ctx.page(1000, 1000)
    rows = list(ctx.conn.execute("SELECT * FROM snapshots ORDER BY created, id"))
    for key in ("volume_id", "status", "id"):
        value = ctx.query(key)
        if value:
            rows = [r for r in rows if r[key] == value]
    name = ctx.query("name")
    if name:
        rows = [r for r in rows if r["name"] == name]
    project = ctx.sandbox.config.account.project_id
    return 200, {
        "count": len(rows),
        "snapshots": [snapshot_json(r, project) for r in paged(rows, offset, limit)],
        "snapshots_links": [],
    }


@route("evs", "GET", P + "/cloudsnapshots/<snapshot_id>", "ShowSnapshot")
def show_snapshot(ctx: Ctx, snapshot_id: str) -> Reply:
    row = _snapshot_row(ctx, snapshot_id)
    return 200, {"snapshot": snapshot_json(row, ctx.sandbox.config.account.project_id)}


@route("evs", "DELETE", P + "/cloudsnapshots/<snapshot_id>", "DeleteSnapshot")
def delete_snapshot(ctx: Ctx, snapshot_id: str) -> Reply:
    row = _snapshot_row(ctx, snapshot_id)
    if row["status"] not in ("available", "error"):
        raise ctx.bad(f"snapshot {snapshot_id} is {row['status']} and cannot be deleted now")
    ctx.conn.execute(
        "UPDATE snapshots SET status='deleting', updated=? WHERE id=?", (ts(ctx.now), snapshot_id)
    )
    schedule(
        ctx.conn,
        ctx.now,
        timedelta(seconds=ctx.sandbox.config.durations.delete_snapshot),
        "evs.snapshot_gone",
        snapshot_id=snapshot_id,
    )
    return 202, None


@timer("evs.snapshot_gone")
def _snapshot_gone(conn: sqlite3.Connection, p: dict[str, Any], now: datetime) -> None:
    conn.execute("DELETE FROM snapshots WHERE id=?", (p["snapshot_id"],))


@route("evs", "GET", "/v1/<project_id>/jobs/<job_id>", "ShowJob")
def show_job(ctx: Ctx, job_id: str) -> Reply:
    row = ctx.conn.execute("SELECT * FROM jobs WHERE id=? AND service='evs'", (job_id,)).fetchone()
    if row is None:
        raise ApiError(404, NOT_FOUND, f"job {job_id} not found")
    entities = json.loads(row["entities"])
    return 200, {
        "job_id": row["id"],
        "job_type": row["job_type"],
        "status": row["status"],
        "begin_time": row["begin_time"],
        "end_time": row["end_time"],
        "error_code": row["error_code"],
        "fail_reason": row["fail_reason"],
        "entities": entities,
    }
