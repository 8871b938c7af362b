"""Reading the ledger: subscriptions, their derived status, the rules' view of one, the 5-day
quota, and everything that is still costing money.

A subscription's ``status`` is derived at read time: 3 once unsubscribed; 4 when frozen; else by
its expiry (R26, R27): 2 before expiry, 5 (expired) in the grace period, 4 in retention, 3 after.
Auto-renew charges are *not* simulated: the ledger reports when the next one would be taken (R25).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from teardown.adapters.huawei.bills import expiry_outcome, next_renewal_charge
from teardown.adapters.huawei.rules import (
    BLOCKER_CODES,
    RENEWAL_BLOCKER_CODES,
    BillingRules,
    ExpiryPhase,
    Subscription,
    expiry_phase,
    quota_used_in_year,
)
from teardown.core.billing import Payment
from teardown.sandbox.billing.schema import (
    CLOSED,
    EXPIRED,
    FROZEN,
    IN_USE,
    IP_TYPE,
    PENDING_PAYMENT,
    PROCESSING,
    RULES,
    VM_TYPE,
    D,
)
from teardown.sandbox.billing.vaults import all_vaults, backup_count, retention_days, used_gb
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
    rules_know = BLOCKER_CODES.keys() | RENEWAL_BLOCKER_CODES.keys()
    blockers = set(json.loads(row["blockers"])) & rules_know  # not the sandbox's faults
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
    """Everything that is still costing money at ``now``, each entry with the cloud id it is
    known by (``resource_id``; an order's id for an order) and how it bills (``charging``):

    - ``hourly``: every live pay-per-use (or spot) server and disk, with its hourly price;
    - ``prepaid``: every main prepaid subscription of the sandbox's region in use or in its
      grace period, with its
      expiry, what happens then (``expire_policy``: ``release``, ``auto_renew`` or
      ``to_pay_per_use``; the BSS code in ``expire_policy_code``) and when auto-renew would next
      charge (R25);
    - ``storage``: every CBR vault (it bills by its capacity while it exists), with the GB its
      backups use, its capacity and the sandbox's monthly cost;
    - ``order``: every order pending payment.

    A separately bought disk left behind by an unsubscribed server appears here on its own.
    """
    return [
        *_pay_per_use(conn),
        *_eips(conn),
        *_prepaid_in_force(conn, now, rules),
        *_vaults(conn),
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
                "charging": "hourly",
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
                "charging": "hourly",
                "hourly_price": D(r["hourly_price"]),
                "server_id": r["server_id"],
            }
        )
    return out


_KINDS = {VM_TYPE: "server", IP_TYPE: "eip"}
"""A subscription's resource type -> the ``kind`` of its entry (anything else is a disk)."""


def _eips(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Live pay-per-use EIPs: each bills by the hour, bound or not (its dedicated bandwidth
    while bound, a reservation fee too once unbound: one sandbox price covers both), until it
    is released. Yearly/monthly EIPs appear with the prepaid subscriptions."""
    return [
        {
            "kind": "eip",
            "resource_id": r["id"],
            "name": r["public_ip"],
            "billing": "postPaid",
            "charging": "hourly",
            "hourly_price": D(r["hourly_price"]),
            "server_id": r["server_id"],
        }
        for r in conn.execute(
            "SELECT * FROM eips WHERE deleted=0 AND charging_mode='postPaid' "
            "AND id NOT IN (SELECT resource_id FROM subscriptions) ORDER BY public_ip, id"
        )
    ]


def _prepaid_in_force(
    conn: sqlite3.Connection, now: datetime, rules: BillingRules
) -> list[dict[str, Any]]:
    """Main subscriptions in use or in their grace period, with the next auto-renew charge."""
    out: list[dict[str, Any]] = []
    for r in conn.execute(
        "SELECT * FROM subscriptions WHERE is_main=1 AND region IS NULL ORDER BY resource_name"
    ):
        status = current_status(r, now, rules)
        if status not in (IN_USE, EXPIRED):
            continue
        expires = parse_ts(r["expire_time"])
        charge = next_renewal_charge(expires, now, rules) if r["auto_renew"] else None
        out.append(
            {
                "kind": _KINDS.get(r["resource_type_code"], "volume"),
                "resource_id": r["resource_id"],
                "name": r["resource_name"],
                "billing": "prePaid",
                "charging": "prepaid",
                "status": status,
                "in_grace": status == EXPIRED,
                "expire_time": r["expire_time"],
                "auto_renew": bool(r["auto_renew"]),
                "expire_policy": expiry_outcome(r["expire_policy"]),
                "expire_policy_code": r["expire_policy"],
                "next_renewal_charge": ts(charge) if charge else None,
                "order_id": r["order_id"],
                "children": [c["resource_id"] for c in children_of(conn, r["resource_id"])],
            }
        )
    return out


def _vaults(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every CBR vault: a pay-per-use vault bills by its capacity for every hour it exists."""
    out: list[dict[str, Any]] = []
    for v in all_vaults(conn):
        out.append(
            {
                "kind": "vault",
                "resource_id": v.id,
                "name": v.name,
                "billing": "postPaid",
                "charging": "storage",
                "object_type": v.object_type,
                "capacity_gb": v.size_gb,
                "size_gb": used_gb(conn, v.id),
                "backups": backup_count(conn, v.id),
                "retention_days": retention_days(conn, v.id),
                "price_per_gb_month": v.price_per_gb_month,
                "monthly_cost": v.monthly_cost,
                "hourly_price": v.hourly_cost,
            }
        )
    return out


def _pending_orders(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Orders pending payment, oldest first, of every region (a combined order once, not its
    sub-orders)."""
    return [
        {
            "kind": "pending_order",
            "resource_id": r["id"],
            "charging": "order",
            "order_id": r["id"],
            "amount": D(r["amount_after_discount"]),
            "pending_payment_end_time": r["pending_payment_end_time"],
            "resource_ids": json.loads(r["resource_ids"]),
        }
        for r in conn.execute(
            "SELECT * FROM orders WHERE status=? AND combined_id IS NULL ORDER BY create_time, id",
            (PENDING_PAYMENT,),
        )
    ]
