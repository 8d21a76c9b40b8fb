import random
from datetime import date

import pytest

from apps.payments.plans import PlanTerms, compute_plan
from apps.payments.regulation import (
    CreditRegime,
    UsuryBand,
    credit_amount,
    credit_regime,
    usury_cap_bps,
)

PURCHASE_DAY = date(2026, 1, 15)


def plan_of(amount=200000, purchase_date=PURCHASE_DAY, **terms):
    return compute_plan(
        purchase_amount=amount, terms=PlanTerms(**terms), purchase_date=purchase_date
    )


# --- credit regime -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "terms",
    [
        {"installments_count": 1},
        {"installments_count": 2},
        {"installments_count": 3},
        {"installments_count": 4},
        {"installments_count": 1, "deferred_days": 30},
        {"installments_count": 1, "deferred_months": 1},
    ],
)
def test_a_fee_free_plan_repaid_within_three_months_is_exempt(terms):
    plan = plan_of(**terms)

    regime = credit_regime(plan, negligible_cost_bps=0)

    assert regime is CreditRegime.EXEMPT


def test_a_4x_bought_on_31_january_ends_on_30_april_and_stays_exempt():
    plan = plan_of(purchase_date=date(2026, 1, 31), installments_count=4)

    regime = credit_regime(plan, negligible_cost_bps=0)

    assert plan.last_due_date == date(2026, 4, 30)
    assert regime is CreditRegime.EXEMPT


@pytest.mark.parametrize(
    "terms",
    [
        {"installments_count": 5},
        {"installments_count": 10},
        {"installments_count": 12},
        {"installments_count": 10, "customer_lending_rate": 1700},
        {"installments_count": 1, "deferred_days": 93},
    ],
)
def test_a_plan_longer_than_three_months_is_a_consumer_credit_even_when_free(terms):
    plan = plan_of(**terms)

    regime = credit_regime(plan, negligible_cost_bps=0)

    assert regime is CreditRegime.CONSUMER_CREDIT


def test_a_3x_with_a_fee_is_a_consumer_credit_under_the_default_zero_threshold():
    plan = plan_of(installments_count=3, customer_fee_variable=172)

    regime = credit_regime(plan, negligible_cost_bps=0)

    assert regime is CreditRegime.CONSUMER_CREDIT


@pytest.mark.parametrize(
    ("negligible_cost_bps", "expected"),
    [
        (171, CreditRegime.CONSUMER_CREDIT),
        (172, CreditRegime.EXEMPT),
        (200, CreditRegime.EXEMPT),
    ],
)
def test_a_3x_whose_fee_is_within_the_negligible_threshold_is_exempt(negligible_cost_bps, expected):
    plan = plan_of(installments_count=3, customer_fee_variable=172)

    regime = credit_regime(plan, negligible_cost_bps=negligible_cost_bps)

    assert plan.customer_total_cost_bps == 172
    assert regime is expected


def test_interest_is_never_negligible():
    plan = plan_of(installments_count=3, customer_lending_rate=100)

    regime = credit_regime(plan, negligible_cost_bps=10_000)

    assert plan.customer_interest > 0
    assert regime is CreditRegime.CONSUMER_CREDIT


# --- credit amount -----------------------------------------------------------------------------


def test_the_credit_amount_is_the_purchase_less_what_is_paid_on_the_purchase_day():
    plan = plan_of(installments_count=3, customer_fee_variable=172)

    amount = credit_amount(plan)

    assert amount == 200000 - 66668


def test_a_deferred_plan_lends_the_whole_purchase():
    plan = plan_of(installments_count=1, deferred_days=30)

    amount = credit_amount(plan)

    assert amount == 200000


def test_a_pay_now_plan_lends_nothing():
    plan = plan_of(installments_count=1, customer_fee_fixed=500)

    amount = credit_amount(plan)

    assert amount == 0


# --- usury cap ---------------------------------------------------------------------------------

AUTUMN = date(2025, 10, 1)
WINTER = date(2026, 1, 1)
USURY_TABLE = (
    UsuryBand(AUTUMN, 300000, 2349),
    UsuryBand(AUTUMN, 600000, 1571),
    UsuryBand(AUTUMN, None, 873),
    UsuryBand(WINTER, 300000, 2356),
    UsuryBand(WINTER, 600000, 1587),
    UsuryBand(WINTER, None, 867),
)


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        (date(2025, 10, 1), 2349),
        (date(2025, 12, 31), 2349),
        (date(2026, 1, 1), 2356),
        (date(2026, 3, 31), 2356),
        (date(2026, 4, 1), None),  # no table for that quarter yet: unknown, not the old one
        (date(2026, 6, 30), None),
    ],
)
def test_the_usury_cap_is_the_table_of_the_quarter_holding_the_day(on, expected):
    cap = usury_cap_bps(USURY_TABLE, amount=100000, on=on)

    assert cap == expected


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (1, 2356),
        (300000, 2356),
        (300001, 1587),
        (600000, 1587),
        (600001, 867),
        (10**9, 867),
    ],
)
def test_the_usury_cap_comes_from_the_narrowest_band_holding_the_amount(amount, expected):
    cap = usury_cap_bps(USURY_TABLE, amount=amount, on=PURCHASE_DAY)

    assert cap == expected


def test_the_order_of_the_usury_table_does_not_matter():
    shuffled = list(USURY_TABLE)
    random.Random(7).shuffle(shuffled)

    caps = [usury_cap_bps(shuffled, amount=a, on=PURCHASE_DAY) for a in (300000, 600000, 600001)]

    assert caps == [2356, 1587, 867]


@pytest.mark.parametrize("bands", [USURY_TABLE, ()])
def test_there_is_no_usury_cap_before_the_first_quarter(bands):
    cap = usury_cap_bps(bands, amount=100000, on=date(2025, 9, 30))

    assert cap is None


def test_a_quarter_without_a_band_for_the_amount_gives_no_cap():
    bands = [UsuryBand(WINTER, 300000, 2356)]

    cap = usury_cap_bps(bands, amount=300001, on=PURCHASE_DAY)

    assert cap is None


def test_a_fee_too_small_to_show_in_basis_points_still_makes_a_credit():
    terms = PlanTerms(installments_count=3, customer_fee_fixed=9)  # 9 cents on 2,000 EUR
    plan = compute_plan(purchase_amount=200000, terms=terms, purchase_date=date(2026, 1, 15))

    regime = credit_regime(plan, negligible_cost_bps=0)

    assert plan.customer_total_cost_bps == 0
    assert regime is CreditRegime.CONSUMER_CREDIT
