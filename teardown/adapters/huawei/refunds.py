"""Refund quotes under Huawei Cloud's published rules: what unsubscribing returns and costs.

The sandbox's BSS computes refunds with these functions (the truth there); the planner's estimates
and the renewal reminders use the same ones (an estimate here). See :mod:`rules` for the choices
made where the published rules leave something open.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from teardown.adapters.huawei.rules import (
    BLOCKER_CODES,
    HOUR,
    NO_FUTURE_RENEWAL_CODE,
    BillingRules,
    RuleRefusal,
    Subscription,
    auto_renew_charge_at,
    five_day_eligible,
    refusal_for,
)
from teardown.core.billing import Payment, add_months, aware
from teardown.core.model import DestroyAction, Estimate, Resource

CENT = Decimal("0.01")


class LineKind(StrEnum):
    """The kind of a refund order line."""

    REFUND = "refund"
    CONSUMED = "consumed"
    FEE = "fee"
    COUPON_RETURNED = "coupon_returned"


@dataclass(frozen=True)
class RefundLine:
    """One line of a refund order (ShowRefundOrderDetails).

    ``amount`` is negative for value returned (money, returned 代金券) and positive for consumption
    or a handling fee, as in the real API (docs/huawei-api.md, "BSS": ShowRefundOrderDetails).
    """

    base_order_id: str
    amount: Decimal
    kind: str
    """A :class:`LineKind` value."""


@dataclass(frozen=True)
class RefundQuote:
    """What unsubscribing would return and cost; an estimate for the planner, the truth in the
    sandbox. ``refund + consumed + fee == paid`` always holds."""

    five_day: bool
    """A full refund under R5-R7."""
    uses_quota: bool
    """Counts one instance against the yearly 5-day quota (R6)."""
    refund: Decimal
    """Money back to the account (>= 0), in cents."""
    consumed: Decimal
    fee: Decimal
    coupons_returned: Decimal
    """代金券 returned (5-day or no-fee cases)."""
    coupons_lost: Decimal
    """折扣券, and 代金券 that are not returned."""
    lines: tuple[RefundLine, ...]
    explanation: str
    """One human sentence."""
    paid: Decimal = Decimal(0)
    """Sum of what was paid (R11 sense) over the order lines quoted."""


def _cents(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def fee_rate(payment: Payment, now: datetime, rules: BillingRules) -> Decimal:
    """The handling-fee rate (R12) for unsubscribing ``payment``'s period at ``now``.

    Rows are those of the payment's term, or of the longest listed term below it; the first row
    (by ``used_up_to_months``) with ``now <= effective + used_up_to_months`` applies, else the last.
    An empty table (or a term shorter than any listed) means no fee.
    """
    terms = sorted({r.term_months for r in rules.fee_table if r.term_months <= payment.term_months})
    if not terms:
        return Decimal(0)
    rows = sorted(
        (r for r in rules.fee_table if r.term_months == terms[-1]),
        key=lambda r: r.used_up_to_months,
    )
    for r in rows:
        if now <= add_months(payment.effective, r.used_up_to_months):
            return r.rate
    return rows[-1].rate


@dataclass(frozen=True)
class OrdinaryTerms:
    """The ordinary-refund arithmetic of one order line (R10-R12), before clamping."""

    paid: Decimal
    """cash + 现金券 + stored-value card, in cents."""
    used_hours: int
    total_hours: int
    rate: Decimal
    consumed: Decimal
    """paid x used_hours / total_hours, in cents."""
    fee: Decimal
    """rate x paid, in cents."""
    refund: Decimal
    """paid - consumed - fee, exactly; may be negative (then clamp, see :func:`clamp`)."""


def ordinary_terms(payment: Payment, now: datetime, rules: BillingRules) -> OrdinaryTerms:
    """R11's formula for one order line at ``now``, unclamped: refund + consumed + fee == paid.

    Hours are whole hours rounded down; used hours are clamped to ``0..total``.
    """
    aware("now", now)
    paid = _cents(payment.paid)
    total = max(1, (payment.expires - payment.effective) // HOUR)
    used = min(total, max(0, (now - payment.effective) // HOUR))
    rate = fee_rate(payment, now, rules)
    consumed = _cents(paid * used / total)
    fee = _cents(paid * rate)
    return OrdinaryTerms(paid, used, total, rate, consumed, fee, paid - consumed - fee)


def clamp(terms: OrdinaryTerms) -> tuple[Decimal, Decimal, Decimal]:
    """(refund, consumed, fee) with refund >= 0 (R11: below zero nothing is refunded).

    Consumption is charged first and the fee capped at what is left, so the three still sum to
    ``paid``.
    """
    if terms.refund >= 0:
        return _cents(terms.refund), terms.consumed, terms.fee
    consumed = min(terms.consumed, terms.paid)
    return Decimal(0), consumed, terms.paid - consumed


@dataclass
class _Acc:
    refund: Decimal = Decimal(0)
    consumed: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    paid: Decimal = Decimal(0)
    returned: Decimal = Decimal(0)
    lost: Decimal = Decimal(0)
    lines: list[RefundLine] = field(default_factory=list)

    def full(self, p: Payment) -> None:
        """Everything paid back, 代金券 returned, 折扣券 lost, no fee (R7, R13)."""
        self.paid += _cents(p.paid)
        self.refund += _cents(p.paid)
        self.returned += p.cash_coupon
        self.lost += p.discount_coupon
        self._line(p.order_id, -_cents(p.paid), LineKind.REFUND)
        self._line(p.order_id, -p.cash_coupon, LineKind.COUPON_RETURNED)

    def ordinary(self, p: Payment, refund: Decimal, consumed: Decimal, fee: Decimal) -> None:
        self.paid += _cents(p.paid)
        self.refund += refund
        self.consumed += consumed
        self.fee += fee
        self.lost += p.cash_coupon + p.discount_coupon
        self._line(p.order_id, -refund, LineKind.REFUND)
        self._line(p.order_id, consumed, LineKind.CONSUMED)
        self._line(p.order_id, fee, LineKind.FEE)

    def _line(self, order_id: str, amount: Decimal, kind: LineKind) -> None:
        if amount != 0:
            self.lines.append(RefundLine(order_id, amount, kind.value))

    def quote(self, five_day: bool, uses_quota: bool, explanation: str) -> RefundQuote:
        return RefundQuote(
            five_day=five_day,
            uses_quota=uses_quota,
            refund=_cents(self.refund),
            consumed=_cents(self.consumed),
            fee=_cents(self.fee),
            coupons_returned=_cents(self.returned),
            coupons_lost=_cents(self.lost),
            lines=tuple(self.lines),
            explanation=explanation,
            paid=_cents(self.paid),
        )


def quote_unsubscribe(
    sub: Subscription, now: datetime, quota_used_this_year: int, rules: BillingRules
) -> RefundQuote:
    """Unsubscribe type 1 (release now): the refund order, line by payment line.

    Raises :class:`RuleRefusal` for a blocker. Each payment line is, in this order:

    - a renewal not yet effective (``effective > now``): paid back in full, 代金券 returned, no
      fee, no consumption, no quota (R13);
    - 5-day eligible: paid back in full, 代金券 returned, 折扣券 lost, no fee (R7);
    - ordinary (R10-R12): see :func:`ordinary_terms` and :func:`clamp`; 代金券 and 折扣券 lost.
    """
    refusal = refusal_for(sub)
    if refusal is not None:
        raise refusal
    eligible, reason = five_day_eligible(sub, now, quota_used_this_year, rules)
    acc = _Acc()
    future = [p for p in sub.payments if p.effective > now]
    current = [p for p in sub.payments if p.effective <= now]
    for p in future:
        acc.full(p)
    five_day = eligible and bool(current)
    used_h = total_h = 0
    rates: set[Decimal] = set()
    for p in current:
        if five_day:
            acc.full(p)
        else:
            terms = ordinary_terms(p, now, rules)
            used_h += terms.used_hours
            total_h += terms.total_hours
            rates.add(terms.rate)
            acc.ordinary(p, *clamp(terms))
    tail = f"; {len(future)} unused renewal(s) refunded in full (R13)" if future else ""
    if five_day:
        text = f"5-day full refund ({reason}){tail}"
    elif current:
        pct = "/".join(f"{(r * 100).normalize():f}%" for r in sorted(rates))
        text = (
            f"ordinary refund: paid {acc.paid} - consumed {acc.consumed} ({used_h} h of "
            f"{total_h} h) - fee {acc.fee} ({pct}) = {_cents(acc.refund)} "
            f"(not a 5-day refund: {reason}){tail}"
        )
    else:
        text = f"not yet in effect: refunded in full without fee (R13){tail}"
    return acc.quote(five_day, five_day, text)


def quote_renewal_unsubscribe(sub: Subscription, now: datetime) -> RefundQuote:
    """Unsubscribe type 2: only renewal periods not yet in effect, each refunded in full with its
    代金券 and without fee or quota (R13). The resource keeps running to its current expiry.

    Raises :class:`RuleRefusal` for a blocker, or ``CBC.99003128`` when there is no such period.
    """
    aware("now", now)
    refusal = refusal_for(sub)
    if refusal is not None:
        raise refusal
    future = [p for p in sub.payments if p.effective > now]
    if not future:
        raise RuleRefusal(
            NO_FUTURE_RENEWAL_CODE,
            f"{sub.resource_id} has no renewal period that has not yet taken effect: nothing to "
            "unsubscribe; cancel auto-renew to stop future renewals",
        )
    acc = _Acc()
    for p in future:
        acc.full(p)
    return acc.quote(
        False,
        False,
        f"{len(future)} renewal period(s) not yet in effect refunded in full without fee (R13)",
    )


RULES = BillingRules()
"""The published rules with their documented defaults (the sandbox uses the same)."""


def subscription(r: Resource, *, lock_and_freeze: bool = False) -> Subscription:
    """``r``'s prepaid subscription as the rules see it. ``lock_and_freeze`` counts a lock or a
    freeze as a refusal (the reminders do; the planner warns about them separately)."""
    b = r.billing
    blockers = {x for x in b.refusals if x in BLOCKER_CODES}
    if lock_and_freeze and b.locked:
        blockers.add("locked")
    if lock_and_freeze and b.frozen:
        blockers.add("frozen")
    return Subscription(
        resource_id=r.cloud_id or r.urn,
        provisioned_at=b.provisioned_at or b.payments[0].effective,
        payments=b.payments,
        is_main=b.is_main,
        bound_children=b.children,
        blockers=frozenset(blockers),
        locked_by_order=b.lock_order_id if b.locked else None,
    )


def estimate(
    resource: Resource,
    action: DestroyAction,
    now: datetime,
    quota_used: int | None,
    rules: BillingRules = RULES,
) -> tuple[Estimate | None, tuple[str, str] | None]:
    """The planner's refund estimate for ``r`` under ``action`` and ``rules`` (the account's
    site's, :func:`teardown.adapters.huawei.provider.rules_of`), or the rule that refuses the
    unsubscribe as (reason, message). A lock or a freeze gives neither: the planner has already
    warned with the next step to take.

    The estimate says what it assumes: the 5-day quota used when ``quota_used`` is None (no API
    tells it), and that the unsubscribe may be refused when a purchase may have been a
    promotion (R16); ``worst_fee`` is then what would be lost without a refund."""
    r = resource
    b = r.billing
    if not b.payments:
        return None, None  # nothing is known of what was paid: no estimate
    sub = subscription(r)
    next_charge = (
        auto_renew_charge_at(b.expires_at, rules) if b.auto_renew and b.expires_at else None
    )
    last = max(b.payments, key=lambda p: p.expires)
    renewal = last.paid + last.cash_coupon + last.discount_coupon if next_charge else None
    try:
        if action in (DestroyAction.UNSUBSCRIBE, DestroyAction.PULUMI):
            quote = quote_unsubscribe(sub, now, quota_used or 0, rules)
        elif action is DestroyAction.KEEP_TO_EXPIRY and any(p.effective > now for p in b.payments):
            quote = quote_renewal_unsubscribe(sub, now)
        else:
            zero = Decimal(0)
            kept = Estimate(
                zero,
                zero,
                zero,
                False,
                zero,
                "kept: nothing is refunded",
                next_charge,
                next_charge_amount=renewal,
            )
            return kept, None
    except RuleRefusal as e:
        if e.reason in ("locked", "frozen"):
            return None, None
        return None, (e.reason or "refused", f"{r.name}: {e.message} ({e.code})")
    return (
        Estimate(
            refund=quote.refund,
            consumed=quote.consumed,
            fee=quote.fee,
            five_day=quote.five_day,
            coupons_lost=quote.coupons_lost,
            explanation=quote.explanation,
            next_charge=next_charge,
            next_charge_amount=renewal,
            assumptions=_assumptions(quote.five_day, quota_used),
            may_be_refused=_may_be_refused(b.payments),
            worst_fee=(quote.refund + quote.fee) if _may_be_refused(b.payments) else None,
        ),
        None,
    )


PROMOTION_DISCOUNT_TYPES = frozenset({"200", "700"})
"""``discount_type`` values of a promotion in an order's discounts (the SDK's
``DiscountItemV2``: 200 促销产品折扣 promotional product discount, 700 促销折扣 promotional
discount)."""


def _assumptions(five_day: bool, quota_used: int | None) -> tuple[str, ...]:
    if five_day and quota_used is None:
        return (
            "5-day quota used: unknown, assumed 0 — set billing.five_day_quota_used "
            "(10 full refunds a year, R6)",
        )
    return ()


def _may_be_refused(payments: Sequence[Payment]) -> str:
    """Why the unsubscribe may be refused although no known rule refuses it."""
    if any(p.promotion for p in payments):
        return "bought at a promotional discount: Huawei may refuse its unsubscribe (R16)"
    if any(p.promotion is None for p in payments):
        return (
            "the order's discounts are unknown, so a promotion (which Huawei may refuse to "
            "unsubscribe, R16) cannot be ruled out"
        )
    return ""
