from decimal import Decimal

import pytest
from djmoney.money import Money
from hypothesis import given
from hypothesis import strategies as st

from apps.common import money


def test_cents_round_trip_through_money_exactly():
    assert money.to_money(123456) == Money(Decimal("1234.56"), "EUR")
    assert money.to_cents(Money(Decimal("1234.56"), "EUR")) == 123456


def test_sub_cent_amounts_are_refused_not_rounded():
    with pytest.raises(ValueError, match="whole number of cents"):
        money.to_cents(Money(Decimal("0.001"), "EUR"))


@pytest.mark.parametrize("value", [1.5, "100", True, None])
def test_only_ints_become_money(value):
    with pytest.raises(TypeError):
        money.to_money(value)


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(5, 10, 1), (4, 10, 0), (15, 10, 2), (-5, 10, -1), (-4, 10, 0), (0, 7, 0)],
)
def test_round_half_up_div_rounds_halves_away_from_zero(numerator, denominator, expected):
    assert money.round_half_up_div(numerator, denominator) == expected


def test_basis_points_of_an_amount_round_to_the_cent():
    assert money.bps_of(100000, 350) == 3500  # 3.50 % of 1,000.00 EUR
    assert money.bps_of(3333, 290) == 97  # 96.657 -> 97
    assert money.fee_cents(10000, variable_bps=100, fixed_cents=25) == 125


def test_split_puts_the_remainder_on_the_first_share():
    assert money.split_evenly(100000, 3) == [33334, 33333, 33333]


@given(total=st.integers(min_value=0, max_value=10**9), parts=st.integers(1, 12))
def test_split_always_sums_to_the_total_and_never_goes_negative(total, parts):
    shares = money.split_evenly(total, parts)

    assert sum(shares) == total
    assert len(shares) == parts
    assert min(shares) >= 0
    assert max(shares) - min(shares) < parts


def test_format_eur_is_exact():
    assert money.format_eur(-105) == "-1.05"
    assert money.format_eur(200000) == "2000.00"
