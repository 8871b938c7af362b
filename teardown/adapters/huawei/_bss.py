"""BSS calls shared by the adapters: paged reads (idempotent) and the one unsubscribe call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from huaweicloudsdkbss.v2 import (
    CancelResourcesSubscriptionRequest,
    ListCustomerOrdersRequest,
    ListPayPerUseCustomerResourcesRequest,
    QueryResourcesReq,
    ShowCustomerOrderDetailsRequest,
    ShowRefundOrderDetailsRequest,
    UnsubscribeResourcesReq,
)

from teardown.adapters.huawei.clients import Clients
from teardown.adapters.huawei.errors import ApiCaller, call
from teardown.core.errors import PermanentError

UNSUBSCRIBE_RELEASE = 1
"""Unsubscribe the resource and its renewals: it is released."""
UNSUBSCRIBE_RENEWALS = 2
"""Unsubscribe only renewal periods not yet in effect: it runs until it expires."""
REASON_OTHER = 5


def unsubscribe(
    clients: Clients, resource_id: str, kind: int, what: str, reason: str
) -> tuple[str, ...]:
    """CancelResourcesSubscription for one id (a mutation: never retried here); any
    ``fail_resource_infos`` entry is a failure, though the API reference calls the field
    reserved (docs/huawei-api.md, "BSS") and the Terraform provider never reads it
    (``UnsubscribePrePaidResource`` in
    https://github.com/huaweicloud/terraform-provider-huaweicloud/blob/master/huaweicloud/common/common.go)."""
    body = UnsubscribeResourcesReq(
        resource_ids=[resource_id],
        unsubscribe_type=kind,
        unsubscribe_reason_type=REASON_OTHER,
        unsubscribe_reason=reason,
    )
    req = CancelResourcesSubscriptionRequest(body=body)
    resp = call(
        "bss.CancelResourcesSubscription",
        lambda: clients.bss.cancel_resources_subscription(req),
        idempotent=False,
    )
    for f in resp.fail_resource_infos or []:
        raise PermanentError(f"{what} failed for {f.resource_id}: {f.error_msg}", code=f.error_code)
    return tuple(str(o) for o in resp.order_ids or [])


ORDER_PAGE = 100
RESOURCE_PAGE = 100
RESOURCE_IDS_PER_QUERY = 50
"""ListPayPerUseCustomerResources takes at most 50 resource ids."""

DISCOUNT_COUPON_TYPES = frozenset({"300"})
"""``discount_type`` values of a 折扣券: ``300`` (促销折扣券) in the SDK's ``DiscountItemV2``
docstring, the only source; no source names another spelling."""

ORDER_STATUSES = {
    1: "pending review",
    2: "pending refund",
    3: "processing",
    4: "cancelled",
    5: "completed",
    6: "pending payment",
    9: "pending confirmation",
    10: "pending shipment",
    11: "pending receipt",
    12: "pending pickup",
    13: "being exchanged",
}
"""``CustomerOrderV2.status`` (the SDK's docstring): only 6 can be cancelled (R1)."""
ORDER_TYPES = {
    1: "new",
    2: "renewal",
    3: "change",
    4: "unsubscribe",
    10: "yearly/monthly to pay-per-use",
    11: "pay-per-use to yearly/monthly",
    13: "trial",
    14: "trial to commercial",
    15: "fee adjustment",
}
"""``CustomerOrderV3.order_type`` (the SDK's docstring)."""


class BssReader(ApiCaller):
    """Paged BSS queries through :func:`call` (retried: they only read)."""

    def _orders_page(self, req: Any) -> Any:
        return self._read(
            "bss.ListCustomerOrders", lambda: self.clients.bss.list_customer_orders(req)
        )

    def _details_page(self, req: Any) -> Any:
        return self._read(
            "bss.ShowCustomerOrderDetails",
            lambda: self.clients.bss.show_customer_order_details(req),
        )

    def _resources_page(self, req: Any) -> Any:
        return self._read(
            "bss.ListPayPerUseCustomerResources",
            lambda: self.clients.bss.list_pay_per_use_customer_resources(req),
        )

    def orders(self, **filters: Any) -> list[Any]:
        """Every ``CustomerOrderV2`` matching ``filters`` (ListCustomerOrders query fields)."""
        out: list[Any] = []
        offset = 0
        while True:
            req = ListCustomerOrdersRequest(limit=ORDER_PAGE, offset=offset, **filters)
            resp = self._orders_page(req)
            page = list(resp.order_infos or [])
            out.extend(page)
            offset += len(page)
            if not page or offset >= int(resp.total_count or 0):
                return out

    def order(self, order_id: str) -> Any | None:
        """The order ``order_id`` (``CustomerOrderV2``) or None."""
        for o in self.orders(order_id=order_id):
            if o.order_id == order_id:
                return o
        return None

    def order_details(self, order_id: str) -> tuple[Any, list[Any]]:
        """``(CustomerOrderV3, [OrderLineItemEntityV2, ...])`` of one order."""
        lines: list[Any] = []
        offset = 0
        info: Any = None
        while True:
            req = ShowCustomerOrderDetailsRequest(
                order_id=order_id, limit=ORDER_PAGE, offset=offset
            )
            resp = self._details_page(req)
            info = resp.order_info if info is None else info
            page = list(resp.order_line_items or [])
            lines.extend(page)
            offset += len(page)
            if not page or offset >= int(resp.total_count or 0):
                return info, lines

    def resources(self, resource_ids: Sequence[str]) -> list[Any]:
        """``OrderInstanceV2`` of each id and of its bound children (``only_main_resource=0``)."""
        out: list[Any] = []
        ids = list(dict.fromkeys(resource_ids))
        for i in range(0, len(ids), RESOURCE_IDS_PER_QUERY):
            chunk = ids[i : i + RESOURCE_IDS_PER_QUERY]
            offset = 0
            while True:
                body = QueryResourcesReq(
                    resource_ids=chunk, only_main_resource=0, offset=offset, limit=RESOURCE_PAGE
                )
                req = ListPayPerUseCustomerResourcesRequest(body=body)
                resp = self._resources_page(req)
                page = list(resp.data or [])
                out.extend(page)
                offset += len(page)
                if not page or offset >= int(resp.total_count or 0):
                    break
        return out

    def order_resources(self, order_id: str) -> list[Any]:
        """``OrderInstanceV2`` of the provisioned yearly/monthly resources of an order, bound
        children included: ``QueryResourcesReq.order_id`` (查询指定订单下的资源), the link the
        API reference gives from an order to its resources (ListCustomerOrders' old page: "如果想
        查询某条订单下的资源信息 ... 在请求参数输入订单号进行查询")."""
        out: list[Any] = []
        offset = 0
        while True:
            body = QueryResourcesReq(
                order_id=order_id, only_main_resource=0, offset=offset, limit=RESOURCE_PAGE
            )
            resp = self._resources_page(ListPayPerUseCustomerResourcesRequest(body=body))
            page = list(resp.data or [])
            out.extend(page)
            offset += len(page)
            if not page or offset >= int(resp.total_count or 0):
                return out

    def subscriptions(self, status_list: Sequence[int]) -> list[Any]:
        """Every ``OrderInstanceV2`` of the customer with one of these statuses (2 in use,
        3 closed, 4 frozen, 5 expired), main resources and their bound children."""
        out: list[Any] = []
        offset = 0
        while True:
            body = QueryResourcesReq(
                status_list=list(status_list),
                only_main_resource=0,
                offset=offset,
                limit=RESOURCE_PAGE,
            )
            resp = self._resources_page(ListPayPerUseCustomerResourcesRequest(body=body))
            page = list(resp.data or [])
            out.extend(page)
            offset += len(page)
            if not page or offset >= int(resp.total_count or 0):
                return out

    def refund_lines(self, order_id: str) -> list[Any]:
        """``OrderRefundInfoV2`` lines of an unsubscribe order."""
        req = ShowRefundOrderDetailsRequest(order_id=order_id)
        resp = self._read(
            "bss.ShowRefundOrderDetails", lambda: self.clients.bss.show_refund_order_details(req)
        )
        return list(resp.refund_infos or [])


def discount_coupons(amount_info: Any) -> list[Any]:
    """The discount items of ``amount_info`` that are 折扣券."""
    if amount_info is None:
        return []
    return [
        d for d in (amount_info.discounts or []) if str(d.discount_type) in DISCOUNT_COUPON_TYPES
    ]
