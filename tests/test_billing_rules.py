"""The billing rules (R5-R17, R25-R28 of docs/huawei-api.md): table-driven, one test per rule,
one property."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from teardown.adapters.huawei.refunds import (
    RefundQuote,
    clamp,
    fee_rate,
    ordinary_terms,
    quote_renewal_unsubscribe,
    quote_unsubscribe,
)
from teardown.adapters.huawei.rules import (
    BLOCKER_CODES,
    DEFAULT_FEE_TABLE,
    BillingRules,
    ExpiryPhase,
    FeeRule,
    RuleRefusal,
    Subscription,
    auto_renew_charge_at,
    expire_policy_code,
    expiry_phase,
    five_day_eligible,
    instances_for_quota,
    quota_used_in_year,
)
from teardown.core.billing import Payment, PeriodType, term_months
from teardown.core.errors import TeardownError

RULES = BillingRules()
T0 = datetime(2025, 1, 10, 8, 0, tzinfo=UTC)
D = Decimal


def pay(
    cash: str = "120.00",
    *,
    order: str = "CS-1",
    effective: datetime = T0,
    months: int = 12,
    flexi: str = "0",
    card: str = "0",
    coupon: str = "0",
    discount: str = "0",
    hours: int | None = None,
) -> Payment:
    if hours is not None:
        expires = effective + timedelta(hours=hours)
    elif months % 12 == 0:
        expires = effective.replace(year=effective.year + months // 12)
    else:
        expires = effective + timedelta(days=30 * months)
    return Payment(
        order_id=order,
        cash=D(cash),
        effective=effective,
        expires=expires,
        term_months=months,
        flexi_coupon=D(flexi),
        stored_card=D(card),
        cash_coupon=D(coupon),
        discount_coupon=D(discount),
    )


def sub(*payments: Payment, **kw: object) -> Subscription:
    return Subscription(
        resource_id="srv-1",
        provisioned_at=T0,
        payments=payments or (pay(),),
        **kw,  # type: ignore[arg-type]
    )


def balanced(q: RefundQuote) -> bool:
    return q.refund + q.consumed + q.fee == q.paid


# R5-R7: the 5-day full refund


def test_five_day_full_refund_within_window_returns_everything_but_discount_coupons() -> None:
    p = pay("100.00", flexi="10.00", card="5.00", coupon="20.00", discount="7.00")
    q = quote_unsubscribe(sub(p), T0 + timedelta(days=2), 3, RULES)
    assert q.five_day and q.uses_quota
    assert (q.refund, q.consumed, q.fee) == (D("115.00"), D(0), D(0))
    assert q.coupons_returned == D("20.00")
    assert q.coupons_lost == D("7.00")
    assert (
        q.explanation
        == "5-day full refund (provisioned 2 days ago; quota 4 of 10 used with this one)"
    )
    assert balanced(q)


@pytest.mark.parametrize(
    ("age", "eligible"),
    [
        (timedelta(0), True),
        (timedelta(hours=119, minutes=59), True),
        (timedelta(hours=120), False),  # closed at exactly 5x24 h
        (timedelta(days=6), False),
    ],
)
def test_five_day_window_is_five_times_24_hours_from_provisioning(
    age: timedelta, eligible: bool
) -> None:
    ok, reason = five_day_eligible(sub(), T0 + age, 0, RULES)
    assert ok is eligible
    if not eligible:
        assert "R5" in reason


@pytest.mark.parametrize(("used", "eligible"), [(0, True), (9, True), (10, False), (11, False)])
def test_five_day_quota_of_ten_per_calendar_year(used: int, eligible: bool) -> None:
    ok, reason = five_day_eligible(sub(), T0 + timedelta(hours=1), used, RULES)
    assert ok is eligible
    if not eligible:
        assert "quota" in reason and "R6" in reason
        q = quote_unsubscribe(sub(), T0 + timedelta(hours=1), used, RULES)
        assert not q.five_day and not q.uses_quota


@pytest.mark.parametrize(
    ("uses", "now", "count"),
    [
        ([datetime(2024, 12, 31, 23, tzinfo=UTC)] * 10, datetime(2025, 1, 1, 1, tzinfo=UTC), 0),
        (
            [datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 12, 31, 23, tzinfo=UTC)],
            datetime(2025, 6, 1, tzinfo=UTC),
            2,
        ),
        # the year is judged in now's timezone: 2024-12-31 20:00 UTC is 2025 in UTC+8
        (
            [datetime(2024, 12, 31, 20, tzinfo=UTC)],
            datetime(2025, 1, 2, tzinfo=timezone(timedelta(hours=8))),
            1,
        ),
    ],
)
def test_five_day_quota_counts_the_calendar_year_of_now(
    uses: list[datetime], now: datetime, count: int
) -> None:
    assert quota_used_in_year(uses, now) == count


def test_five_day_quota_is_configurable() -> None:
    rules = BillingRules(full_refund_quota_per_year=2)
    assert not five_day_eligible(sub(), T0, 2, rules)[0]
    assert five_day_eligible(sub(), T0, 1, rules)[0]


def test_bound_children_count_once_against_the_quota() -> None:
    s = sub(bound_children=("vol-sys", "vol-data", "eip-1"))
    assert instances_for_quota(s) == 1
    assert five_day_eligible(s, T0, 9, RULES)[0]  # 9 used + 1 instance = 10: still fits


def test_promotion_excluding_the_five_day_rule_is_ordinary() -> None:
    s = sub(promotional_no_5day=True)
    ok, reason = five_day_eligible(s, T0 + timedelta(hours=1), 0, RULES)
    assert not ok and "R8" in reason
    q = quote_unsubscribe(s, T0 + timedelta(hours=1), 0, RULES)
    assert not q.five_day and q.fee > 0


# R10-R12: the ordinary refund


@pytest.mark.parametrize(
    ("cash", "months", "hours", "used_hours", "rate", "consumed", "fee", "refund"),
    [
        # 1-year, 8760 h, used 876 h (10%): consumed 12.00, fee 10% = 12.00
        ("120.00", 12, 8760, 876, "0.10", "12.00", "12.00", "96.00"),
        # monthly, 720 h, used 360 h: consumed 50.00, fee 10.00
        ("100.00", 1, 720, 360, "0.10", "50.00", "10.00", "40.00"),
        # 3-year in its first year: 15%
        ("1000.00", 36, 26280, 2628, "0.15", "100.00", "150.00", "750.00"),
        # rounding: 100 * 1/3 = 33.333.. -> 33.33
        ("100.00", 1, 3, 1, "0.10", "33.33", "10.00", "56.67"),
    ],
)
def test_ordinary_refund_is_paid_minus_hourly_consumption_minus_fee(
    cash: str,
    months: int,
    hours: int,
    used_hours: int,
    rate: str,
    consumed: str,
    fee: str,
    refund: str,
) -> None:
    p = pay(cash, months=months, hours=hours)
    now = T0 + timedelta(hours=used_hours)
    t = ordinary_terms(p, now, RULES)
    assert (t.used_hours, t.total_hours, t.rate) == (used_hours, hours, D(rate))
    q = quote_unsubscribe(sub(p), now, 10, RULES)  # quota used up: ordinary even at 1 h
    assert not q.five_day and not q.uses_quota
    assert (q.consumed, q.fee, q.refund) == (D(consumed), D(fee), D(refund))
    assert q.explanation.startswith("ordinary refund: ")
    assert balanced(q)


def test_ordinary_refund_counts_flexi_coupon_and_stored_card_as_paid_but_loses_cash_coupons() -> (
    None
):
    p = pay("60.00", flexi="30.00", card="30.00", coupon="50.00", discount="5.00", hours=1000)
    q = quote_unsubscribe(sub(p), T0 + timedelta(hours=100), 10, RULES)
    assert q.paid == D("120.00")
    assert (q.consumed, q.fee, q.refund) == (D("12.00"), D("12.00"), D("96.00"))
    assert q.coupons_returned == 0
    assert q.coupons_lost == D("55.00")


@pytest.mark.parametrize(
    ("elapsed", "used"),
    [
        (timedelta(minutes=59), 0),
        (timedelta(hours=1), 1),
        (timedelta(hours=1, minutes=59, seconds=59), 1),
        (timedelta(hours=10, minutes=30), 10),
    ],
)
def test_consumption_counts_whole_hours_only(elapsed: timedelta, used: int) -> None:
    p = pay("100.00", months=1, hours=100)
    t = ordinary_terms(p, T0 + elapsed, RULES)
    assert t.used_hours == used
    assert t.consumed == D(used)  # 100 x used / 100


def test_consumption_total_hours_are_rounded_down() -> None:
    p = replace(pay("100.00", hours=10), expires=T0 + timedelta(hours=10, minutes=59))
    assert ordinary_terms(p, T0, RULES).total_hours == 10


@pytest.mark.parametrize(
    ("used", "consumed", "fee"),
    [
        # 95% consumed + 10% fee = 105% of paid: consumption first, fee capped at what is left
        (95, "95.00", "5.00"),
        # fully consumed (and beyond expiry: used hours clamp at the total)
        (100, "100.00", "0.00"),
        (500, "100.00", "0.00"),
    ],
)
def test_refund_never_below_zero(used: int, consumed: str, fee: str) -> None:
    p = pay("100.00", months=1, hours=100)
    now = T0 + timedelta(hours=used)
    t = ordinary_terms(p, now, RULES)
    assert t.refund < 0  # R11's formula goes negative...
    q = quote_unsubscribe(sub(p), now, 10, RULES)
    assert q.refund == 0  # ...and nothing is refunded
    assert (q.consumed, q.fee) == (D(consumed), D(fee))
    assert balanced(q)
    assert not any(line.kind == "refund" for line in q.lines)


@pytest.mark.parametrize(
    ("months", "used", "rate"),
    [
        (1, timedelta(days=10), "0.10"),
        (6, timedelta(days=10), "0.10"),  # a term not in the table uses the monthly rows
        (12, timedelta(days=300), "0.10"),
        (24, timedelta(days=300), "0.15"),
        (24, timedelta(days=400), "0.10"),
        (36, timedelta(days=200), "0.15"),
        (36, timedelta(days=500), "0.10"),
        (36, timedelta(days=800), "0.05"),
        (60, timedelta(days=1500), "0.05"),  # beyond the table: the 3-year rows, last rate
    ],
)
def test_fee_follows_the_international_table_by_term_and_usage(
    months: int, used: timedelta, rate: str
) -> None:
    p = pay(months=months, hours=months * 31 * 24)
    assert fee_rate(p, T0 + used, RULES) == D(rate)


def test_fee_row_boundary_is_calendar_months_inclusive() -> None:
    p = pay(months=24)
    assert fee_rate(p, datetime(2026, 1, 10, 8, 0, tzinfo=UTC), RULES) == D("0.15")
    assert fee_rate(p, datetime(2026, 1, 10, 8, 1, tzinfo=UTC), RULES) == D("0.10")


def test_fee_table_is_configurable() -> None:
    chinese = BillingRules(fee_table=(FeeRule(12, 12, D("0.20")), FeeRule(60, 60, D("0.30"))))
    now = T0 + timedelta(days=30)
    assert quote_unsubscribe(sub(pay("100.00")), now, 10, chinese).fee == D("20.00")
    waived = BillingRules(fee_table=())  # framework contract: no fee
    assert quote_unsubscribe(sub(pay("100.00")), now, 10, waived).fee == 0
    assert RULES.fee_table == DEFAULT_FEE_TABLE
    with pytest.raises(ValueError):
        BillingRules(fee_table=(FeeRule(12, 12, D("1.5")),))


# R13: no fee and coupons returned


def test_unused_renewal_is_refunded_in_full_without_fee() -> None:
    renewal = pay(
        "120.00", order="CS-R", effective=T0.replace(year=2026), coupon="10.00", discount="3.00"
    )
    s = sub(pay("120.00"), renewal)
    now = T0 + timedelta(days=100)
    q = quote_unsubscribe(s, now, 0, RULES)
    assert not q.five_day and not q.uses_quota  # no quota (R6)
    purchase_only = quote_unsubscribe(sub(pay("120.00")), now, 0, RULES)
    assert q.refund == purchase_only.refund + D("120.00")
    assert (q.consumed, q.fee) == (purchase_only.consumed, purchase_only.fee)
    assert q.coupons_returned == D("10.00")
    assert "unused renewal" in q.explanation
    r = [line for line in q.lines if line.base_order_id == "CS-R"]
    assert {(line.kind, line.amount) for line in r} == {
        ("refund", D("-120.00")),
        ("coupon_returned", D("-10.00")),
    }


def test_unused_renewal_during_five_day_window_does_not_change_quota_use() -> None:
    s = sub(pay("10.00"), pay("10.00", order="CS-R", effective=T0.replace(year=2026)))
    q = quote_unsubscribe(s, T0 + timedelta(days=1), 0, RULES)
    assert q.five_day and q.uses_quota and q.refund == D("20.00") and q.fee == 0


def test_type_2_refunds_only_renewals_not_yet_in_effect() -> None:
    s = sub(pay("120.00"), pay("120.00", order="CS-R", effective=T0.replace(year=2026)))
    q = quote_renewal_unsubscribe(s, T0 + timedelta(days=100))
    assert (q.refund, q.consumed, q.fee) == (D("120.00"), D(0), D(0))
    assert not q.five_day and not q.uses_quota
    assert {line.base_order_id for line in q.lines} == {"CS-R"}


def test_type_2_without_future_renewal_is_refused_with_cbc_99003128() -> None:
    effective_renewal = pay("120.00", order="CS-R", effective=T0 + timedelta(days=1))
    for s in (sub(), sub(pay(), effective_renewal)):
        with pytest.raises(RuleRefusal) as e:
            quote_renewal_unsubscribe(s, T0 + timedelta(days=2))
        assert e.value.code == "CBC.99003128"
        assert isinstance(e.value, TeardownError)


# R15, R16: blockers


@pytest.mark.parametrize("reason", sorted(BLOCKER_CODES))
def test_blockers_are_refused_with_their_codes(reason: str) -> None:
    code, message = BLOCKER_CODES[reason]
    s = sub(pay(), pay(order="CS-R", effective=T0.replace(year=2026)), blockers=frozenset({reason}))
    quotes: list[Callable[[], RefundQuote]] = [
        lambda: quote_unsubscribe(s, T0 + timedelta(days=1), 0, RULES),
        lambda: quote_renewal_unsubscribe(s, T0 + timedelta(days=1)),
    ]
    for quote in quotes:
        with pytest.raises(RuleRefusal) as e:
            quote()
        assert (e.value.code, e.value.message, e.value.reason) == (code, message, reason)
        assert code in str(e.value)


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("pending_order", "CBC.99003100"),
        ("invoiced", "CBC.99003643"),
        ("on_demand_package", "CBC.99003647"),
        ("trial", "CBC.99003649"),
        ("marketplace", "CBC.99003650"),
        ("devcloud", "CBC.99003652"),
        ("savings_plan", "CBC.30000053"),
        ("transaction_in_progress", "CBC.99003651"),
        ("frozen", "CBC.99003656"),
        ("as_a_whole", "CBC.99003185"),
        ("locked", "CBC.99003651"),
        ("promotional", "CBC.0100"),
    ],
)
def test_blocker_codes_match_the_reference(reason: str, code: str) -> None:
    assert BLOCKER_CODES[reason][0] == code
    assert ": " in BLOCKER_CODES[reason][1]  # a message with a next step


def test_locked_refusal_names_the_order_and_says_nothing_was_unsubscribed() -> None:
    s = sub(blockers=frozenset({"locked"}), locked_by_order="CS-LOCK-7")
    with pytest.raises(RuleRefusal) as e:
        quote_unsubscribe(s, T0, 0, RULES)
    assert e.value.message.startswith("locked by order CS-LOCK-7: ")
    # CBC.99003651 is "交易正在进行中" (a transaction in progress): wait and resume first.
    assert "wait about 10 minutes and resume" in e.value.message
    assert e.value.message.endswith("Nothing was unsubscribed")


def test_unknown_blocker_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown blockers"):
        sub(blockers=frozenset({"lockd"}))


# R25-R28: auto-renew and expiry


CN = timezone(timedelta(hours=8))  # the Chinese site's clock (R25)


@pytest.mark.parametrize(
    ("expires", "days", "charge"),
    [
        (datetime(2025, 3, 20, 12, tzinfo=UTC), 7, datetime(2025, 3, 13, 3, tzinfo=CN)),
        (datetime(2025, 3, 1, 0, tzinfo=UTC), 7, datetime(2025, 2, 22, 3, tzinfo=CN)),
        (datetime(2025, 3, 20, 12, tzinfo=UTC), 2, datetime(2025, 3, 18, 3, tzinfo=CN)),
        # the expiry date is the site's local date: 03-19 17:00 UTC is 03-20 01:00 in UTC+8
        (datetime(2025, 3, 19, 17, tzinfo=UTC), 7, datetime(2025, 3, 13, 3, tzinfo=CN)),
        # 03:00 in UTC+8 is 19:00 UTC the day before
        (datetime(2025, 3, 20, 12, tzinfo=UTC), 7, datetime(2025, 3, 12, 19, tzinfo=UTC)),
    ],
)
def test_auto_renew_charges_seven_days_before_expiry_at_three(
    expires: datetime, days: int, charge: datetime
) -> None:
    rules = BillingRules(renew_days_before_expiry=days)
    assert auto_renew_charge_at(expires, rules) == charge


@pytest.mark.parametrize("days", [1, 8])
def test_auto_renew_deduction_days_are_two_to_seven(days: int) -> None:
    with pytest.raises(ValueError, match=r"2\.\.7"):
        BillingRules(renew_days_before_expiry=days)


@pytest.mark.parametrize(
    ("auto_renew", "policy", "code"),
    [
        (True, "grace", 3),
        (True, "delete", 3),
        (False, "grace", 0),
        (False, "on_demand", 1),
        (False, "delete", 2),
        (False, "freeze", 4),
        (False, "delete_from_retention", 5),
    ],
)
def test_expire_policy_is_3_only_with_auto_renew(auto_renew: bool, policy: str, code: int) -> None:
    assert expire_policy_code(auto_renew, policy) == code


def test_expire_policy_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown expiry policy"):
        expire_policy_code(False, "auto_renew")


@pytest.mark.parametrize(
    ("after", "phase"),
    [
        (timedelta(seconds=-1), ExpiryPhase.ACTIVE),
        (timedelta(0), ExpiryPhase.GRACE),
        (timedelta(days=14, hours=23), ExpiryPhase.GRACE),
        (timedelta(days=15), ExpiryPhase.RETENTION),
        (timedelta(days=30), ExpiryPhase.RELEASED),
    ],
)
def test_expiry_goes_through_fifteen_days_grace_then_fifteen_retention(
    after: timedelta, phase: ExpiryPhase
) -> None:
    assert expiry_phase(T0, T0 + after, RULES) == phase


# Refund order lines (docs/huawei-api.md, "BSS": ShowRefundOrderDetails)


def test_refund_lines_are_negative_for_money_returned_and_positive_for_consumption_and_fees() -> (
    None
):
    renewal = pay("120.00", order="CS-R", effective=T0.replace(year=2026), coupon="5.00")
    s = sub(pay("120.00", coupon="9.00"), renewal)
    q = quote_unsubscribe(s, T0 + timedelta(days=100), 10, RULES)
    kinds = {line.kind for line in q.lines}
    assert kinds == {"refund", "consumed", "fee", "coupon_returned"}
    for line in q.lines:
        if line.kind in ("refund", "coupon_returned"):
            assert line.amount < 0
        else:
            assert line.amount > 0
    assert -sum(x.amount for x in q.lines if x.kind == "refund") == q.refund
    assert sum(x.amount for x in q.lines if x.kind == "consumed") == q.consumed
    assert sum(x.amount for x in q.lines if x.kind == "fee") == q.fee
    assert -sum(x.amount for x in q.lines if x.kind == "coupon_returned") == q.coupons_returned
    assert all(x.base_order_id in ("CS-1", "CS-R") for x in q.lines)


# Inputs


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        pay(effective=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        five_day_eligible(sub(), datetime(2025, 1, 1), 0, RULES)


def test_term_months_from_period() -> None:
    assert term_months(PeriodType.MONTH, 3) == 3
    assert term_months(PeriodType.YEAR, 2) == 24


# Property: R11's identity and the clamp

cents = st.integers(min_value=0, max_value=10_000_000).map(lambda c: D(c) / 100)


@st.composite
def payments_and_now(draw: st.DrawFn) -> tuple[Payment, datetime]:
    effective = draw(
        st.datetimes(
            min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
        )
    )
    length = draw(st.integers(min_value=1, max_value=5 * 366 * 24 * 60)) * timedelta(minutes=1)
    p = Payment(
        order_id="CS-P",
        cash=draw(cents),
        effective=effective,
        expires=effective + length,
        term_months=draw(st.sampled_from([1, 2, 6, 12, 24, 36, 60])),
        flexi_coupon=draw(cents),
        stored_card=draw(cents),
        cash_coupon=draw(cents),
        discount_coupon=draw(cents),
    )
    offset = draw(st.integers(min_value=-100 * 24 * 60, max_value=6 * 366 * 24 * 60))
    return p, effective + timedelta(minutes=offset)


@given(payments_and_now(), st.integers(min_value=0, max_value=12))
def test_property_refund_plus_consumed_plus_fee_is_paid_and_refund_is_never_negative(
    pn: tuple[Payment, datetime], quota_used: int
) -> None:
    p, now = pn
    t = ordinary_terms(p, now, RULES)
    assert t.refund + t.consumed + t.fee == t.paid == p.paid  # before clamping
    refund, consumed, fee = clamp(t)
    assert refund >= 0 and consumed >= 0 and fee >= 0
    assert refund + consumed + fee == p.paid
    s = Subscription(resource_id="r", provisioned_at=p.effective, payments=(p,))
    q = quote_unsubscribe(s, now, quota_used, RULES)
    assert q.refund >= 0 and q.consumed >= 0 and q.fee >= 0
    assert q.refund + q.consumed + q.fee == q.paid == p.paid
    assert q.refund == q.refund.quantize(D("0.01"))
