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
from teardown.sandbox.billing.schema import CANCELLED, COMPLETED, PENDING_PAYMENT, PROCESSING
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


ORDER_STATUS = {
    "pending_payment": PENDING_PAYMENT,
    "completed": COMPLETED,
    "cancelled": CANCELLED,
    "processing": PROCESSING,
}
"""An ``[[orders]]`` entry's ``status`` as the BSS order status."""


def validate(scenario: Scenario, table: str, i: int, model: type[BaseModel], raw: Any) -> Any:
    """``raw``, entry ``i`` of ``table``, as ``model``; a ConfigError naming the bad key if not."""
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise ConfigError(scenario.name, f"{table}[{i}].{loc}: {err['msg']}") from None
