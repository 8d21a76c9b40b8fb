"""The postponement rule (apps.payments.postponement), pure: a table of cases, the refusals'
messages, and a property over random schedules."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from django.utils import translation
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.payments.postponement import (
    CARD_EXPIRY,
    MAX_DAYS,
    NEXT_INSTALMENT,
    PostponeFacts,
    Refusal,
    Window,
    can_postpone,
    check_date,
    next_unpaid_due_date,
    postpone_window,
)

TODAY = date(2026, 11, 23)
RULE = {"today": TODAY, "max_days": 15, "per_instalment": 1}
D = date.fromisoformat

FACTS = PostponeFacts(
    instalment_state="pending",
    due_date=D("2026-12-05"),
    postponements=0,
    payment_state="in_progress",
    next_unpaid_due_date=D("2027-01-05"),
    in_flight=False,
    card_expiry=(2035, 12),
)


def window(**changes) -> Window | Refusal:
    return postpone_window(replace(FACTS, **changes), **RULE)


@pytest.mark.parametrize(
    ("changes", "first", "last", "limited_by"),
    [
        ({}, "2026-12-06", "2026-12-20", MAX_DAYS),
        # Due today, not debited yet: tomorrow at the earliest.
        ({"due_date": D("2026-11-23")}, "2026-11-24", "2026-12-08", MAX_DAYS),
        # Late (its debit failed) by 10 days: from tomorrow to 15 days after the due date.
        (
            {"instalment_state": "incident", "due_date": D("2026-11-13")},
            "2026-11-24",
            "2026-11-28",
            MAX_DAYS,
        ),
        (
            {
                "instalment_state": "incident",
                "due_date": D("2026-11-09"),
                "payment_state": "late_contact_customer",
            },
            "2026-11-24",
            "2026-11-24",
            MAX_DAYS,
        ),
        ({"payment_state": "late_dunning"}, "2026-12-06", "2026-12-20", MAX_DAYS),
        # Strictly before the next unpaid instalment's date.
        ({"next_unpaid_due_date": D("2026-12-10")}, "2026-12-06", "2026-12-09", NEXT_INSTALMENT),
        ({"next_unpaid_due_date": D("2026-12-21")}, "2026-12-06", "2026-12-20", MAX_DAYS),
        ({"next_unpaid_due_date": None}, "2026-12-06", "2026-12-20", MAX_DAYS),
        # Not after the card's expiry month.
        ({"card_expiry": (2026, 12)}, "2026-12-06", "2026-12-20", MAX_DAYS),
        (
            {"due_date": D("2026-12-25"), "card_expiry": (2026, 12)},
            "2026-12-26",
            "2026-12-31",
            CARD_EXPIRY,
        ),
        ({"card_expiry": None}, "2026-12-06", "2026-12-20", MAX_DAYS),
    ],
)
def test_the_window_runs_from_the_day_after_to_fifteen_days_after_the_due_date(
    changes, first, last, limited_by
):
    result = window(**changes)

    assert result == Window(first=D(first), last=D(last), limited_by=limited_by)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"instalment_state": "paid"}, "already_paid"),
        ({"instalment_state": "paid", "payment_state": "paid"}, "already_paid"),
        ({"instalment_state": "claimed", "payment_state": "default"}, "plan_in_default"),
        ({"instalment_state": "covered", "payment_state": "collection_done"}, "plan_in_default"),
        ({"payment_state": "stopped"}, "plan_closed"),
        ({"payment_state": "scored_yes"}, "plan_closed"),
        ({"in_flight": True}, "debit_in_progress"),
        ({"postponements": 1}, "already_postponed"),
        ({"instalment_state": "incident", "due_date": D("2026-11-08")}, "too_late"),
        ({"instalment_state": "incident", "due_date": D("2026-10-01")}, "too_late"),
        ({"next_unpaid_due_date": D("2026-12-06")}, "next_instalment_too_close"),
        (
            {"due_date": D("2026-11-23"), "next_unpaid_due_date": D("2026-11-24")},
            "next_instalment_too_close",
        ),
        ({"card_expiry": (2026, 10)}, "card_expires"),
        ({"due_date": D("2026-11-30"), "card_expiry": (2026, 11)}, "card_expires"),
    ],
)
def test_each_refusal_has_its_code(changes, code):
    result = window(**changes)

    assert isinstance(result, Refusal)
    assert result.code == code
    assert not can_postpone(replace(FACTS, **changes), **RULE)


def test_a_second_postponement_is_allowed_when_the_setting_allows_two():
    twice = replace(FACTS, postponements=1)

    assert postpone_window(twice, **(RULE | {"per_instalment": 2})) == Window(
        D("2026-12-06"), D("2026-12-20"), MAX_DAYS
    )
    assert window(postponements=1).code == "already_postponed"


def test_a_date_outside_the_window_is_refused_naming_the_window():
    with translation.override("en"):
        too_far = check_date(FACTS, D("2026-12-21"), **RULE)
        too_soon = check_date(FACTS, D("2026-12-05"), **RULE)
        inside = check_date(FACTS, D("2026-12-20"), **RULE)

        assert (
            too_far
            == too_soon
            == Refusal("date_outside_window", first=D("2026-12-06"), last=D("2026-12-20"))
        )
        assert too_far.message == "Pick a date between December 6, 2026 and December 20, 2026."
    assert inside == Window(D("2026-12-06"), D("2026-12-20"), MAX_DAYS)
    assert check_date(replace(FACTS, in_flight=True), D("2026-12-10"), **RULE).code == (
        "debit_in_progress"
    )


def test_the_messages_say_what_happened_in_english_and_french():
    messages = {}
    for changes in (
        {"instalment_state": "paid"},
        {"payment_state": "default"},
        {"payment_state": "stopped"},
        {"in_flight": True},
        {"postponements": 1},
        {"instalment_state": "incident", "due_date": D("2026-11-01")},
        {"next_unpaid_due_date": D("2026-12-06")},
        {"card_expiry": (2026, 10)},
    ):
        refusal = window(**changes)
        with translation.override("en"):
            messages[refusal.code] = refusal.message
        with translation.override("fr"):
            assert refusal.message

    assert messages["already_paid"] == "This instalment is already paid."
    assert "once" in messages["already_postponed"]
    assert "longer delay" in messages["already_postponed"]
    assert "15 days or more" in messages["too_late"]
    assert "December 6, 2026" in messages["next_instalment_too_close"]
    assert "October 31, 2026" in messages["card_expires"]
    assert "being debited" in messages["debit_in_progress"]
    assert "default" in messages["plan_in_default"]
    assert len(set(messages.values())) == len(messages)


def test_the_next_unpaid_due_date_skips_paid_instalments():
    rows = [
        SimpleNamespace(number=1, state="paid", due_date=D("2026-10-05")),
        SimpleNamespace(number=2, state="pending", due_date=D("2026-11-05")),
        SimpleNamespace(number=3, state="paid", due_date=D("2026-12-05")),
        SimpleNamespace(number=4, state="pending", due_date=D("2027-01-05")),
    ]

    assert next_unpaid_due_date(rows, 2) == D("2027-01-05")
    assert next_unpaid_due_date(rows, 1) == D("2026-11-05")
    assert next_unpaid_due_date(rows, 4) is None


@st.composite
def schedules(draw):
    """A plan's due dates (increasing), their states, the instalment to move, today."""
    count = draw(st.integers(min_value=1, max_value=6))
    start = draw(st.dates(min_value=date(2026, 1, 1), max_value=date(2028, 12, 31)))
    gaps = draw(st.lists(st.integers(1, 45), min_size=count - 1, max_size=count - 1))
    dues = [start]
    for gap in gaps:
        dues.append(dues[-1] + timedelta(days=gap))
    states = draw(
        st.lists(st.sampled_from(["pending", "incident", "paid"]), min_size=count, max_size=count)
    )
    index = draw(st.integers(0, count - 1))
    today = start + timedelta(days=draw(st.integers(-30, 60)))
    expiry = draw(
        st.none() | st.tuples(st.integers(today.year - 1, today.year + 2), st.integers(1, 12))
    )
    return dues, states, index, today, expiry


@settings(max_examples=300, deadline=None)
@given(schedules(), st.integers(1, 3), st.integers(0, 2))
def test_any_date_the_window_allows_keeps_the_order_and_is_within_fifteen_days(
    schedule, per_instalment, postponements
):
    dues, states, index, today, expiry = schedule
    rows = [
        SimpleNamespace(number=n, state=s, due_date=d)
        for n, (d, s) in enumerate(zip(dues, states, strict=True), start=1)
    ]
    facts = PostponeFacts(
        instalment_state=states[index],
        due_date=dues[index],
        postponements=postponements,
        payment_state="in_progress",
        next_unpaid_due_date=next_unpaid_due_date(rows, index + 1),
        in_flight=False,
        card_expiry=expiry,
    )

    result = postpone_window(facts, today=today, max_days=15, per_instalment=per_instalment)

    if isinstance(result, Refusal):
        tomorrow = today + timedelta(days=1)
        rule = {"today": today, "max_days": 15, "per_instalment": per_instalment}
        assert check_date(facts, tomorrow, **rule) == result  # no date gets through
        return
    assert states[index] != "paid" and postponements < per_instalment
    assert result.first <= result.last
    day = result.first
    while day <= result.last:
        assert day > today and day > dues[index]
        assert day <= dues[index] + timedelta(days=15)
        later_unpaid = [r.due_date for r in rows[index + 1 :] if r.state != "paid"]
        assert all(day < later for later in later_unpaid)
        assert all(day > earlier for earlier in dues[:index])
        if expiry:
            assert (day.year, day.month) <= expiry
        assert (
            check_date(facts, day, today=today, max_days=15, per_instalment=per_instalment)
            == result
        )
        day += timedelta(days=1)
    after = check_date(
        facts,
        result.last + timedelta(days=1),
        today=today,
        max_days=15,
        per_instalment=per_instalment,
    )
    assert isinstance(after, Refusal) and after.code == "date_outside_window"
