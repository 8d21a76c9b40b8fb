"""Our own analysis of bank transactions: a pure function, table tests and properties."""

from __future__ import annotations

import json
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.verification.bank_analysis import (
    FLAG_FREQUENT_OVERDRAFT,
    FLAG_GAMBLING,
    FLAG_HEAVY_EXISTING_CREDIT,
    FLAG_IRREGULAR_INCOME,
    FLAG_NO_INCOME,
    LIVING_ALLOWANCE_PER_ADULT_CENTS,
    BankAnalysis,
    Transaction,
    analysis_window,
    bank_analyse,
    classify,
    normalise_text,
)

TODAY = date(2025, 6, 15)
# March, April and May 2025 are the whole months before TODAY.
MONTHS = ((2025, 3), (2025, 4), (2025, 5))
ALL_FLAGS = {
    FLAG_NO_INCOME,
    FLAG_IRREGULAR_INCOME,
    FLAG_FREQUENT_OVERDRAFT,
    FLAG_HEAVY_EXISTING_CREDIT,
    FLAG_GAMBLING,
}


def tx(day: date, amount_cents: int, label: str, category: str | None = None) -> Transaction:
    return Transaction(booked_on=day, amount_cents=amount_cents, label=label, category=category)


def monthly(events: list[tuple[int, int, str]], *, months=MONTHS) -> list[Transaction]:
    """The same (day, amount, label) events in each month."""
    return [
        tx(date(year, month, day), amount, label)
        for year, month in months
        for day, amount, label in events
    ]


def analyse(transactions, **options) -> BankAnalysis:
    options.setdefault("opening_balance_cents", 200_000)
    options.setdefault("period_start", date(2025, 3, 1))
    return bank_analyse(transactions, today=TODAY, **options)


# --- classification -------------------------------------------------------------------------


def test_labels_are_compared_without_accents_case_or_punctuation():
    assert normalise_text("Prlv  Échéance-Prêt  Cofidis n°12") == "PRLV ECHEANCE PRET COFIDIS N 12"


@pytest.mark.parametrize(
    ("amount", "label", "category", "expected"),
    [
        (240000, "VIR SALAIRE ACME", None, "income"),
        (52000, "Vir Allocations CAF", None, "income"),
        (140000, "VIR PENSION RETRAITE CARSAT", None, "income"),
        (-21000, "prlv échéance prêt cofidis", None, "credit"),
        (-4500, "PRLV KLARNA", None, "credit"),
        (-6000, "PRLV ONEY 4X", None, "credit"),
        (-75000, "PRLV LOYER", None, "fixed"),
        (-6480, "PRLV EDF", None, "fixed"),
        (-1349, "PRLV NETFLIX.COM", None, "fixed"),
        (-2000, "CB FDJ", None, "gambling"),
        (-2000, "Parions Sport en ligne", None, "gambling"),
        (12000, "VIR WINAMAX GAINS", None, "gambling"),
        (-5400, "CB CARREFOUR", None, "other"),
        # A supermarket called Casino is not a casino.
        (-3000, "CB GEANT CASINO", None, "other"),
        # Keywords are whole words: "EDF" is not in "CREDFORT".
        (-3000, "CB CREDFORT", None, "other"),
        # A debit is never income, a credit never a charge.
        (-5000, "VIR SALAIRE RETOURNE", None, "other"),
        (3000, "REMBOURSEMENT EDF", None, "other"),
        # The aggregator's category wins over the label when we know it...
        (-5400, "CB CARREFOUR", "Loan repayment", "credit"),
        (240000, "VIREMENT RECU", "salary", "income"),
        # ...and the label decides when we do not.
        (-6480, "PRLV EDF", "shopping", "fixed"),
    ],
)
def test_a_transaction_is_classed_by_category_then_by_label(amount, label, category, expected):
    transaction = tx(TODAY, amount, label, category)

    assert classify(transaction) == expected


# --- the window -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period_start", "today", "expected"),
    [
        (date(2025, 3, 1), date(2025, 6, 15), (date(2025, 3, 1), date(2025, 5, 31), 3)),
        # A month begun after its first day does not count.
        (date(2025, 3, 2), date(2025, 6, 15), (date(2025, 4, 1), date(2025, 5, 31), 2)),
        # Today is not over: its month counts only from tomorrow on.
        (date(2025, 3, 1), date(2025, 5, 31), (date(2025, 3, 1), date(2025, 4, 30), 2)),
        (date(2025, 3, 1), date(2025, 6, 1), (date(2025, 3, 1), date(2025, 5, 31), 3)),
        # Across a new year and a leap February.
        (date(2023, 12, 1), date(2024, 3, 2), (date(2023, 12, 1), date(2024, 2, 29), 3)),
        # No whole month: the whole period, as one month.
        (date(2025, 6, 3), date(2025, 6, 15), (date(2025, 6, 3), date(2025, 6, 15), 0)),
    ],
)
def test_only_whole_months_are_analysed(period_start, today, expected):
    assert analysis_window(period_start=period_start, today=today) == expected


# --- example profiles -----------------------------------------------------------------------


def test_a_steady_salary_with_rent_and_bills_leaves_a_good_capacity_and_no_flag():
    transactions = monthly(
        [
            (2, -80000, "PRLV LOYER SCI"),
            (6, -6000, "PRLV EDF"),
            (9, -2500, "PRLV ORANGE MOBILE"),
            (12, -12000, "CB CARREFOUR"),
            (28, 240000, "VIR SALAIRE ACME"),
        ]
    )

    analysis = analyse(transactions)

    assert analysis.months_analysed == 3
    assert analysis.monthly_income_cents == 240000
    assert analysis.income_by_month_cents == (240000, 240000, 240000)
    assert analysis.income_regular is True
    assert analysis.fixed_charges_cents == 88500
    assert analysis.credit_repayments_cents == 0
    assert analysis.gambling_cents == 0
    assert analysis.overdraft_days == 0
    assert analysis.living_allowance_cents == LIVING_ALLOWANCE_PER_ADULT_CENTS == 50000
    assert analysis.repayment_capacity_cents == 240000 - 88500 - 50000
    assert analysis.debt_to_income_bps == 0
    assert analysis.flags == ()


def test_several_credits_and_an_overdrawn_account_give_a_negative_capacity():
    transactions = monthly(
        [
            (2, -60000, "PRLV LOYER"),
            (5, -21000, "PRLV ECHEANCE PRET COFIDIS"),
            (8, -18000, "PRLV CETELEM"),
            (10, -12000, "PRLV SOFINCO"),
            (15, -9000, "PRLV ALMA"),
            (28, 160000, "VIR SALAIRE TRANSPORTS MOREAU"),
        ]
    )

    # From 10 EUR on 1 March: below zero from the 2nd (rent) to the salary on the 28th.
    analysis = analyse(transactions, opening_balance_cents=1000)

    assert analysis.credit_repayments_cents == 60000
    assert analysis.debt_to_income_bps == 3750
    assert analysis.repayment_capacity_cents == 160000 - 60000 - 60000 - 50000
    assert analysis.overdraft_days > 3 * 5
    assert analysis.flags == (FLAG_FREQUENT_OVERDRAFT, FLAG_HEAVY_EXISTING_CREDIT)


def test_a_freelancer_paid_unevenly_is_fine_on_average_but_flagged_irregular():
    transactions = [
        tx(date(2025, 3, 7), 140000, "VIR HONORAIRES STUDIO NOVA"),
        tx(date(2025, 4, 7), 360000, "VIR HONORAIRES STUDIO NOVA"),
        tx(date(2025, 5, 7), 230000, "VIR HONORAIRES STUDIO NOVA"),
    ]

    analysis = analyse(transactions)

    assert analysis.monthly_income_cents == 243333
    assert analysis.income_by_month_cents == (140000, 360000, 230000)
    assert analysis.income_regular is False
    assert analysis.flags == (FLAG_IRREGULAR_INCOME,)


def test_income_within_a_fifth_of_the_average_is_regular():
    transactions = [
        tx(date(2025, 3, 28), 200000, "VIR SALAIRE"),
        tx(date(2025, 4, 28), 240000, "VIR SALAIRE"),
        tx(date(2025, 5, 28), 280000, "VIR SALAIRE"),
    ]

    analysis = analyse(transactions)

    assert analysis.monthly_income_cents == 240000
    assert analysis.income_regular is True
    assert FLAG_IRREGULAR_INCOME not in analysis.flags


def test_heavy_betting_is_flagged_but_not_taken_off_the_capacity():
    transactions = monthly(
        [
            (3, -3000, "CB FDJ"),
            (10, -5000, "PRLV BETCLIC"),
            (17, -4000, "CB PMU"),
            (20, 9000, "VIR WINAMAX GAINS"),
            (28, 210000, "VIR SALAIRE"),
        ]
    )

    analysis = analyse(transactions)

    assert analysis.gambling_cents == 12000
    assert analysis.monthly_income_cents == 210000  # winnings are not income
    assert analysis.repayment_capacity_cents == 210000 - 50000
    assert analysis.flags == (FLAG_GAMBLING,)


def test_a_lottery_ticket_now_and_then_is_not_flagged():
    transactions = monthly([(3, -200, "CB FDJ"), (28, 210000, "VIR SALAIRE")])

    analysis = analyse(transactions)

    assert analysis.gambling_cents == 200
    assert FLAG_GAMBLING not in analysis.flags


def test_gambling_is_flagged_from_5_percent_of_a_small_income():
    transactions = monthly([(3, -4000, "CB PMU"), (28, 80000, "VIR PENSION")])

    analysis = analyse(transactions)

    assert FLAG_GAMBLING in analysis.flags


@pytest.mark.parametrize(("repayment", "heavy"), [(35000, True), (34999, False)])
def test_existing_credit_is_heavy_from_35_percent_of_income(repayment, heavy):
    transactions = monthly([(5, -repayment, "PRLV CETELEM"), (28, 100000, "VIR SALAIRE")])

    analysis = analyse(transactions)

    assert (FLAG_HEAVY_EXISTING_CREDIT in analysis.flags) is heavy


def test_an_account_without_income_is_flagged_and_has_no_debt_ratio():
    transactions = monthly([(5, -10000, "PRLV COFIDIS"), (12, -3000, "CB LIDL")])

    analysis = analyse(transactions)

    assert analysis.monthly_income_cents == 0
    assert analysis.income_regular is False
    assert analysis.debt_to_income_bps is None
    assert analysis.repayment_capacity_cents == -10000 - 50000
    assert analysis.flags == (FLAG_NO_INCOME, FLAG_HEAVY_EXISTING_CREDIT)


def test_a_credit_coming_back_each_month_counts_as_income():
    transactions = [
        *monthly([(4, 60000, "VIR M DUPONT LOYER 0325")]),
        *monthly([(20, 1500, "VIR LYDIA REMBOURSEMENT")]),  # recurring, but too small
        tx(date(2025, 4, 11), 90000, "VIR VENTE VOITURE"),  # large, but once
    ]

    analysis = analyse(transactions)

    assert analysis.monthly_income_cents == 60000


def test_the_living_allowance_is_per_adult():
    transactions = monthly([(28, 300000, "VIR SALAIRE")])

    analysis = analyse(transactions, adults=2)

    assert analysis.living_allowance_cents == 2 * LIVING_ALLOWANCE_PER_ADULT_CENTS
    assert analysis.repayment_capacity_cents == 300000 - 100000


@pytest.mark.parametrize(("total", "per_month"), [(100000, 50000), (100001, 50001), (99999, 50000)])
def test_monthly_figures_are_rounded_half_up(total, per_month):
    transactions = [tx(date(2025, 4, 5), -total, "PRLV LOYER")]

    analysis = analyse(transactions, period_start=date(2025, 4, 1))  # April and May

    assert analysis.months_analysed == 2
    assert analysis.fixed_charges_cents == per_month


def test_transactions_outside_the_whole_months_are_left_out():
    transactions = [
        tx(date(2025, 2, 28), 500000, "VIR SALAIRE"),  # before the period
        tx(date(2025, 3, 28), 240000, "VIR SALAIRE"),
        tx(date(2025, 4, 28), 240000, "VIR SALAIRE"),
        tx(date(2025, 5, 28), 240000, "VIR SALAIRE"),
        tx(date(2025, 6, 5), -90000, "PRLV LOYER"),  # this month, not over yet
        tx(date(2025, 6, 20), -90000, "PRLV COFIDIS"),  # after today
    ]

    analysis = analyse(transactions)

    assert analysis.monthly_income_cents == 240000
    assert analysis.fixed_charges_cents == 0
    assert analysis.credit_repayments_cents == 0


def test_overdraft_days_follow_the_balances_the_bank_reports():
    transactions = [
        Transaction(date(2025, 3, 1), -1000, "CB LIDL", balance_after_cents=5000),
        # Below zero at the end of 10 March ...
        Transaction(date(2025, 3, 10), -8000, "PRLV LOYER", balance_after_cents=-3000),
        # ... a credit during the day of the 12th does not help: the day ends negative ...
        Transaction(date(2025, 3, 12), 2000, "VIR", balance_after_cents=-1000),
        Transaction(date(2025, 3, 12), -500, "CB", balance_after_cents=-1500),
        # ... and back above zero on the 14th: 10, 11, 12 and 13 March.
        Transaction(date(2025, 3, 14), 9000, "VIR", balance_after_cents=7500),
        # A day below zero during the day but not at its end does not count.
        Transaction(date(2025, 4, 2), -9000, "CB", balance_after_cents=-1500),
        Transaction(date(2025, 4, 2), 3000, "VIR", balance_after_cents=1500),
        # The last day of the window counts; the days after it do not.
        Transaction(date(2025, 5, 31), -2000, "CB", balance_after_cents=-500),
    ]

    analysis = bank_analyse(transactions, today=TODAY, period_start=date(2025, 3, 1))

    assert analysis.overdraft_days == 4 + 1
    assert FLAG_FREQUENT_OVERDRAFT not in analysis.flags


def test_overdraft_days_can_come_from_an_opening_balance():
    transactions = [tx(date(2025, 5, 27), -20000, "PRLV LOYER"), tx(date(2025, 6, 2), 5000, "VIR")]

    # 50 EUR on 1 March, minus 200 EUR on 27 May: 27 to 31 May below zero.
    analysis = analyse(transactions, opening_balance_cents=5000)

    assert analysis.overdraft_days == 5


def test_an_account_overdrawn_from_the_start_counts_every_day():
    analysis = analyse([], opening_balance_cents=-1)

    assert analysis.overdraft_days == 31 + 30 + 31
    assert analysis.flags == (FLAG_NO_INCOME, FLAG_FREQUENT_OVERDRAFT)


def test_overdraft_days_need_a_balance():
    with pytest.raises(ValueError, match="balance"):
        bank_analyse([tx(date(2025, 3, 3), -100, "CB")], today=TODAY)


def test_amounts_must_be_integer_cents():
    with pytest.raises(TypeError):
        analyse([tx(date(2025, 3, 3), -10.5, "CB")])  # type: ignore[arg-type]


def test_the_analysis_and_the_transactions_go_to_json_and_back():
    transaction = Transaction(
        date(2025, 3, 3), -1349, "PRLV NETFLIX", category="subscriptions", balance_after_cents=-7
    )
    analysis = analyse(monthly([(28, 240000, "VIR SALAIRE")]))

    data = json.loads(json.dumps(analysis.to_json()))

    assert Transaction.from_json(json.loads(json.dumps(transaction.to_json()))) == transaction
    assert data["monthly_income_cents"] == 240000
    assert data["window_start"] == "2025-03-01"
    assert data["income_by_month_cents"] == [240000, 240000, 240000]
    assert data["flags"] == []


# --- properties -----------------------------------------------------------------------------

LABELS = (
    "VIR SALAIRE ACME",
    "VIR CAF",
    "VIR M DUPONT",
    "VIR HONORAIRES NOVA",
    "PRLV LOYER",
    "PRLV EDF",
    "PRLV NETFLIX",
    "PRLV ECHEANCE PRET COFIDIS",
    "PRLV KLARNA",
    "CB FDJ",
    "CB BETCLIC",
    "CB CARREFOUR",
    "RETRAIT DAB",
)
CATEGORIES = (None, None, None, "salary", "rent", "loan", "gambling", "groceries")

transactions_strategy = st.lists(
    st.builds(
        Transaction,
        booked_on=st.dates(min_value=date(2025, 2, 20), max_value=date(2025, 6, 20)),
        amount_cents=st.integers(min_value=-500_000, max_value=500_000),
        label=st.sampled_from(LABELS),
        category=st.sampled_from(CATEGORIES),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(
    transactions=transactions_strategy,
    opening=st.integers(min_value=-300_000, max_value=300_000),
    adults=st.integers(min_value=1, max_value=4),
    period_start=st.dates(min_value=date(2025, 2, 15), max_value=date(2025, 6, 15)),
)
def test_the_analysis_holds_its_rules_for_any_transactions(
    transactions, opening, adults, period_start
):
    analysis = bank_analyse(
        transactions,
        today=TODAY,
        period_start=period_start,
        opening_balance_cents=opening,
        adults=adults,
    )

    money = (
        analysis.monthly_income_cents,
        analysis.fixed_charges_cents,
        analysis.credit_repayments_cents,
        analysis.gambling_cents,
        analysis.living_allowance_cents,
        analysis.repayment_capacity_cents,
        *analysis.income_by_month_cents,
    )
    assert all(type(value) is int for value in money)  # never a float, never a bool
    assert type(analysis.overdraft_days) is int
    assert type(analysis.income_regular) is bool
    assert analysis.debt_to_income_bps is None or type(analysis.debt_to_income_bps) is int
    assert analysis.repayment_capacity_cents == (
        analysis.monthly_income_cents
        - analysis.fixed_charges_cents
        - analysis.credit_repayments_cents
        - analysis.living_allowance_cents
    )
    assert analysis.living_allowance_cents == adults * LIVING_ALLOWANCE_PER_ADULT_CENTS
    assert min(money[:5]) >= 0
    assert 0 <= analysis.overdraft_days <= (analysis.window_end - analysis.window_start).days + 1
    assert set(analysis.flags) <= ALL_FLAGS
    assert len(set(analysis.flags)) == len(analysis.flags)
    assert (FLAG_NO_INCOME in analysis.flags) == (analysis.monthly_income_cents == 0)
    if analysis.monthly_income_cents:
        assert analysis.debt_to_income_bps == (
            analysis.credit_repayments_cents * 10_000 // analysis.monthly_income_cents
        )
    json.dumps(analysis.to_json())  # storable as is


@settings(max_examples=100, deadline=None)
@given(
    salary=st.integers(min_value=1, max_value=2_000_000),
    rent=st.integers(min_value=1, max_value=2_000_000),
    salary_day=st.integers(min_value=1, max_value=28),
    rent_day=st.integers(min_value=1, max_value=28),
)
def test_the_same_amounts_every_month_give_exactly_those_amounts(
    salary, rent, salary_day, rent_day
):
    transactions = monthly([(salary_day, salary, "VIR SALAIRE"), (rent_day, -rent, "PRLV LOYER")])

    analysis = analyse(transactions)

    assert analysis.monthly_income_cents == salary
    assert analysis.fixed_charges_cents == rent
    assert analysis.income_regular is True
    assert FLAG_IRREGULAR_INCOME not in analysis.flags
    assert analysis.repayment_capacity_cents == salary - rent - LIVING_ALLOWANCE_PER_ADULT_CENTS
