"""Unsubscribing (CancelResourcesSubscription): the checks, the refund order and its lines, the
5-day quota, closing the subscriptions and the queued release of the resource (R17, R21).

One unsubscribe order is created per main resource, with ``base_order_id`` the purchase order.
Every refund figure comes from :mod:`teardown.adapters.huawei.refunds`; this module only records
it. A resource in an order still ``processing`` is refused with the transaction-in-progress code
(R4), one in an order pending payment with the pending-order code (R3).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from teardown.adapters.huawei.refunds import (
    RefundQuote,
    quote_renewal_unsubscribe,
    quote_unsubscribe,
)
from teardown.adapters.huawei.rules import (
    BLOCKER_CODES,
    BillingRules,
    RuleRefusal,
    Subscription,
    expire_policy_code,
    refusal_for,
    renewal_refusal_for,
)
from teardown.sandbox.billing.orders import insert_line, insert_order
from teardown.sandbox.billing.queries import billing_subscription, quota_used, subscription_row
from teardown.sandbox.billing.schema import (
    CLOSED,
    COMPLETED,
    FEE_QUERY_CODE,
    GONE_CODE,
    IP_TYPE,
    NOT_FOUND_CODE,
    RULES,
    SANDBOX_FAULTS,
    UNSUBSCRIBE,
    VM_TYPE,
    new_order_id,
)
from teardown.sandbox.http import ApiError
from teardown.sandbox.resources import delete_volume, release_eip, release_server
from teardown.sandbox.store import parse_ts, schedule, timer, ts


def check_unsubscribable(conn: sqlite3.Connection, resource_id: str) -> sqlite3.Row:
    """The main subscription row of ``resource_id``, or the ApiError BSS returns."""
    row = subscription_row(conn, resource_id)
    if row is None:
        exists = conn.execute(
            "SELECT deleted FROM servers WHERE id=? "
            "UNION ALL SELECT deleted FROM volumes WHERE id=? "
            "UNION ALL SELECT deleted FROM eips WHERE id=?",
            (resource_id, resource_id, resource_id),
        ).fetchone()
        if exists is not None:
            raise ApiError(
                400,
                GONE_CODE,
                f"resource {resource_id} has been deleted or is not billed yearly/monthly",
            )
        raise ApiError(400, NOT_FOUND_CODE, f"resource {resource_id} does not exist")
    if row["status"] == CLOSED:
        raise ApiError(400, GONE_CODE, f"resource {resource_id} has already been unsubscribed")
    if not row["is_main"]:
        code, message = BLOCKER_CODES["as_a_whole"]
        raise ApiError(
            400, code, f"{resource_id} is bound to {row['parent_resource_id']}: {message}"
        )
    return row


def unsubscribe(
    conn: sqlite3.Connection,
    resource_id: str,
    unsubscribe_type: int,
    now: datetime,
    *,
    customer_id: str,
    data_root: Path,
    release_after: timedelta,
    rules: BillingRules = RULES,
) -> str:
    """Unsubscribe one main resource (type 1: release it; type 2: only its future renewals).

    Records the unsubscribe order, its refund lines and quota use; type 1 closes the main resource
    and its bound children and queues the release. Returns the unsubscribe order id. Raises
    ApiError with the rules' code when refused (the caller's transaction then rolls back).
    """
    row = check_unsubscribable(conn, resource_id)
    for fault in json.loads(row["blockers"]):
        if fault in SANDBOX_FAULTS:
            code, message = SANDBOX_FAULTS[fault]
            raise ApiError(400, code, f"{resource_id}: {message}")
    sub = billing_subscription(conn, row)
    quote = _quote(conn, sub, unsubscribe_type, now, rules)
    oid = _record_refund(conn, row, sub, quote, now, customer_id)
    refunded = (
        [p.order_id for p in sub.payments]
        if unsubscribe_type == 1
        else [p.order_id for p in sub.payments if p.effective > now]
    )
    for base in refunded:
        conn.execute(
            "UPDATE payments SET refund_order_id=? WHERE resource_id=? AND order_id=?",
            (oid, resource_id, base),
        )
    if unsubscribe_type == 1:
        _close_and_release(conn, row, sub, quote, oid, now, data_root, release_after)
    else:
        _drop_renewals(conn, row, sub, now)
    return oid


def _quote(
    conn: sqlite3.Connection,
    sub: Subscription,
    unsubscribe_type: int,
    now: datetime,
    rules: BillingRules,
) -> RefundQuote:
    """What unsubscribing returns and costs under the published rules, or their refusal; a fee
    that cannot be worked out from the ledger is ``CBC.99006066`` (查询费用信息错误)."""
    try:
        if unsubscribe_type == 1:
            return quote_unsubscribe(sub, now, quota_used(conn, now), rules)
        refusal = refusal_for(sub) or renewal_refusal_for(sub)
        if refusal is not None:
            raise refusal
        return quote_renewal_unsubscribe(sub, now)
    except RuleRefusal as e:
        raise ApiError(400, e.code, f"{sub.resource_id}: {e.message}") from None
    except ValueError as e:
        raise ApiError(
            400, FEE_QUERY_CODE, f"{sub.resource_id}: the fee information could not be queried: {e}"
        ) from None


def _close_and_release(
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    sub: Subscription,
    quote: RefundQuote,
    order_id: str,
    now: datetime,
    data_root: Path,
    release_after: timedelta,
) -> None:
    """Type 1: close the resource and its bound children, count the 5-day quota if used, and
    queue the release of the resource."""
    resource_id = row["resource_id"]
    for rid in (resource_id, *sub.bound_children):
        conn.execute(
            "UPDATE subscriptions SET status=?, auto_renew=0, expire_policy=?, "
            "update_time=? WHERE resource_id=?",
            (CLOSED, expire_policy_code(False), ts(now), rid),
        )
    if quote.uses_quota:
        conn.execute(
            "INSERT INTO five_day_refunds(used_at, resource_id, order_id) VALUES (?,?,?)",
            (now.isoformat(), resource_id, order_id),
        )
    kind = {VM_TYPE: "server", IP_TYPE: "eip"}.get(row["resource_type_code"], "volume")
    conn.execute(
        "INSERT INTO releases(resource_id, kind, order_id, due_at) VALUES (?,?,?,?)",
        (resource_id, kind, order_id, ts(now + release_after)),
    )
    schedule(
        conn,
        now,
        release_after,
        "bss.release",
        resource_id=resource_id,
        what=kind,
        order_id=order_id,
        data_root=str(data_root),
    )


def _drop_renewals(
    conn: sqlite3.Connection, row: sqlite3.Row, sub: Subscription, now: datetime
) -> None:
    """Type 2: the resource and its children now expire when the period in force ends."""
    kept = [p.expires for p in sub.payments if p.effective <= now]
    expires = ts(max(kept)) if kept else row["expire_time"]
    for rid in (row["resource_id"], *sub.bound_children):
        conn.execute(
            "UPDATE subscriptions SET expire_time=?, update_time=? WHERE resource_id=?",
            (expires, ts(now), rid),
        )


def _record_refund(
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    sub: Subscription,
    quote: RefundQuote,
    now: datetime,
    customer_id: str,
) -> str:
    """The completed unsubscribe order, its line and its refund lines; returns the order id."""
    oid = new_order_id()
    insert_order(
        conn,
        order_id=oid,
        customer_id=customer_id,
        service=row["service_type_code"],
        order_type=UNSUBSCRIBE,
        status=COMPLETED,
        created=now,
        resource_ids=[row["resource_id"], *sub.bound_children],
        cash=quote.refund,
        official=quote.paid,
        coupon=quote.coupons_returned,
        commission=quote.fee,
        consumed=quote.consumed,
        base_order_id=row["order_id"],
    )
    insert_line(
        conn,
        oid,
        row["resource_id"],
        row["service_type_code"],
        spec=row["resource_spec_code"] or "",
        period=row["period"],
        periods=None,
        effective=now,
        expires=parse_ts(row["expire_time"]),
        cash=quote.refund,
        coupon=quote.coupons_returned,
        commission=quote.fee,
        consumed=quote.consumed,
    )
    _insert_refund_lines(conn, oid, row, quote)
    return oid


def _insert_refund_lines(
    conn: sqlite3.Connection, order_id: str, row: sqlite3.Row, quote: RefundQuote
) -> None:
    """One ``refund_lines`` row per line of the quote (ShowRefundOrderDetails reads them)."""
    for line in quote.lines:
        conn.execute(
            "INSERT INTO refund_lines(id, order_id, resource_id, amount, base_order_id, kind, "
            "service_type_code, resource_type_code) VALUES (?,?,?,?,?,?,?,?)",
            (
                uuid.uuid4().hex,
                order_id,
                row["resource_id"],
                str(line.amount),
                line.base_order_id,
                line.kind,
                row["service_type_code"],
                row["resource_type_code"],
            ),
        )


@timer("bss.release")
def _release(conn: sqlite3.Connection, p: dict[str, Any], now: datetime) -> None:
    """The queued release of an unsubscribed resource (R17, R21)."""
    rid, root = p["resource_id"], Path(p["data_root"])
    if p["what"] == "server":
        live = conn.execute("SELECT 1 FROM servers WHERE id=? AND deleted=0", (rid,)).fetchone()
        if live:
            release_server(conn, rid, now, root)
    elif p["what"] == "eip":  # released even if still bound: it leaves the server's addresses
        release_eip(conn, rid, now)
    else:
        live = conn.execute("SELECT 1 FROM volumes WHERE id=? AND deleted=0", (rid,)).fetchone()
        if live:
            delete_volume(conn, rid, now, root)
    conn.execute(
        "UPDATE releases SET released_at=? WHERE resource_id=? AND order_id=?",
        (ts(now), rid, p["order_id"]),
    )
