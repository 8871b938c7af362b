"""The billing side of a scenario, validated: its ``[[subscriptions]]`` and ``[[orders]]``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from teardown.core.errors import ConfigError
from teardown.sandbox.billing.schema import (
    CANCELLED,
    CHANGE,
    COMPLETED,
    EXCHANGING,
    FEE_ADJUSTMENT,
    NEW,
    PENDING_CONFIRMATION,
    PENDING_PAYMENT,
    PENDING_PICKUP,
    PENDING_RECEIPT,
    PENDING_REFUND,
    PENDING_REVIEW,
    PENDING_SHIPMENT,
    PROCESSING,
    RENEW,
    TO_COMMERCIAL,
    TO_PAY_PER_USE,
    TO_PERIOD,
    TRIAL,
)
from teardown.sandbox.scenario import Scenario

_Money = Field(default=Decimal(0), ge=0)

ExpirePolicy = Literal["grace", "to_pay_per_use", "delete", "freeze", "delete_from_retention"]
POLICY_KEYS: dict[str, str] = {
    "grace": "grace",
    "to_pay_per_use": "on_demand",
    "delete": "delete",
    "freeze": "freeze",
    "delete_from_retention": "delete_from_retention",
}
"""A subscription's ``expire_policy`` as the key of
:data:`teardown.adapters.huawei.rules.EXPIRE_POLICIES`."""


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
    expire_policy: ExpirePolicy = "grace"
    """What happens at expiry when auto-renew is off (BSS ``expire_policy``, R28):
    ``to_pay_per_use`` makes it bill by the hour after it expires."""
    renewals: list[RenewalEntry] = Field(default_factory=list)
    promotional: bool = False
    """Bought in a promotion that excludes the 5-day full refund (R8)."""
    promotion_discount: Decimal = _Money
    """The promotion's price cut: the purchase order lists it as a discount of type 200
    (促销产品折扣, the SDK's ``DiscountItemV2``), so a reader of the order can tell."""
    blockers: list[str] = Field(default_factory=list)
    """Keys of :data:`teardown.adapters.huawei.rules.BLOCKER_CODES`."""

    @field_validator("expire_policy")
    @classmethod
    def _one_expiry(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("auto_renew") and value != "grace":
            raise ValueError(
                "auto_renew and expire_policy exclude each other: auto-renew is expire_policy 3"
            )
        return value


OrderStatus = Literal[
    "pending_review",
    "pending_refund",
    "processing",
    "cancelled",
    "completed",
    "pending_payment",
    "pending_confirmation",
    "pending_shipment",
    "pending_receipt",
    "pending_pickup",
    "exchanging",
]
OrderType = Literal[
    "new",
    "renew",
    "change",
    "to_pay_per_use",
    "to_period",
    "trial",
    "to_commercial",
    "fee_adjustment",
]


class OrderEntry(BaseModel):
    """An ``[[orders]]`` entry: an order that is not a paid purchase (typically pending)."""

    model_config = ConfigDict(extra="forbid")
    resource: str
    """A resource name; need not exist (e.g. a server never provisioned because unpaid)."""
    type: OrderType = "new"
    """The BSS order type: ``to_period`` (按需转包年/包月) on a pay-per-use server locks it
    (ECS ``lockScene`` TO_PERIOD_LOCK, ``lockSourceId`` this order) while it is pending."""
    status: OrderStatus = "pending_payment"
    service: Literal["ecs", "evs"] = "ecs"
    amount: Decimal = _Money
    created_days_ago: float = Field(default=0, ge=0)
    region: str | None = None
    """Another region's order (None: the sandbox's): its resource, named only here, is a
    yearly/monthly resource of that region BSS knows (ListPayPerUseCustomerResources lists it
    with that ``region_code``); a ``new`` order of another region provisions nothing."""
    combined: str | None = None
    """A label: the entries that share it are the sub-orders of one combined order (组合交易),
    which ListCustomerOrders lists instead of them (with ``sub_order_infos``)."""


ORDER_STATUS = {
    "pending_review": PENDING_REVIEW,
    "pending_refund": PENDING_REFUND,
    "processing": PROCESSING,
    "cancelled": CANCELLED,
    "completed": COMPLETED,
    "pending_payment": PENDING_PAYMENT,
    "pending_confirmation": PENDING_CONFIRMATION,
    "pending_shipment": PENDING_SHIPMENT,
    "pending_receipt": PENDING_RECEIPT,
    "pending_pickup": PENDING_PICKUP,
    "exchanging": EXCHANGING,
}
"""An ``[[orders]]`` entry's ``status`` as the BSS order status (the SDK's
``CustomerOrderV2.status``)."""

ORDER_TYPE = {
    "new": NEW,
    "renew": RENEW,
    "change": CHANGE,
    "to_pay_per_use": TO_PAY_PER_USE,
    "to_period": TO_PERIOD,
    "trial": TRIAL,
    "to_commercial": TO_COMMERCIAL,
    "fee_adjustment": FEE_ADJUSTMENT,
}
"""An ``[[orders]]`` entry's ``type`` as the BSS order type (the SDK's
``CustomerOrderV3.order_type``; 4, unsubscribe, is made by unsubscribing)."""


def validate(scenario: Scenario, table: str, i: int, model: type[BaseModel], raw: Any) -> Any:
    """``raw``, entry ``i`` of ``table``, as ``model``; a ConfigError naming the bad key if not."""
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise ConfigError(scenario.name, f"{table}[{i}].{loc}: {err['msg']}") from None
