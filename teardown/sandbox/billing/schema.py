"""The BSS tables, the codes stored in them, and the small helpers every ledger module shares.

Amounts are stored as decimal strings, times as ``YYYY-MM-DDTHH:MM:SSZ``. The status, type and
error codes are BSS's own (docs/huawei-api.md).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from teardown.adapters.huawei.rules import BillingRules

ECS_SERVICE = "hws.service.type.ec2"
EVS_SERVICE = "hws.service.type.ebs"
VM_TYPE = "hws.resource.type.vm"
VOLUME_TYPE = "hws.resource.type.volume"
VPC_SERVICE = "hws.service.type.vpc"
"""The service an EIP bills under (a code the BSS SDK's docstrings list)."""
IP_TYPE = "hws.resource.type.ip"
"""A yearly/monthly EIP's resource type. Assumption: the BSS SDK lists only
``hws.resource.type.bandwidth`` for the VPC service; ``hws.resource.type.ip`` is the code public
client code uses for an EIP (docs/huawei-api.md, section EIP)."""

# Order status (the SDK's ``CustomerOrderV2.status``: 1 待审核 pending review, 2 待退款 pending
# refund, 3 处理中 processing, 4 已取消 cancelled, 5 已完成 completed, 6 待支付 pending payment,
# 9 待确认 pending confirmation, 10 待发货 pending shipment, 11 待收货 pending receipt,
# 12 待上门取货 pending pickup, 13 换新中 being exchanged).
PENDING_REVIEW, PENDING_REFUND, PROCESSING, CANCELLED, COMPLETED, PENDING_PAYMENT = 1, 2, 3, 4, 5, 6
PENDING_CONFIRMATION, PENDING_SHIPMENT, PENDING_RECEIPT = 9, 10, 11
PENDING_PICKUP, EXCHANGING = 12, 13
ORDER_STATUSES = frozenset({1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13})
# Order type (the SDK's ``CustomerOrderV3.order_type``: 1 开通 new, 2 续订 renewal, 3 变更 change,
# 4 退订 unsubscribe, 10 包年/包月转按需 to pay-per-use, 11 按需转包年/包月 to yearly/monthly,
# 13 试用 trial, 14 转商用 to commercial use, 15 费用调整 fee adjustment).
NEW, RENEW, CHANGE, UNSUBSCRIBE = 1, 2, 3, 4
TO_PAY_PER_USE, TO_PERIOD, TRIAL, TO_COMMERCIAL, FEE_ADJUSTMENT = 10, 11, 13, 14, 15
ORDER_TYPES = frozenset({1, 2, 3, 4, 10, 11, 13, 14, 15})
# Subscription status (ListPayPerUseCustomerResources ``status``).
IN_USE, CLOSED, FROZEN, EXPIRED = 2, 3, 4, 5

NOT_FOUND_CODE = "CBC.99003012"
GONE_CODE = "CBC.30000067"
FEE_QUERY_CODE = "CBC.99006066"
"""CancelResourcesSubscription: "查询费用信息错误" (the fee information could not be queried)."""
COMBINED_ORDER_CODE = "CBC.99000089"
"""CancelCustomerOrder: "当前订单号不能操作,请使用组合交易单号操作" (a sub-order of a combined
order: use the combined order's id)."""
ACCESS_DENIED_CODE = "CBC.0151"
"""Every BSS operation, HTTP 403: "访问拒绝" (access denied)."""
OTHER_ERROR_CODE = "CBC.0999"
"""Every BSS operation, HTTP 500: "其他错误" (other error)."""

SANDBOX_FAULTS: dict[str, tuple[str, str]] = {
    "fee_query_error": (FEE_QUERY_CODE, "the fee information could not be queried"),
}
"""Scenario ``blockers`` that are not billing rules but documented BSS failures the sandbox
produces on CancelResourcesSubscription (both types)."""

RULES = BillingRules()
"""The rules the sandbox applies (the documented defaults; the sandbox config has no override)."""

BSS_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, service_type_code TEXT NOT NULL,
    order_type INTEGER NOT NULL,             -- ORDER_TYPES (1 new, 2 renew, 4 unsubscribe, ...)
    status INTEGER NOT NULL,                 -- ORDER_STATUSES (5 completed, 6 pending, ...)
    amount_after_discount TEXT NOT NULL DEFAULT '0',  -- cash paid; refund on unsubscribe orders
    official_amount TEXT NOT NULL DEFAULT '0',
    coupon TEXT NOT NULL DEFAULT '0',        -- 代金券 (cash coupon)
    flexi_coupon TEXT NOT NULL DEFAULT '0',  -- 现金券
    stored_card TEXT NOT NULL DEFAULT '0',
    discount_coupon TEXT NOT NULL DEFAULT '0',  -- 折扣券
    promotion TEXT NOT NULL DEFAULT '0',     -- 促销产品折扣 (discount_type 200)
    commission TEXT NOT NULL DEFAULT '0',    -- handling fee (unsubscribe orders)
    consumed TEXT NOT NULL DEFAULT '0',      -- consumed amount (unsubscribe orders)
    currency TEXT NOT NULL DEFAULT 'CNY', measure_id INTEGER NOT NULL DEFAULT 1,
    create_time TEXT NOT NULL, payment_time TEXT, pending_payment_end_time TEXT,
    base_order_id TEXT,
    resource_ids TEXT NOT NULL DEFAULT '[]', -- what the order touches (the ledger's own link)
    region TEXT,                             -- NULL: the sandbox account's region
    combined_id TEXT);                       -- set on a sub-order: its combined order's id
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
    blockers TEXT NOT NULL DEFAULT '[]',     -- keys of BLOCKER_CODES (and see SANDBOX_FAULTS)
    update_time TEXT NOT NULL,
    region TEXT);                            -- NULL: the sandbox account's region
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
    resource_id TEXT NOT NULL, kind TEXT NOT NULL,  -- 'server' | 'volume' | 'eip'
    order_id TEXT NOT NULL, due_at TEXT NOT NULL, released_at TEXT,
    PRIMARY KEY (resource_id, order_id));
CREATE TABLE IF NOT EXISTS vault_billing (
    vault_id TEXT PRIMARY KEY,               -- a row of the compute schema's ``vaults``
    object_type TEXT NOT NULL DEFAULT 'server',  -- 'server' | 'disk' (CBR billing.object_type)
    size_gb INTEGER NOT NULL DEFAULT 10240,  -- capacity (billing.size): what a vault bills by
    charging_mode TEXT NOT NULL DEFAULT 'post_paid',
    status TEXT NOT NULL DEFAULT 'available',
    auto_bind INTEGER NOT NULL DEFAULT 1,    -- checkpoints bind unbound resources themselves
    price_per_gb_month TEXT NOT NULL DEFAULT '0.10',  -- sandbox data, CNY per GB of capacity
    created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vault_resources (
    vault_id TEXT NOT NULL, resource_id TEXT NOT NULL,
    resource_type TEXT NOT NULL,             -- OS::Nova::Server | OS::Cinder::Volume
    added TEXT NOT NULL, PRIMARY KEY (vault_id, resource_id));
"""
"""The BSS tables (passed to :class:`teardown.sandbox.store.Store` with the compute schema),
and the billing side of CBR vaults with the resources bound to each (``vault_billing``,
``vault_resources``: kept here so that every store holding the ledger holds them; a vault with
no ``vault_billing`` row, from an older state file, has the defaults above)."""


def D(value: object) -> Decimal:
    """A stored decimal string as a Decimal."""
    return Decimal(str(value))


def new_order_id() -> str:
    """An order id in Huawei's style (``CS`` + 14 upper-case characters)."""
    return "CS" + uuid.uuid4().hex[:14].upper()
