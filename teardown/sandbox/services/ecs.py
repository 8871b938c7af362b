"""ECS: ListServersDetails, ShowServer, DeleteServers, BatchStopServers, ShowJob.

DeleteServers' ``delete_publicip``: ``true`` releases the pay-per-use EIPs bound to the server,
``false`` only unbinds them (they stay, ``DOWN``, and keep billing), unset follows each EIP's
``delete_on_termination`` (false for every scenario EIP). Assumption: a yearly/monthly EIP is
only unbound, even with ``true`` (the reference says nothing of them; ``delete_on_termination``
is documented for pay-per-use EIPs only, and DeletePublicip refuses yearly/monthly ones).

DeleteServers refuses, with the ECS error-code table's codes (``huaweicloudDocs/ecs``
``cn.zh-cn/API参考/错误码.md``; https://support.huaweicloud.com/eu/de-de/api-ecs/ecs_07_0002.html),
and changes nothing when one server of the batch is:

- yearly/monthly: HTTP 400 ``Ecs.0513`` "server %s is the cycle order and not be deleted by
  ordinary user" ("普通用户不允许删除包年/包月弹性云服务器"; "仅支持删除按需计费的云服务器", the
  DeleteServers page);
- locked (its metadata's ``lockSource``/``lockSourceId``/``lockScene``, e.g. a pay-per-use server
  held by the order converting it to yearly/monthly): HTTP 400 ``Ecs.0605`` "ECS locked.".
  Assumption: the reference does not say DeleteServers answers ``Ecs.0605`` at once rather than
  in its job; nor which of the two a locked yearly/monthly server gets (``Ecs.0513`` here).

ShowJob ``status`` goes ``INIT`` (for a quarter of the job's duration, at most half a second:
sandbox timing), then ``RUNNING``, then ``SUCCESS`` or ``FAIL``; while a delete (stop) job works
on a server its ``OS-EXT-STS:task_state`` is ``deleting`` (``powering-off``). A failed delete
sub-job carries ``Ecs.0501`` ("Failed to delete the ECS"; assumption: the table gives the code's
meaning, not that the job carries it); one whose server has gone carries ``Ecs.0114``; a failed
stop sub-job ``Ecs.0611`` ("Batch operation failed": an assumption, the table has no stop code).
The job's own ``error_code`` is its first failed sub-job's.
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
    remove_server,
    server_json,
    server_row,
    server_stub,
    server_tags,
)
from teardown.sandbox.store import dumps, new_id, schedule, timer, ts

PREPAID_DELETE_CODE = "Ecs.0513"
"""400: "server %s is the cycle order and not be deleted by ordinary user"."""
LOCKED_CODE = "Ecs.0605"
"""400: "ECS locked." (云服务器被锁定)."""
DELETE_FAIL_CODE = "Ecs.0501"
"""A failed delete sub-job: "Failed to delete the ECS" (删除云服务器失败)."""
STOP_FAIL_CODE = "Ecs.0611"
"""A failed stop sub-job (an assumption): "Batch operation failed" (批量请求操作失败)."""
NOT_FOUND_CODE = "Ecs.0114"
P = "/v1/<project_id>"


def _wanted_ids(ctx: Ctx) -> list[str]:
    """``server_id`` as the SDK sends it (``id1,id2``) or as the reference's example does
    (``server_id=id1&server_id=id2``), in the order given, each once."""
    raw = ctx.request.args.getlist("server_id")
    return list(dict.fromkeys(i.strip() for value in raw for i in value.split(",") if i.strip()))


@route("ecs", "GET", P + "/cloudservers/detail", "ListServersDetails")
def list_servers(ctx: Ctx) -> Reply:
    """``offset`` is a page number: default 1, at least 0, and 0 is the first page as 1 is
    ("if the value is 0, the first page is displayed, which is the same as the value 1");
    ``limit`` default 25, at most 1000.
    With ``server_id`` the other filters are ignored, and an id that does not exist comes back
    as a stub (``server_stub``): the answer holds the servers in the order asked (an assumption)
    and ``count`` counts the stubs too (an assumption)."""
    limit = ctx.query_int("limit", 25)
    page = ctx.query_int("offset", 1)
    if not 1 <= limit <= 1000 or page < 0:
        raise ctx.bad("limit must be 1..1000 and offset (a page number) at least 0")
    page = max(page, 1)
    project = ctx.sandbox.config.account.project_id
    rows = list(ctx.conn.execute("SELECT * FROM servers WHERE deleted=0 ORDER BY created, id"))
    ids = _wanted_ids(ctx)
    if ids:
        by_id = {r["id"]: r for r in rows}
        found = [by_id.get(i) or i for i in ids]
        page_items = paged(found, (page - 1) * limit, limit)
        return 200, {
            "count": len(found),
            "servers": [
                server_json(ctx.conn, r, ctx.sandbox.data_dir, project)
                if not isinstance(r, str)
                else server_stub(r, ctx.now)
                for r in page_items
            ],
        }
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
        "servers": [server_json(ctx.conn, r, root, project) for r in page_rows],
    }


@route("ecs", "GET", P + "/cloudservers/<server_id>", "ShowServer")
def show_server(ctx: Ctx, server_id: str) -> Reply:
    row = server_row(ctx.conn, server_id)
    project = ctx.sandbox.config.account.project_id
    return 200, {"server": server_json(ctx.conn, row, ctx.sandbox.data_dir, project)}


def _server_ids(ctx: Ctx, items: object) -> list[str]:
    if not isinstance(items, list) or not items or len(items) > 1000:
        raise ctx.bad("servers must list 1 to 1000 servers")
    ids = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise ctx.bad("each server must be an object with an id")
        ids.append(item["id"])
    return ids


def _new_job(ctx: Ctx, job_type: str, ids: list[str], duration: float) -> str:
    """A job (and one sub-job per server) in ``INIT``; it is ``RUNNING`` from
    ``min(INIT_SECONDS, duration / 4)`` on."""
    job_id = new_id()
    sub_jobs = [
        {
            "job_id": new_id(),
            "job_type": job_type + "VM",
            "status": "INIT",
            "begin_time": ts(ctx.now),
            "entities": {"server_id": sid},
        }
        for sid in ids
    ]
    ctx.conn.execute(
        "INSERT INTO jobs(id, service, job_type, status, begin_time, entities) "
        "VALUES (?, 'ecs', ?, 'INIT', ?, ?)",
        (
            job_id,
            job_type + "Servers",
            ts(ctx.now),
            dumps({"sub_jobs_total": len(ids), "sub_jobs": sub_jobs}),
        ),
    )
    started = timedelta(seconds=min(INIT_SECONDS, max(duration, 0.0) / 4))
    schedule(ctx.conn, ctx.now, started, "ecs.job_started", job_id=job_id)
    return job_id


@timer("ecs.job_started")
def _job_started(conn: sqlite3.Connection, p: dict[str, Any], now: datetime) -> None:
    row = conn.execute("SELECT status, entities FROM jobs WHERE id=?", (p["job_id"],)).fetchone()
    if row is None or row["status"] != "INIT":
        return
    entities = json.loads(row["entities"])
    for sub in entities["sub_jobs"]:
        if sub["status"] == "INIT":
            sub["status"] = "RUNNING"
    conn.execute(
        "UPDATE jobs SET status='RUNNING', entities=? WHERE id=?", (dumps(entities), p["job_id"])
    )


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
                f"server {sid} is the cycle order and not be deleted by ordinary user",
            )
        if row["locked"]:
            raise ApiError(400, LOCKED_CODE, "ECS locked.")
    duration = ctx.sandbox.config.durations.delete_server
    job_id = _new_job(ctx, "delete", ids, duration)
    schedule(
        ctx.conn,
        ctx.now,
        timedelta(seconds=duration),
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
    duration = ctx.sandbox.config.durations.stop_server
    job_id = _new_job(ctx, "stop", ids, duration)
    schedule(
        ctx.conn,
        ctx.now,
        timedelta(seconds=duration),
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
    failed: list[str] = []
    fail_code = DELETE_FAIL_CODE if p["action"] == "delete" else STOP_FAIL_CODE
    for sub in entities["sub_jobs"]:
        sid = sub["entities"]["server_id"]
        sub["end_time"] = ts(now)
        exists = conn.execute("SELECT 1 FROM servers WHERE id=? AND deleted=0", (sid,)).fetchone()
        if sid in p["failing"] or not exists:
            sub["status"] = "FAIL"
            sub["error_code"] = fail_code if exists else NOT_FOUND_CODE
            sub["fail_reason"] = "injected failure" if exists else "server not found"
            sub["entities"]["errorcode_message"] = sub["fail_reason"]
            failed.append(sub["error_code"])
            continue
        sub["status"] = "SUCCESS"
        sub["error_code"] = sub["fail_reason"] = None
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
            failed[0] if failed else None,
            f"{len(failed)} of {len(entities['sub_jobs'])} sub-jobs failed" if failed else None,
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
