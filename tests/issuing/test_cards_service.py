"""Asking for the card, showing it, freezing, unfreezing and replacing it."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.utils import timezone

from apps.common.money import to_cents
from apps.issuing import eligibility as e
from apps.issuing.issuer import IssuerError
from apps.issuing.issuer_sandbox import SandboxIssuer
from apps.issuing.models import CardDecision, SandboxIssuedCard, VirtualCard
from apps.issuing.services.cards import (
    CardAlreadyIssued,
    CardNotLive,
    CardStateConflict,
    card_freeze,
    card_replace,
    card_request,
    card_reveal,
    card_unfreeze,
)
from apps.payments.models import DenyListEntry, Payment, PaymentState
from tests.issuing.helpers import (
    PROFILE,
    card_details,
    card_for,
    decide,
    funding_card,
    signed_up,
)
from tests.support import run_in_threads

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
db = pytest.mark.django_db


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def ready(**overrides):
    """A customer who could be approved: profile, verified phone, funding card in 3DS."""
    customer = signed_up(when=NOW, **overrides)
    funding_card(customer, when=NOW)
    return customer


# --- the request ---------------------------------------------------------------------------


@db
def test_an_eligible_customer_gets_a_card_with_a_300_euro_limit(clock):
    customer = ready()

    decision, card = card_request(customer=customer, now=NOW)

    assert decision.outcome == CardDecision.Outcome.APPROVED
    assert decision.reasons == []
    assert to_cents(decision.limit) == to_cents(card.limit) == 300_00
    assert card.state == VirtualCard.State.ACTIVE
    assert card.decision == decision
    assert card.funding_card.customer == customer
    assert SandboxIssuedCard.objects.get(token=card.issuer_token).last4 == card.last4
    assert decision.facts["paid_off_plans"] == 0


def no_phone_check(customer):
    customer.phone_verified_at = None
    customer.save(update_fields=["phone_verified_at"])


@pytest.mark.parametrize(
    ("arrange", "reason"),
    [
        (lambda: ready(birth_date=date(2010, 1, 1)), e.UNDER_AGE),
        (lambda: no_phone_check(c := ready()) or c, e.PHONE_NOT_VERIFIED),
        (lambda: ready(address={**PROFILE["address"], "city": " "}), e.PROFILE_INCOMPLETE),
        (lambda: ready(birth_date=None), e.PROFILE_INCOMPLETE),
        (lambda: signed_up(when=NOW), e.NO_FUNDING_CARD),
    ],
)
@db
def test_a_request_is_refused_with_its_reason(clock, arrange, reason):
    customer = arrange()

    decision, card = card_request(customer=customer, now=NOW)

    assert card is None
    assert decision.outcome == CardDecision.Outcome.REFUSED
    assert decision.reasons == [reason]
    assert not VirtualCard.objects.exists()


@db
def test_a_funding_card_without_3ds_finished_is_refused_with_that_reason(clock):
    customer = signed_up(when=NOW)
    funding_card(customer, when=NOW, authenticated=False)

    decision, card = card_request(customer=customer, now=NOW)

    assert (card, decision.reasons) == (None, [e.THREE_DS_NOT_COMPLETED])
    assert e.reasons_shown(decision.reasons)[0]["group"] == e.THREE_DS


@db
def test_the_latest_funding_card_counts(clock):
    customer = ready()
    funding_card(customer, when=NOW, authenticated=False)  # a new card, 3DS not finished

    decision, _card = card_request(customer=customer, now=NOW)

    assert decision.reasons == [e.THREE_DS_NOT_COMPLETED]


@pytest.mark.parametrize(
    ("number", "refusal"),
    [("4970150000000001", "prepaid"), ("4000560000000005", "country")],
)
@db
def test_a_funding_card_the_card_rules_refuse_is_refused(clock, number, refusal):
    customer = signed_up(when=NOW)
    funding_card(customer, when=NOW, number=number)

    decision, card = card_request(customer=customer, now=NOW)

    assert (card, decision.reasons) == (None, [e.FUNDING_CARD_REFUSED])
    assert any(refusal in code for code in decision.facts["funding_card_refusals"])


@pytest.mark.parametrize(
    ("state", "reason"),
    [(PaymentState.LATE_DUNNING, e.PLAN_LATE), (PaymentState.DEFAULT, e.PLAN_IN_DEFAULT)],
)
@db
def test_a_customer_with_a_late_or_defaulted_plan_is_refused(clock, state, reason):
    old = card_for(when=NOW)
    _, _answer, row = decide(old, 60_00)
    Payment.objects.filter(pk=row.payment_id).update(state=state)
    VirtualCard.objects.filter(pk=old.pk).update(state=VirtualCard.State.CLOSED)

    decision, card = card_request(customer=old.customer, now=NOW)

    assert (card, decision.reasons) == (None, [reason])


@db
def test_a_deny_listed_customer_is_refused_until_removed(clock):
    customer = ready()
    entry = DenyListEntry.objects.create(
        livemode=False, kind="phone", value=customer.phone, source="operator", created_at=NOW
    )

    assert card_request(customer=customer, now=NOW)[0].reasons == [e.DENY_LISTED]
    entry.removed_at = NOW
    entry.save(update_fields=["removed_at"])
    assert card_request(customer=customer, now=NOW)[1] is not None


@pytest.mark.parametrize(("paid_off", "limit"), [(1, 600_00), (3, 1_000_00)])
@db
def test_the_limit_follows_the_plans_paid_off(clock, paid_off, limit):
    old = card_for(when=NOW)
    for _ in range(paid_off):
        _, _, row = decide(old, 30_00)
        Payment.objects.filter(pk=row.payment_id).update(state=PaymentState.PAID)
    VirtualCard.objects.filter(pk=old.pk).update(state=VirtualCard.State.CLOSED)

    _decision, card = card_request(customer=old.customer, now=NOW)

    assert to_cents(card.limit) == limit


@db
def test_a_second_request_is_refused_while_a_card_is_live(clock):
    card = card_for(when=NOW)
    card_freeze(card=card, now=NOW)

    with pytest.raises(CardAlreadyIssued):
        card_request(customer=card.customer, now=NOW)
    assert CardDecision.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_double_click_issues_one_card():
    now = timezone.now()
    customer = signed_up(when=now)
    funding_card(customer, when=now)

    results = run_in_threads(
        lambda i: card_request(customer=customer, now=now), 6, expected=(CardAlreadyIssued,)
    )

    issued = [result for result in results if isinstance(result, tuple)]
    assert len(issued) == 1
    assert all(isinstance(r, CardAlreadyIssued) for r in results if not isinstance(r, tuple))
    assert VirtualCard.objects.filter(customer=customer).count() == 1
    assert SandboxIssuedCard.objects.count() == 1


# --- showing, freezing, replacing -----------------------------------------------------------


@db
def test_the_card_is_revealed_from_the_issuer_and_not_stored(clock):
    card = card_for(when=NOW)

    shown = card_reveal(card=card, now=NOW)

    assert shown.number == card_details(card)["number"]
    assert shown.cvc == card_details(card)["cvc"]
    card.refresh_from_db()
    assert card.details_shown_at == NOW
    assert not any(shown.number in str(value) for value in vars(card).values())


@db
def test_a_replaced_card_cannot_be_revealed_frozen_or_replaced(clock):
    card = card_for(when=NOW)
    new = card_replace(card=card, now=NOW)

    for action in (card_reveal, card_freeze, card_unfreeze, card_replace):
        with pytest.raises(CardNotLive):
            action(card=card, now=NOW)
    assert new.state == VirtualCard.State.ACTIVE


@db
def test_freezing_and_unfreezing_follow_the_state_rules(clock):
    card = card_for(when=NOW)

    with pytest.raises(CardStateConflict):
        card_unfreeze(card=card, now=NOW)
    frozen = card_freeze(card=card, now=NOW)
    assert (frozen.state, frozen.frozen_at) == (VirtualCard.State.FROZEN, NOW)
    assert SandboxIssuedCard.objects.get(token=card.issuer_token).state == "frozen"
    with pytest.raises(CardStateConflict):
        card_freeze(card=card, now=NOW)
    unfrozen = card_unfreeze(card=card, now=NOW)
    assert (unfrozen.state, unfrozen.frozen_at) == (VirtualCard.State.ACTIVE, None)
    assert SandboxIssuedCard.objects.get(token=card.issuer_token).state == "active"


@db
def test_replacing_keeps_the_limit_decision_and_funding_card_with_a_new_number(clock):
    card = card_for(when=NOW)
    decide(card, 60_00)  # its plan goes on after the replacement
    card_freeze(card=card, now=NOW)

    new = card_replace(card=card, now=NOW)

    card.refresh_from_db()
    assert card.state == VirtualCard.State.REPLACED
    assert card.closed_at == NOW
    assert new.replaces == card
    assert (new.decision_id, new.funding_card_id, new.limit) == (
        card.decision_id,
        card.funding_card_id,
        card.limit,
    )
    assert new.issuer_token != card.issuer_token
    assert card_details(new)["number"] != card_details(card)["number"]
    assert SandboxIssuedCard.objects.get(token=card.issuer_token).state == "closed"
    assert Payment.objects.get(origin=Payment.Origin.CARD).state == PaymentState.IN_PROGRESS


@db
def test_the_issuers_failure_on_freeze_leaves_tranches_state(clock, monkeypatch, caplog):
    card = card_for(when=NOW)

    def unavailable(self, *, token):
        raise IssuerError("down")

    monkeypatch.setattr(SandboxIssuer, "card_freeze", unavailable)
    with caplog.at_level(logging.ERROR):
        frozen = card_freeze(card=card, now=NOW)

    assert frozen.state == VirtualCard.State.FROZEN
    assert VirtualCard.objects.get(pk=card.pk).state == VirtualCard.State.FROZEN
    assert SandboxIssuedCard.objects.get(token=card.issuer_token).state == "active"
    assert "Tranche's state stands" in caplog.text
    # Tranche declines the purchases of its frozen card whatever the issuer does.
    assert decide(card, 50_00)[1]["decline_code"] == "card_frozen"
