"""Seeding the ledger from a scenario: subscriptions, their orders and payments, other orders and
the 5-day quota already used.

Payments are recorded on the *main* resource only; bound children (a server's system disk and the
data disks bought with it) get subscriptions that mirror its dates and status.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from teardown.adapters.huawei.rules import (
    BLOCKER_CODES,
    RENEWAL_BLOCKER_CODES,
    expire_policy_code,
)
from teardown.core.billing import PeriodType, add_months, term_months
from teardown.core.errors import ConfigError
from teardown.sandbox.billing.entries import (
    ORDER_STATUS,
    ORDER_TYPE,
    POLICY_KEYS,
    OrderEntry,
    RenewalEntry,
    SubscriptionEntry,
    validate,
)
from teardown.sandbox.billing.orders import insert_line, insert_order, schedule_order_progress
from teardown.sandbox.billing.schema import (
    COMPLETED,
    ECS_SERVICE,
    EVS_SERVICE,
    IN_USE,
    IP_TYPE,
    NEW,
    PENDING_PAYMENT,
    PROCESSING,
    RENEW,
    SANDBOX_FAULTS,
    TO_PERIOD,
    VM_TYPE,
    VOLUME_TYPE,
    VPC_SERVICE,
    new_order_id,
)
from teardown.sandbox.billing.vaults import seed_vaults
from teardown.sandbox.scenario import Scenario
from teardown.sandbox.store import parse_ts, ts


@dataclass(frozen=True)
class _Bought:
    """A prepaid main resource of the scenario, as BSS bills it."""

    resource_id: str
    is_server: bool
    created: str
    spec: str
    order_id: str | None
    """The purchase order the compute side recorded, if any."""
    service: str
    rtype: str


@dataclass(frozen=True)
class _Term:
    """What one subscription entry bought: its purchase order and the span paid for."""

    entry: SubscriptionEntry
    main_id: str
    order_id: str
    provisioned: datetime
    expires: datetime
    """The end of the last period paid, renewals included."""


def seed_billing(
    conn: sqlite3.Connection,
    scenario: Scenario,
    ids: dict[str, str],
    now: datetime,
    customer_id: str = "cust-sandbox-0001",
) -> None:
    """Create the scenario's subscriptions, orders, 5-day quota usage and the billing side of
    its vaults (validated here).

    Raises :class:`ConfigError` naming ``subscriptions[i].key``, ``orders[i].key`` or
    ``vaults[i].key``. A prePaid
    server or disk without a ``[[subscriptions]]`` entry gets a default one (one month, nothing
    paid) so that BSS knows every prepaid resource.
    """
    entries = [
        validate(scenario, "subscriptions", i, SubscriptionEntry, raw)
        for i, raw in enumerate(scenario.subscriptions)
    ]
    orders = [
        validate(scenario, "orders", i, OrderEntry, raw) for i, raw in enumerate(scenario.orders)
    ]
    if scenario.five_day_refunds_used < 0:
        raise ConfigError(scenario.name, "five_day_refunds_used: must not be negative")
    for i, entry in enumerate(entries):
        _add_subscription(conn, scenario, i, entry, ids, now, customer_id)
    _add_default_subscriptions(conn, scenario, len(entries), ids, now, customer_id)
    combined: dict[str, list[tuple[int, OrderEntry, str]]] = {}
    for i, order in enumerate(orders):
        oid = _add_order(conn, scenario, i, order, ids, now, customer_id)
        if order.combined:
            combined.setdefault(order.combined, []).append((i, order, oid))
    for parts in combined.values():
        _add_combined_order(conn, scenario, parts, now, customer_id)
    for _ in range(scenario.five_day_refunds_used):
        conn.execute("INSERT INTO five_day_refunds(used_at) VALUES (?)", (now.isoformat(),))
    seed_vaults(conn, scenario, ids, now)


def _add_default_subscriptions(
    conn: sqlite3.Connection,
    scenario: Scenario,
    i: int,
    ids: dict[str, str],
    now: datetime,
    customer_id: str,
) -> None:
    """A default subscription (one month, nothing paid) for each prepaid main resource left."""
    names = {v: k for k, v in ids.items()}
    prepaid = conn.execute(
        "SELECT id FROM servers WHERE charging_mode='1' AND deleted=0 UNION ALL "
        "SELECT id FROM volumes WHERE charging_mode='prePaid' AND deleted=0 "
        "AND NOT (bound=1 AND server_id IS NOT NULL) UNION ALL "
        "SELECT id FROM eips WHERE charging_mode='prePaid' AND deleted=0"
    ).fetchall()
    for r in prepaid:
        known = conn.execute("SELECT 1 FROM subscriptions WHERE resource_id=?", (r["id"],))
        if known.fetchone() is None and r["id"] in names:
            default = SubscriptionEntry(resource=names[r["id"]])
            _add_subscription(conn, scenario, i, default, ids, now, customer_id)


def _add_order(
    conn: sqlite3.Connection,
    scenario: Scenario,
    i: int,
    order: OrderEntry,
    ids: dict[str, str],
    now: datetime,
    customer_id: str,
) -> str:
    """An ``[[orders]]`` entry: the order, its one line, and what happens to it on its own;
    another region's resource that BSS knows; the lock of a server it converts. Returns the
    order id."""
    created = now - timedelta(days=order.created_days_ago)
    oid = new_order_id()
    status = ORDER_STATUS[order.status]
    order_type = ORDER_TYPE[order.type]
    service = ECS_SERVICE if order.service == "ecs" else EVS_SERVICE
    rid = ids.get(order.resource)
    if rid is not None and order.region is not None:
        raise ConfigError(
            scenario.name,
            f"orders[{i}].region: {order.resource!r} is a resource of the sandbox's own region; "
            "an order of another region names a resource the scenario does not define",
        )
    if rid is None and order.region is not None and order_type != NEW:
        rid = _foreign_subscription(conn, order, service, created, now, customer_id)
    if order_type == TO_PERIOD:
        _lock_for_conversion(conn, scenario, i, order, rid, oid, status)
    insert_order(
        conn,
        order_id=oid,
        customer_id=customer_id,
        service=service,
        order_type=order_type,
        status=status,
        created=created,
        resource_ids=[rid or str(uuid.uuid4())],
        cash=order.amount,
        region=order.region,
    )
    insert_line(
        conn,
        oid,
        rid,
        service,
        spec=order.resource,
        period="month",
        periods=1,
        effective=None,
        expires=None,
        cash=order.amount,
    )
    schedule_order_progress(conn, oid, status, created, now)
    return oid


def _foreign_subscription(
    conn: sqlite3.Connection,
    order: OrderEntry,
    service: str,
    created: datetime,
    now: datetime,
    customer_id: str,
) -> str:
    """A yearly/monthly main resource of another region (``order.region``) that BSS knows
    (BSS is global) and this region's ECS and EVS do not: its completed purchase order, one
    month in use. Returns its id."""
    rid = str(uuid.uuid4())
    purchase = new_order_id()
    bought = now - timedelta(days=order.created_days_ago + 10)
    rtype = VM_TYPE if service == ECS_SERVICE else VOLUME_TYPE
    insert_order(
        conn,
        order_id=purchase,
        customer_id=customer_id,
        service=service,
        order_type=NEW,
        status=COMPLETED,
        created=bought,
        resource_ids=[rid],
        region=order.region,
    )
    expires = add_months(bought, 1)
    insert_line(
        conn,
        purchase,
        rid,
        service,
        spec=order.resource,
        period="month",
        periods=1,
        effective=bought,
        expires=expires,
    )
    conn.execute(
        "INSERT INTO subscriptions(resource_id, resource_name, service_type_code, "
        "resource_type_code, resource_spec_code, is_main, parent_resource_id, status, "
        "provisioned_at, effective_time, expire_time, auto_renew, expire_policy, period, "
        "periods, order_id, update_time, region) VALUES (?,?,?,?,?,1,NULL,?,?,?,?,0,0,?,1,?,?,?)",
        (
            rid,
            order.resource,
            service,
            rtype,
            order.resource,
            IN_USE,
            ts(bought),
            ts(bought),
            ts(expires),
            "month",
            purchase,
            ts(now),
            order.region,
        ),
    )
    return rid


def _lock_for_conversion(
    conn: sqlite3.Connection,
    scenario: Scenario,
    i: int,
    order: OrderEntry,
    rid: str | None,
    oid: str,
    status: int,
) -> None:
    """A ``to_period`` order (按需转包年/包月) of a pay-per-use server: while it is pending
    payment or processing, the server is locked by it (the ECS server's ``lockScene``
    TO_PERIOD_LOCK and ``lockSourceId``, the SDK's ``ServerDetail.metadata``)."""
    server = conn.execute("SELECT charging_mode FROM servers WHERE id=?", (rid,)).fetchone()
    if server is None or server["charging_mode"] != "0":
        raise ConfigError(
            scenario.name,
            f"orders[{i}].type: to_period converts a pay-per-use server, and "
            f"{order.resource!r} is not one",
        )
    if status in (PENDING_PAYMENT, PROCESSING):
        conn.execute(
            "UPDATE servers SET locked=1, lock_source_id=?, lock_scene='TO_PERIOD_LOCK' WHERE id=?",
            (oid, rid),
        )


def _add_combined_order(
    conn: sqlite3.Connection,
    scenario: Scenario,
    parts: list[tuple[int, OrderEntry, str]],
    now: datetime,
    customer_id: str,
) -> None:
    """The combined order (组合交易) of the sub-orders ``parts``: one status and one region;
    its amount is theirs added up, and it touches what they touch."""
    first_i, first, _ = parts[0]
    for i, entry, _oid in parts[1:]:
        if (entry.status, entry.region, entry.type) != (first.status, first.region, first.type):
            raise ConfigError(
                scenario.name,
                f"orders[{i}].combined: the sub-orders of {first.combined!r} must share status, "
                f"type and region with orders[{first_i}]",
            )
    oid = new_order_id()
    touched: list[str] = []
    total = Decimal(0)
    for _i, entry, sub in parts:
        row = conn.execute("SELECT resource_ids FROM orders WHERE id=?", (sub,)).fetchone()
        touched += json.loads(row["resource_ids"])
        total += entry.amount
        conn.execute("UPDATE orders SET combined_id=? WHERE id=?", (oid, sub))
    created = now - timedelta(days=max(e.created_days_ago for _i, e, _o in parts))
    status = ORDER_STATUS[first.status]
    insert_order(
        conn,
        order_id=oid,
        customer_id=customer_id,
        service=ECS_SERVICE if first.service == "ecs" else EVS_SERVICE,
        order_type=ORDER_TYPE[first.type],
        status=status,
        created=created,
        resource_ids=touched,
        cash=total,
        region=first.region,
    )
    schedule_order_progress(conn, oid, status, created, now)


# -- one subscription ------------------------------------------------------------------------


def _add_subscription(
    conn: sqlite3.Connection,
    scenario: Scenario,
    i: int,
    entry: SubscriptionEntry,
    ids: dict[str, str],
    now: datetime,
    customer_id: str,
) -> None:
    """Bill one prepaid main resource as ``entry`` says: orders, payments, subscriptions."""
    rid = _checked_resource_id(conn, scenario, i, entry, ids)
    bought = _bought_resource(conn, scenario, f"subscriptions[{i}].resource", entry, rid)
    order_id = bought.order_id or new_order_id()
    provisioned = (
        parse_ts(bought.created)
        if entry.provisioned_days_ago is None
        else now - timedelta(days=entry.provisioned_days_ago)
    )
    expires = _record_payments(conn, bought, entry, order_id, provisioned, now, customer_id)
    term = _Term(entry, rid, order_id, provisioned, expires)
    _insert_subscription(
        conn, term, rid, entry.resource, bought.service, bought.rtype, bought.spec, now
    )
    if bought.is_server:
        _mark_server(conn, rid, order_id, set(entry.blockers))
        _subscribe_bound_disks(conn, term, now)
    elif bought.rtype == IP_TYPE:
        conn.execute("UPDATE eips SET order_id=? WHERE id=?", (order_id, rid))
    else:
        conn.execute("UPDATE volumes SET order_id=? WHERE id=?", (order_id, rid))


def _checked_resource_id(
    conn: sqlite3.Connection,
    scenario: Scenario,
    i: int,
    entry: SubscriptionEntry,
    ids: dict[str, str],
) -> str:
    """The id of the resource ``entry`` names, once its name and blockers are known good."""
    where = f"subscriptions[{i}].resource"
    rid = ids.get(entry.resource)
    if rid is None:
        raise ConfigError(scenario.name, f"{where}: no server or disk named {entry.resource!r}")
    known = [*BLOCKER_CODES, *RENEWAL_BLOCKER_CODES, *SANDBOX_FAULTS]
    unknown = sorted(set(entry.blockers) - set(known))
    if unknown:
        raise ConfigError(
            scenario.name,
            f"subscriptions[{i}].blockers: unknown {unknown} (known: {', '.join(known)})",
        )
    if conn.execute("SELECT 1 FROM subscriptions WHERE resource_id=?", (rid,)).fetchone():
        raise ConfigError(scenario.name, f"{where}: {entry.resource!r} is subscribed twice")
    return rid


def _bought_resource(
    conn: sqlite3.Connection, scenario: Scenario, where: str, entry: SubscriptionEntry, rid: str
) -> _Bought:
    """The prepaid server, separately bought prepaid disk or prepaid EIP ``rid``, or a
    ConfigError."""
    eip = conn.execute("SELECT * FROM eips WHERE id=?", (rid,)).fetchone()
    if eip is not None:
        if eip["charging_mode"] != "prePaid":
            raise ConfigError(
                scenario.name, f"{where}: EIP {entry.resource!r} is not prePaid (eip_charging)"
            )
        spec = f"5_bgp.{eip['bandwidth_size']}M"
        return _Bought(rid, False, eip["created"], spec, eip["order_id"], VPC_SERVICE, IP_TYPE)
    server = conn.execute("SELECT * FROM servers WHERE id=?", (rid,)).fetchone()
    if server is not None:
        if server["charging_mode"] != "1":
            raise ConfigError(scenario.name, f"{where}: server {entry.resource!r} is not prePaid")
        return _Bought(
            rid, True, server["created"], server["flavor"], server["order_id"], ECS_SERVICE, VM_TYPE
        )
    volume = conn.execute("SELECT * FROM volumes WHERE id=?", (rid,)).fetchone()
    assert volume is not None
    if volume["charging_mode"] != "prePaid":
        raise ConfigError(scenario.name, f"{where}: disk {entry.resource!r} is not prePaid")
    if volume["bound"] and volume["server_id"]:
        raise ConfigError(
            scenario.name,
            f"{where}: disk {entry.resource!r} was bought with its server: subscribe the "
            "server (its bound disks are its children)",
        )
    return _Bought(
        rid,
        False,
        volume["created"],
        volume["volume_type"],
        volume["order_id"],
        EVS_SERVICE,
        VOLUME_TYPE,
    )


def _record_payments(
    conn: sqlite3.Connection,
    bought: _Bought,
    entry: SubscriptionEntry,
    order_id: str,
    provisioned: datetime,
    now: datetime,
    customer_id: str,
) -> datetime:
    """The purchase, then each renewal paid in advance: an order, its line and a payment each.

    Returns when the last period paid for ends.
    """
    rid = bought.resource_id
    months = term_months(PeriodType(entry.period), entry.periods)
    expires = add_months(provisioned, months)
    _paid_period(conn, bought, order_id, NEW, provisioned, entry, provisioned, expires, customer_id)
    _insert_payment(conn, rid, order_id, "purchase", entry, provisioned, expires, months)
    for renewal in entry.renewals:
        r_months = term_months(PeriodType(renewal.period), renewal.periods)
        r_start, expires = expires, add_months(expires, r_months)
        r_order = new_order_id()
        _paid_period(
            conn, bought, r_order, RENEW, min(now, r_start), renewal, r_start, expires, customer_id
        )
        _insert_payment(conn, rid, r_order, "renewal", renewal, r_start, expires, r_months)
    return expires


def _paid_period(
    conn: sqlite3.Connection,
    bought: _Bought,
    order_id: str,
    order_type: int,
    created: datetime,
    money: RenewalEntry | SubscriptionEntry,
    effective: datetime,
    expires: datetime,
    customer_id: str,
) -> None:
    """A completed purchase or renewal order and its one line item, paying for one period."""
    insert_order(
        conn,
        order_id=order_id,
        customer_id=customer_id,
        service=bought.service,
        order_type=order_type,
        status=COMPLETED,
        created=created,
        resource_ids=[bought.resource_id],
        cash=money.paid,
        coupon=money.cash_coupon,
        flexi_coupon=money.flexi_coupon,
        stored_card=money.stored_card,
        discount_coupon=money.discount_coupon,
        promotion=getattr(money, "promotion_discount", Decimal(0)),
    )
    insert_line(
        conn,
        order_id,
        bought.resource_id,
        bought.service,
        spec=bought.spec,
        period=money.period,
        periods=money.periods,
        effective=effective,
        expires=expires,
        cash=money.paid,
        coupon=money.cash_coupon,
        flexi_coupon=money.flexi_coupon,
        stored_card=money.stored_card,
        discount_coupon=money.discount_coupon,
    )


def _insert_payment(
    conn: sqlite3.Connection,
    rid: str,
    order_id: str,
    kind: str,
    paid: SubscriptionEntry | RenewalEntry,
    effective: datetime,
    expires: datetime,
    months: int,
) -> None:
    """One ``payments`` row: what ``order_id`` paid for ``rid`` over one period."""
    conn.execute(
        "INSERT INTO payments(resource_id, order_id, kind, cash, flexi_coupon, stored_card, "
        "cash_coupon, discount_coupon, effective, expires, term_months) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            rid,
            order_id,
            kind,
            str(paid.paid),
            str(paid.flexi_coupon),
            str(paid.stored_card),
            str(paid.cash_coupon),
            str(paid.discount_coupon),
            ts(effective),
            ts(expires),
            months,
        ),
    )


def _insert_subscription(
    conn: sqlite3.Connection,
    term: _Term,
    resource_id: str,
    name: str,
    service: str,
    rtype: str,
    spec: str,
    now: datetime,
) -> None:
    """One ``subscriptions`` row, in use: the main resource of ``term`` or a bound child of it."""
    parent = None if resource_id == term.main_id else term.main_id
    entry = term.entry
    conn.execute(
        "INSERT INTO subscriptions(resource_id, resource_name, service_type_code, "
        "resource_type_code, resource_spec_code, is_main, parent_resource_id, status, "
        "provisioned_at, effective_time, expire_time, auto_renew, expire_policy, period, "
        "periods, order_id, promotional, blockers, update_time) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            resource_id,
            name,
            service,
            rtype,
            spec + (".linux" if rtype == VM_TYPE else ""),
            int(parent is None),
            parent,
            IN_USE,
            ts(term.provisioned),
            ts(term.provisioned),
            ts(term.expires),
            int(entry.auto_renew),
            expire_policy_code(entry.auto_renew, POLICY_KEYS[entry.expire_policy]),
            entry.period,
            entry.periods,
            term.order_id,
            int(entry.promotional),
            json.dumps(sorted(entry.blockers)),
            ts(now),
        ),
    )


def _mark_server(conn: sqlite3.Connection, rid: str, order_id: str, blockers: set[str]) -> None:
    """Record the purchase order on the server, and the ``frozen`` and ``locked`` blockers."""
    locked = int("locked" in blockers)
    conn.execute(
        "UPDATE servers SET order_id=?, product_id=COALESCE(product_id, ?), "
        "frozen=MAX(frozen, ?), locked=MAX(locked, ?), "
        "lock_source_id=CASE WHEN ? THEN COALESCE(lock_source_id, ?) ELSE lock_source_id END, "
        "lock_scene=CASE WHEN ? THEN COALESCE(lock_scene, 'TO_PERIOD_LOCK') "
        "ELSE lock_scene END WHERE id=?",
        (
            order_id,
            "OFFI" + rid[:8],
            int("frozen" in blockers),
            locked,
            locked,
            order_id,
            locked,
            rid,
        ),
    )


def _subscribe_bound_disks(conn: sqlite3.Connection, term: _Term, now: datetime) -> None:
    """The server's system disk and the disks bought with it become its prepaid children."""
    children = conn.execute(
        "SELECT * FROM volumes WHERE server_id=? AND deleted=0 AND (bootable=1 OR bound=1)",
        (term.main_id,),
    ).fetchall()
    for v in children:
        conn.execute(
            "UPDATE volumes SET order_id=?, charging_mode='prePaid' WHERE id=?",
            (term.order_id, v["id"]),
        )
        _insert_subscription(
            conn, term, v["id"], v["name"], EVS_SERVICE, VOLUME_TYPE, v["volume_type"], now
        )
