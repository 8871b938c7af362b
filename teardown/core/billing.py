"""Billing facts every cloud shares: what was paid for a prepaid period, terms in months.

The rules that turn these into refunds, fees and renewal dates are the provider's (Huawei's are
in ``teardown/adapters/huawei/rules.py`` and ``refunds.py``). Nothing here performs I/O or reads a
clock. Every datetime must be timezone-aware.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum


class PeriodType(StrEnum):
    """The unit a prepaid product is bought in."""

    MONTH = "month"
    YEAR = "year"


def term_months(period: PeriodType, num: int) -> int:
    """The subscription term in months of ``num`` periods of ``period`` (1 year = 12 months)."""
    if num < 1:
        raise ValueError(f"period count must be at least 1, got {num}")
    return num * 12 if period is PeriodType.YEAR else num


def add_months(d: datetime, months: int) -> datetime:
    """``d`` plus calendar months, the day clamped to the end of a shorter month."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    nxt = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    last = (nxt - timedelta(days=1)).day
    return d.replace(year=year, month=month, day=min(d.day, last))


def aware(name: str, value: datetime) -> None:
    """ValueError unless ``value`` is timezone-aware (``name`` says which value)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")


@dataclass(frozen=True)
class Payment:
    """What was paid for one purchase or renewal order line, and the period it pays for."""

    order_id: str
    cash: Decimal
    """Cash account amount: paid."""
    effective: datetime
    """Start of the period this order line pays for."""
    expires: datetime
    """End of that period."""
    term_months: int
    """The product's subscription term (selects the fee-table rows)."""
    flexi_coupon: Decimal = Decimal(0)
    """现金券 (flexi-purchase coupon): counts as paid (R11)."""
    stored_card: Decimal = Decimal(0)
    """储值卡 (stored-value card): counts as paid (R11)."""
    cash_coupon: Decimal = Decimal(0)
    """代金券: not paid; returned only by a 5-day refund (R7) or a no-fee case (R13)."""
    discount_coupon: Decimal = Decimal(0)
    """折扣券: never returned (R7, R11)."""
    promotion: bool | None = False
    """Bought at a promotional discount (the cloud may refuse its unsubscribe, R16); None when
    the order's discounts are not known, so a promotion cannot be ruled out."""

    def __post_init__(self) -> None:
        aware("effective", self.effective)
        aware("expires", self.expires)
        if self.expires <= self.effective:
            raise ValueError(f"payment {self.order_id}: expires must be after effective")
        if self.term_months < 1:
            raise ValueError(f"payment {self.order_id}: term_months must be at least 1")
        amounts = (
            self.cash,
            self.flexi_coupon,
            self.stored_card,
            self.cash_coupon,
            self.discount_coupon,
        )
        if any(a < 0 for a in amounts):
            raise ValueError(f"payment {self.order_id}: amounts must not be negative")

    @property
    def paid(self) -> Decimal:
        """Paid in the sense of R11: cash + 现金券 + stored-value card (excludes 代金券)."""
        return self.cash + self.flexi_coupon + self.stored_card
