"""Renewal reminders: when prepaid resources expire, when auto-renew would charge, and what
unsubscribing today would return (huawei.md R5-R6, R25-R28).

Pure: no I/O and no clock; ``now`` is a parameter and every datetime is timezone-aware. The
refund estimate and the 5-day flag come from :func:`teardown.core.billing.quote_unsubscribe`
(type 1: release today), the charge date from :func:`teardown.core.billing.auto_renew_charge_at`.

Choices made here:

- ``days_left`` is ``floor((expires - now) / 1 day)``: 0 on the last day, negative once expired
  (grace or retention, R26).
- ``charge_in_window`` is true when auto-renew is on and its deduction date is at or before
  ``now + window``, past dates included: a deduction date that has passed while auto-renew is
  still on means BSS is retrying daily (R25), so the charge is still to be expected.
- A prepaid resource whose expiry BSS did not report cannot be placed on the calendar: it is
  left out here; :func:`without_expiry` names those so callers can say so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from teardown.core.billing import (
    BLOCKER_CODES,
    BillingRules,
    ExpiryPhase,
    RuleRefusal,
    Subscription,
    auto_renew_charge_at,
    expiry_phase,
    quote_unsubscribe,
)
from teardown.core.model import BillingMode, Resource

DAY = timedelta(days=1)
RULES = BillingRules()
"""The published rules with their documented defaults."""

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
    """When auto-renew deducts (R25); None when auto-renew is off."""
    charge_in_window: bool
    """Auto-renew is on and its deduction date is no later than ``now + window``."""
    estimated_refund: Decimal | None
    """The refund if unsubscribed today; None when the rules refuse (see ``explanation``) or
    nothing is known of what was paid."""
    five_day: bool
    """Unsubscribing today would still be a 5-day full refund (R5, R6)."""
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


def _prepaid(resources: Iterable[Resource]) -> list[Resource]:
    return [r for r in resources if r.billing.mode is BillingMode.PRE_PAID]


def without_expiry(resources: Iterable[Resource]) -> list[Resource]:
    """Prepaid resources whose expiry is unknown (left out by :func:`reminders`)."""
    return [r for r in _prepaid(resources) if r.billing.expires_at is None]


def _subscription(r: Resource) -> Subscription:
    b = r.billing
    blockers = {x for x in b.refusals if x in BLOCKER_CODES}
    if b.locked:
        blockers.add("locked")
    if b.frozen:
        blockers.add("frozen")
    provisioned = b.provisioned_at or b.payments[0].effective
    return Subscription(
        resource_id=r.cloud_id or r.urn,
        provisioned_at=provisioned,
        payments=b.payments,
        is_main=b.is_main,
        bound_children=b.children,
        blockers=frozenset(blockers),
        locked_by_order=b.lock_order_id if b.locked else None,
    )


def _when(t: datetime) -> str:
    return f"{t:%Y-%m-%d %H:%M} UTC"


def _renewal_text(
    expires: datetime,
    next_charge: datetime | None,
    in_window: bool,
    now: datetime,
    rules: BillingRules,
) -> str:
    phase = expiry_phase(expires, now, rules)
    if phase is not ExpiryPhase.ACTIVE:
        state = f"expired {_when(expires)}, now in its {phase.value} period (R26, R27)"
    else:
        state = f"expires {_when(expires)}"
    if next_charge is None:
        return (
            f"{state}; auto-renew is off: after expiry {rules.grace_days} days of grace, then "
            f"{rules.retention_days} days of retention, then release (R26, R27)"
        )
    if next_charge < now:
        when = f"its deduction date {_when(next_charge)} has passed and BSS retries daily (R25)"
    else:
        when = f"auto-renew charges on {_when(next_charge)} (R25)"
    advice = "; cancel auto-renew before then to avoid the charge" if in_window else ""
    return f"{state}; {when}{advice}"


def _refund(
    r: Resource, now: datetime, quota_used: int, rules: BillingRules
) -> tuple[Decimal | None, bool, str]:
    if not r.billing.payments:
        return None, False, "no payment is known for it: no refund estimate"
    try:
        quote = quote_unsubscribe(_subscription(r), now, quota_used, rules)
    except RuleRefusal as e:
        return None, False, f"Cannot be unsubscribed today: {e.message} ({e.code})"
    return quote.refund, quote.five_day, f"If unsubscribed today: {quote.explanation}"


def reminders(
    resources: Sequence[Resource],
    *,
    now: datetime,
    window: timedelta,
    quota_used: int,
    rules: BillingRules = RULES,
) -> list[Reminder]:
    """A reminder for every prepaid resource with a known expiry, soonest expiry first.

    ``window`` decides ``charge_in_window``; the list itself is not cut to it (callers filter
    on ``expires_at``). ``quota_used`` is the account's 5-day refunds used this calendar year.
    """
    out: list[Reminder] = []
    for r in _prepaid(resources):
        b = r.billing
        expires = b.expires_at
        if expires is None:
            continue
        next_charge = auto_renew_charge_at(expires, rules) if b.auto_renew else None
        in_window = next_charge is not None and next_charge <= now + window
        refund, five_day, refund_text = _refund(r, now, quota_used, rules)
        out.append(
            Reminder(
                name=r.name,
                urn=r.urn,
                cloud_id=r.cloud_id,
                kind=r.kind.value,
                expires_at=expires,
                days_left=(expires - now) // DAY,
                auto_renew=b.auto_renew,
                next_charge=next_charge,
                charge_in_window=in_window,
                estimated_refund=refund,
                five_day=five_day,
                explanation=(
                    f"{_renewal_text(expires, next_charge, in_window, now, rules)}. {refund_text}"
                ),
            )
        )
    out.sort(key=lambda x: (x.expires_at, x.name, x.urn))
    return out


__all__ = ["Reminder", "parse_window", "reminders", "without_expiry"]
