"""The real-time purchase rules: a table of each decline, and properties over all facts."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.issuing import rules
from apps.issuing.rules import PurchaseFacts, purchase_decline

GOOD = PurchaseFacts(
    card_state="active",
    amount_cents=100_00,
    currency="EUR",
    merchant_category="5311",
    available_cents=300_00,
    approved_last_day=0,
    customer_late=False,
    funding_card_usable=True,
)


def with_(**changes) -> PurchaseFacts:
    return dataclasses.replace(GOOD, **changes)


def test_a_purchase_meeting_every_rule_is_approved():
    assert purchase_decline(GOOD) is None


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"card_state": "frozen"}, rules.CARD_FROZEN),
        ({"card_state": "replaced"}, rules.CARD_INACTIVE),
        ({"card_state": "closed"}, rules.CARD_INACTIVE),
        ({"currency": "USD"}, rules.CURRENCY_NOT_SUPPORTED),
        ({"currency": "eur"}, rules.CURRENCY_NOT_SUPPORTED),  # the caller upper-cases
        ({"amount_cents": 9_99}, rules.AMOUNT_TOO_SMALL),
        ({"amount_cents": 0}, rules.AMOUNT_TOO_SMALL),
        ({"merchant_category": "6011"}, rules.CATEGORY_BLOCKED),
        ({"merchant_category": "7995"}, rules.CATEGORY_BLOCKED),
        ({"merchant_category": "4829"}, rules.CATEGORY_BLOCKED),
        ({"approved_last_day": 5}, rules.TOO_MANY_PURCHASES),
        ({"customer_late": True}, rules.CUSTOMER_LATE),
        ({"funding_card_usable": False}, rules.FUNDING_CARD_UNUSABLE),
        ({"available_cents": 99_99}, rules.OVER_LIMIT),
        ({"available_cents": -50_00}, rules.OVER_LIMIT),
    ],
)
def test_each_rule_declines_with_its_code(changes, code):
    assert purchase_decline(with_(**changes)) == code


@pytest.mark.parametrize(
    "changes",
    [
        {"amount_cents": 10_00},  # the minimum itself
        {"approved_last_day": 4},  # the fifth purchase of the day
        {"available_cents": 100_00},  # exactly what is left
    ],
)
def test_the_boundaries_are_approved(changes):
    assert purchase_decline(with_(**changes)) is None


def test_the_first_rule_that_applies_gives_the_code():
    facts = with_(card_state="frozen", amount_cents=1, customer_late=True, available_cents=0)

    assert purchase_decline(facts) == rules.CARD_FROZEN
    assert purchase_decline(dataclasses.replace(facts, card_state="active")) == (
        rules.AMOUNT_TOO_SMALL
    )


def test_every_code_has_a_message():
    codes = {
        value for name, value in vars(rules).items() if name.isupper() and isinstance(value, str)
    }
    codes -= {rules.RULES_VERSION, rules.CURRENCY}

    assert codes == set(rules.DECLINE_MESSAGES)
    assert all(str(message) for message in rules.DECLINE_MESSAGES.values())


facts_strategy = st.builds(
    PurchaseFacts,
    card_state=st.sampled_from(["active", "frozen", "replaced", "closed"]),
    amount_cents=st.integers(min_value=0, max_value=2_000_00),
    currency=st.sampled_from(["EUR", "USD", "GBP"]),
    merchant_category=st.sampled_from(["5311", "5732", "5812", *sorted(rules.BLOCKED_CATEGORIES)]),
    available_cents=st.integers(min_value=-1_000_00, max_value=1_000_00),
    approved_last_day=st.integers(min_value=0, max_value=10),
    customer_late=st.booleans(),
    funding_card_usable=st.booleans(),
)


def every_rule_holds(facts: PurchaseFacts) -> bool:
    return (
        facts.card_state == "active"
        and facts.currency == "EUR"
        and facts.amount_cents >= rules.MIN_PURCHASE_CENTS
        and facts.merchant_category not in rules.BLOCKED_CATEGORIES
        and facts.approved_last_day < rules.MAX_PURCHASES_PER_DAY
        and not facts.customer_late
        and facts.funding_card_usable
        and facts.amount_cents <= facts.available_cents
    )


@given(facts_strategy)
def test_a_purchase_is_approved_exactly_when_every_rule_holds(facts):
    code = purchase_decline(facts)

    assert (code is None) == every_rule_holds(facts)
    assert code is None or code in rules.DECLINE_MESSAGES


@given(facts_strategy, st.integers(min_value=1, max_value=500_00))
def test_more_room_under_the_limit_never_turns_an_approval_into_a_decline(facts, more):
    if purchase_decline(facts) is None:
        assert (
            purchase_decline(
                dataclasses.replace(facts, available_cents=facts.available_cents + more)
            )
            is None
        )


@given(facts_strategy, st.integers(min_value=1, max_value=500_00))
def test_a_smaller_purchase_above_the_minimum_is_approved_when_a_larger_one_is(facts, less):
    smaller = facts.amount_cents - less
    if purchase_decline(facts) is None and smaller >= rules.MIN_PURCHASE_CENTS:
        assert purchase_decline(dataclasses.replace(facts, amount_cents=smaller)) is None
