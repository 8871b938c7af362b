"""BSS (v2, global): orders, yearly/monthly resources, unsubscription, auto-renew and refunds.

Operations: ListCustomerOrders, ShowCustomerOrderDetails, CancelCustomerOrder,
CancelResourcesSubscription, CancelAutoRenewalResources, AutoRenewalResources,
UpdatePeriodToOnDemand, ListPayPerUseCustomerResources (path spelt ``suscriptions``, as the real
API) and ShowRefundOrderDetails. State and rules live in :mod:`teardown.sandbox.billing`; every
refund figure comes from :mod:`teardown.adapters.huawei.refunds`. The operations, codes and rules
(R1..R28) are listed with their public sources in docs/huawei-api.md.

Fidelity notes (docs/huawei-api.md, "BSS"): an order line's ``commercial_resource`` is the resource
*type* code (``hws.resource.type.vm``), never a resource id; the resources of an order are what
``ListPayPerUseCustomerResources`` with ``order_id`` returns; a 折扣券 is ``discount_type`` "300";
CancelCustomerOrder answers 204 with no body; an unexpected failure of a handler is HTTP 500
``CBC.0999`` (other error).

Assumptions where the published API reference is silent:

- An unknown order id (details, cancel, refund details) is HTTP 400 ``CBC.0100``.
- ``ListPayPerUseCustomerResources(order_id=X)`` returns the provisioned yearly/monthly resources
  X bought, renewed (paid or pending), changed or converts, with their bound children; an order
  that provisioned nothing yet (a pending purchase) has none.
- A combined order (组合交易) is listed by ListCustomerOrders instead of its sub-orders, with
  ``sub_order_infos``; its details list the sub-orders' lines; cancelling a sub-order is
  ``CBC.99000089``, cancelling the combined order cancels them all.
- ``indirect_partner_id`` is for a distributor: a customer's request with it is HTTP 403
  ``CBC.0151`` (access denied).
- Cancelling (or the expiry of) a ``to_period`` order lifts the ECS lock it holds.
- Unsubscribing a bound child (a server's system disk) is refused with ``CBC.99003185`` ("must be
  handled as a whole"); a resource BSS never billed, or already unsubscribed, is ``CBC.30000067``;
  an id nobody knows is ``CBC.99003012``.
- A batch is all or nothing: the first refused id fails the whole call (``fail_resource_infos``
  is documented as reserved and is always empty).
- ``limit`` is 1..100 for orders and order lines, 1..500 for the resource query.
- ListCustomerOrders returns newest first unless ``order_by=createTime``.
- Refund details list money, consumption and fee lines only; returned 代金券 show as the order's
  ``coupon_amount``, so ``-sum(negative amounts) == amount_after_discount`` holds.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from teardown.adapters.huawei.refunds import LineKind
from teardown.sandbox import billing
from teardown.sandbox.billing import D
from teardown.sandbox.billing.orders import lift_locks
from teardown.sandbox.billing.schema import (
    ACCESS_DENIED_CODE,
    COMBINED_ORDER_CODE,
    OTHER_ERROR_CODE,
)
from teardown.sandbox.http import ApiError, Ctx, Reply, paged, route
from teardown.sandbox.store import parse_ts

P = "/v2/orders"
NOT_CANCELLABLE = "CBC.99005010"
NOT_A_REFUND_ORDER = "CBC.99005026"

_SERVICE_NAMES = {
    billing.ECS_SERVICE: "Elastic Cloud Server",
    billing.EVS_SERVICE: "Elastic Volume Service",
    billing.VPC_SERVICE: "Virtual Private Cloud",
}
_RESOURCE_NAMES = {
    billing.VM_TYPE: "Cloud server",
    billing.VOLUME_TYPE: "Disk",
    billing.IP_TYPE: "Elastic IP",
}
_SERVICE_RESOURCE_TYPES = {
    billing.ECS_SERVICE: billing.VM_TYPE,
    billing.EVS_SERVICE: billing.VOLUME_TYPE,
    billing.VPC_SERVICE: billing.IP_TYPE,
}
"""The resource type an order line of a service is for, when the line's resource is unknown."""
DISCOUNT_COUPON_TYPE = "300"
"""``DiscountItemV2.discount_type`` of a 折扣券 (the SDK's docstring: 300 促销折扣券)."""


def _bss(method: str, path: str, operation: str) -> Callable[[Any], Any]:
    """``route`` for the BSS service: a handler's unexpected failure is what every BSS API page
    lists for HTTP 500, ``CBC.0999`` (其他错误, other error), not a generic code."""

    def register(fn: Any) -> Any:
        @functools.wraps(fn)
        def guarded(ctx: Ctx, **kwargs: Any) -> Reply:
            try:
                return fn(ctx, **kwargs)  # type: ignore[no-any-return]
            except ApiError:
                raise
            except Exception as e:
                raise ApiError(
                    500, OTHER_ERROR_CODE, f"other error: {type(e).__name__}: {e}"
                ) from None

        route("bss", method, path, operation)(guarded)
        return fn

    return register


# -- helpers ---------------------------------------------------------------------------------


def _time(ctx: Ctx, name: str, value: object) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ctx.bad(f"{name} must be a UTC time yyyy-MM-ddTHH:mm:ssZ")
    try:
        return parse_ts(value)
    except ValueError:
        raise ctx.bad(f"{name} must be a UTC time yyyy-MM-ddTHH:mm:ssZ") from None


def _window(ctx: Ctx, prefix: str) -> tuple[datetime | None, datetime | None]:
    begin = _time(ctx, prefix + "_begin", ctx.query(prefix + "_begin"))
    end = _time(ctx, prefix + "_end", ctx.query(prefix + "_end"))
    if begin and end and end - begin > timedelta(days=366):
        raise ctx.bad(f"{prefix}_begin and {prefix}_end may be at most one year apart")
    return begin, end


def _within(value: str | None, begin: datetime | None, end: datetime | None) -> bool:
    if begin is None and end is None:
        return True
    if value is None:
        return False
    t = parse_ts(value)
    return (begin is None or t >= begin) and (end is None or t <= end)


def _amount_info(row: sqlite3.Row) -> dict[str, Any]:
    unsubscribe = row["order_type"] == billing.UNSUBSCRIBE
    discount = D(row["discount_coupon"])
    promotion = D(row["promotion"])
    discounts = (
        [{"discount_type": DISCOUNT_COUPON_TYPE, "discount_amount": discount}] if discount else []
    )
    if promotion:  # 200: 促销产品折扣, a promotional product discount (DiscountItemV2)
        discounts.append({"discount_type": "200", "discount_amount": promotion})
    return {
        "discounts": discounts,
        "coupon_amount": D(row["coupon"]),
        "flexipurchase_coupon_amount": D(row["flexi_coupon"]),
        "stored_card_amount": D(row["stored_card"]),
        "commission_amount": D(row["commission"]) if unsubscribe else None,
        "consumed_amount": D(row["consumed"]) if unsubscribe else None,
    }


def _order_json(
    row: sqlite3.Row, *, details: bool = False, subs: list[sqlite3.Row] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "order_id": row["id"],
        "customer_id": row["customer_id"],
        "service_type_code": row["service_type_code"],
        "service_type_name": _SERVICE_NAMES.get(row["service_type_code"], ""),
        "source_type": 1,
        "status": row["status"],
        "order_type": row["order_type"],
        "amount_after_discount": D(row["amount_after_discount"]),
        "official_amount": D(row["official_amount"]),
        "measure_id": row["measure_id"],
        "create_time": row["create_time"],
        "payment_time": row["payment_time"],
        "currency": row["currency"],
        "contract_id": None,
        "amount_info": _amount_info(row),
    }
    if details:
        out["user_name"] = "sandbox"
        out["pending_payment_end_time"] = row["pending_payment_end_time"]
    if subs:
        out["sub_order_infos"] = [_order_json(x, details=details) for x in subs]
    return out


def _sub_orders(conn: sqlite3.Connection, order_id: str) -> list[sqlite3.Row]:
    """The sub-orders of a combined order (none for any other order)."""
    return list(
        conn.execute("SELECT * FROM orders WHERE combined_id=? ORDER BY rowid", (order_id,))
    )


def _line_type(conn: sqlite3.Connection, row: sqlite3.Row) -> str:
    """The resource *type* code of an order line (``OrderLineItemEntityV2.commercial_resource``:
    "商务归属的资源类型编码", e.g. ``hws.resource.type.vm``)."""
    if row["resource_id"]:
        found = conn.execute(
            "SELECT resource_type_code FROM subscriptions WHERE resource_id=?",
            (row["resource_id"],),
        ).fetchone()
        if found is not None:
            return str(found[0])
    return _SERVICE_RESOURCE_TYPES.get(row["service_type_code"], "")


def _line_json(row: sqlite3.Row, order_type: int, resource_type: str) -> dict[str, Any]:
    unsubscribe = order_type == billing.UNSUBSCRIBE
    return {
        "order_line_item_id": row["id"],
        "order_id": row["order_id"],
        "service_type_code": row["service_type_code"],
        "service_type_name": _SERVICE_NAMES.get(row["service_type_code"], ""),
        "product_id": row["product_id"],
        "product_spec_desc": row["product_spec_desc"],
        "period_type": row["period_type"],
        "period_num": None if unsubscribe else row["period_num"],
        "effective_time": row["effective_time"],
        "expire_time": row["expire_time"],
        "subscription_num": row["subscription_num"],
        "amount_after_discount": D(row["amount_after_discount"]),
        "official_amount": D(row["official_amount"]),
        "amount_info": {
            "discounts": [],
            "coupon_amount": D(row["coupon"]),
            "flexipurchase_coupon_amount": D(row["flexi_coupon"]),
            "stored_card_amount": D(row["stored_card"]),
            "commission_amount": D(row["commission"]) if unsubscribe else None,
            "consumed_amount": D(row["consumed"]) if unsubscribe else None,
        },
        "currency": "CNY",
        "category_code": row["service_type_code"],
        "product_owner_service": row["service_type_code"],
        "commercial_resource": resource_type,
    }


def _order_row(ctx: Ctx, order_id: str) -> sqlite3.Row:
    row = ctx.conn.execute("SELECT * FROM orders WHERE id=?", (order_id,)).fetchone()
    if row is None:
        raise ctx.bad(f"order {order_id} does not exist")
    return row  # type: ignore[no-any-return]


def _int_field(ctx: Ctx, body: dict[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ctx.bad(f"{name} must be an integer {lo}..{hi}")
    return value


# -- orders ----------------------------------------------------------------------------------


@_bss("GET", P + "/customer-orders", "ListCustomerOrders")
def list_customer_orders(ctx: Ctx) -> Reply:
    if ctx.query("indirect_partner_id"):
        raise ApiError(
            403,
            ACCESS_DENIED_CODE,
            "access denied: indirect_partner_id is for a distributor, not a customer",
        )
    offset, limit = ctx.page(10, 100)
    order_by = (ctx.query("order_by") or "-createTime").lower()
    if order_by not in ("createtime", "-createtime"):
        raise ctx.bad("order_by must be createTime or -createTime")
    created = _window(ctx, "create_time")
    paid = _window(ctx, "payment_time")
    rows = list(
        ctx.conn.execute("SELECT * FROM orders WHERE combined_id IS NULL ORDER BY create_time, id")
    )
    if order_by.startswith("-"):
        rows.reverse()
    order_id = ctx.query("order_id")
    if order_id:
        rows = [r for r in rows if r["id"].lower() == order_id.lower()]
    service = ctx.query("service_type_code")
    if service:
        rows = [r for r in rows if r["service_type_code"].lower() == service.lower()]
    for name in ("status", "order_type"):
        if ctx.query(name):
            wanted = ctx.query_int(name, 0)
            rows = [r for r in rows if r[name] == wanted]
    rows = [
        r for r in rows if _within(r["create_time"], *created) and _within(r["payment_time"], *paid)
    ]
    return 200, {
        "total_count": len(rows),
        "order_infos": [
            _order_json(r, subs=_sub_orders(ctx.conn, r["id"])) for r in paged(rows, offset, limit)
        ],
    }


@_bss("GET", P + "/customer-orders/details/<order_id>", "ShowCustomerOrderDetails")
def show_customer_order_details(ctx: Ctx, order_id: str) -> Reply:
    offset, limit = ctx.page(10, 100)
    row = _order_row(ctx, order_id)
    subs = _sub_orders(ctx.conn, row["id"])
    lines = [
        x
        for oid in [row["id"], *(s["id"] for s in subs)]
        for x in ctx.conn.execute(
            "SELECT * FROM order_lines WHERE order_id=? ORDER BY rowid", (oid,)
        )
    ]
    return 200, {
        "total_count": len(lines),
        "order_info": _order_json(row, details=True, subs=subs),
        "order_line_items": [
            _line_json(x, row["order_type"], _line_type(ctx.conn, x))
            for x in paged(lines, offset, limit)
        ],
    }


@_bss("PUT", P + "/customer-orders/cancel", "CancelCustomerOrder")
def cancel_customer_order(ctx: Ctx) -> Reply:
    """Cancel an order pending payment (R1): HTTP 204 with no body (``api_order_00017``'s
    example). A sub-order of a combined order is ``CBC.99000089``; the combined order is
    cancelled with all its sub-orders."""
    order_id = ctx.body().get("order_id")
    if not isinstance(order_id, str) or not order_id:
        raise ctx.bad("order_id is required")
    row = _order_row(ctx, order_id)
    if row["combined_id"]:
        raise ApiError(
            400,
            COMBINED_ORDER_CODE,
            f"order {order_id} is part of the combined order {row['combined_id']}: cancel that "
            "one (当前订单号不能操作,请使用组合交易单号操作)",
        )
    if row["status"] != billing.PENDING_PAYMENT:
        raise ApiError(
            400,
            NOT_CANCELLABLE,
            f"order {order_id} has status {row['status']}: only orders pending payment (6) "
            "can be cancelled (R1)",
        )
    ids = [order_id, *(s["id"] for s in _sub_orders(ctx.conn, order_id))]
    for oid in ids:
        ctx.conn.execute(
            "UPDATE orders SET status=? WHERE id=? AND status=?",
            (billing.CANCELLED, oid, billing.PENDING_PAYMENT),
        )
    lift_locks(ctx.conn, ids)
    return 204, None


# -- unsubscription and refunds --------------------------------------------------------------


@_bss("POST", P + "/subscriptions/resources/unsubscribe", "CancelResourcesSubscription")
def cancel_resources_subscription(ctx: Ctx) -> Reply:
    body = ctx.body()
    ids = body.get("resource_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise ctx.bad("resource_ids must list 1 to 10 resource ids")
    if len(ids) > 10:
        raise ctx.bad(f"resource_ids lists {len(ids)} ids: at most 10 per call")
    if len(set(ids)) != len(ids):
        raise ctx.bad("resource_ids lists an id twice")
    kind = body.get("unsubscribe_type")
    if kind not in (1, 2) or isinstance(kind, bool):
        raise ctx.bad("unsubscribe_type must be 1 (resource and renewals) or 2 (renewals only)")
    if body.get("unsubscribe_reason_type") is not None:
        _int_field(ctx, body, "unsubscribe_reason_type", 5, 1, 5)
    reason = body.get("unsubscribe_reason")
    if reason is not None and not isinstance(reason, str):
        raise ctx.bad("unsubscribe_reason must be a string")
    config = ctx.sandbox.config
    order_ids = [
        billing.unsubscribe(
            ctx.conn,
            rid,
            kind,
            ctx.now,
            customer_id=config.account.customer_id,
            data_root=ctx.sandbox.data_dir,
            release_after=timedelta(seconds=config.durations.release),
        )
        for rid in ids
    ]
    return 200, {"order_ids": order_ids, "fail_resource_infos": []}


@_bss("GET", P + "/customer-orders/refund-orders", "ShowRefundOrderDetails")
def show_refund_order_details(ctx: Ctx) -> Reply:
    order_id = ctx.query("order_id")
    if not order_id:
        raise ctx.bad("order_id is required")
    row = _order_row(ctx, order_id)
    if row["order_type"] != billing.UNSUBSCRIBE:
        raise ApiError(
            400,
            NOT_A_REFUND_ORDER,
            f"order {order_id} is not an unsubscribe or downgrade order",
        )
    lines = ctx.conn.execute(
        "SELECT * FROM refund_lines WHERE order_id=? AND kind!=? ORDER BY rowid",
        (order_id, LineKind.COUPON_RETURNED.value),
    ).fetchall()
    account = ctx.sandbox.config.account
    infos = [
        {
            "id": x["id"],
            "amount": Decimal(x["amount"]),
            "measure_id": "1",
            "customer_id": account.customer_id,
            "resource_type_code": x["resource_type_code"],
            "service_type_code": x["service_type_code"],
            "resource_type_name": _RESOURCE_NAMES.get(x["resource_type_code"], ""),
            "service_type_name": _SERVICE_NAMES.get(x["service_type_code"], ""),
            "region_code": account.region,
            "base_order_id": x["base_order_id"],
        }
        for x in lines
    ]
    return 200, {"total_count": len(infos), "refund_infos": infos}


# -- auto-renew ------------------------------------------------------------------------------

AUTORENEW = P + "/subscriptions/resources/autorenew/<resource_id>"


@_bss("DELETE", AUTORENEW, "CancelAutoRenewalResources")
def cancel_auto_renewal(ctx: Ctx, resource_id: str) -> Reply:
    billing.set_auto_renew(ctx.conn, resource_id, False, ctx.now)
    return 200, None


@_bss("POST", AUTORENEW, "AutoRenewalResources")
def auto_renewal(ctx: Ctx, resource_id: str) -> Reply:
    body = ctx.body()
    times = _int_field(ctx, body, "auto_renew_times", 0, 0, 99)
    period_type = body.get("period_type")
    if period_type is not None and period_type not in ("MONTH", "YEAR"):
        raise ctx.bad("period_type must be MONTH or YEAR")
    billing.set_auto_renew(
        ctx.conn, resource_id, True, ctx.now, times=times, period_type=period_type
    )
    return 200, None


@_bss("POST", P + "/subscriptions/resources/to-on-demand", "UpdatePeriodToOnDemand")
def update_period_to_on_demand(ctx: Ctx) -> Reply:
    """SET_UP or CANCEL "switch to pay-per-use at expiry" (``api_order_00024``): at most 100
    main resource ids; ids left unchanged are listed in ``error_details`` (HTTP 200)."""
    body = ctx.body()
    operation = body.get("operation")
    if operation not in ("SET_UP", "CANCEL"):
        raise ctx.bad("operation must be SET_UP or CANCEL")
    ids = body.get("resource_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise ctx.bad("resource_ids must list 1 to 100 resource ids")
    if len(ids) > 100:
        raise ctx.bad(f"resource_ids lists {len(ids)} ids: at most 100 per call")
    on = operation == "SET_UP"
    errors = billing.set_to_pay_per_use(ctx.conn, list(dict.fromkeys(ids)), on, ctx.now)
    return 200, {"error_details": errors}


# -- yearly/monthly resources ----------------------------------------------------------------


def _instance_json(ctx: Ctx, row: sqlite3.Row) -> dict[str, Any]:
    account = ctx.sandbox.config.account
    size = None
    if row["resource_type_code"] == billing.VOLUME_TYPE:
        vol = ctx.conn.execute("SELECT size FROM volumes WHERE id=?", (row["resource_id"],))
        found = vol.fetchone()
        size = Decimal(found[0]) if found else None
    return {
        "id": "inst-" + row["resource_id"],
        "resource_id": row["resource_id"],
        "resource_name": row["resource_name"],
        "region_code": row["region"] or account.region,
        "service_type_code": row["service_type_code"],
        "resource_type_code": row["resource_type_code"],
        "resource_type_name": _RESOURCE_NAMES.get(row["resource_type_code"], ""),
        "service_type_name": _SERVICE_NAMES.get(row["service_type_code"], ""),
        "resource_spec_code": row["resource_spec_code"],
        "project_id": account.project_id if row["region"] is None else None,
        "product_id": "OFFI" + row["order_id"][2:12],
        "parent_resource_id": row["parent_resource_id"],
        "is_main_resource": row["is_main"],
        "status": billing.current_status(row, ctx.now),
        "effective_time": row["effective_time"],
        "expire_time": row["expire_time"],
        "expire_policy": row["expire_policy"],
        "product_spec_desc": row["resource_spec_code"],
        "spec_size": size,
        "spec_size_measure_id": 17 if size is not None else None,
        "update_time": row["update_time"],
        "enterprise_project": {"id": "0", "name": "default"},
    }


@_bss("POST", P + "/suscriptions/resources/query", "ListPayPerUseCustomerResources")
def list_pay_per_use_customer_resources(ctx: Ctx) -> Reply:
    body = ctx.body()
    ids = body.get("resource_ids")
    if ids is not None and (
        not isinstance(ids, list) or len(ids) > 50 or not all(isinstance(i, str) for i in ids)
    ):
        raise ctx.bad("resource_ids must list at most 50 resource ids")
    only_main = _int_field(ctx, body, "only_main_resource", 0, 0, 1)
    offset = _int_field(ctx, body, "offset", 0, 0, 1 << 31)
    limit = _int_field(ctx, body, "limit", 10, 1, 500)
    statuses = body.get("status_list") or []
    if not isinstance(statuses, list) or not all(s in (2, 3, 4, 5) for s in statuses):
        raise ctx.bad("status_list may hold only 2, 3, 4 and 5")
    service = body.get("service_type_code")
    if service is not None and (not isinstance(service, str) or not service):
        raise ctx.bad("service_type_code must not be an empty string")
    order_id = body.get("order_id")
    if order_id is not None and not isinstance(order_id, str):
        raise ctx.bad("order_id must be a string")
    begin = _time(ctx, "expire_time_begin", body.get("expire_time_begin"))
    end = _time(ctx, "expire_time_end", body.get("expire_time_end"))
    rows = list(
        ctx.conn.execute(
            "SELECT * FROM subscriptions "
            "ORDER BY effective_time, COALESCE(parent_resource_id, resource_id), is_main DESC, "
            "resource_id"
        )
    )
    if ids:
        wanted = set(ids)
        rows = [
            r
            for r in rows
            if r["resource_id"] in wanted or (not only_main and r["parent_resource_id"] in wanted)
        ]
    if only_main:
        rows = [r for r in rows if r["is_main"]]
    if order_id:
        touched = _order_resources(ctx.conn, order_id)
        rows = [
            r
            for r in rows
            if r["resource_id"] in touched or (not only_main and r["parent_resource_id"] in touched)
        ]
    if service:
        rows = [r for r in rows if r["service_type_code"] == service]
    if statuses:
        rows = [r for r in rows if billing.current_status(r, ctx.now) in statuses]
    rows = [r for r in rows if _within(r["expire_time"], begin, end)]
    return 200, {
        "total_count": len(rows),
        "data": [_instance_json(ctx, r) for r in paged(rows, offset, limit)],
    }


def _order_resources(conn: sqlite3.Connection, order_id: str) -> set[str]:
    """The resource ids "under" an order (``QueryResourcesReq.order_id``: 查询指定订单下的资源):
    what it (or, for a combined order, its sub-orders) bought, paid a renewal of, or names as
    the ledger records it. Only provisioned yearly/monthly resources are ever returned."""
    found: set[str] = set()
    for oid in [order_id, *(s["id"] for s in _sub_orders(conn, order_id))]:
        for sql in (
            "SELECT resource_id FROM subscriptions WHERE order_id=?",
            "SELECT resource_id FROM payments WHERE order_id=?",
        ):
            found.update(str(r[0]) for r in conn.execute(sql, (oid,)))
        row = conn.execute("SELECT resource_ids FROM orders WHERE id=?", (oid,)).fetchone()
        if row is not None:
            found.update(json.loads(row["resource_ids"]))
    return found


__all__ = ["NOT_A_REFUND_ORDER", "NOT_CANCELLABLE"]
