"""Where a session stands, from its payment (apps.pos.states): every row of the module's
table, then properties over any facts: final states stay final, and refused only ever
becomes paid."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.pos.states import (
    CANCELLED,
    CUSTOMER_IN_PROGRESS,
    EXPIRED,
    FINAL,
    LINK_SENT,
    OPEN,
    PAID,
    REFUSED,
    STARTED,
    PaymentFacts,
    may_cancel,
    session_state,
)

ALL = sorted(OPEN | FINAL)


def state(current=LINK_SENT, *, link_sent=True, opened=False, payment=None, time_up=False):
    return session_state(
        current, link_sent=link_sent, opened=opened, payment=payment, time_up=time_up
    )


@pytest.mark.parametrize(
    ("payment", "opened", "expected"),
    [
        (PaymentFacts(accepted=True), True, PAID),
        (PaymentFacts(cancelled=True), True, CANCELLED),
        (PaymentFacts(expired=True), True, EXPIRED),
        (PaymentFacts(refused=True), True, REFUSED),
        (PaymentFacts(), True, CUSTOMER_IN_PROGRESS),
        (PaymentFacts(), False, CUSTOMER_IN_PROGRESS),  # chose a plan: opened it
        (None, True, CUSTOMER_IN_PROGRESS),
        (None, False, LINK_SENT),
    ],
)
@pytest.mark.parametrize("current", sorted(OPEN))
def test_each_row_of_the_table(current, payment, opened, expected):
    assert state(current, opened=opened, payment=payment) == expected


def test_a_session_whose_link_is_not_sent_yet_is_started():
    assert state(STARTED, link_sent=False) == STARTED


@pytest.mark.parametrize(
    ("payment", "expected"),
    [
        (PaymentFacts(accepted=True, refused=True), PAID),  # paid in full after a refusal
        (PaymentFacts(accepted=True, charge_in_flight=True), PAID),
        (PaymentFacts(cancelled=True, refused=True), CANCELLED),
        (PaymentFacts(expired=True, refused=True), EXPIRED),
    ],
)
def test_the_table_is_read_top_down(payment, expected):
    assert state(CUSTOMER_IN_PROGRESS, opened=True, payment=payment) == expected


@pytest.mark.parametrize("current", sorted(OPEN))
def test_an_open_session_past_its_time_expires(current):
    assert state(current, time_up=True) == EXPIRED
    assert state(current, opened=True, payment=PaymentFacts(), time_up=True) == EXPIRED


def test_a_charge_in_flight_holds_off_the_expiry():
    facts = PaymentFacts(charge_in_flight=True)

    assert state(CUSTOMER_IN_PROGRESS, payment=facts, time_up=True) == CUSTOMER_IN_PROGRESS


def test_a_payment_outcome_wins_over_the_clock():
    assert state(payment=PaymentFacts(accepted=True), time_up=True) == PAID
    assert state(payment=PaymentFacts(refused=True), time_up=True) == REFUSED


def test_a_refused_session_becomes_paid_when_the_customer_pays_in_full():
    accepted = PaymentFacts(accepted=True, refused=True)

    assert state(REFUSED, payment=accepted, time_up=True) == PAID


@pytest.mark.parametrize(
    ("current", "allowed"),
    [
        (STARTED, True),
        (LINK_SENT, True),
        (CUSTOMER_IN_PROGRESS, True),
        (REFUSED, True),
        (PAID, False),
        (CANCELLED, False),
        (EXPIRED, False),
    ],
)
def test_staff_may_cancel_what_the_customer_has_not_finished(current, allowed):
    assert may_cancel(current) is allowed


facts = st.one_of(
    st.none(),
    st.builds(
        PaymentFacts,
        accepted=st.booleans(),
        cancelled=st.booleans(),
        expired=st.booleans(),
        refused=st.booleans(),
        charge_in_flight=st.booleans(),
    ),
)
inputs = {
    "link_sent": st.booleans(),
    "opened": st.booleans(),
    "payment": facts,
    "time_up": st.booleans(),
}


@given(current=st.sampled_from(sorted(FINAL - {REFUSED})), **inputs)
def test_final_states_never_change(current, link_sent, opened, payment, time_up):
    assert (
        session_state(current, link_sent=link_sent, opened=opened, payment=payment, time_up=time_up)
        == current
    )


@given(**inputs)
def test_refused_only_ever_becomes_paid(link_sent, opened, payment, time_up):
    after = session_state(
        REFUSED, link_sent=link_sent, opened=opened, payment=payment, time_up=time_up
    )

    assert after in {REFUSED, PAID}
    assert (after == PAID) == (payment is not None and payment.accepted)


@given(current=st.sampled_from(ALL), **inputs)
def test_the_answer_is_a_state_stable_under_a_second_look(
    current, link_sent, opened, payment, time_up
):
    after = session_state(
        current, link_sent=link_sent, opened=opened, payment=payment, time_up=time_up
    )

    assert after in OPEN | FINAL
    if link_sent:
        assert after != STARTED
    # Asking again with the same facts gives the same answer: a sync is stable.
    assert (
        session_state(after, link_sent=link_sent, opened=opened, payment=payment, time_up=time_up)
        == after
    )
