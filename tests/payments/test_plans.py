from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from apps.common.dates import add_months
from apps.common.money import fee_cents
from apps.payments.eligibility import plan_apr_bps
from apps.payments.plans import PlanTerms, compute_plan, due_dates

PURCHASE_DAY = date(2026, 1, 15)


def totals(plan):
    return [instalment.total_amount for instalment in plan.instalments]


def principals(plan):
    return [instalment.purchase_amount for instalment in plan.instalments]


def fees(plan):
    return [instalment.customer_fee for instalment in plan.instalments]


def interests(plan):
    return [instalment.customer_interest for instalment in plan.instalments]


def dates(plan):
    return [instalment.due_date for instalment in plan.instalments]


# --- the reference example: 2,000 EUR in 3x with a 1.72 % customer fee --------------------------


def test_a_2000_eur_purchase_in_3x_with_a_172_bps_fee_is_paid_70108_then_66666_twice():
    terms = PlanTerms(installments_count=3, customer_fee_variable=172)

    plan = compute_plan(purchase_amount=200000, terms=terms, purchase_date=PURCHASE_DAY)

    assert totals(plan) == [70108, 66666, 66666]
    assert principals(plan) == [66668, 66666, 66666]
    assert fees(plan) == [3440, 0, 0]
    assert interests(plan) == [0, 0, 0]
    assert plan.customer_fee == 3440
    assert plan.customer_total_cost_amount == 3440
    assert plan.customer_total_cost_bps == 172
    assert plan.total_amount == 203440


def test_the_principal_rounding_remainder_goes_on_the_first_instalment():
    terms = PlanTerms(installments_count=3)

    plan = compute_plan(purchase_amount=100000, terms=terms, purchase_date=PURCHASE_DAY)

    assert principals(plan) == [33334, 33333, 33333]


def test_a_twelve_instalment_split_of_a_few_cents_puts_all_the_remainder_first():
    terms = PlanTerms(installments_count=12)

    plan = compute_plan(purchase_amount=100, terms=terms, purchase_date=PURCHASE_DAY)

    assert principals(plan) == [12] + [8] * 11


def test_the_customer_fee_variable_and_fixed_is_paid_only_with_the_first_instalment():
    terms = PlanTerms(installments_count=4, customer_fee_variable=100, customer_fee_fixed=150)

    plan = compute_plan(purchase_amount=100000, terms=terms, purchase_date=PURCHASE_DAY)

    assert fees(plan) == [1150, 0, 0, 0]
    assert totals(plan) == [26150, 25000, 25000, 25000]


def test_the_variable_customer_fee_is_rounded_half_up_to_the_cent():
    terms = PlanTerms(installments_count=3, customer_fee_variable=290)

    plan = compute_plan(purchase_amount=3333, terms=terms, purchase_date=PURCHASE_DAY)

    assert plan.customer_fee == 97  # 2.90 % of 33.33 EUR is 0.96657 EUR


def test_a_fee_free_plan_costs_the_customer_nothing():
    terms = PlanTerms(installments_count=4)

    plan = compute_plan(purchase_amount=123456, terms=terms, purchase_date=PURCHASE_DAY)

    assert plan.customer_total_cost_amount == 0
    assert plan.customer_total_cost_bps == 0
    assert plan.total_amount == 123456


# --- due dates ---------------------------------------------------------------------------------


def test_a_split_plan_is_due_monthly_from_the_purchase_day():
    terms = PlanTerms(installments_count=4)

    plan = compute_plan(purchase_amount=100000, terms=terms, purchase_date=PURCHASE_DAY)

    assert dates(plan) == [
        date(2026, 1, 15),
        date(2026, 2, 15),
        date(2026, 3, 15),
        date(2026, 4, 15),
    ]
    assert plan.last_due_date == date(2026, 4, 15)


def test_a_purchase_on_31_january_is_due_on_28_february_then_back_on_31_march():
    terms = PlanTerms(installments_count=4)

    plan = compute_plan(purchase_amount=100000, terms=terms, purchase_date=date(2026, 1, 31))

    assert dates(plan) == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
    ]


def test_a_purchase_on_31_january_of_a_leap_year_is_due_on_29_february():
    terms = PlanTerms(installments_count=3)

    plan = compute_plan(purchase_amount=100000, terms=terms, purchase_date=date(2028, 1, 31))

    assert dates(plan) == [date(2028, 1, 31), date(2028, 2, 29), date(2028, 3, 31)]


def test_a_plan_bought_in_november_runs_into_the_next_year():
    terms = PlanTerms(installments_count=4)

    plan = compute_plan(purchase_amount=100000, terms=terms, purchase_date=date(2026, 11, 30))

    assert dates(plan) == [
        date(2026, 11, 30),
        date(2026, 12, 30),
        date(2027, 1, 30),
        date(2027, 2, 28),
    ]


@pytest.mark.parametrize(
    ("terms", "expected"),
    [
        (PlanTerms(installments_count=1, deferred_days=15), date(2026, 2, 15)),
        (PlanTerms(installments_count=1, deferred_days=30), date(2026, 3, 2)),
        (PlanTerms(installments_count=1, deferred_months=1), date(2026, 2, 28)),
    ],
)
def test_a_deferred_plan_has_one_instalment_due_after_the_deferral(terms, expected):
    plan = compute_plan(purchase_amount=50000, terms=terms, purchase_date=date(2026, 1, 31))

    assert dates(plan) == [expected]
    assert principals(plan) == [50000]
    assert plan.amount_due_at_purchase == 0


def test_a_pay_now_plan_is_due_entirely_on_the_purchase_day():
    terms = PlanTerms(installments_count=1)

    plan = compute_plan(purchase_amount=50000, terms=terms, purchase_date=PURCHASE_DAY)

    assert dates(plan) == [PURCHASE_DAY]
    assert plan.amount_due_at_purchase == 50000


def test_due_dates_can_be_asked_without_computing_the_plan():
    terms = PlanTerms(installments_count=3)

    result = due_dates(terms, date(2026, 12, 31))

    assert result == (date(2026, 12, 31), date(2027, 1, 31), date(2027, 2, 28))


# --- lending-rate plans ----------------------------------------------------------------------


@pytest.mark.parametrize("count", [10, 12])
def test_a_plan_with_a_lending_rate_has_level_instalments(count):
    terms = PlanTerms(installments_count=count, customer_lending_rate=1700)

    plan = compute_plan(purchase_amount=200000, terms=terms, purchase_date=PURCHASE_DAY)

    first, *later = totals(plan)
    assert len(set(later)) == 1
    assert abs(first - later[0]) <= count


@pytest.mark.parametrize("count", [10, 12])
def test_the_first_instalment_bears_no_interest_and_interest_then_decreases(count):
    terms = PlanTerms(installments_count=count, customer_lending_rate=1700)

    plan = compute_plan(purchase_amount=200000, terms=terms, purchase_date=PURCHASE_DAY)

    first, *later = interests(plan)
    assert first == 0
    assert all(earlier > next_ for earlier, next_ in pairwise(later))
    assert later[-1] > 0


def test_each_month_bears_the_monthly_rate_on_the_balance_still_owed_to_the_cent():
    terms = PlanTerms(installments_count=10, customer_lending_rate=1700)

    plan = compute_plan(purchase_amount=200000, terms=terms, purchase_date=PURCHASE_DAY)

    owed = 200000 - plan.instalments[0].purchase_amount
    for instalment in plan.instalments[1:]:
        monthly_interest = Decimal(owed) * Decimal("0.17") / 12
        # Within a cent, not half: interest runs on the balance before the first instalment
        # absorbs the principal's rounding remainder (a few cents here).
        assert abs(instalment.customer_interest - monthly_interest) < 1
        owed -= instalment.purchase_amount
    assert owed == 0


def test_two_thousand_eur_in_10x_at_17_percent_costs_a_plausible_interest():
    terms = PlanTerms(installments_count=10, customer_lending_rate=1700)

    plan = compute_plan(purchase_amount=200000, terms=terms, purchase_date=PURCHASE_DAY)

    assert 12000 <= plan.customer_interest <= 14000
    assert plan.customer_fee == 0
    assert sum(principals(plan)) == 200000
    assert plan.total_amount == 200000 + plan.customer_interest


def test_a_deferred_plan_with_a_lending_rate_bears_simple_interest_over_the_days():
    terms = PlanTerms(installments_count=1, deferred_days=30, customer_lending_rate=1700)

    plan = compute_plan(purchase_amount=100000, terms=terms, purchase_date=PURCHASE_DAY)

    assert interests(plan) == [1397]  # 1,000 EUR * 17 % * 30/365 = 13.9726 EUR


def test_a_deferred_plan_with_a_lending_rate_bears_simple_interest_over_the_months():
    terms = PlanTerms(installments_count=1, deferred_months=1, customer_lending_rate=1700)

    plan = compute_plan(purchase_amount=100000, terms=terms, purchase_date=PURCHASE_DAY)

    assert interests(plan) == [1417]  # 1,000 EUR * 17 % / 12 = 14.1667 EUR


def test_the_merchant_fee_is_its_basis_points_plus_its_fixed_part():
    terms = PlanTerms(installments_count=3, merchant_fee_variable=290, merchant_fee_fixed=30)

    plan = compute_plan(purchase_amount=200000, terms=terms, purchase_date=PURCHASE_DAY)

    assert plan.merchant_fee == 5800 + 30
    assert plan.total_amount == 200000  # the merchant's fee is not the customer's


# --- refused shapes and inputs ---------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"installments_count": 0},
        {"installments_count": 13},
        {"installments_count": -1},
        {"installments_count": 3, "deferred_days": 30},
        {"installments_count": 2, "deferred_months": 1},
        {"installments_count": 1, "deferred_days": 15, "deferred_months": 1},
        {"installments_count": 1, "deferred_days": -15},
        {"installments_count": 1, "deferred_months": -1},
        {"installments_count": 3, "customer_fee_variable": -1},
        {"installments_count": 3, "customer_fee_fixed": -1},
        {"installments_count": 3, "customer_lending_rate": -1},
        {"installments_count": 3, "merchant_fee_variable": -1},
        {"installments_count": 3, "merchant_fee_fixed": -1},
    ],
)
def test_plan_terms_of_an_impossible_shape_are_refused(fields):
    with pytest.raises(ValueError):
        PlanTerms(**fields)


@pytest.mark.parametrize("amount", [1000.0, "1000", True, False, Decimal(1000), None])
def test_a_purchase_amount_that_is_not_int_cents_is_refused(amount):
    terms = PlanTerms(installments_count=3)

    with pytest.raises(TypeError):
        compute_plan(purchase_amount=amount, terms=terms, purchase_date=PURCHASE_DAY)


@pytest.mark.parametrize("amount", [0, -1, -200000])
def test_a_purchase_amount_that_is_not_positive_is_refused(amount):
    terms = PlanTerms(installments_count=3)

    with pytest.raises(ValueError):
        compute_plan(purchase_amount=amount, terms=terms, purchase_date=PURCHASE_DAY)


# --- properties ------------------------------------------------------------------------------


@st.composite
def plan_terms(draw):
    shape = draw(st.sampled_from(["split", "deferred_days", "deferred_months"]))
    count, days, months = 1, 0, 0
    if shape == "split":
        count = draw(st.integers(min_value=1, max_value=12))
    elif shape == "deferred_days":
        days = draw(st.integers(min_value=1, max_value=365))  # the API's bounds
    else:
        months = draw(st.integers(min_value=1, max_value=12))
    return PlanTerms(
        installments_count=count,
        deferred_days=days,
        deferred_months=months,
        customer_fee_variable=draw(st.integers(min_value=0, max_value=2000)),
        customer_fee_fixed=draw(st.integers(min_value=0, max_value=5000)),
        # Far above any usury cap: the arithmetic must hold whatever an operator types.
        customer_lending_rate=draw(st.integers(min_value=0, max_value=20000)),
        merchant_fee_variable=draw(st.integers(min_value=0, max_value=2000)),
        merchant_fee_fixed=draw(st.integers(min_value=0, max_value=5000)),
    )


# Rounding edges live in small amounts: draw them as often as realistic and huge ones.
amounts = st.one_of(
    st.integers(min_value=1, max_value=100),
    st.integers(min_value=1, max_value=10**6),
    st.integers(min_value=1, max_value=10**9),
)
purchase_days = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31))
plenty = settings(max_examples=300, deadline=None)


@plenty
@given(amount=amounts, terms=plan_terms(), purchase_date=purchase_days)
def test_instalments_always_add_up_to_the_purchase_plus_fee_plus_interest(
    amount, terms, purchase_date
):
    plan = compute_plan(purchase_amount=amount, terms=terms, purchase_date=purchase_date)

    customer_fee = fee_cents(
        amount, variable_bps=terms.customer_fee_variable, fixed_cents=terms.customer_fee_fixed
    )
    assert sum(totals(plan)) == amount + customer_fee + plan.customer_interest
    assert plan.total_amount == amount + customer_fee + plan.customer_interest
    assert sum(principals(plan)) == amount
    assert fees(plan) == [customer_fee] + [0] * (terms.installments_count - 1)
    assert len(plan.instalments) == terms.installments_count
    assert plan.merchant_fee == fee_cents(
        amount, variable_bps=terms.merchant_fee_variable, fixed_cents=terms.merchant_fee_fixed
    )


@plenty
@given(amount=amounts, terms=plan_terms(), purchase_date=purchase_days)
@example(  # a level payment rounded up, interest rounded down: the drift lands on the first
    amount=20,
    terms=PlanTerms(installments_count=12, customer_lending_rate=3000),
    purchase_date=PURCHASE_DAY,
)
def test_no_part_of_any_instalment_is_ever_negative(amount, terms, purchase_date):
    plan = compute_plan(purchase_amount=amount, terms=terms, purchase_date=purchase_date)

    for instalment in plan.instalments:
        assert instalment.purchase_amount >= 0
        assert instalment.customer_fee >= 0
        assert instalment.customer_interest >= 0
        assert instalment.total_amount >= 0


@plenty
@given(amount=amounts, terms=plan_terms(), purchase_date=purchase_days)
def test_due_dates_strictly_increase_from_the_purchase_day(amount, terms, purchase_date):
    plan = compute_plan(purchase_amount=amount, terms=terms, purchase_date=purchase_date)

    schedule = dates(plan)
    assert all(earlier < later for earlier, later in pairwise(schedule))
    if terms.is_deferred:
        assert schedule[0] > purchase_date
        assert schedule[0] in {
            purchase_date + timedelta(days=terms.deferred_days),
            add_months(purchase_date, terms.deferred_months),
        }
    else:
        assert schedule[0] == purchase_date
        assert schedule == [add_months(purchase_date, k) for k in range(len(schedule))]


@plenty
@given(amount=amounts, terms=plan_terms(), purchase_date=purchase_days)
def test_every_plan_has_an_apr_the_solver_finds(amount, terms, purchase_date):
    plan = compute_plan(purchase_amount=amount, terms=terms, purchase_date=purchase_date)

    apr = plan_apr_bps(plan)

    assert isinstance(apr, int)
    assert apr >= 0


def test_a_few_cents_at_an_extreme_rate_never_give_a_negative_principal():
    terms = PlanTerms(installments_count=12, customer_lending_rate=6750)

    plan = compute_plan(purchase_amount=9, terms=terms, purchase_date=date(2026, 1, 15))

    assert all(i.purchase_amount >= 0 and i.customer_interest >= 0 for i in plan.instalments)
    assert sum(i.purchase_amount for i in plan.instalments) == 9
