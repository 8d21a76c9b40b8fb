"""The credit decision's pure core: outcomes, reasons, what a maybe asks, rules as data."""

from __future__ import annotations

import copy
import dataclasses

import pytest
from django.utils import translation
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.payments.decision import (
    DEFAULT_RULES,
    BankFacts,
    Features,
    InvalidRules,
    RuleSet,
    decide,
    main_reasons,
    rules_validate,
)


@pytest.fixture(autouse=True)
def _english():
    """Messages are checked in English (the site's default language is French)."""
    with translation.override("en"):
        yield


def features(**overrides) -> Features:
    """A returning customer with a verified phone buying 450 EUR in 3 instalments."""
    base = Features(
        livemode=True,
        purchase_cents=45_000,
        installments_count=3,
        is_pay_later=False,
        largest_instalment_cents=15_000,
        customer_age=35,
        email="camille.martin@example.com",
        phone_country="FR",
        billing_country="FR",
        shipping_country="FR",
        shipping_differs=False,
        card_funding="credit",
        card_issuer_country="FR",
        paid_plans=2,
        phone_verified=True,
    )
    return dataclasses.replace(base, **overrides)


def codes(decision) -> list[str]:
    return [reason.code for reason in decision.reasons]


COMFORTABLE = BankFacts(status="analysed", repayment_capacity_cents=90_000, flags=())


def test_a_known_customer_with_nothing_against_them_is_accepted():
    decision = decide(features())

    assert decision.outcome == "yes"
    assert decision.asks == ()
    assert decision.score == 110  # 100 + 5 for each of two paid plans
    assert codes(decision) == ["paid_plans"]
    assert decision.rules_version == DEFAULT_RULES["version"]


def test_a_first_time_customer_is_asked_to_verify_their_phone_then_accepted():
    new = features(paid_plans=0, phone_verified=False)

    first = decide(new)
    then = decide(dataclasses.replace(new, phone_verified=True))

    assert (first.outcome, first.asks) == ("maybe", ("phone",))
    assert "phone_unverified" in codes(first)
    assert (then.outcome, then.asks) == ("yes", ())
    assert codes(then) == ["new_customer"]


def test_fraud_doubts_ask_for_an_identity_document_which_lifts_them():
    # Card used by two other people lately, and a card issued in another country.
    doubtful = features(card_customers_recent=3, card_issuer_country="BE")

    first = decide(doubtful)
    approved = decide(dataclasses.replace(doubtful, identity="approved"))
    rejected = decide(dataclasses.replace(doubtful, identity="rejected"))

    assert (first.outcome, first.asks) == ("maybe", ("identity",))
    assert first.score == 100 + 10 - 40 - 15
    assert approved.outcome == "yes"
    assert "identity_verified" in codes(approved)
    assert rejected.outcome == "no"
    assert rejected.reasons[0].code == "identity_rejected"


def test_credit_doubts_ask_for_bank_data_which_confirms_or_refuses():
    doubtful = features(
        purchase_cents=250_000,
        installments_count=12,
        largest_instalment_cents=22_000,
        card_funding="debit",
        customer_age=20,
    )

    first = decide(doubtful)
    comfortable = decide(dataclasses.replace(doubtful, bank=COMFORTABLE))
    short = decide(
        dataclasses.replace(
            doubtful, bank=BankFacts(status="analysed", repayment_capacity_cents=15_000)
        )
    )
    gambling = decide(
        dataclasses.replace(
            doubtful,
            bank=BankFacts(status="analysed", repayment_capacity_cents=90_000, flags=("gambling",)),
        )
    )

    assert (first.outcome, first.asks) == ("maybe", ("bank",))
    assert comfortable.outcome == "yes"
    assert "bank_capacity_confirmed" in codes(comfortable)
    assert short.outcome == "no"
    assert short.reasons[0].code == "bank_capacity_insufficient"
    assert gambling.outcome == "no"  # gambling is not offset by capacity
    assert "bank_gambling" in codes(gambling)


def test_a_maybe_asks_phone_first_then_identity_then_bank():
    both = features(
        phone_verified=False,
        paid_plans=0,
        card_customers_recent=3,
        purchase_cents=150_000,
        installments_count=12,
        largest_instalment_cents=13_000,
    )

    assert decide(both).asks == ("phone", "identity", "bank")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"outstanding_cents": 470_000}, "exposure_limit"),
        ({"defaulted_plans": 1}, "defaulted_before"),
        ({"denied": ("card",)}, "deny_listed"),
    ],
)
def test_blocking_reasons_refuse_whatever_the_score(overrides, reason):
    decision = decide(features(paid_plans=10, **overrides))

    assert decision.outcome == "no"
    assert decision.asks == ()
    assert decision.reasons[0].code == reason
    assert decision.reasons[0].category == "block"


def test_when_no_information_could_lift_the_score_enough_it_is_a_no_not_a_wasted_step():
    # Late on another plan (history) and a burst of payments: nothing a document or bank
    # data could offset brings this to a yes.
    decision = decide(
        features(
            paid_plans=0,
            late_instalments=1,
            customer_payments_recent=5,
            email="jx84736251@yopmail.com",
        )
    )

    assert decision.outcome == "no"
    assert decision.asks == ()


def test_test_mode_email_overrides_reach_every_branch_and_never_apply_in_live_mode():
    for email, outcome, asks in [
        ("c+scored_no@example.com", "no", ()),
        ("c+scored_maybe@example.com", "maybe", ("identity",)),
        ("c+maybe_identity@example.com", "maybe", ("identity",)),
        ("c+maybe_bank@example.com", "maybe", ("bank",)),
    ]:
        test = decide(features(livemode=False, email=email))
        assert (test.outcome, test.asks) == (outcome, asks), email
        assert decide(features(livemode=True, email=email)).outcome == "yes"


def test_weights_and_thresholds_are_data():
    rules = copy.deepcopy(DEFAULT_RULES)
    rules["version"] = "strict"
    rules["yes_from"] = 115
    rules["rules"]["paid_plans"]["points"] = 0  # a rule switched off by its weight

    decision = decide(features(), RuleSet(rules_validate(rules)))

    assert decision.rules_version == "strict"
    assert "paid_plans" not in codes(decision)
    assert decision.outcome == "no"  # 100 < 115 and nothing left to ask


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([], "JSON object"),
        ({"yes_from": "70"}, "whole number"),
        ({"maybe_from": 80, "yes_from": 70}, "maybe_from"),
        ({"rules": {"astrology": {"points": -5}}}, "Unknown rule"),
        ({"rules": {"long_plan": {"points": 1.5}}}, "whole number"),
        ({"colour": "blue"}, "Unknown setting"),
    ],
)
def test_rule_sets_written_by_operators_are_checked(rules, message):
    with pytest.raises(InvalidRules, match=message):
        rules_validate(rules)


def test_a_partial_rule_set_is_completed_from_the_defaults():
    merged = rules_validate({"version": "v2", "rules": {"long_plan": {"points": -20}}})

    assert merged["rules"]["long_plan"] == {"points": -20, "installments": 10}
    assert merged["rules"]["amount_large"] == DEFAULT_RULES["rules"]["amount_large"]


def test_the_explanation_lists_the_main_reasons_against_in_plain_words():
    decision = decide(features(card_customers_recent=3, card_issuer_country="BE", paid_plans=0))
    stored = [reason.as_json() for reason in decision.reasons]

    assert main_reasons(stored) == [
        "This card was used by other people recently.",
        "Your card was issued in another country than your address.",
        "It is your first purchase with Tranche.",
    ]


@settings(max_examples=300, deadline=None)
@given(
    purchase=st.integers(min_value=100, max_value=1_000_000),
    count=st.sampled_from([1, 2, 3, 4, 10, 12]),
    outstanding=st.integers(min_value=0, max_value=600_000),
    paid=st.integers(min_value=0, max_value=20),
    late=st.integers(min_value=0, max_value=2),
    card_people=st.integers(min_value=1, max_value=5),
    phone=st.booleans(),
    identity=st.sampled_from(["", "approved", "rejected", "pending"]),
    capacity=st.one_of(st.none(), st.integers(min_value=-100_000, max_value=300_000)),
)
def test_every_decision_is_consistent(
    purchase, count, outstanding, paid, late, card_people, phone, identity, capacity
):
    bank = None if capacity is None else BankFacts("analysed", repayment_capacity_cents=capacity)
    decision = decide(
        features(
            purchase_cents=purchase,
            installments_count=count,
            largest_instalment_cents=-(-purchase // count),
            outstanding_cents=outstanding,
            paid_plans=paid,
            late_instalments=late,
            card_customers_recent=card_people,
            phone_verified=phone,
            identity=identity,
            bank=bank,
        )
    )

    blocked = any(reason.category == "block" for reason in decision.reasons)
    assert decision.outcome in ("yes", "maybe", "no")
    assert (decision.outcome == "maybe") == bool(decision.asks)
    assert not (blocked and decision.outcome != "no")
    assert decision.outcome != "yes" or phone
    if outstanding + purchase > DEFAULT_RULES["exposure_limit_cents"]:
        assert decision.outcome == "no"
    if decision.asks:
        assert list(decision.asks) == sorted(decision.asks, key=["phone", "identity", "bank"].index)
    assert decision.reasons  # always at least one reason to show
