"""Renewal reminders: the calendar of prepaid resources (when they expire, when auto-renew
would charge) and what unsubscribing today would return. The type and the window are here; the
provider computes them with its rules (Huawei's: ``teardown/adapters/huawei/reminders.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from teardown.core.model import BillingMode, Resource

DAY = timedelta(days=1)
_UNITS = {"h": timedelta(hours=1), "d": DAY, "w": timedelta(weeks=1)}
_WINDOW = re.compile(r"(\d+)([hdw])")


@dataclass(frozen=True)
class Reminder:
    """One prepaid resource's renewal calendar and what releasing it today would return."""

    name: str
    urn: str
    cloud_id: str | None
    kind: str
    """A :class:`teardown.core.model.Kind` value (``server``, ``volume``, ...)."""
    expires_at: datetime
    days_left: int
    """Whole days until expiry, rounded down (negative once expired)."""
    auto_renew: bool
    next_charge: datetime | None
    """When auto-renew deducts; None when auto-renew is off."""
    charge_in_window: bool
    """Auto-renew is on and its deduction date is no later than ``now + window``."""
    estimated_refund: Decimal | None
    """The refund if unsubscribed today; None when the rules refuse (see ``explanation``) or
    nothing is known of what was paid."""
    five_day: bool
    """Unsubscribing today would still be a full refund (Huawei: the 5-day rule)."""
    explanation: str
    """Human sentences: the renewal situation, then the refund estimate or the refusal."""


MAX_WINDOW = timedelta(days=3650)
"""Prepaid terms run for years at most: a longer window is a typo."""


def parse_window(text: str) -> timedelta:
    """``14d``, ``48h`` or ``2w`` (days, hours, weeks) as a timedelta.

    Raises ValueError naming the accepted forms for anything else, including zero.
    """
    m = _WINDOW.fullmatch(text.strip().lower())
    if m is None:
        raise ValueError(
            f"{text!r} is not a window: give a whole number followed by h (hours), d (days) or "
            "w (weeks), e.g. 48h, 14d, 2w"
        )
    n = int(m.group(1))
    if n == 0:
        raise ValueError(f"{text!r} is an empty window: give at least 1h")
    window = n * _UNITS[m.group(2)] if n <= 10**6 else MAX_WINDOW * 2
    if window > MAX_WINDOW:
        raise ValueError(f"{text!r} is longer than the longest window, 10 years (3650d)")
    return window


def prepaid(resources: Iterable[Resource]) -> list[Resource]:
    return [r for r in resources if r.billing.mode is BillingMode.PRE_PAID]


def without_expiry(resources: Iterable[Resource]) -> list[Resource]:
    """Prepaid resources whose expiry is unknown (left out by :func:`reminders`)."""
    return [r for r in prepaid(resources) if r.billing.expires_at is None]


__all__ = ["DAY", "Reminder", "parse_window", "prepaid", "without_expiry"]
