"""Huawei Cloud's published billing rules as pure functions (reference/huawei.md, sections 4 and 5).

Two callers use these rules: the sandbox's BSS service, which has to compute refunds the way the
published rules say, and the planner's refund estimates. Nothing here performs I/O or reads a
clock; ``now`` is always a parameter. Every datetime must be timezone-aware.

Money is ``Decimal``, rounded to cents with ``ROUND_HALF_UP``. Every number the reference marks
[UNVERIFIED] or configurable is a field of :class:`BillingRules` with the documented default; no
number is hidden in the code.

Choices the reference leaves open (each is documented where it is made):

- The 5-day window is closed at exactly 5x24 h: eligible while ``now - provisioned_at < window``.
- Consumption counts whole hours only: used = floor((now - effective) / 1 h), total =
  floor((expires - effective) / 1 h), and used is clamped to ``0..total``.
- The fee row is picked by calendar months used since the order line took effect: a row applies
  while ``now <= effective + used_up_to_months``. A term missing from the table uses the rows of the
  longest listed term not above it (a 6-month product pays the monthly rate); usage beyond the
  last row pays the last row's rate; an empty table means no fee (a framework-contract waiver, R12).
- When consumption plus fee exceeds what was paid, nothing is refunded (R11); consumption is
  charged first and the fee is capped at what is left, so refund + consumed + fee == paid holds
  on every line, clamped or not.
- Returned 代金券 (cash coupons) appear as negative ``coupon_returned`` lines: value going back to
  the customer, like money. Real refund orders may not list them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from teardown.core.errors import TeardownError

CENT = Decimal("0.01")
HOUR = timedelta(hours=1)


class PeriodType(StrEnum):
    """The unit a prepaid product is bought in."""

    MONTH = "month"
    YEAR = "year"


def term_months(period: PeriodType, num: int) -> int:
    """The subscription term in months of ``num`` periods of ``period`` (1 year = 12 months)."""
    if num < 1:
        raise ValueError(f"period count must be at least 1, got {num}")
    return num * 12 if period is PeriodType.YEAR else num


@dataclass(frozen=True)
class FeeRule:
    """One row of the handling-fee table (R12)."""

    term_months: int
    """Subscription term of the product: 1 = monthly, 12 = 1-year, 24, 36, ..."""
    used_up_to_months: int
    """The row applies while usage so far is at most this many months (12, 24, 36, ...)."""
    rate: Decimal
    """Fraction of the paid amount, e.g. ``Decimal("0.10")``."""


DEFAULT_FEE_TABLE: tuple[FeeRule, ...] = (
    FeeRule(1, 12, Decimal("0.10")),
    FeeRule(12, 12, Decimal("0.10")),
    FeeRule(24, 12, Decimal("0.15")),
    FeeRule(24, 24, Decimal("0.10")),
    FeeRule(36, 12, Decimal("0.15")),
    FeeRule(36, 24, Decimal("0.10")),
    FeeRule(36, 36, Decimal("0.05")),
)
"""The international/EU table (R12): monthly 10%; 1-year 10%; 2-year 15% then 10%; 3-year 15%,
10%, 5%. The Chinese site's percentages were not captured [UNVERIFIED]: pass your own table."""


@dataclass(frozen=True)
class BillingRules:
    """Every configurable or [UNVERIFIED] number of the rules, with the documented default."""

    full_refund_window: timedelta = timedelta(days=5)
    """R5: the 5-day full refund applies within 5x24 h of provisioning."""
    full_refund_quota_per_year: int = 10
    """R6: 5-day full refunds per account per calendar year."""
    fee_table: tuple[FeeRule, ...] = DEFAULT_FEE_TABLE
    """R12: handling-fee rows; empty means no fee (framework contract)."""
    renew_days_before_expiry: int = 7
    """R25: auto-renew charges this many days before expiry (the user may set 2..7)."""
    renew_hour_utc: int = 3
    """R25: the hour auto-renew charges. The real service uses 03:00 *local* (site) time; the
    sandbox and these rules use UTC."""
    grace_days: int = 15
    """R27: grace period after expiry (international default; Chinese site: by customer level)."""
    retention_days: int = 15
    """R27: retention period after grace (international default)."""

    def __post_init__(self) -> None:
        if self.full_refund_window < timedelta(0):
            raise ValueError("full_refund_window must not be negative")
        if self.full_refund_quota_per_year < 0:
            raise ValueError("full_refund_quota_per_year must not be negative")
        if not 2 <= self.renew_days_before_expiry <= 7:
            raise ValueError(
                f"renew_days_before_expiry must be 2..7 (R25), got {self.renew_days_before_expiry}"
            )
        if not 0 <= self.renew_hour_utc <= 23:
            raise ValueError(f"renew_hour_utc must be 0..23, got {self.renew_hour_utc}")
        if self.grace_days < 0 or self.retention_days < 0:
            raise ValueError("grace_days and retention_days must not be negative")
        for r in self.fee_table:
            if r.term_months < 1 or r.used_up_to_months < 1 or not 0 <= r.rate <= 1:
                raise ValueError(f"invalid fee rule {r}")


def _aware(name: str, value: datetime) -> None:
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

    def __post_init__(self) -> None:
        _aware("effective", self.effective)
        _aware("expires", self.expires)
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


@dataclass(frozen=True)
class Subscription:
    """A prepaid resource as BSS sees it."""

    resource_id: str
    provisioned_at: datetime
    payments: tuple[Payment, ...]
    """Purchase and renewals, in order; renewals may not be effective yet (effective > now)."""
    is_main: bool = True
    bound_children: tuple[str, ...] = ()
    """Resource ids released with it; together they count as ONE instance for the quota (R6)."""
    promotional_no_5day: bool = False
    """Bought in a promotion that excludes the 5-day rule (R8)."""
    blockers: frozenset[str] = frozenset()
    """Keys of :data:`BLOCKER_CODES` that apply to the resource."""
    locked_by_order: str | None = None
    """The order holding the lock (ECS ``lockSourceId``), named in the ``locked`` refusal."""

    def __post_init__(self) -> None:
        _aware("provisioned_at", self.provisioned_at)
        unknown = sorted(set(self.blockers) - BLOCKER_CODES.keys())
        if unknown:
            raise ValueError(f"{self.resource_id}: unknown blockers {unknown}")


PROMOTIONAL_CODE = "CBC.0100"
"""ASSUMPTION: the reference documents no error code for a resource bought in a promotion that
cannot be unsubscribed (R16). ``CBC.0100`` (invalid parameter, HTTP 400) is used because it is a
documented, permanent (4xx) code; ``CBC.0999`` would be a 500 and read as retryable."""

BLOCKER_CODES: dict[str, tuple[str, str]] = {
    "pending_order": (
        "CBC.99003100",
        "the resource is in an order pending payment: cancel (or pay) that order first, "
        "then unsubscribe (R3)",
    ),
    "invoiced": (
        "CBC.99003643",
        "the order has already been invoiced and cannot be unsubscribed online: ask Huawei "
        "Cloud support, or keep it to expiry and cancel auto-renew",
    ),
    "on_demand_package": (
        "CBC.99003647",
        "bought as an on-demand package, which cannot be unsubscribed: keep it to expiry",
    ),
    "trial": (
        "CBC.99003649",
        "a trial resource cannot be unsubscribed: delete it or let the trial end",
    ),
    "marketplace": (
        "CBC.99003650",
        "bought on KooGallery (marketplace): unsubscribe it through KooGallery",
    ),
    "devcloud": (
        "CBC.99003652",
        "part of a DevCloud package: unsubscribe the package in the DevCloud console",
    ),
    "savings_plan": (
        "CBC.30000053",
        "billed under a savings plan, which cannot be unsubscribed: keep it to the plan's end",
    ),
    "transaction_in_progress": (
        "CBC.99003651",
        "another transaction on the resource is in progress: wait for it to finish "
        "(usually about 10 minutes, R4) and run again",
    ),
    "frozen": (
        "CBC.99003656",
        "the resource is frozen (arrears or violation): settle the arrears to unfreeze it, "
        "or release it once it has expired (R18)",
    ),
    "as_a_whole": (
        "CBC.99003185",
        "the resource must be unsubscribed as a whole: unsubscribe its main resource instead "
        "(bound resources go together, R17)",
    ),
    "locked": (
        "CBC.99003651",
        "locked by an order in progress: contact Huawei Cloud support to unlock; "
        "nothing was unsubscribed",
    ),
    "promotional": (
        PROMOTIONAL_CODE,
        "bought in a promotion that cannot be unsubscribed (R16): keep it to expiry and "
        "cancel auto-renew",
    ),
}
"""Why a resource cannot be unsubscribed -> (Huawei error code, message with the next step).
Codes from huawei.md 4.2 / R15; ``locked`` reuses the transaction-in-progress code, and
``promotional`` uses :data:`PROMOTIONAL_CODE` (an assumption)."""

NO_FUTURE_RENEWAL_CODE = "CBC.99003128"
"""Type 2 refused: no renewal period, or it has already taken effect (huawei.md 4.2)."""


class RuleRefusal(TeardownError):
    """The rules refuse the unsubscription; ``code`` is the error Huawei would return."""

    def __init__(self, code: str, message: str, reason: str | None = None) -> None:
        self.code = code
        self.message = message
        self.reason = reason  # the BLOCKER_CODES key, when a blocker caused the refusal
        super().__init__(f"{code}: {message}")


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
    or a handling fee, as in the real API (huawei.md 4.5).
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


def _add_months(d: datetime, months: int) -> datetime:
    """``d`` plus calendar months, the day clamped to the end of a shorter month."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    nxt = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    last = (nxt - timedelta(days=1)).day
    return d.replace(year=year, month=month, day=min(d.day, last))


def _ago(delta: timedelta) -> str:
    if delta >= timedelta(days=1):
        n = delta // timedelta(days=1)
        return f"{n} day{'s' if n != 1 else ''}"
    n = max(0, delta // HOUR)
    return f"{n} hour{'s' if n != 1 else ''}"


def instances_for_quota(sub: Subscription) -> int:
    """How many instances a 5-day refund of ``sub`` uses: always one, bound children included
    (R6). The quota accounting itself is the caller's."""
    return 1


def quota_used_in_year(used_at: Iterable[datetime], now: datetime) -> int:
    """How many of the 5-day refunds made at ``used_at`` fall in the calendar year of ``now``
    (R6: 1 Jan - 31 Dec), compared in ``now``'s timezone."""
    _aware("now", now)
    tz = now.tzinfo
    n = 0
    for t in used_at:
        _aware("used_at", t)
        if t.astimezone(tz).year == now.year:
            n += 1
    return n


def refusal_for(sub: Subscription) -> RuleRefusal | None:
    """The refusal for the first of ``sub``'s blockers (in :data:`BLOCKER_CODES` order), or None."""
    for reason, (code, message) in BLOCKER_CODES.items():
        if reason in sub.blockers:
            if reason == "locked" and sub.locked_by_order:
                message = message.replace(
                    "locked by an order in progress", f"locked by order {sub.locked_by_order}"
                )
            return RuleRefusal(code, message, reason)
    return None


def five_day_eligible(
    sub: Subscription, now: datetime, quota_used_this_year: int, rules: BillingRules
) -> tuple[bool, str]:
    """Whether a type 1 unsubscription of ``sub`` at ``now`` is a 5-day full refund (R5, R6, R8).

    ``quota_used_this_year`` is the number of 5-day refunds the account has used in the calendar
    year of ``now`` (see :func:`quota_used_in_year`). The window is measured from ``provisioned_at``
    and is closed at exactly ``full_refund_window``. Returns (eligible, reason).
    """
    _aware("now", now)
    age = now - sub.provisioned_at
    if sub.promotional_no_5day:
        return False, "bought in a promotion that excludes the 5-day full refund (R8)"
    if age >= rules.full_refund_window:
        return False, (
            f"provisioned {_ago(age)} ago, outside the "
            f"{_ago(rules.full_refund_window)} full-refund window (R5)"
        )
    quota = rules.full_refund_quota_per_year
    if quota_used_this_year + instances_for_quota(sub) > quota:
        return False, f"5-day quota used up this year ({quota_used_this_year} of {quota}, R6)"
    return True, (
        f"provisioned {_ago(age)} ago; quota {quota_used_this_year + instances_for_quota(sub)} "
        f"of {quota} used with this one"
    )


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
        if now <= _add_months(payment.effective, r.used_up_to_months):
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
    _aware("now", now)
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
    _aware("now", now)
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


def auto_renew_charge_at(expires: datetime, rules: BillingRules) -> datetime:
    """When auto-renew charges (R25): ``renew_hour_utc`` o'clock UTC on the day
    ``renew_days_before_expiry`` days before the expiry date (in UTC). The real service uses
    03:00 local time; retries follow daily until the retention period ends."""
    _aware("expires", expires)
    day = expires.astimezone(UTC).date() - timedelta(days=rules.renew_days_before_expiry)
    return datetime(day.year, day.month, day.day, rules.renew_hour_utc, tzinfo=UTC)


class ExpiryPhase(StrEnum):
    """Where a prepaid resource is in its expiry lifecycle (R26)."""

    ACTIVE = "active"
    GRACE = "grace"
    """Expired, still works; the grace time is charged on renewal."""
    RETENTION = "retention"
    """Frozen and unusable; data kept."""
    RELEASED = "released"
    """Data deleted, resource released."""


def expiry_phase(expires: datetime, now: datetime, rules: BillingRules) -> ExpiryPhase:
    """The phase at ``now`` of a resource expiring at ``expires`` and not renewed (R26, R27)."""
    _aware("expires", expires)
    _aware("now", now)
    if now < expires:
        return ExpiryPhase.ACTIVE
    grace_end = expires + timedelta(days=rules.grace_days)
    if now < grace_end:
        return ExpiryPhase.GRACE
    if now < grace_end + timedelta(days=rules.retention_days):
        return ExpiryPhase.RETENTION
    return ExpiryPhase.RELEASED


EXPIRE_POLICIES: dict[str, int] = {
    "grace": 0,
    "on_demand": 1,
    "delete": 2,
    "freeze": 4,
    "delete_from_retention": 5,
}
"""``expire_policy`` values other than auto-renew (R28, huawei.md 4.3)."""

AUTO_RENEW_POLICY = 3
"""``expire_policy`` when auto-renew is on: the only value that means auto-renew (R28)."""


def expire_policy_code(auto_renew: bool, policy_on_expiry: str = "grace") -> int:
    """BSS ``expire_policy`` (R28): 3 when auto-renew is on; otherwise 0 grace, 1 to on-demand,
    2 delete, 4 freeze, 5 delete from retention (keys of :data:`EXPIRE_POLICIES`)."""
    if auto_renew:
        return AUTO_RENEW_POLICY
    try:
        return EXPIRE_POLICIES[policy_on_expiry]
    except KeyError:
        raise ValueError(
            f"unknown expiry policy {policy_on_expiry!r}; expected one of "
            f"{', '.join(EXPIRE_POLICIES)} (auto-renew is auto_renew=True)"
        ) from None
