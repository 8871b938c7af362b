"""Huawei Cloud's published billing rules as pure functions (docs/huawei-api.md, "Billing rules").

Two callers use these rules: the sandbox's BSS service, which has to compute refunds the way the
published rules say, and the planner's refund estimates. Nothing here performs I/O or reads a
clock; ``now`` is always a parameter. Every datetime must be timezone-aware.

Money is ``Decimal``, rounded to cents with ``ROUND_HALF_UP``. Every number docs/huawei-api.md
marks as an assumption, or that a user may set, is a field of :class:`BillingRules` with the
documented default; no number is hidden in the code.

Choices the published rules leave open (each is documented where it is made):

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
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum

from teardown.core.billing import Payment, aware
from teardown.core.errors import TeardownError

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class FeeRule:
    """One row of the handling-fee table (R12)."""

    term_months: int
    """Subscription term of the product: 1 = monthly, 12 = 1-year, 24, 36, ..."""
    used_up_to_months: int
    """The row applies while usage so far is at most this many months (12, 24, 36, ...)."""
    rate: Decimal
    """Fraction of the paid amount, e.g. ``Decimal("0.10")``."""


INTL_FEE_TABLE: tuple[FeeRule, ...] = (
    FeeRule(1, 12, Decimal("0.10")),
    FeeRule(12, 12, Decimal("0.10")),
    FeeRule(24, 12, Decimal("0.15")),
    FeeRule(24, 24, Decimal("0.10")),
    FeeRule(36, 12, Decimal("0.15")),
    FeeRule(36, 24, Decimal("0.10")),
    FeeRule(36, 36, Decimal("0.05")),
)
"""The international/EU table (R12, [ORD]'s intl and EU pages): monthly 10%; 1-year 10%; 2-year
15% then 10%; 3-year 15%, 10%, 5%."""

CN_FEE_TABLE: tuple[FeeRule, ...] = INTL_FEE_TABLE
"""ASSUMPTION (docs/huawei-api.md R12): the Chinese site's table (its page lists products up to
5 years) was not captured from any source, so the international percentages stand in for it.
Pass your own ``BillingRules(fee_table=...)`` when you know it."""

DEFAULT_FEE_TABLE: tuple[FeeRule, ...] = INTL_FEE_TABLE
"""The table :class:`BillingRules` uses unless told otherwise (the international one, R12)."""

SITE_FEE_TABLES: dict[str, tuple[FeeRule, ...]] = {"cn": CN_FEE_TABLE, "intl": INTL_FEE_TABLE}
"""The handling-fee table of each Huawei Cloud site (a profile's ``huawei.site``)."""


def fee_table_for(site: str) -> tuple[FeeRule, ...]:
    """The handling-fee table of ``site`` (``cn`` or ``intl``); ValueError for another."""
    try:
        return SITE_FEE_TABLES[site]
    except KeyError:
        raise ValueError(f"unknown site {site!r}: expected cn or intl") from None


@dataclass(frozen=True)
class BillingRules:
    """Every configurable or assumed number of the rules (docs/huawei-api.md, "Billing rules"), with
    the documented default."""

    full_refund_window: timedelta = timedelta(days=5)
    """R5: the 5-day full refund applies within 5x24 h of provisioning."""
    full_refund_quota_per_year: int = 10
    """R6: 5-day full refunds per account per calendar year."""
    fee_table: tuple[FeeRule, ...] = DEFAULT_FEE_TABLE
    """R12: handling-fee rows; empty means no fee (framework contract)."""
    renew_days_before_expiry: int = 7
    """R25: auto-renew charges this many days before expiry (the user may set 2..7)."""
    renew_hour_local: int = 3
    """R25: the hour auto-renew charges, in the site's local time."""
    site_utc_offset_hours: int = 8
    """R25: the site's local time (the Chinese site, whose BSS teardown uses: UTC+8)."""
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
        if not 0 <= self.renew_hour_local <= 23:
            raise ValueError(f"renew_hour_local must be 0..23, got {self.renew_hour_local}")
        if not -12 <= self.site_utc_offset_hours <= 14:
            raise ValueError("site_utc_offset_hours must be -12..14")
        if self.grace_days < 0 or self.retention_days < 0:
            raise ValueError("grace_days and retention_days must not be negative")
        for r in self.fee_table:
            if r.term_months < 1 or r.used_up_to_months < 1 or not 0 <= r.rate <= 1:
                raise ValueError(f"invalid fee rule {r}")

    @classmethod
    def for_site(cls, site: str) -> BillingRules:
        """The documented defaults with ``site``'s handling-fee table (:func:`fee_table_for`)."""
        return cls(fee_table=fee_table_for(site))

    @property
    def site_zone(self) -> timezone:
        """The site's local time zone (auto-renew charges by its clock)."""
        return timezone(timedelta(hours=self.site_utc_offset_hours))


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
        aware("provisioned_at", self.provisioned_at)
        unknown = sorted(set(self.blockers) - BLOCKER_CODES.keys() - RENEWAL_BLOCKER_CODES.keys())
        if unknown:
            raise ValueError(f"{self.resource_id}: unknown blockers {unknown}")


PROMOTIONAL_CODE = "CBC.0100"
"""ASSUMPTION (docs/huawei-api.md, "BSS"): the API reference documents no error code for a
resource bought in a promotion that
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
        "a transaction on the resource is in progress (交易正在进行中): wait about 10 minutes "
        "(R4) and resume; if it persists, ask Huawei Cloud support",
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
        "locked by an order in progress: a transaction is in progress (交易正在进行中); wait "
        "about 10 minutes and resume, or cancel that order if it is pending payment; if it "
        "persists, ask Huawei Cloud support. Nothing was unsubscribed",
    ),
    "promotional": (
        PROMOTIONAL_CODE,
        "bought in a promotion that cannot be unsubscribed (R16): keep it to expiry and "
        "cancel auto-renew",
    ),
}
"""Why a resource cannot be unsubscribed -> (Huawei error code, message with the next step).
Codes from docs/huawei-api.md ("BSS": the unsubscribe refusals) and R15; ``locked`` reuses the
transaction-in-progress code, and ``promotional`` uses :data:`PROMOTIONAL_CODE` (an assumption)."""

RENEWAL_BLOCKER_CODES: dict[str, tuple[str, str]] = {
    "bandwidth_addon": (
        "CBC.99003654",
        "a bandwidth add-on package exists (存在带宽加油包): its renewal periods cannot be "
        "unsubscribed; cancel auto-renew instead, or unsubscribe the resource itself",
    ),
}
"""Why only the renewal periods of a resource (unsubscribe type 2) cannot be unsubscribed:
CancelResourcesSubscription's status-code table (``api_order_00019``) lists ``CBC.99003654``
"存在带宽加油包,不允许退订续费周期". A type 1 unsubscribe is not refused for it."""


def renewal_refusal_for(sub: Subscription) -> RuleRefusal | None:
    """The type 2 refusal for the first of ``sub``'s :data:`RENEWAL_BLOCKER_CODES`, or None."""
    for reason, (code, message) in RENEWAL_BLOCKER_CODES.items():
        if reason in sub.blockers:
            return RuleRefusal(code, message, reason)
    return None


NO_FUTURE_RENEWAL_CODE = "CBC.99003128"
"""Type 2 refused: no renewal period, or it has already taken effect (docs/huawei-api.md, "BSS")."""


class RuleRefusal(TeardownError):
    """The rules refuse the unsubscription; ``code`` is the error Huawei would return."""

    def __init__(self, code: str, message: str, reason: str | None = None) -> None:
        self.code = code
        self.message = message
        self.reason = reason  # the BLOCKER_CODES key, when a blocker caused the refusal
        super().__init__(f"{code}: {message}")


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
    aware("now", now)
    tz = now.tzinfo
    n = 0
    for t in used_at:
        aware("used_at", t)
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
    aware("now", now)
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


def auto_renew_charge_at(expires: datetime, rules: BillingRules) -> datetime:
    """When auto-renew charges (R25): ``renew_hour_local`` o'clock of the site's local time
    (UTC+8 for the Chinese site) on the day ``renew_days_before_expiry`` days before the
    expiry date (its local date). Returned in the site's zone; retries follow daily until the
    retention period ends."""
    aware("expires", expires)
    zone = rules.site_zone
    day = expires.astimezone(zone).date() - timedelta(days=rules.renew_days_before_expiry)
    return datetime(day.year, day.month, day.day, rules.renew_hour_local, tzinfo=zone)


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
    aware("expires", expires)
    aware("now", now)
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
"""``expire_policy`` values other than auto-renew (R28; docs/huawei-api.md, "BSS")."""

AUTO_RENEW_POLICY = 3
"""``expire_policy`` when auto-renew is on: the only value that means auto-renew (R28)."""
TO_PAY_PER_USE_POLICY = 1
"""``expire_policy`` 1: switch to pay-per-use at expiry (the SDK's ``OrderInstanceV2``)."""


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
