"""ECS: ListServersDetails, ShowServer, DeleteServers, BatchStopServers, ShowJob.

DeleteServers' ``delete_publicip``: ``true`` releases the pay-per-use EIPs bound to the server,
``false`` only unbinds them (they stay, ``DOWN``, and keep billing), unset follows each EIP's
``delete_on_termination`` (false for every scenario EIP). Assumption: a yearly/monthly EIP is
only unbound, even with ``true`` (the reference says nothing of them; ``delete_on_termination``
is documented for pay-per-use EIPs only, and DeletePublicip refuses yearly/monthly ones).

Assumption: DeleteServers on a prepaid server is refused with HTTP 400 ``Ecs.0219``. The API
reference ("Deleting ECSs", https://support.huaweicloud.com/intl/en-us/api-ecs/ecs_02_0103.html)
says only that "only ECSs billed in the pay-per-use mode can be deleted" and names no error code.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from teardown.sandbox.http import ApiError, Ctx, Reply, paged, route
from teardown.sandbox.resources import remove_server, server_json, server_row, server_tags
from teardown.sandbox.store import dumps, new_id, schedule, timer, ts

PREPAID_DELETE_CODE = "Ecs.0219"
JOB_FAIL_CODE = "Ecs.0001"
P = "/v1/<project_id>"


@route("ecs", "GET", P + "/cloudservers/detail", "ListServersDetails")
def list_servers(ctx: Ctx) -> Reply:
    limit = ctx.query_int("limit", 25)
    page = ctx.query_int("offset", 1)
    if not 1 <= limit <= 1000 or page < 1:
        raise ctx.bad("limit must be 1..1000 and offset (a page number) at least 1")
    rows = list(ctx.conn.execute("SELECT * FROM servers WHERE deleted=0 ORDER BY created, id"))
    ids = ctx.query("server_id")
    if ids:
        wanted = set(ids.split(","))
        rows = [r for r in rows if r["id"] in wanted]
    else:
        name, status = ctx.query("name"), ctx.query("status")
        if name:
            rows = [r for r in rows if name in r["name"]]
        if status:
            rows = [r for r in rows if r["status"] == status]
        tags, not_tags = ctx.query("tags"), ctx.query("not-tags")
        root = ctx.sandbox.data_dir
        if tags:
            need = set(tags.split(","))
            rows = [r for r in rows if need <= set(server_tags(ctx.conn, r, root))]
        if not_tags:
            avoid = set(not_tags.split(","))
            rows = [r for r in rows if not avoid & set(server_tags(ctx.conn, r, root))]
    page_rows = paged(rows, (page - 1) * limit, limit)
    return 200, {
        "count": len(rows),
        "servers": [server_json(ctx.conn, r, ctx.sandbox.data_dir) for r in page_rows],
    }


@route("ecs", "GET", P + "/cloudservers/<server_id>", "ShowServer")
def show_server(ctx: Ctx, server_id: str) -> Reply:
    row = server_row(ctx.conn, server_id)
    return 200, {"server": server_json(ctx.conn, row, ctx.sandbox.data_dir)}


def _server_ids(ctx: Ctx, items: object) -> list[str]:
    if not isinstance(items, list) or not items or len(items) > 1000:
        raise ctx.bad("servers must list 1 to 1000 servers")
    ids = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise ctx.bad("each server must be an object with an id")
        ids.append(item["id"])
    return ids


def _new_job(ctx: Ctx, job_type: str, ids: list[str]) -> str:
    job_id = new_id()
    sub_jobs = [
        {
            "job_id": new_id(),
            "job_type": job_type + "VM",
            "status": "RUNNING",
            "begin_time": ts(ctx.now),
            "entities": {"server_id": sid},
        }
        for sid in ids
    ]
    ctx.conn.execute(
        "INSERT INTO jobs(id, service, job_type, status, begin_time, entities) "
        "VALUES (?, 'ecs', ?, 'RUNNING', ?, ?)",
        (
            job_id,
            job_type + "Servers",
            ts(ctx.now),
            dumps({"sub_jobs_total": len(ids), "sub_jobs": sub_jobs}),
        ),
    )
    return job_id


@route("ecs", "POST", P + "/cloudservers/delete", "DeleteServers")
def delete_servers(ctx: Ctx) -> Reply:
    body = ctx.body()
    ids = _server_ids(ctx, body.get("servers"))
    for key in ("delete_volume", "delete_publicip"):
        if body.get(key) is not None and not isinstance(body.get(key), bool):
            raise ctx.bad(f"{key} must be a boolean")
    for sid in ids:
        row = server_row(ctx.conn, sid)
        if row["charging_mode"] == "1":
            raise ApiError(
                400,
                PREPAID_DELETE_CODE,
                f"server {sid} is billed yearly/monthly and cannot be deleted with this API; "
                "unsubscribe it instead",
            )
    job_id = _new_job(ctx, "delete", ids)
    schedule(
        ctx.conn,
        ctx.now,
        timedelta(seconds=ctx.sandbox.config.durations.delete_server),
        "ecs.job",
        job_id=job_id,
        action="delete",
        delete_volume=bool(body.get("delete_volume")),
        delete_publicip=body.get("delete_publicip"),
        data_root=str(ctx.sandbox.data_dir),
        failing=[s for s in ids if s in ctx.sandbox.config.faults.failing_jobs],
    )
    return 200, {"job_id": job_id}


@route("ecs", "POST", P + "/cloudservers/action", "BatchStopServers")
def batch_stop(ctx: Ctx) -> Reply:
    body = ctx.body()
    stop = body.get("os-stop")
    if not isinstance(stop, dict):
        raise ctx.bad("body must hold an os-stop object")
    if stop.get("type", "SOFT") not in ("SOFT", "HARD"):
        raise ctx.bad("os-stop.type must be SOFT or HARD")
    ids = _server_ids(ctx, stop.get("servers"))
    for sid in ids:
        server_row(ctx.conn, sid)
    job_id = _new_job(ctx, "stop", ids)
    schedule(
        ctx.conn,
        ctx.now,
        timedelta(seconds=ctx.sandbox.config.durations.stop_server),
        "ecs.job",
        job_id=job_id,
        action="stop",
        delete_volume=False,
        data_root=str(ctx.sandbox.data_dir),
        failing=[s for s in ids if s in ctx.sandbox.config.faults.failing_jobs],
    )
    return 200, {"job_id": job_id}


@timer("ecs.job")
def _finish_job(conn: sqlite3.Connection, p: dict[str, Any], now: datetime) -> None:
    row = conn.execute("SELECT entities FROM jobs WHERE id=?", (p["job_id"],)).fetchone()
    entities = json.loads(row["entities"])
    failed = 0
    for sub in entities["sub_jobs"]:
        sid = sub["entities"]["server_id"]
        sub["end_time"] = ts(now)
        exists = conn.execute("SELECT 1 FROM servers WHERE id=? AND deleted=0", (sid,)).fetchone()
        if sid in p["failing"] or not exists:
            failed += 1
            sub["status"] = "FAIL"
            sub["error_code"] = JOB_FAIL_CODE
            sub["fail_reason"] = "injected failure" if exists else "server not found"
            sub["entities"]["errorcode_message"] = sub["fail_reason"]
            continue
        sub["status"] = "SUCCESS"
        if p["action"] == "delete":
            remove_server(
                conn,
                sid,
                now,
                Path(p["data_root"]),
                delete_data_volumes=p["delete_volume"],
                delete_publicip=p.get("delete_publicip", False),
            )
        else:
            conn.execute(
                "UPDATE servers SET status='SHUTOFF', updated=? WHERE id=?", (ts(now), sid)
            )
    status = "FAIL" if failed else "SUCCESS"
    conn.execute(
        "UPDATE jobs SET status=?, end_time=?, error_code=?, fail_reason=?, entities=? WHERE id=?",
        (
            status,
            ts(now),
            JOB_FAIL_CODE if failed else None,
            f"{failed} of {len(entities['sub_jobs'])} sub-jobs failed" if failed else None,
            dumps(entities),
            p["job_id"],
        ),
    )


def job_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "job_id": row["id"],
        "job_type": row["job_type"],
        "status": row["status"],
        "begin_time": row["begin_time"],
        "end_time": row["end_time"],
        "error_code": row["error_code"],
        "fail_reason": row["fail_reason"],
        "entities": json.loads(row["entities"]),
    }


@route("ecs", "GET", P + "/jobs/<job_id>", "ShowJob")
def show_job(ctx: Ctx, job_id: str) -> Reply:
    row = ctx.conn.execute("SELECT * FROM jobs WHERE id=? AND service='ecs'", (job_id,)).fetchone()
    if row is None:
        raise ApiError(404, "Ecs.0200", f"job {job_id} not found")
    return 200, job_json(row)
