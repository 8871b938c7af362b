"""EIP (v2, on Huawei's VPC endpoint): ListPublicips, ShowPublicip, DeletePublicip.

Shapes are the SDK's ``huaweicloudsdkeip.v2`` models (``PublicipShowResp``); errors use the EIP
API's own body, ``{"code": "VPC.0504", "message": ...}``, and its documented codes: 404
``VPC.0504`` not found, 400 ``VPC.0501`` invalid parameter, 409 ``VPC.0517`` bound to a port
("disassociate it firstly"), 409 ``VPC.0525`` a yearly/monthly EIP ("is billing, can not
delete": unsubscribe it), 409 ``VPC.0512`` busy. See docs/huawei-api.md, section EIP.

Assumptions where the published reference is silent:

- ListPublicips lists EIPs oldest first (then by id); ``marker`` is the id of the last EIP of
  the previous page, and a marker that names no EIP is 400 ``VPC.0501``.
- When an EIP is both yearly/monthly and bound, DeletePublicip answers ``VPC.0525``.
- After DeletePublicip (204) the EIP shows ``PENDING_DELETE`` (a documented status) for
  ``durations.delete_eip`` seconds, then ShowPublicip answers 404.

Elsewhere in the sandbox (assumptions too): a yearly/monthly EIP is billed by BSS as
``hws.resource.type.ip`` under ``hws.service.type.vpc`` and unsubscribing it releases it even
while bound; ECS DeleteServers with ``delete_publicip = true`` only unbinds a yearly/monthly EIP;
an unsubscribed prepaid server leaves its EIPs unbound, still billing.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any

from teardown.sandbox.http import ApiError, Ctx, Reply, paged, route
from teardown.sandbox.resources import eip_json, eip_row, release_eip
from teardown.sandbox.store import schedule, timer, ts

P = "/v1/<project_id>/publicips"
BOUND = "VPC.0517"
PREPAID = "VPC.0525"
BUSY = "VPC.0512"

_FILTERS = (
    ("id", "id"),
    ("port_id", "port_id"),
    ("public_ip_address", "public_ip"),
    ("private_ip_address", "private_ip"),
)
"""Multi-valued query parameters (the SDK sends ``port_id=a&port_id=b``) -> column."""


def _json(ctx: Ctx, row: sqlite3.Row) -> dict[str, Any]:
    account = ctx.sandbox.config.account
    return eip_json(row, account.project_id, account.region)


def _wanted(ctx: Ctx, name: str) -> set[str]:
    """The values of a multi-valued filter (each value may also be comma-separated)."""
    return {v.strip() for raw in ctx.request.args.getlist(name) for v in raw.split(",") if v}


@route("eip", "GET", P, "ListPublicips")
def list_publicips(ctx: Ctx) -> Reply:
    raw_limit = ctx.query("limit")
    limit: int | None = None
    if raw_limit:
        try:
            limit = int(raw_limit)
        except ValueError:
            raise ctx.bad("Invalid limit.") from None
        if limit < 0:
            raise ctx.bad("Invalid limit.")
    rows = list(ctx.conn.execute("SELECT * FROM eips WHERE deleted=0 ORDER BY created, id"))
    if "eip.ListPublicips" not in ctx.sandbox.config.faults.ignore_filters:
        for param, column in _FILTERS:
            wanted = _wanted(ctx, param)
            if wanted:
                rows = [r for r in rows if r[column] in wanted]
        version = ctx.query("ip_version")
        if version and version != "4":
            rows = []  # the sandbox has IPv4 EIPs only
        project = ctx.query("enterprise_project_id")
        if project and project not in ("0", "all_granted_eps"):
            rows = []  # every sandbox EIP is in the default enterprise project "0"
    marker = ctx.query("marker")
    start = 0
    if marker:
        ids = [r["id"] for r in rows]
        if marker not in ids:
            raise ctx.bad(f"Invalid marker {marker}.")
        start = ids.index(marker) + 1
    page = rows[start:] if limit is None else paged(rows, start, limit)
    return 200, {"publicips": [_json(ctx, r) for r in page]}


@route("eip", "GET", P + "/<publicip_id>", "ShowPublicip")
def show_publicip(ctx: Ctx, publicip_id: str) -> Reply:
    return 200, {"publicip": _json(ctx, eip_row(ctx.conn, publicip_id))}


@route("eip", "DELETE", P + "/<publicip_id>", "DeletePublicip")
def delete_publicip(ctx: Ctx, publicip_id: str) -> Reply:
    row = eip_row(ctx.conn, publicip_id)
    if row["order_id"] or row["charging_mode"] == "prePaid":
        raise ApiError(409, PREPAID, "The FloatingIp is billing, can not delete.")
    if row["server_id"] or row["port_id"]:
        raise ApiError(
            409, BOUND, "Floatingip has associated with port, please disassociate it firstly."
        )
    if row["status"] == "PENDING_DELETE":
        raise ApiError(409, BUSY, "Resource status is busy, try it again later.")
    ctx.conn.execute(
        "UPDATE eips SET status='PENDING_DELETE', updated=? WHERE id=?", (ts(ctx.now), row["id"])
    )
    schedule(
        ctx.conn,
        ctx.now,
        timedelta(seconds=ctx.sandbox.config.durations.delete_eip),
        "eip.released",
        eip_id=row["id"],
    )
    return 204, None


@timer("eip.released")
def _released(conn: sqlite3.Connection, p: dict[str, Any], now: datetime) -> None:
    release_eip(conn, p["eip_id"], now)


__all__ = ["BOUND", "BUSY", "PREPAID"]
