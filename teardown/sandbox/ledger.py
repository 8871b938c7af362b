"""The sandbox's BSS ledger: orders, prepaid subscriptions, payments, refunds, the yearly 5-day
quota and the release queue, and the application of Huawei's billing rules to them.

Every money figure comes from :mod:`teardown.core.billing` (the published rules as pure
functions); this module only stores what was paid and what was refunded. Amounts are stored as
decimal strings, times as ``YYYY-MM-DDTHH:MM:SSZ``.

Choices the reference (huawei.md) leaves open, made here:

- Payments are recorded on the *main* resource only; bound children (a server's system disk and
  the data disks bought with it) mirror its dates and status and are closed and released with it.
- One unsubscribe order is created per main resource, with ``base_order_id`` the purchase order.
- A subscription's ``status`` is derived at read time: 3 once unsubscribed; 4 when frozen; else by
  its expiry (R26/R27): 2 before expiry, 5 (expired) in the grace period, 4 in retention, 3 after.
  Auto-renew charges are *not* simulated: the ledger reports when the next one would be taken.
- A resource in an order that is still ``processing`` (status 3) is refused with the
  transaction-in-progress code; such orders complete 10 minutes after creation (R4).
- Pending-payment orders are cancelled automatically 7 days after creation (R2).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from teardown.core.billing import (
    BLOCKER_CODES,
    BillingRules,
    ExpiryPhase,
    Payment,
    PeriodType,
    RefundQuote,
    RuleRefusal,
    Subscription,
    auto_renew_charge_at,
    expire_policy_code,
    expiry_phase,
    quota_used_in_year,
    quote_renewal_unsubscribe,
    quote_unsubscribe,
    term_months,
)
from teardown.core.errors import ConfigError
from teardown.sandbox.http import ApiError
from teardown.sandbox.resources import delete_volume, release_server
from teardown.sandbox.scenario import Scenario
from teardown.sandbox.store import parse_ts, schedule, timer, ts

ECS_SERVICE = "hws.service.type.ec2"
EVS_SERVICE = "hws.service.type.ebs"
VM_TYPE = "hws.resource.type.vm"
VOLUME_TYPE = "hws.resource.type.volume"

# Order status (huawei.md 4.1).
PROCESSING, CANCELLED, COMPLETED, PENDING_PAYMENT = 3, 4, 5, 6
# Order type.
NEW, RENEW, UNSUBSCRIBE = 1, 2, 4
# Subscription status (huawei.md 4.3).
IN_USE, CLOSED, FROZEN, EXPIRED = 2, 3, 4, 5

PENDING_VALIDITY = timedelta(days=7)
"""R2: a pending order for a normal cloud service is cancelled after 7 days."""
PROCESSING_TIME = timedelta(minutes=10)
"""R4: a processing order usually completes within about 10 minutes."""

NOT_FOUND_CODE = "CBC.99003012"
GONE_CODE = "CBC.30000067"

RULES = BillingRules()
"""The rules the sandbox applies (the documented defaults; the sandbox config has no override)."""

BSS_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, service_type_code TEXT NOT NULL,
    order_type INTEGER NOT NULL,             -- 1 new, 2 renew, 4 unsubscribe
    status INTEGER NOT NULL,                 -- 3 processing, 4 cancelled, 5 completed, 6 pending
    amount_after_discount TEXT NOT NULL DEFAULT '0',  -- cash paid; refund on unsubscribe orders
    official_amount TEXT NOT NULL DEFAULT '0',
    coupon TEXT NOT NULL DEFAULT '0',        -- 代金券 (cash coupon)
    flexi_coupon TEXT NOT NULL DEFAULT '0',  -- 现金券
    stored_card TEXT NOT NULL DEFAULT '0',
    discount_coupon TEXT NOT NULL DEFAULT '0',  -- 折扣券
    commission TEXT NOT NULL DEFAULT '0',    -- handling fee (unsubscribe orders)
    consumed TEXT NOT NULL DEFAULT '0',      -- consumed amount (unsubscribe orders)
    currency TEXT NOT NULL DEFAULT 'CNY', measure_id INTEGER NOT NULL DEFAULT 1,
    create_time TEXT NOT NULL, payment_time TEXT, pending_payment_end_time TEXT,
    base_order_id TEXT,
    resource_ids TEXT NOT NULL DEFAULT '[]');
CREATE TABLE IF NOT EXISTS order_lines (
    id TEXT PRIMARY KEY, order_id TEXT NOT NULL, resource_id TEXT,
    service_type_code TEXT NOT NULL, product_id TEXT, product_spec_desc TEXT,
    period_type INTEGER NOT NULL,            -- 2 month, 3 year
    period_num INTEGER,                      -- null on unsubscribe orders
    effective_time TEXT, expire_time TEXT, subscription_num INTEGER NOT NULL DEFAULT 1,
    amount_after_discount TEXT NOT NULL DEFAULT '0', official_amount TEXT NOT NULL DEFAULT '0',
    coupon TEXT NOT NULL DEFAULT '0', flexi_coupon TEXT NOT NULL DEFAULT '0',
    stored_card TEXT NOT NULL DEFAULT '0', discount_coupon TEXT NOT NULL DEFAULT '0',
    commission TEXT NOT NULL DEFAULT '0', consumed TEXT NOT NULL DEFAULT '0');
CREATE TABLE IF NOT EXISTS subscriptions (
    resource_id TEXT PRIMARY KEY, resource_name TEXT NOT NULL,
    service_type_code TEXT NOT NULL, resource_type_code TEXT NOT NULL,
    resource_spec_code TEXT, is_main INTEGER NOT NULL, parent_resource_id TEXT,
    status INTEGER NOT NULL,                 -- stored: 2 in use or 3 closed (see current_status)
    provisioned_at TEXT NOT NULL, effective_time TEXT NOT NULL, expire_time TEXT NOT NULL,
    auto_renew INTEGER NOT NULL DEFAULT 0, expire_policy INTEGER NOT NULL DEFAULT 0,
    auto_renew_times INTEGER, renew_period_type TEXT,
    period TEXT NOT NULL, periods INTEGER NOT NULL,
    order_id TEXT NOT NULL,                  -- the purchase order
    promotional INTEGER NOT NULL DEFAULT 0,  -- bought in a promotion without the 5-day rule
    blockers TEXT NOT NULL DEFAULT '[]',     -- keys of BLOCKER_CODES
    update_time TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS payments (
    id INTEGER PRIMARY KEY AUTOINCREMENT, resource_id TEXT NOT NULL, order_id TEXT NOT NULL,
    kind TEXT NOT NULL,                      -- 'purchase' | 'renewal'
    cash TEXT NOT NULL, flexi_coupon TEXT NOT NULL, stored_card TEXT NOT NULL,
    cash_coupon TEXT NOT NULL, discount_coupon TEXT NOT NULL,
    effective TEXT NOT NULL, expires TEXT NOT NULL, term_months INTEGER NOT NULL,
    refund_order_id TEXT);                   -- set once unsubscribed
CREATE TABLE IF NOT EXISTS refund_lines (
    id TEXT PRIMARY KEY, order_id TEXT NOT NULL, resource_id TEXT NOT NULL,
    amount TEXT NOT NULL,                    -- negative: returned; positive: consumed or fee
    base_order_id TEXT NOT NULL, kind TEXT NOT NULL,
    service_type_code TEXT NOT NULL, resource_type_code TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS five_day_refunds (
    id INTEGER PRIMARY KEY AUTOINCREMENT, used_at TEXT NOT NULL,
    resource_id TEXT, order_id TEXT);        -- resource_id NULL: seeded by the scenario
CREATE TABLE IF NOT EXISTS releases (
    resource_id TEXT NOT NULL, kind TEXT NOT NULL,  -- 'server' | 'volume'
    order_id TEXT NOT NULL, due_at TEXT NOT NULL, released_at TEXT,
    PRIMARY KEY (resource_id, order_id));
"""
"""The BSS tables (passed to :class:`teardown.sandbox.store.Store` with the compute schema)."""


def D(value: object) -> Decimal:
    """A stored decimal string as a Decimal."""
    return Decimal(str(value))


def new_order_id() -> str:
    """An order id in Huawei's style (``CS`` + 14 upper-case characters)."""
    return "CS" + uuid.uuid4().hex[:14].upper()


def add_months(d: datetime, months: int) -> datetime:
    """``d`` plus calendar months, the day clamped to the end of a shorter month."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    nxt = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    last = (nxt - timedelta(days=1)).day
    return d.replace(year=year, month=month, day=min(d.day, last))


# -- scenario validation ---------------------------------------------------------------------

_Money = Field(default=Decimal(0), ge=0)


class RenewalEntry(BaseModel):
    """A renewal paid in advance: it takes effect when the previous period ends."""

    model_config = ConfigDict(extra="forbid")
    period: Literal["month", "year"] = "month"
    periods: int = Field(default=1, ge=1)
    paid: Decimal = _Money
    cash_coupon: Decimal = _Money
    flexi_coupon: Decimal = _Money
    stored_card: Decimal = _Money
    discount_coupon: Decimal = _Money


class SubscriptionEntry(BaseModel):
    """A ``[[subscriptions]]`` entry: what was paid for one prepaid main resource."""

    model_config = ConfigDict(extra="forbid")
    resource: str
    """A server or disk name of the scenario."""
    period: Literal["month", "year"] = "month"
    periods: int = Field(default=1, ge=1)
    provisioned_days_ago: float | None = Field(default=None, ge=0)
    """Default: when the resource was created."""
    paid: Decimal = _Money
    """Cash paid."""
    cash_coupon: Decimal = _Money
    discount_coupon: Decimal = _Money
    flexi_coupon: Decimal = _Money
    stored_card: Decimal = _Money
    auto_renew: bool = False
    renewals: list[RenewalEntry] = Field(default_factory=list)
    promotional: bool = False
    """Bought in a promotion that excludes the 5-day full refund (R8)."""
    blockers: list[str] = Field(default_factory=list)
    """Keys of :data:`teardown.core.billing.BLOCKER_CODES`."""


class OrderEntry(BaseModel):
    """An ``[[orders]]`` entry: an order that is not a paid purchase (typically pending)."""

    model_config = ConfigDict(extra="forbid")
    resource: str
    """A resource name; need not exist (e.g. a server never provisioned because unpaid)."""
    type: Literal["new", "renew"] = "new"
    status: Literal["pending_payment", "completed", "cancelled", "processing"] = "pending_payment"
    service: Literal["ecs", "evs"] = "ecs"
    amount: Decimal = _Money
    created_days_ago: float = Field(default=0, ge=0)


_ORDER_STATUS = {
    "pending_payment": PENDING_PAYMENT,
    "completed": COMPLETED,
    "cancelled": CANCELLED,
    "processing": PROCESSING,
}


def _validate(scenario: Scenario, table: str, i: int, model: type[BaseModel], raw: Any) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise ConfigError(scenario.name, f"{table}[{i}].{loc}: {err['msg']}") from None


# -- seeding ---------------------------------------------------------------------------------


def _insert_order(
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
) -> None:
    if official is None:
        official = cash + coupon + flexi_coupon + stored_card + discount_coupon
    pending_end = ts(created + PENDING_VALIDITY) if status == PENDING_PAYMENT else None
    paid_at = ts(created) if status == COMPLETED else None
    conn.execute(
        "INSERT INTO orders(id, customer_id, service_type_code, order_type, status, "
        "amount_after_discount, official_amount, coupon, flexi_coupon, stored_card, "
        "discount_coupon, commission, consumed, create_time, payment_time, "
        "pending_payment_end_time, base_order_id, resource_ids) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
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
        ),
    )


def _insert_line(
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


def _add_subscription(
    conn: sqlite3.Connection,
    scenario: Scenario,
    i: int,
    entry: SubscriptionEntry,
    ids: dict[str, str],
    now: datetime,
    customer_id: str,
) -> None:
    where = f"subscriptions[{i}].resource"
    rid = ids.get(entry.resource)
    if rid is None:
        raise ConfigError(scenario.name, f"{where}: no server or disk named {entry.resource!r}")
    unknown = sorted(set(entry.blockers) - BLOCKER_CODES.keys())
    if unknown:
        raise ConfigError(
            scenario.name,
            f"subscriptions[{i}].blockers: unknown {unknown} (known: {', '.join(BLOCKER_CODES)})",
        )
    if conn.execute("SELECT 1 FROM subscriptions WHERE resource_id=?", (rid,)).fetchone():
        raise ConfigError(scenario.name, f"{where}: {entry.resource!r} is subscribed twice")
    server = conn.execute("SELECT * FROM servers WHERE id=?", (rid,)).fetchone()
    volume = None if server else conn.execute("SELECT * FROM volumes WHERE id=?", (rid,)).fetchone()
    if server is not None:
        if server["charging_mode"] != "1":
            raise ConfigError(scenario.name, f"{where}: server {entry.resource!r} is not prePaid")
        created, spec, order_id = server["created"], server["flavor"], server["order_id"]
        service, rtype = ECS_SERVICE, VM_TYPE
    else:
        assert volume is not None
        if volume["charging_mode"] != "prePaid":
            raise ConfigError(scenario.name, f"{where}: disk {entry.resource!r} is not prePaid")
        if volume["bound"] and volume["server_id"]:
            raise ConfigError(
                scenario.name,
                f"{where}: disk {entry.resource!r} was bought with its server: subscribe the "
                "server (its bound disks are its children)",
            )
        created, spec, order_id = volume["created"], volume["volume_type"], volume["order_id"]
        service, rtype = EVS_SERVICE, VOLUME_TYPE
    order_id = order_id or new_order_id()
    provisioned = (
        parse_ts(created)
        if entry.provisioned_days_ago is None
        else now - timedelta(days=entry.provisioned_days_ago)
    )
    months = term_months(PeriodType(entry.period), entry.periods)
    expires = add_months(provisioned, months)
    _paid_period(
        conn,
        order_id,
        NEW,
        provisioned,
        entry,
        rid,
        service,
        spec,
        provisioned,
        expires,
        customer_id,
    )
    _insert_payment(conn, rid, order_id, "purchase", entry, provisioned, expires, months)
    for renewal in entry.renewals:
        r_months = term_months(PeriodType(renewal.period), renewal.periods)
        r_start, expires = expires, add_months(expires, r_months)
        r_order = new_order_id()
        _paid_period(
            conn,
            r_order,
            RENEW,
            min(now, r_start),
            renewal,
            rid,
            service,
            spec,
            r_start,
            expires,
            customer_id,
        )
        _insert_payment(conn, rid, r_order, "renewal", renewal, r_start, expires, r_months)
    blockers = set(entry.blockers)

    def subscribe(resource_id: str, name: str, service: str, rtype: str, spec: str) -> None:
        _insert_subscription(
            conn,
            resource_id=resource_id,
            name=name,
            service=service,
            rtype=rtype,
            spec=spec,
            parent=None if resource_id == rid else rid,
            provisioned=provisioned,
            expires=expires,
            entry=entry,
            order_id=order_id,
            now=now,
        )

    subscribe(rid, entry.resource, service, rtype, spec)
    if server is not None:
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
                int("locked" in blockers),
                int("locked" in blockers),
                order_id,
                int("locked" in blockers),
                rid,
            ),
        )
        children = conn.execute(
            "SELECT * FROM volumes WHERE server_id=? AND deleted=0 AND (bootable=1 OR bound=1)",
            (rid,),
        ).fetchall()
        for v in children:
            conn.execute(
                "UPDATE volumes SET order_id=?, charging_mode='prePaid' WHERE id=?",
                (order_id, v["id"]),
            )
            subscribe(v["id"], v["name"], EVS_SERVICE, VOLUME_TYPE, v["volume_type"])
    else:
        conn.execute("UPDATE volumes SET order_id=? WHERE id=?", (order_id, rid))


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
    *,
    resource_id: str,
    name: str,
    service: str,
    rtype: str,
    spec: str,
    parent: str | None,
    provisioned: datetime,
    expires: datetime,
    entry: SubscriptionEntry,
    order_id: str,
    now: datetime,
) -> None:
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
            ts(provisioned),
            ts(provisioned),
            ts(expires),
            int(entry.auto_renew),
            expire_policy_code(entry.auto_renew),
            entry.period,
            entry.periods,
            order_id,
            int(entry.promotional),
            json.dumps(sorted(entry.blockers)),
            ts(now),
        ),
    )


def _paid_period(
    conn: sqlite3.Connection,
    order_id: str,
    order_type: int,
    created: datetime,
    money: RenewalEntry | SubscriptionEntry,
    rid: str,
    service: str,
    spec: str,
    effective: datetime,
    expires: datetime,
    customer_id: str,
) -> None:
    """A completed purchase or renewal order and its one line item, paying for one period."""
    _insert_order(
        conn,
        order_id=order_id,
        customer_id=customer_id,
        service=service,
        order_type=order_type,
        status=COMPLETED,
        created=created,
        resource_ids=[rid],
        cash=money.paid,
        coupon=money.cash_coupon,
        flexi_coupon=money.flexi_coupon,
        stored_card=money.stored_card,
        discount_coupon=money.discount_coupon,
    )
    _insert_line(
        conn,
        order_id,
        rid,
        service,
        spec=spec,
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


def seed_billing(
    conn: sqlite3.Connection,
    scenario: Scenario,
    ids: dict[str, str],
    now: datetime,
    customer_id: str = "cust-sandbox-0001",
) -> None:
    """Create the scenario's subscriptions, orders and 5-day quota usage (validated here).

    Raises :class:`ConfigError` naming ``subscriptions[i].key`` or ``orders[i].key``. A prePaid
    server or disk without a ``[[subscriptions]]`` entry gets a default one (one month, nothing
    paid) so that BSS knows every prepaid resource.
    """
    entries = [
        _validate(scenario, "subscriptions", i, SubscriptionEntry, raw)
        for i, raw in enumerate(scenario.subscriptions)
    ]
    orders = [
        _validate(scenario, "orders", i, OrderEntry, raw) for i, raw in enumerate(scenario.orders)
    ]
    if scenario.five_day_refunds_used < 0:
        raise ConfigError(scenario.name, "five_day_refunds_used: must not be negative")
    for i, entry in enumerate(entries):
        _add_subscription(conn, scenario, i, entry, ids, now, customer_id)
    names = {v: k for k, v in ids.items()}
    prepaid = conn.execute(
        "SELECT id FROM servers WHERE charging_mode='1' AND deleted=0 UNION ALL "
        "SELECT id FROM volumes WHERE charging_mode='prePaid' AND deleted=0 "
        "AND NOT (bound=1 AND server_id IS NOT NULL)"
    ).fetchall()
    for r in prepaid:
        known = conn.execute("SELECT 1 FROM subscriptions WHERE resource_id=?", (r["id"],))
        if known.fetchone() is None and r["id"] in names:
            default = SubscriptionEntry(resource=names[r["id"]])
            _add_subscription(conn, scenario, len(entries), default, ids, now, customer_id)
    for order in orders:
        created = now - timedelta(days=order.created_days_ago)
        oid = new_order_id()
        status = _ORDER_STATUS[order.status]
        _insert_order(
            conn,
            order_id=oid,
            customer_id=customer_id,
            service=ECS_SERVICE if order.service == "ecs" else EVS_SERVICE,
            order_type=NEW if order.type == "new" else RENEW,
            status=status,
            created=created,
            resource_ids=[ids.get(order.resource) or str(uuid.uuid4())],
            cash=order.amount,
        )
        _insert_line(
            conn,
            oid,
            ids.get(order.resource),
            ECS_SERVICE if order.service == "ecs" else EVS_SERVICE,
            spec=order.resource,
            period="month",
            periods=1,
            effective=None,
            expires=None,
            cash=order.amount,
        )
        if status == PENDING_PAYMENT:
            schedule(conn, now, created + PENDING_VALIDITY - now, "bss.order_expired", order=oid)
        elif status == PROCESSING:
            schedule(conn, now, created + PROCESSING_TIME - now, "bss.order_processed", order=oid)
    for _ in range(scenario.five_day_refunds_used):
        conn.execute("INSERT INTO five_day_refunds(used_at) VALUES (?)", (now.isoformat(),))


@timer("bss.order_expired")
def _order_expired(conn: sqlite3.Connection, p: dict[str, Any], now: datetime) -> None:
    """R2: an order still pending payment after its validity is cancelled."""
    conn.execute(
        "UPDATE orders SET status=? WHERE id=? AND status=?",
        (CANCELLED, p["order"], PENDING_PAYMENT),
    )


@timer("bss.order_processed")
def _order_processed(conn: sqlite3.Connection, p: dict[str, Any], now: datetime) -> None:
    """R4: a processing order completes."""
    conn.execute(
        "UPDATE orders SET status=?, payment_time=? WHERE id=? AND status=?",
        (COMPLETED, ts(now), p["order"], PROCESSING),
    )


# -- reading ---------------------------------------------------------------------------------


def subscription_row(conn: sqlite3.Connection, resource_id: str) -> sqlite3.Row | None:
    row = conn.execute("SELECT * FROM subscriptions WHERE resource_id=?", (resource_id,))
    return row.fetchone()  # type: ignore[no-any-return]


def children_of(conn: sqlite3.Connection, resource_id: str) -> list[sqlite3.Row]:
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


# -- unsubscribing ---------------------------------------------------------------------------


def check_unsubscribable(conn: sqlite3.Connection, resource_id: str) -> sqlite3.Row:
    """The main subscription row of ``resource_id``, or the ApiError BSS returns."""
    row = subscription_row(conn, resource_id)
    if row is None:
        exists = conn.execute(
            "SELECT deleted FROM servers WHERE id=? "
            "UNION ALL SELECT deleted FROM volumes WHERE id=?",
            (resource_id, resource_id),
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
    sub = billing_subscription(conn, row)
    try:
        if unsubscribe_type == 1:
            quote = quote_unsubscribe(sub, now, quota_used(conn, now), rules)
        else:
            quote = quote_renewal_unsubscribe(sub, now)
    except RuleRefusal as e:
        raise ApiError(400, e.code, f"{resource_id}: {e.message}") from None
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
    family = [resource_id, *sub.bound_children]
    if unsubscribe_type == 1:
        for rid in family:
            conn.execute(
                "UPDATE subscriptions SET status=?, auto_renew=0, expire_policy=?, "
                "update_time=? WHERE resource_id=?",
                (CLOSED, expire_policy_code(False), ts(now), rid),
            )
        if quote.uses_quota:
            conn.execute(
                "INSERT INTO five_day_refunds(used_at, resource_id, order_id) VALUES (?,?,?)",
                (now.isoformat(), resource_id, oid),
            )
        kind = "server" if row["resource_type_code"] == VM_TYPE else "volume"
        conn.execute(
            "INSERT INTO releases(resource_id, kind, order_id, due_at) VALUES (?,?,?,?)",
            (resource_id, kind, oid, ts(now + release_after)),
        )
        schedule(
            conn,
            now,
            release_after,
            "bss.release",
            resource_id=resource_id,
            what=kind,
            order_id=oid,
            data_root=str(data_root),
        )
    else:
        kept = [p.expires for p in sub.payments if p.effective <= now]
        expires = ts(max(kept)) if kept else row["expire_time"]
        for rid in family:
            conn.execute(
                "UPDATE subscriptions SET expire_time=?, update_time=? WHERE resource_id=?",
                (expires, ts(now), rid),
            )
    return oid


def _record_refund(
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    sub: Subscription,
    quote: RefundQuote,
    now: datetime,
    customer_id: str,
) -> str:
    oid = new_order_id()
    _insert_order(
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
    _insert_line(
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
    for line in quote.lines:
        conn.execute(
            "INSERT INTO refund_lines(id, order_id, resource_id, amount, base_order_id, kind, "
            "service_type_code, resource_type_code) VALUES (?,?,?,?,?,?,?,?)",
            (
                uuid.uuid4().hex,
                oid,
                row["resource_id"],
                str(line.amount),
                line.base_order_id,
                line.kind,
                row["service_type_code"],
                row["resource_type_code"],
            ),
        )
    return oid


@timer("bss.release")
def _release(conn: sqlite3.Connection, p: dict[str, Any], now: datetime) -> None:
    """The queued release of an unsubscribed resource (R17, R21)."""
    rid, root = p["resource_id"], Path(p["data_root"])
    if p["what"] == "server":
        live = conn.execute("SELECT 1 FROM servers WHERE id=? AND deleted=0", (rid,)).fetchone()
        if live:
            release_server(conn, rid, now, root)
    else:
        live = conn.execute("SELECT 1 FROM volumes WHERE id=? AND deleted=0", (rid,)).fetchone()
        if live:
            delete_volume(conn, rid, now, root)
    conn.execute(
        "UPDATE releases SET released_at=? WHERE resource_id=? AND order_id=?",
        (ts(now), rid, p["order_id"]),
    )


# -- auto-renew ------------------------------------------------------------------------------


def set_auto_renew(
    conn: sqlite3.Connection,
    resource_id: str,
    on: bool,
    now: datetime,
    *,
    times: int | None = None,
    period_type: str | None = None,
) -> None:
    """Turn auto-renew on or off for a resource; on a server also for its bound children and
    the prepaid disks attached to it. Raises the documented errors (huawei.md 4.4)."""
    row = subscription_row(conn, resource_id)
    if row is None or row["status"] == CLOSED:
        raise ApiError(400, NOT_FOUND_CODE, f"resource {resource_id} does not exist")
    if current_status(row, now) in (FROZEN, CLOSED):
        raise ApiError(
            400,
            "CBC.99003602",
            f"resource {resource_id} is expired or frozen: auto-renew cannot be changed",
        )
    if not on and not row["auto_renew"]:
        raise ApiError(
            400, "CBC.99003605", f"auto-renew of resource {resource_id} is already cancelled"
        )
    family = [resource_id, *(c["resource_id"] for c in children_of(conn, resource_id))]
    if row["resource_type_code"] == VM_TYPE and not on:
        attached = conn.execute(
            "SELECT s.resource_id FROM volumes v JOIN subscriptions s ON s.resource_id=v.id "
            "WHERE v.server_id=? AND v.deleted=0 AND s.is_main=1 AND s.status=?",
            (resource_id, IN_USE),
        )
        family += [a[0] for a in attached]
    for rid in family:
        conn.execute(
            "UPDATE subscriptions SET auto_renew=?, expire_policy=?, auto_renew_times=?, "
            "renew_period_type=?, update_time=? WHERE resource_id=?",
            (
                int(on),
                expire_policy_code(on),
                times if on else None,
                period_type if on else None,
                ts(now),
                rid,
            ),
        )


# -- what is still billing -------------------------------------------------------------------


def _next_charge(expires: datetime, now: datetime, rules: BillingRules) -> datetime:
    """When auto-renew next charges (R25): the deduction date, or once it has passed without
    success, the next daily retry at the same hour."""
    charge = auto_renew_charge_at(expires, rules)
    if charge < now:
        charge += timedelta(days=-((charge - now) // timedelta(days=1)))
    return charge


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
    for r in conn.execute(
        "SELECT * FROM orders WHERE status=? ORDER BY create_time, id", (PENDING_PAYMENT,)
    ):
        out.append(
            {
                "kind": "pending_order",
                "order_id": r["id"],
                "amount": D(r["amount_after_discount"]),
                "pending_payment_end_time": r["pending_payment_end_time"],
                "resource_ids": json.loads(r["resource_ids"]),
            }
        )
    return out


__all__ = [
    "BSS_SCHEMA",
    "RULES",
    "check_unsubscribable",
    "current_status",
    "seed_billing",
    "set_auto_renew",
    "still_billing",
    "unsubscribe",
]
