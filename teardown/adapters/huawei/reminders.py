"""Renewal reminders under Huawei Cloud's rules: when prepaid resources expire, when auto-renew
would charge, and what unsubscribing today would return (docs/huawei-api.md, "Billing rules").

Pure: no I/O and no clock; ``now`` is a parameter and every datetime is timezone-aware. The
refund estimate and the 5-day flag come from :func:`.refunds.quote_unsubscribe` (type 1: release
today), the charge date from :func:`.rules.auto_renew_charge_at`.

Choices made here:

- ``days_left`` is ``floor((expires - now) / 1 day)``: 0 on the last day, negative once expired
  (grace or retention, R26).
- ``charge_in_window`` is true when auto-renew is on and its deduction date is at or before
  ``now + window``, past dates included: a deduction date that has passed while auto-renew is
  still on means BSS is retrying daily (R25), so the charge is still to be expected.
- A prepaid resource whose expiry BSS did not report cannot be placed on the calendar: it is
  left out here; :func:`teardown.core.reminders.without_expiry` names those so callers can say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from teardown.adapters.huawei.refunds import RULES, quote_unsubscribe, subscription
from teardown.adapters.huawei.rules import (
    BillingRules,
    ExpiryPhase,
    RuleRefusal,
    auto_renew_charge_at,
    expiry_phase,
)
from teardown.core.model import Resource
from teardown.core.reminders import DAY, Reminder, prepaid


def _when(t: datetime) -> str:
    return f"{t:%Y-%m-%d %H:%M %Z}"  # with its zone: charges follow the site's clock (R25)


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
        quote = quote_unsubscribe(subscription(r, lock_and_freeze=True), now, quota_used, rules)
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
    for r in prepaid(resources):
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
