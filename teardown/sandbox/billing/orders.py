"""Order rows: writing an order and its line items, and the timers that move an order on.

A pending-payment order is cancelled 7 days after creation (R2); a processing order completes 10
minutes after creation (R4). Cancelling a pending order on request is the BSS service's
CancelCustomerOrder.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from teardown.sandbox.billing.schema import CANCELLED, COMPLETED, PENDING_PAYMENT, PROCESSING
from teardown.sandbox.store import schedule, timer, ts

PENDING_VALIDITY = timedelta(days=7)
"""R2: a pending order for a normal cloud service is cancelled after 7 days."""
PROCESSING_TIME = timedelta(minutes=10)
"""R4: a processing order usually completes within about 10 minutes."""


def insert_order(
    conn: sqlite3.Connection,
    *,
    order_id: str,
    customer_id: str,
    service: str,
    order_type: int,
    status: int,
    created: datetime,
    resource_ids: list[str],
    cash: Decimal = Decimal(0),
    official: Decimal | None = None,
    coupon: Decimal = Decimal(0),
    flexi_coupon: Decimal = Decimal(0),
    stored_card: Decimal = Decimal(0),
    discount_coupon: Decimal = Decimal(0),
    commission: Decimal = Decimal(0),
    consumed: Decimal = Decimal(0),
    base_order_id: str | None = None,
    promotion: Decimal = Decimal(0),
    region: str | None = None,
    combined_id: str | None = None,
) -> None:
    """One ``orders`` row; ``official`` defaults to everything paid, in cash or otherwise,
    plus the promotional discount. ``region`` None is the sandbox account's region;
    ``combined_id`` makes the order a sub-order of that combined order."""
    if official is None:
        official = cash + coupon + flexi_coupon + stored_card + discount_coupon + promotion
    pending_end = ts(created + PENDING_VALIDITY) if status == PENDING_PAYMENT else None
    paid_at = ts(created) if status == COMPLETED else None
    conn.execute(
        "INSERT INTO orders(id, customer_id, service_type_code, order_type, status, "
        "amount_after_discount, official_amount, coupon, flexi_coupon, stored_card, "
        "discount_coupon, commission, consumed, create_time, payment_time, "
        "pending_payment_end_time, base_order_id, resource_ids, promotion, region, combined_id) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            order_id,
            customer_id,
            service,
            order_type,
            status,
            str(cash),
            str(official),
            str(coupon),
            str(flexi_coupon),
            str(stored_card),
            str(discount_coupon),
            str(commission),
            str(consumed),
            ts(created),
            paid_at,
            pending_end,
            base_order_id,
            json.dumps(resource_ids),
            str(promotion),
            region,
            combined_id,
        ),
    )


def insert_line(
    conn: sqlite3.Connection,
    order_id: str,
    resource_id: str | None,
    service: str,
    *,
    spec: str,
    period: str,
    periods: int | None,
    effective: datetime | None,
    expires: datetime | None,
    cash: Decimal = Decimal(0),
    coupon: Decimal = Decimal(0),
    flexi_coupon: Decimal = Decimal(0),
    stored_card: Decimal = Decimal(0),
    discount_coupon: Decimal = Decimal(0),
    commission: Decimal = Decimal(0),
    consumed: Decimal = Decimal(0),
) -> None:
    """One ``order_lines`` row of ``order_id``."""
    conn.execute(
        "INSERT INTO order_lines(id, order_id, resource_id, service_type_code, product_id, "
        "product_spec_desc, period_type, period_num, effective_time, expire_time, "
        "amount_after_discount, official_amount, coupon, flexi_coupon, stored_card, "
        "discount_coupon, commission, consumed) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            uuid.uuid4().hex,
            order_id,
            resource_id,
            service,
            "OFFI" + uuid.uuid4().hex[:12].upper(),
            spec,
            3 if period == "year" else 2,
            periods,
            ts(effective) if effective else None,
            ts(expires) if expires else None,
            str(cash),
            str(cash + coupon + flexi_coupon + stored_card + discount_coupon),
            str(coupon),
            str(flexi_coupon),
            str(stored_card),
            str(discount_coupon),
            str(commission),
            str(consumed),
        ),
    )


def schedule_order_progress(
    conn: sqlite3.Connection, order_id: str, status: int, created: datetime, now: datetime
) -> None:
    """Queue what happens on its own to an order created with ``status`` (R2, R4)."""
    if status == PENDING_PAYMENT:
        schedule(conn, now, created + PENDING_VALIDITY - now, "bss.order_expired", order=order_id)
    elif status == PROCESSING:
        schedule(conn, now, created + PROCESSING_TIME - now, "bss.order_processed", order=order_id)


def lift_locks(conn: sqlite3.Connection, order_ids: list[str]) -> None:
    """A cancelled conversion order (按需转包年/包月) no longer locks its server: the ECS lock
    whose ``lockSourceId`` is one of ``order_ids`` is lifted (ECS checks a lock against
    ``lockCheckEndpoint`` and removes one that is no longer valid)."""
    for oid in order_ids:
        conn.execute(
            "UPDATE servers SET locked=0, lock_source_id=NULL, lock_scene=NULL "
            "WHERE lock_source_id=? AND lock_scene='TO_PERIOD_LOCK'",
            (oid,),
        )


@timer("bss.order_expired")
def _order_expired(conn: sqlite3.Connection, p: dict[str, Any], now: datetime) -> None:
    """R2: an order still pending payment after its validity is cancelled (a combined order
    with its sub-orders), and the lock it held lifted."""
    ids = [p["order"]] + [
        str(r[0]) for r in conn.execute("SELECT id FROM orders WHERE combined_id=?", (p["order"],))
    ]
    for oid in ids:
        cur = conn.execute(
            "UPDATE orders SET status=? WHERE id=? AND status=?",
            (CANCELLED, oid, PENDING_PAYMENT),
        )
        if cur.rowcount:
            lift_locks(conn, [oid])


@timer("bss.order_processed")
def _order_processed(conn: sqlite3.Connection, p: dict[str, Any], now: datetime) -> None:
    """R4: a processing order completes."""
    conn.execute(
        "UPDATE orders SET status=?, payment_time=? WHERE id=? AND status=?",
        (COMPLETED, ts(now), p["order"], PROCESSING),
    )
