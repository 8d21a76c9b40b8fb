"""Who may have the card and with what limit: a table of each refusal, and properties."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.issuing import eligibility as e
from apps.issuing.eligibility import CardFacts, card_verdict, limit_for, reasons_shown

GOOD = CardFacts(
    phone_verified=True,
    profile_complete=True,
    age=30,
    funding_card=True,
    funding_card_refused=False,
    funding_card_authenticated=True,
    late_plans=0,
    defaulted_plans=0,
    deny_listed=False,
    paid_off_plans=0,
)


def with_(**changes) -> CardFacts:
    return dataclasses.replace(GOOD, **changes)


def test_a_customer_meeting_every_condition_gets_the_card_with_300_euros():
    assert card_verdict(GOOD) == e.CardVerdict(approved=True, reasons=(), limit_cents=300_00)


@pytest.mark.parametrize(
    ("changes", "reasons"),
    [
        ({"phone_verified": False}, (e.PHONE_NOT_VERIFIED,)),
        ({"profile_complete": False}, (e.PROFILE_INCOMPLETE,)),
        ({"age": 17}, (e.UNDER_AGE,)),
        ({"funding_card": False, "funding_card_authenticated": False}, (e.NO_FUNDING_CARD,)),
        ({"funding_card_refused": True}, (e.FUNDING_CARD_REFUSED,)),
        ({"funding_card_authenticated": False}, (e.THREE_DS_NOT_COMPLETED,)),
        ({"late_plans": 1}, (e.PLAN_LATE,)),
        ({"defaulted_plans": 2}, (e.PLAN_IN_DEFAULT,)),
        ({"deny_listed": True}, (e.DENY_LISTED,)),
        (
            {"phone_verified": False, "age": 16, "late_plans": 1},
            (e.PHONE_NOT_VERIFIED, e.UNDER_AGE, e.PLAN_LATE),
        ),
    ],
)
def test_each_condition_refuses_with_its_reason(changes, reasons):
    verdict = card_verdict(with_(**changes))

    assert verdict == e.CardVerdict(approved=False, reasons=reasons, limit_cents=0)


def test_18_is_old_enough_and_no_birth_date_is_left_to_the_profile_rule():
    assert card_verdict(with_(age=18)).approved
    assert card_verdict(with_(age=None, profile_complete=False)).reasons == (e.PROFILE_INCOMPLETE,)


@pytest.mark.parametrize(
    ("paid_off", "limit"), [(0, 300_00), (1, 600_00), (2, 600_00), (3, 1_000_00), (40, 1_000_00)]
)
def test_the_limit_grows_with_the_plans_paid_off(paid_off, limit):
    assert limit_for(paid_off) == limit
    assert card_verdict(with_(paid_off_plans=paid_off)).limit_cents == limit


def test_the_reasons_are_shown_in_the_two_groups_the_product_names():
    shown = reasons_shown([e.UNDER_AGE, e.THREE_DS_NOT_COMPLETED, e.PLAN_LATE])

    assert [group["group"] for group in shown] == [e.CONDITIONS, e.THREE_DS]
    assert len(shown[0]["reasons"]) == 2
    assert shown[1]["title"] == e.GROUP_TITLES[e.THREE_DS]  # the seeds' second reason
    assert reasons_shown([]) == []
    assert reasons_shown(["something_new"])[0]["group"] == e.CONDITIONS


def test_every_reason_has_a_group_and_a_message():
    assert set(e.REASONS) == {
        e.PHONE_NOT_VERIFIED,
        e.PROFILE_INCOMPLETE,
        e.UNDER_AGE,
        e.NO_FUNDING_CARD,
        e.FUNDING_CARD_REFUSED,
        e.THREE_DS_NOT_COMPLETED,
        e.PLAN_LATE,
        e.PLAN_IN_DEFAULT,
        e.DENY_LISTED,
    }
    assert all(group in e.GROUP_TITLES for group, _message in e.REASONS.values())


facts_strategy = st.builds(
    CardFacts,
    phone_verified=st.booleans(),
    profile_complete=st.booleans(),
    age=st.one_of(st.none(), st.integers(min_value=0, max_value=110)),
    funding_card=st.booleans(),
    funding_card_refused=st.booleans(),
    funding_card_authenticated=st.booleans(),
    late_plans=st.integers(min_value=0, max_value=5),
    defaulted_plans=st.integers(min_value=0, max_value=5),
    deny_listed=st.booleans(),
    paid_off_plans=st.integers(min_value=0, max_value=50),
)


@given(facts_strategy)
def test_approved_exactly_when_there_is_no_reason_and_then_with_a_positive_limit(facts):
    verdict = card_verdict(facts)

    assert verdict.approved == (verdict.reasons == ())
    assert (verdict.limit_cents > 0) == verdict.approved
    assert len(set(verdict.reasons)) == len(verdict.reasons)
    assert set(verdict.reasons) <= set(e.REASONS)


@given(facts_strategy)
def test_a_funding_card_not_finished_in_3ds_is_always_named(facts):
    verdict = card_verdict(facts)
    if (
        facts.funding_card
        and not facts.funding_card_refused
        and not facts.funding_card_authenticated
    ):
        assert e.THREE_DS_NOT_COMPLETED in verdict.reasons
        assert not verdict.approved


@given(st.integers(min_value=0, max_value=100), st.integers(min_value=0, max_value=100))
def test_the_limit_never_shrinks_as_plans_are_paid_off(fewer, more):
    low, high = sorted((fewer, more))

    assert limit_for(low) <= limit_for(high)
    assert limit_for(low) >= e.LIMITS[0][1]
