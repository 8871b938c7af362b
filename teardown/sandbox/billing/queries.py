"""Reading the ledger: subscriptions, their derived status, the rules' view of one, the 5-day
quota, and everything that is still costing money.

A subscription's ``status`` is derived at read time: 3 once unsubscribed; 4 when frozen; else by
its expiry (R26, R27): 2 before expiry, 5 (expired) in the grace period, 4 in retention, 3 after.
Auto-renew charges are *not* simulated: the ledger reports when the next one would be taken (R25).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from typing import Any

from teardown.adapters.huawei.rules import (
    BillingRules,
    ExpiryPhase,
    Subscription,
    auto_renew_charge_at,
    expiry_phase,
    quota_used_in_year,
)
from teardown.core.billing import Payment
from teardown.sandbox.billing.schema import (
    CLOSED,
    EXPIRED,
    FROZEN,
    IN_USE,
    PENDING_PAYMENT,
    PROCESSING,
    RULES,
    VM_TYPE,
    D,
)
from teardown.sandbox.store import parse_ts, ts


def subscription_row(conn: sqlite3.Connection, resource_id: str) -> sqlite3.Row | None:
    """The ``subscriptions`` row of ``resource_id``, main or child, if BSS bills it."""
    row = conn.execute("SELECT * FROM subscriptions WHERE resource_id=?", (resource_id,))
    return row.fetchone()  # type: ignore[no-any-return]


def children_of(conn: sqlite3.Connection, resource_id: str) -> list[sqlite3.Row]:
    """The subscriptions bound to the main resource ``resource_id``."""
    return list(
        conn.execute(
            "SELECT * FROM subscriptions WHERE parent_resource_id=? ORDER BY resource_id",
            (resource_id,),
        )
    )


def current_status(row: sqlite3.Row, now: datetime, rules: BillingRules = RULES) -> int:
    """BSS status of a subscription at ``now`` (see the module docstring)."""
    if row["status"] == CLOSED:
        return CLOSED
    if "frozen" in json.loads(row["blockers"]):
        return FROZEN
    phase = expiry_phase(parse_ts(row["expire_time"]), now, rules)
    return {
        ExpiryPhase.ACTIVE: IN_USE,
        ExpiryPhase.GRACE: EXPIRED,
        ExpiryPhase.RETENTION: FROZEN,
        ExpiryPhase.RELEASED: CLOSED,
    }[phase]


def orders_holding(conn: sqlite3.Connection, resource_ids: set[str], status: int) -> list[str]:
    """Ids of orders with ``status`` that name any of ``resource_ids``."""
    found = []
    for r in conn.execute("SELECT id, resource_ids FROM orders WHERE status=?", (status,)):
        if resource_ids & set(json.loads(r["resource_ids"])):
            found.append(str(r["id"]))
    return found


def quota_used(conn: sqlite3.Connection, now: datetime) -> int:
    """5-day full refunds used in the calendar year of ``now`` (R6)."""
    used = [parse_ts(r[0]) for r in conn.execute("SELECT used_at FROM five_day_refunds")]
    return quota_used_in_year(used, now)


def _payments(conn: sqlite3.Connection, resource_id: str) -> list[sqlite3.Row]:
    return list(
        conn.execute(
            "SELECT * FROM payments WHERE resource_id=? AND refund_order_id IS NULL ORDER BY id",
            (resource_id,),
        )
    )


def billing_subscription(conn: sqlite3.Connection, row: sqlite3.Row) -> Subscription:
    """The rules' view of a main subscription: its unrefunded payments and what blocks it."""
    rid = row["resource_id"]
    children = [c["resource_id"] for c in children_of(conn, rid)]
    blockers = set(json.loads(row["blockers"]))
    server = conn.execute("SELECT * FROM servers WHERE id=?", (rid,)).fetchone()
    locked_by = None
    if server is not None:
        if server["frozen"]:
            blockers.add("frozen")
        if server["locked"]:
            blockers.add("locked")
            locked_by = server["lock_source_id"]
    everything = {rid, *children}
    if orders_holding(conn, everything, PENDING_PAYMENT):
        blockers.add("pending_order")
    if orders_holding(conn, everything, PROCESSING):
        blockers.add("transaction_in_progress")
    payments = tuple(
        Payment(
            order_id=p["order_id"],
            cash=D(p["cash"]),
            flexi_coupon=D(p["flexi_coupon"]),
            stored_card=D(p["stored_card"]),
            cash_coupon=D(p["cash_coupon"]),
            discount_coupon=D(p["discount_coupon"]),
            effective=parse_ts(p["effective"]),
            expires=parse_ts(p["expires"]),
            term_months=p["term_months"],
        )
        for p in _payments(conn, rid)
    )
    return Subscription(
        resource_id=rid,
        provisioned_at=parse_ts(row["provisioned_at"]),
        payments=payments,
        is_main=bool(row["is_main"]),
        bound_children=tuple(children),
        promotional_no_5day=bool(row["promotional"]),
        blockers=frozenset(blockers),
        locked_by_order=locked_by,
    )


# -- what is still billing -------------------------------------------------------------------


def still_billing(
    conn: sqlite3.Connection, now: datetime, rules: BillingRules = RULES
) -> list[dict[str, Any]]:
    """Everything that is still costing money at ``now``.

    - every live pay-per-use (or spot) server and disk, with its hourly price;
    - every main prepaid subscription in use or in its grace period, with its expiry, auto-renew
      state and when auto-renew would next charge (R25);
    - every order pending payment.

    A separately bought disk left behind by an unsubscribed server appears here on its own.
    """
    return [
        *_pay_per_use(conn),
        *_prepaid_in_force(conn, now, rules),
        *_pending_orders(conn),
    ]


def _pay_per_use(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Live pay-per-use and spot servers, then live pay-per-use disks BSS does not bill."""
    out: list[dict[str, Any]] = []
    modes = {"0": "postPaid", "2": "spot"}
    for r in conn.execute(
        "SELECT * FROM servers WHERE deleted=0 AND charging_mode IN ('0', '2') ORDER BY name, id"
    ):
        out.append(
            {
                "kind": "server",
                "resource_id": r["id"],
                "name": r["name"],
                "billing": modes[r["charging_mode"]],
                "hourly_price": D(r["hourly_price"]),
            }
        )
    for r in conn.execute(
        "SELECT * FROM volumes WHERE deleted=0 AND charging_mode='postPaid' "
        "AND id NOT IN (SELECT resource_id FROM subscriptions) ORDER BY name, id"
    ):
        out.append(
            {
                "kind": "volume",
                "resource_id": r["id"],
                "name": r["name"],
                "billing": "postPaid",
                "hourly_price": D(r["hourly_price"]),
                "server_id": r["server_id"],
            }
        )
    return out


def _prepaid_in_force(
    conn: sqlite3.Connection, now: datetime, rules: BillingRules
) -> list[dict[str, Any]]:
    """Main subscriptions in use or in their grace period, with the next auto-renew charge."""
    out: list[dict[str, Any]] = []
    for r in conn.execute("SELECT * FROM subscriptions WHERE is_main=1 ORDER BY resource_name"):
        status = current_status(r, now, rules)
        if status not in (IN_USE, EXPIRED):
            continue
        expires = parse_ts(r["expire_time"])
        charge = _next_charge(expires, now, rules) if r["auto_renew"] else None
        out.append(
            {
                "kind": "server" if r["resource_type_code"] == VM_TYPE else "volume",
                "resource_id": r["resource_id"],
                "name": r["resource_name"],
                "billing": "prePaid",
                "status": status,
                "in_grace": status == EXPIRED,
                "expire_time": r["expire_time"],
                "auto_renew": bool(r["auto_renew"]),
                "expire_policy": r["expire_policy"],
                "next_renewal_charge": ts(charge) if charge else None,
                "order_id": r["order_id"],
                "children": [c["resource_id"] for c in children_of(conn, r["resource_id"])],
            }
        )
    return out


def _next_charge(expires: datetime, now: datetime, rules: BillingRules) -> datetime:
    """When auto-renew next charges (R25): the deduction date, or once it has passed without
    success, the next daily retry at the same hour."""
    charge = auto_renew_charge_at(expires, rules)
    if charge < now:
        charge += timedelta(days=-((charge - now) // timedelta(days=1)))
    return charge


def _pending_orders(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Orders pending payment, oldest first."""
    return [
        {
            "kind": "pending_order",
            "order_id": r["id"],
            "amount": D(r["amount_after_discount"]),
            "pending_payment_end_time": r["pending_payment_end_time"],
            "resource_ids": json.loads(r["resource_ids"]),
        }
        for r in conn.execute(
            "SELECT * FROM orders WHERE status=? ORDER BY create_time, id", (PENDING_PAYMENT,)
        )
    ]
