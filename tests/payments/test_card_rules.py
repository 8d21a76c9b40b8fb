"""The card and age rules (apps/payments/card_rules.py): pure, no database, no clock."""

from dataclasses import replace
from datetime import date

import pytest
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from apps.payments.card_rules import (
    CardFacts,
    age_on,
    age_refusal,
    brand_from_number,
    card_refusals,
    card_valid_through,
    luhn_valid,
    normalise_number,
    number_refusal,
)

ALLOWED = frozenset({"FR", "BE", "ES", "DE", "IT"})
LAST_DUE = date(2026, 9, 15)
GOOD_CARD = CardFacts(
    brand="cb", funding="debit", product="", issuer_country="FR", exp_month=12, exp_year=2028
)


def refusal_codes(card: CardFacts, *, last_due_date: date = LAST_DUE) -> list[str]:
    refusals = card_refusals(card, last_due_date=last_due_date, allowed_countries=ALLOWED)
    return [refusal.code for refusal in refusals]


def luhn_check_digit(body: str) -> str:
    for digit in "0123456789":
        if luhn_valid(body + digit):
            return digit
    raise AssertionError("no check digit")


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("4970100000000006", True),
        ("4970100000000007", False),
        ("5130100000000000", True),
        ("378282246310005", True),  # 15 digits: the doubling starts from the right
        ("79927398713", True),
        ("79927398710", False),
        ("0", True),
        ("", False),
        ("4970 1000 0000 0006", False),  # separators are the caller's to strip
        ("49701000000000a6", False),
        ("٤٩٧٠١٠٠٠٠٠٠٠٠٠٠٦", False),  # Arabic-Indic digits are digits, but not card digits
    ],
)
def test_luhn_check(number, valid):
    assert luhn_valid(number) is valid


@given(st.text(alphabet="0123456789", min_size=11, max_size=18), st.data())
def test_a_luhn_number_with_one_digit_changed_fails_the_check(body, data):
    number = body + luhn_check_digit(body)
    position = data.draw(st.integers(min_value=0, max_value=len(number) - 1))
    changed = data.draw(st.sampled_from([d for d in "0123456789" if d != number[position]]))

    altered = number[:position] + changed + number[position + 1 :]

    assert luhn_valid(number)
    assert not luhn_valid(altered)


@pytest.mark.parametrize(
    ("number", "refused"),
    [
        ("4970100000000006", False),
        ("4970 1000 0000 0006", False),
        ("4970-1000-0000-0006", False),
        ("4970100000000007", True),
        ("0", True),  # passes Luhn, too short for a card
        ("00000000000", True),  # 11 digits
        ("000000000000", False),  # 12 digits
        ("0" * 19, False),
        ("0" * 20, True),
        ("", True),
        ("4970x00000000006", True),
    ],
)
def test_a_card_number_must_be_12_to_19_digits_passing_luhn(number, refused):
    refusal = number_refusal(number)

    assert (refusal is not None) is refused
    if refused:
        assert refusal.code == "invalid_number"


def test_normalising_removes_what_people_type_between_digit_groups():
    assert normalise_number("4970 1000-0000\u00a00006") == "4970100000000006"


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4970100000000006", "visa"),
        ("4026000000000002", "visa"),
        ("5100000000000000", "mastercard"),
        ("5599999999999999", "mastercard"),
        ("2221000000000009", "mastercard"),
        ("2720999999999999", "mastercard"),
        ("2220999999999999", "other"),
        ("2721000000000000", "other"),
        ("5000000000000000", "maestro"),
        ("5600000000000000", "maestro"),
        ("6759000000000000", "maestro"),
        ("6999999999999999", "maestro"),
        ("340000000000000", "amex"),
        ("370000000000000", "amex"),
        ("350000000000000", "other"),
        ("7000000000000000", "other"),
        ("4970 1000", "visa"),
        ("", "other"),
        ("abcd", "other"),
    ],
)
def test_brand_from_the_leading_digits(number, brand):
    assert brand_from_number(number) == brand


@pytest.mark.parametrize(
    ("changes", "codes"),
    [
        ({}, []),
        ({"brand": "visa"}, []),
        ({"brand": "mastercard", "funding": "credit"}, []),
        ({"brand": "amex"}, ["brand_not_accepted"]),
        ({"brand": "other"}, ["brand_not_accepted"]),
        ({"funding": "prepaid"}, ["prepaid_card"]),
        ({"brand": "visa", "product": "electron"}, ["systematic_authorisation_card"]),
        # Maestro is said once, as a systematic-authorisation card.
        ({"brand": "maestro", "product": "maestro"}, ["systematic_authorisation_card"]),
        ({"brand": "maestro", "product": ""}, ["systematic_authorisation_card"]),
        ({"product": "virtual"}, ["virtual_card"]),
        ({"issuer_country": "US"}, ["issuer_country_not_allowed"]),
        ({"issuer_country": ""}, ["issuer_country_not_allowed"]),
        ({"issuer_country": "be"}, []),
        ({"exp_month": 8, "exp_year": 2026}, ["expires_too_soon"]),
        (
            {
                "brand": "amex",
                "funding": "prepaid",
                "product": "virtual",
                "issuer_country": "US",
                "exp_year": 2025,
            },
            [
                "brand_not_accepted",
                "prepaid_card",
                "virtual_card",
                "issuer_country_not_allowed",
                "expires_too_soon",
            ],
        ),
    ],
)
def test_card_rules(changes, codes):
    assert refusal_codes(replace(GOOD_CARD, **changes)) == codes


@pytest.mark.parametrize(
    ("exp_month", "exp_year", "last_due_date", "refused"),
    [
        (9, 2026, date(2026, 9, 30), False),  # expiring in the last due date's month
        (9, 2026, date(2026, 9, 1), False),
        (9, 2026, date(2026, 10, 1), True),
        (8, 2026, date(2026, 9, 1), True),
        (2, 2028, date(2028, 2, 29), False),  # leap year: valid through 29 February
        (2, 2027, date(2027, 3, 1), True),
        (12, 2026, date(2026, 12, 31), False),
        (12, 2026, date(2027, 1, 1), True),
    ],
)
def test_a_card_must_be_valid_on_the_last_due_date(exp_month, exp_year, last_due_date, refused):
    card = replace(GOOD_CARD, exp_month=exp_month, exp_year=exp_year)

    codes = refusal_codes(card, last_due_date=last_due_date)

    assert codes == (["expires_too_soon"] if refused else [])


@pytest.mark.parametrize(
    ("exp_month", "exp_year", "last_day"),
    [(1, 2027, date(2027, 1, 31)), (2, 2027, date(2027, 2, 28)), (2, 2028, date(2028, 2, 29))],
)
def test_a_card_is_valid_through_the_last_day_of_its_month(exp_month, exp_year, last_day):
    assert card_valid_through(exp_month=exp_month, exp_year=exp_year) == last_day


@pytest.mark.parametrize("month", [0, 13])
def test_card_facts_refuse_a_month_that_does_not_exist(month):
    with pytest.raises(ValueError, match="exp_month"):
        replace(GOOD_CARD, exp_month=month)


@pytest.mark.parametrize(
    ("birth_date", "today", "minimum_age", "refused"),
    [
        (date(2008, 6, 15), date(2026, 6, 15), 18, False),  # 18th birthday today
        (date(2008, 6, 15), date(2026, 6, 14), 18, True),  # the day before
        (date(2008, 6, 16), date(2026, 6, 15), 18, True),
        (date(1950, 1, 1), date(2026, 6, 15), 18, False),
        (date(2026, 6, 16), date(2026, 6, 15), 18, True),  # born after today: refused, no error
        # Born on 29 February: the birthday is 1 March in years without one.
        (date(2008, 2, 29), date(2026, 2, 28), 18, True),
        (date(2008, 2, 29), date(2026, 3, 1), 18, False),
        (date(2008, 2, 29), date(2028, 2, 28), 20, True),
        (date(2008, 2, 29), date(2028, 2, 29), 20, False),
        (date(2008, 6, 15), date(2029, 6, 14), 21, True),  # another minimum age
        (date(2008, 6, 15), date(2029, 6, 15), 21, False),
    ],
)
def test_the_customer_must_be_old_enough(birth_date, today, minimum_age, refused):
    refusal = age_refusal(birth_date, today=today, minimum_age=minimum_age)

    assert (refusal is not None) is refused
    if refused:
        assert refusal.code == "too_young"


def test_age_counts_whole_years():
    assert age_on(date(2000, 12, 31), today=date(2026, 12, 30)) == 25
    assert age_on(date(2000, 12, 31), today=date(2026, 12, 31)) == 26


def test_the_age_refusal_names_the_minimum_age_in_the_page_language():
    refusal = age_refusal(date(2010, 1, 1), today=date(2026, 1, 1), minimum_age=18)

    with translation.override("en"):
        message = str(refusal.message)

    assert message == "You must be 18 or older to pay in instalments."


def test_every_refusal_tells_the_customer_what_to_do():
    worst = CardFacts(
        brand="amex",
        funding="prepaid",
        product="virtual",
        issuer_country="US",
        exp_month=1,
        exp_year=2020,
    )
    refusals = [
        *card_refusals(worst, last_due_date=LAST_DUE, allowed_countries=ALLOWED),
        *card_refusals(
            replace(GOOD_CARD, product="electron"),
            last_due_date=LAST_DUE,
            allowed_countries=ALLOWED,
        ),
        number_refusal("1"),
    ]

    with translation.override("en"):
        messages = {refusal.code: str(refusal.message) for refusal in refusals}

    assert len(messages) == 7
    assert messages["prepaid_card"] == (
        "Prepaid cards cannot be used to pay in instalments. Please use another card."
    )
    assert all("Please" in message for message in messages.values())
