from datetime import date, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from apps.common.dates import add_months
from apps.payments.apr import annual_percentage_rate_bps, year_fraction
from apps.payments.eligibility import plan_apr_bps
from apps.payments.plans import PlanTerms, compute_plan

PURCHASE_DAY = date(2026, 6, 15)

purchase_days = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31))


def monthly_plan_apr_bps(amount, first, later, purchase_date):
    """The APR of `first` on the purchase day then `later` every month, by the solver under test."""
    repayments = [(purchase_date, first)]
    repayments += [(add_months(purchase_date, k), cents) for k, cents in enumerate(later, 1)]
    return annual_percentage_rate_bps(drawdowns=[(purchase_date, amount)], repayments=repayments)


def equal_month_apr_bps(amount, first, later):
    """An independent oracle: Annex I of the directive with monthly intervals of 1/12 year.

    Bisection on the net present value; the instalments after the first fall k/12 years later.
    """

    def net_present_value(rate):
        later_value = sum(cents * (1 + rate) ** (-k / 12) for k, cents in enumerate(later, 1))
        return first - amount + later_value

    low, high = 0.0, 10.0
    for _ in range(200):
        middle = (low + high) / 2
        if net_present_value(middle) > 0:
            low = middle
        else:
            high = middle
    return round(low * 10_000)


# --- zero-cost and nothing-lent plans ----------------------------------------------------------


@pytest.mark.parametrize("count", [2, 3, 4, 10, 12])
def test_a_fee_free_plan_has_an_apr_of_zero(count):
    plan = compute_plan(
        purchase_amount=200000,
        terms=PlanTerms(installments_count=count),
        purchase_date=PURCHASE_DAY,
    )

    apr = plan_apr_bps(plan)

    assert apr == 0


@settings(max_examples=300, deadline=None)
@given(
    amount=st.integers(min_value=1, max_value=10**9),
    count=st.integers(min_value=1, max_value=12),
    purchase_date=purchase_days,
)
def test_any_plan_without_fee_or_interest_has_an_apr_of_zero(amount, count, purchase_date):
    plan = compute_plan(
        purchase_amount=amount,
        terms=PlanTerms(installments_count=count),
        purchase_date=purchase_date,
    )

    apr = plan_apr_bps(plan)

    assert apr == 0


def test_a_plan_paid_entirely_on_the_purchase_day_lends_nothing_so_its_apr_is_zero():
    terms = PlanTerms(installments_count=1, customer_fee_variable=500, customer_fee_fixed=100)
    plan = compute_plan(purchase_amount=100000, terms=terms, purchase_date=PURCHASE_DAY)

    apr = plan_apr_bps(plan)

    assert plan.customer_fee == 5100
    assert apr == 0


def test_free_credit_repaid_at_any_pace_has_an_apr_of_zero():
    repayments = [
        (PURCHASE_DAY + timedelta(days=10), 10000),
        (PURCHASE_DAY + timedelta(days=300), 90000),
    ]

    apr = annual_percentage_rate_bps(drawdowns=[(PURCHASE_DAY, 100000)], repayments=repayments)

    assert apr == 0


@pytest.mark.parametrize(
    ("drawdowns", "repayments"),
    [([], [(PURCHASE_DAY, 100)]), ([(PURCHASE_DAY, 100)], [])],
)
def test_a_credit_without_drawdowns_or_repayments_is_refused(drawdowns, repayments):
    with pytest.raises(ValueError):
        annual_percentage_rate_bps(drawdowns=drawdowns, repayments=repayments)


# --- reference plans ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "purchase_date", [date(2026, 1, 15), date(2026, 3, 1), date(2026, 6, 15), date(2026, 11, 30)]
)
def test_a_1000_eur_4x_plan_with_a_23_20_eur_fee_has_an_apr_of_about_20_8_percent(purchase_date):
    apr = monthly_plan_apr_bps(100000, 25000 + 2320, [25000] * 3, purchase_date)

    assert 2060 <= apr <= 2100


def test_a_1000_eur_4x_plan_with_a_23_20_eur_fee_has_an_apr_of_exactly_20_81_percent():
    terms = PlanTerms(installments_count=4, customer_fee_fixed=2320)
    plan = compute_plan(purchase_amount=100000, terms=terms, purchase_date=PURCHASE_DAY)

    apr = plan_apr_bps(plan)

    assert [i.total_amount for i in plan.instalments] == [27320, 25000, 25000, 25000]
    assert equal_month_apr_bps(100000, 27320, [25000] * 3) == 2081
    assert apr == 2081


@pytest.mark.parametrize(
    "purchase_date", [date(2026, 1, 15), date(2026, 1, 31), date(2026, 3, 1), date(2026, 6, 15)]
)
def test_the_2000_eur_3x_sample_with_a_34_40_eur_fee_has_an_apr_near_23_30_percent(purchase_date):
    terms = PlanTerms(installments_count=3, customer_fee_variable=172)
    plan = compute_plan(purchase_amount=200000, terms=terms, purchase_date=purchase_date)

    apr = plan_apr_bps(plan)

    assert plan.customer_fee == 3440
    assert equal_month_apr_bps(200000, 70108, [66666, 66666]) == 2330
    assert abs(apr - 2330) <= 50


@pytest.mark.parametrize("purchase_date", [date(2026, 1, 15), date(2027, 12, 1)])
def test_a_12x_plan_at_a_17_percent_lending_rate_has_the_effective_annual_rate_as_apr(
    purchase_date,
):
    terms = PlanTerms(installments_count=12, customer_lending_rate=1700)
    plan = compute_plan(purchase_amount=200000, terms=terms, purchase_date=purchase_date)
    effective_annual_rate_bps = round(((1 + 0.17 / 12) ** 12 - 1) * 10_000)

    apr = plan_apr_bps(plan)

    assert effective_annual_rate_bps == 1839
    assert abs(apr - effective_annual_rate_bps) <= 3


def test_a_30_day_deferral_with_a_1_percent_fee_compounds_over_the_days():
    terms = PlanTerms(installments_count=1, deferred_days=30, customer_fee_variable=100)
    # 15 Jan -> 14 Feb: 30 days, less than a whole month, so counted in days.
    plan = compute_plan(purchase_amount=100000, terms=terms, purchase_date=date(2026, 1, 15))

    apr = plan_apr_bps(plan)

    assert apr == round((1.01 ** (365 / 30) - 1) * 10_000)  # 12.87 %


def test_a_30_day_deferral_that_is_a_whole_month_compounds_twelve_times():
    terms = PlanTerms(installments_count=1, deferred_days=30, customer_fee_variable=100)
    # 15 Jun -> 15 Jul: June has 30 days, so the deferral is exactly one month.
    plan = compute_plan(purchase_amount=100000, terms=terms, purchase_date=date(2026, 6, 15))

    apr = plan_apr_bps(plan)

    assert apr == round((1.01**12 - 1) * 10_000)  # 12.68 %


def test_a_credit_dearer_than_any_cap_is_reported_at_the_solvers_bound():
    repayments = [(PURCHASE_DAY + timedelta(days=30), 10**9)]

    apr = annual_percentage_rate_bps(drawdowns=[(PURCHASE_DAY, 100)], repayments=repayments)

    assert apr == 10_000_000  # 100,000 %


# --- the fee drives the APR --------------------------------------------------------------------


def test_more_customer_fee_means_a_higher_apr():
    aprs = []
    for fee_bps in (0, 100, 200, 500, 1000):
        terms = PlanTerms(installments_count=4, customer_fee_variable=fee_bps)
        plan = compute_plan(purchase_amount=100000, terms=terms, purchase_date=PURCHASE_DAY)
        aprs.append(plan_apr_bps(plan))

    assert aprs[0] == 0
    assert aprs == sorted(aprs)
    assert len(set(aprs)) == len(aprs)


@settings(max_examples=300, deadline=None)
@given(
    amount=st.integers(min_value=5000, max_value=10**8),
    count=st.integers(min_value=2, max_value=12),
    fees=st.lists(st.integers(min_value=0, max_value=2000), min_size=2, max_size=2),
    purchase_date=purchase_days,
)
def test_the_apr_never_falls_when_the_fee_rises(amount, count, fees, purchase_date):
    lower, higher = sorted(fees)

    aprs = [
        plan_apr_bps(
            compute_plan(
                purchase_amount=amount,
                terms=PlanTerms(installments_count=count, customer_fee_variable=fee),
                purchase_date=purchase_date,
            )
        )
        for fee in (lower, higher)
    ]

    assert aprs[0] <= aprs[1]


# --- year fractions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2026, 1, 1), date(2026, 1, 1), 0.0),
        (date(2026, 1, 1), date(2027, 1, 1), 1.0),
        (date(2028, 1, 1), date(2029, 1, 1), 1.0),
        (date(2026, 3, 15), date(2028, 3, 15), 2.0),
        (date(2026, 1, 1), date(2026, 7, 1), 0.5),  # whole months: 1/12 each
        (date(2026, 1, 31), date(2026, 2, 28), 1 / 12),  # clamped, as due dates are
        (date(2026, 1, 31), date(2026, 3, 31), 2 / 12),
        (date(2026, 1, 15), date(2026, 2, 14), 30 / 365),  # less than a month: days
        (date(2028, 1, 15), date(2028, 2, 14), 30 / 365),  # the year to 14 Feb 2028 holds none,
        (date(2028, 2, 15), date(2028, 3, 14), 28 / 366),  # the year to 14 Mar 2028 holds 29 Feb
        (date(2026, 1, 1), date(2027, 7, 11), 1.5 + 10 / 365),
    ],
)
def test_a_year_fraction_counts_whole_months_then_days_over_the_years_length(start, end, expected):
    result = year_fraction(start, end)

    assert result == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        (date(2028, 3, 29), 1 / 12),
        (date(2028, 3, 31), 1 / 12 + 2 / 366),  # the year to 31 Mar 2028 holds 29 Feb
        (date(2029, 2, 28), 1.0),
        (date(2029, 3, 1), 1 + 1 / 365),
        (date(2032, 2, 28), 47 / 12 + 30 / 365),
        (date(2032, 2, 29), 4.0),
    ],
)
def test_a_year_fraction_from_29_february_steps_months_as_due_dates_do(end, expected):
    result = year_fraction(date(2028, 2, 29), end)

    assert result == pytest.approx(expected, abs=1e-15)


@settings(max_examples=300, deadline=None)
@given(start=purchase_days, days=st.integers(min_value=0, max_value=3000))
@example(start=date(2028, 2, 29), days=1460)  # 28 Feb 2032, the eve of the 4th anniversary
@example(start=date(2026, 1, 31), days=27)  # 27 Feb: the next day completes a month
def test_every_day_adds_to_the_year_fraction_and_never_more_than_a_month(start, days):
    end = start + timedelta(days=days)

    today, tomorrow = year_fraction(start, end), year_fraction(start, end + timedelta(days=1))

    assert tomorrow > today
    assert tomorrow - today <= 1 / 12 + 1e-12


@settings(max_examples=200, deadline=None)
@given(start=purchase_days, months=st.integers(min_value=0, max_value=36))
def test_monthly_due_dates_are_whole_twelfths_of_a_year(start, months):
    result = year_fraction(start, add_months(start, months))

    assert result == pytest.approx(months / 12, abs=1e-15)
