"""Orders, subscriptions and refunds through Huawei BSS (v2).

``renewals_pending`` works from what BSS exposes about renewal orders: completed renewal orders
(``order_type=2``) with a line that takes effect after now and still falls within the resource's
current ``expire_time`` (a type 2 unsubscription moves ``expire_time`` back to the end of the
period in effect), and that are orders *of this resource*: ``ListPayPerUseCustomerResources``
with the order's ``order_id`` returns it (or its main resource). An order line's
``commercial_resource`` is a resource type code (``hws.resource.type.vm``), never a resource id,
so it is not used to match.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from huaweicloudsdkbss.v2 import (
    CancelAutoRenewalResourcesRequest,
    CancelCustomerOrderReq,
    CancelCustomerOrderRequest,
    PeriodToOnDemandReq,
    UpdatePeriodToOnDemandRequest,
)

from teardown.adapters.huawei._bss import UNSUBSCRIBE_RENEWALS, BssReader, unsubscribe
from teardown.adapters.huawei._parse import money, parse_time
from teardown.adapters.huawei.clients import Clients
from teardown.adapters.huawei.errors import call
from teardown.adapters.huawei.rules import (
    AUTO_RENEW_POLICY,
    NO_FUTURE_RENEWAL_CODE,
    TO_PAY_PER_USE_POLICY,
)
from teardown.core.errors import PermanentError
from teardown.core.model import Resource
from teardown.ports import OrderState, RefundRecord
from teardown.support.retry import RetryPolicy

AUTO_RENEW_ALREADY_CANCELLED = "CBC.99003605"
RENEW_ORDER, UNSUBSCRIBE_ORDER = "2", "4"
COMPLETED = 5
_STATES = {6: OrderState.PENDING_PAYMENT, 4: OrderState.CANCELLED, 5: OrderState.COMPLETED}


def _utcnow() -> datetime:
    return datetime.now(UTC)


class HuaweiBilling:
    """Implements the Billing port.

    Example::

        billing = HuaweiBilling(clients)
        billing.cancel_order("CS2611...", key="run1-cancel-CS2611")
        record = billing.refund(db1, order_ids=("CS2611...",))
    """

    def __init__(
        self,
        clients: Clients,
        *,
        sleep: Callable[[float], None] = time.sleep,
        retry: RetryPolicy | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.clients = clients
        self._clock = clock
        self._bss = BssReader(clients, sleep=sleep, retry=retry)

    @staticmethod
    def _id(resource: Resource) -> str:
        if not resource.cloud_id:
            raise PermanentError(f"{resource.name} has no cloud id: BSS cannot know it")
        return resource.cloud_id

    # -- orders ----------------------------------------------------------------------------

    def cancel_order(self, order_id: str, key: str) -> None:
        """Cancel an order pending payment (``CBC.99005010`` when its state does not allow)."""
        req = CancelCustomerOrderRequest(body=CancelCustomerOrderReq(order_id=order_id))
        call(
            "bss.CancelCustomerOrder",
            lambda: self.clients.bss.cancel_customer_order(req),
            idempotent=False,
        )

    def order_state(self, order_id: str) -> OrderState:
        o = self._bss.order(order_id)
        if o is None:
            return OrderState.NOT_FOUND
        return _STATES.get(int(o.status or 0), OrderState.OTHER)

    # -- renewals and auto-renew -----------------------------------------------------------

    def unsubscribe_renewals(self, resource: Resource, key: str) -> tuple[str, ...]:
        """Unsubscribe renewal periods not yet in effect (type 2); return the new order ids.

        ``CBC.99003128`` (no renewal period that has not taken effect) is success with no
        order: nothing will renew, and :meth:`renewals_pending` says False then too."""
        try:
            return unsubscribe(
                self.clients,
                self._id(resource),
                UNSUBSCRIBE_RENEWALS,
                f"unsubscribing the renewals of {resource.name}",
                "teardown: keep to expiry",
            )
        except PermanentError as e:
            if e.code == NO_FUTURE_RENEWAL_CODE:
                return ()
            raise

    def _subscription(self, resource: Resource) -> Any | None:
        rid = self._id(resource)
        for row in self._bss.resources([rid]):
            if row.resource_id == rid:
                return row
        return None

    def renewals_pending(self, resource: Resource) -> bool:
        """True while a paid renewal period of the resource has not yet taken effect."""
        rid = self._id(resource)
        sub = self._subscription(resource)
        expires = parse_time(sub.expire_time) if sub is not None else None
        if expires is None:
            return False
        now = self._clock()
        for o in self._bss.orders(order_type=RENEW_ORDER, status=COMPLETED):
            _info, lines = self._bss.order_details(o.order_id)
            if not any(_not_yet_in_effect(x, now, expires) for x in lines):
                continue
            touched = {str(r.resource_id) for r in self._bss.order_resources(o.order_id)}
            if rid in touched:
                return True
        return False

    def cancel_auto_renew(self, resource: Resource, key: str) -> None:
        """Turn auto-renew off; already off (``CBC.99003605``) counts as success."""
        req = CancelAutoRenewalResourcesRequest(resource_id=self._id(resource))
        try:
            call(
                "bss.CancelAutoRenewalResources",
                lambda: self.clients.bss.cancel_auto_renewal_resources(req),
                idempotent=False,
            )
        except PermanentError as e:
            if e.code != AUTO_RENEW_ALREADY_CANCELLED:
                raise

    def auto_renew(self, resource: Resource) -> bool:
        sub = self._subscription(resource)
        return sub is not None and sub.expire_policy == AUTO_RENEW_POLICY

    # -- what happens at expiry ------------------------------------------------------------

    def expire_policy(self, resource: Resource) -> int | None:
        """BSS ``expire_policy`` of the resource (R28: 0 grace, 1 to pay-per-use, 2 delete,
        3 auto-renew, 4 freeze, 5 delete from retention); None when BSS does not know it."""
        sub = self._subscription(resource)
        if sub is None or sub.expire_policy is None:
            return None
        return int(sub.expire_policy)

    def keep_from_pay_per_use(self, resource: Resource, key: str) -> None:
        """Cancel "switch to pay-per-use at expiry" (UpdatePeriodToOnDemand, CANCEL) on a main
        prepaid resource, so that it ends at expiry instead of billing by the hour.

        Idempotent: nothing is sent unless ``expire_policy`` is 1 now (the API reference makes
        a CANCEL depend on an earlier SET_UP). An entry in the answer's ``error_details`` (for
        example ``CBC.99003610``, grace or retention period) is a PermanentError."""
        if self.expire_policy(resource) != TO_PAY_PER_USE_POLICY:
            return
        body = PeriodToOnDemandReq(operation="CANCEL", resource_ids=[self._id(resource)])
        req = UpdatePeriodToOnDemandRequest(body=body)
        resp = call(
            "bss.UpdatePeriodToOnDemand",
            lambda: self.clients.bss.update_period_to_on_demand(req),
            idempotent=False,
        )
        for d in resp.error_details or []:
            raise PermanentError(
                f"{resource.name} still switches to pay-per-use at expiry: "
                f"{d.error_msg or 'refused'}",
                code=d.error_code,
                hint="cancel it in the Billing Center (Renewals) or release the resource",
            )

    # -- refunds ---------------------------------------------------------------------------

    def _unsubscribe_orders_of(self, resource: Resource) -> tuple[str, ...]:
        base = resource.billing.order_id
        if not base:
            raise PermanentError(
                f"{resource.name} has no purchase order id: cannot find its unsubscribe orders"
            )
        found: list[str] = []
        for o in self._bss.orders(order_type=UNSUBSCRIBE_ORDER):
            lines = self._bss.refund_lines(o.order_id)
            if any(x.base_order_id == base for x in lines):
                found.append(str(o.order_id))
        if not found:
            raise PermanentError(
                f"no unsubscribe order found for {resource.name} (purchase order {base})"
            )
        return tuple(found)

    def refund(self, resource: Resource, order_ids: tuple[str, ...]) -> RefundRecord:
        """Refund, consumption and fee as recorded on the unsubscribe orders themselves.

        ``order_ids`` empty: the unsubscribe orders are found by their refund lines'
        ``base_order_id`` (the resource's purchase order). Each order is cross-checked with
        ShowRefundOrderDetails: -(sum of negative amounts) must equal the order's refund.
        """
        ids = order_ids or self._unsubscribe_orders_of(resource)
        refund = consumed = fee = Decimal(0)
        currency = "CNY"
        for oid in ids:
            o = self._bss.order(oid)
            if o is None:
                raise PermanentError(f"unsubscribe order {oid} of {resource.name} not found")
            amount = money(o.amount_after_discount)
            lines = self._bss.refund_lines(oid)
            returned = -sum((money(x.amount) for x in lines if money(x.amount) < 0), Decimal(0))
            if returned != amount:
                raise PermanentError(
                    f"refund order {oid} does not add up: the order says {amount}, "
                    f"its refund lines {returned}"
                )
            refund += amount
            info = o.amount_info
            fee += money(info.commission_amount if info else None)
            consumed += money(info.consumed_amount if info else None)
            currency = o.currency or currency
        return RefundRecord(tuple(ids), refund, consumed, fee, currency)


def _not_yet_in_effect(line: Any, now: datetime, expires: datetime) -> bool:
    """An order line (``OrderLineItemEntityV2``) for a period that starts after ``now`` and ends
    by ``expires`` (the resource's current expiry)."""
    start = parse_time(line.effective_time)
    end = parse_time(line.expire_time)
    return start is not None and start > now and (end is None or end <= expires)


__all__ = ["HuaweiBilling"]
