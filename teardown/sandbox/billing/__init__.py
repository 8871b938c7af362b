"""The sandbox's BSS ledger: orders, prepaid subscriptions, payments, refunds, the yearly 5-day
quota and the release queue, and the application of Huawei's billing rules to them.

Every money figure comes from the published rules as pure functions
(:mod:`teardown.adapters.huawei.rules` and :mod:`teardown.adapters.huawei.refunds`); the ledger
only stores what was paid and what was refunded. The rules, R1 to R28, and the BSS codes are
listed with their public sources in docs/huawei-api.md.

Modules:

- :mod:`.schema`: the tables, the status, type and error codes, ``D`` and ``new_order_id``;
- :mod:`.entries`: the scenario's ``[[subscriptions]]`` and ``[[orders]]`` tables, validated;
- :mod:`.orders`: writing orders and order lines; pending orders expire, processing ones finish;
- :mod:`.seed`: a scenario's subscriptions, orders, payments and quota use;
- :mod:`.queries`: reading subscriptions, their status, the quota and what is still billing;
- :mod:`.unsubscribe`: unsubscribing, the refund order, and the queued release;
- :mod:`.autorenew`: turning auto-renew off and on, and "switch to pay-per-use at expiry";
- :mod:`.vaults`: the billing side of CBR vaults (capacity, use, price) and their bindings.

Choices the published rules leave open, made here:

- Payments are recorded on the *main* resource only; bound children (a server's system disk and
  the data disks bought with it) mirror its dates and status and are closed and released with it.
- One unsubscribe order is created per main resource, with ``base_order_id`` the purchase order.
- A subscription's ``status`` is derived at read time: 3 once unsubscribed; 4 when frozen; else by
  its expiry (R26/R27): 2 before expiry, 5 (expired) in the grace period, 4 in retention, 3 after.
  Auto-renew charges are *not* simulated: the ledger reports when the next one would be taken.
- A resource in an order that is still ``processing`` (status 3) is refused with the
  transaction-in-progress code; such orders complete 10 minutes after creation (R4).
- Pending-payment orders are cancelled automatically 7 days after creation (R2).

Importing the package registers the ledger's timers (order expiry and completion, releases).
"""

from teardown.sandbox.billing.autorenew import set_auto_renew, set_to_pay_per_use
from teardown.sandbox.billing.queries import (
    billing_subscription,
    children_of,
    current_status,
    orders_holding,
    quota_used,
    still_billing,
    subscription_row,
)
from teardown.sandbox.billing.schema import (
    BSS_SCHEMA,
    CANCELLED,
    CLOSED,
    COMPLETED,
    ECS_SERVICE,
    EVS_SERVICE,
    EXPIRED,
    FROZEN,
    GONE_CODE,
    IN_USE,
    IP_TYPE,
    NEW,
    NOT_FOUND_CODE,
    PENDING_PAYMENT,
    PROCESSING,
    RENEW,
    RULES,
    UNSUBSCRIBE,
    VM_TYPE,
    VOLUME_TYPE,
    VPC_SERVICE,
    D,
    new_order_id,
)
from teardown.sandbox.billing.seed import seed_billing
from teardown.sandbox.billing.unsubscribe import check_unsubscribable, unsubscribe

__all__ = [
    "BSS_SCHEMA",
    "CANCELLED",
    "CLOSED",
    "COMPLETED",
    "ECS_SERVICE",
    "EVS_SERVICE",
    "EXPIRED",
    "FROZEN",
    "GONE_CODE",
    "IN_USE",
    "IP_TYPE",
    "NEW",
    "NOT_FOUND_CODE",
    "PENDING_PAYMENT",
    "PROCESSING",
    "RENEW",
    "RULES",
    "UNSUBSCRIBE",
    "VM_TYPE",
    "VOLUME_TYPE",
    "VPC_SERVICE",
    "D",
    "billing_subscription",
    "check_unsubscribable",
    "children_of",
    "current_status",
    "new_order_id",
    "orders_holding",
    "quota_used",
    "seed_billing",
    "set_auto_renew",
    "set_to_pay_per_use",
    "still_billing",
    "subscription_row",
    "unsubscribe",
]
