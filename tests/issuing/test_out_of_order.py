"""The issuer's messages replayed and out of order: a purchase never makes two plans, a
reversal always gives the plan back, a message about a purchase being decided waits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.common.money import to_cents
from apps.issuing import issuer_sandbox, rules
from apps.issuing.models import CardAuthorisation, IssuerMessage, VirtualCard
from apps.issuing.services import authorisations as auth
from apps.payments.models import Charge, Payment, PaymentState, SandboxCharge
from apps.refunds.models import Refund
from tests.issuing.helpers import (
    card_details,
    card_for,
    clearing,
    decide,
    instalment_amounts,
    purchase_request,
    reversal,
    send,
    shop_refund,
)

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def card() -> VirtualCard:
    with time_machine.travel(NOW, tick=False):
        yield card_for(when=NOW)


def plans() -> int:
    return Payment.objects.filter(origin=Payment.Origin.CARD).count()


def request_of(card: VirtualCard, reference: str, amount: int) -> auth.PurchaseRequest:
    return auth.PurchaseRequest(
        reference=reference,
        card_token=card.issuer_token,
        amount_cents=amount,
        currency="EUR",
        merchant_name="Boulanger",
        merchant_category="5732",
        merchant_country="FR",
        livemode=False,
    )


def assert_refunded_in_full(row: CardAuthorisation, amount: int) -> None:
    """First third back on the funding card, the other instalments cancelled."""
    row.refresh_from_db()
    assert row.state == CardAuthorisation.State.REVERSED
    assert to_cents(row.refunded_amount) == amount
    payment = Payment.objects.get(pk=row.payment_id)
    assert to_cents(payment.amount_refunded) == amount
    first, *others = instalment_amounts(payment)
    assert first == ("paid", to_cents(payment.instalments.get(number=1).purchase_amount))
    assert others == [("paid", 0), ("paid", 0)]  # nothing left to collect
    assert payment.state == PaymentState.PAID
    charge = Charge.objects.get(payment=payment, status=Charge.Status.SUCCEEDED)
    back = SandboxCharge.objects.filter(
        kind="refund", status="succeeded", charge_reference=charge.processor_reference
    )
    assert sum(r.amount_cents for r in back) == to_cents(charge.amount)
    assert Refund.objects.filter(payment=payment).count() == 1


# --- replays ----------------------------------------------------------------------------------


def test_the_same_message_again_gets_its_kept_answer_and_makes_no_second_plan(card):
    body = purchase_request(card, 80_00)

    first = send(body)
    second = send(body)

    assert first == second
    assert first[1]["approved"] is True
    assert plans() == 1
    assert IssuerMessage.objects.filter(message_id=body["id"]).count() == 1


def test_the_same_purchase_under_a_new_message_id_gets_the_same_answer(card):
    _, first, row = decide(card, 80_00, reference="iauth_twice")

    _, again, _ = decide(card, 80_00, reference="iauth_twice")

    assert again == first
    assert plans() == 1
    assert IssuerMessage.objects.filter(authorisation=row).count() == 2


def test_a_declined_purchase_replayed_stays_declined_with_its_code(card):
    decide(card, 5_00, reference="iauth_small")

    _, again, row = decide(card, 5_00, reference="iauth_small")

    assert again["decline_code"] == rules.AMOUNT_TOO_SMALL
    assert row.state == CardAuthorisation.State.DECLINED


# --- out of order -----------------------------------------------------------------------------


def test_a_reversal_before_its_request_declines_the_request(card):
    status, answer = send(reversal(card, "iauth_early", 70_00))
    assert (status, answer["state"]) == (200, "reversed")

    _, answer, row = decide(card, 70_00, reference="iauth_early")

    assert answer["approved"] is False
    assert answer["decline_code"] == rules.ALREADY_REVERSED
    assert row.state == CardAuthorisation.State.REVERSED
    assert row.requested_at is not None
    assert row.merchant_name == "Galeries Lafayette"
    assert plans() == 0


def test_a_clearing_before_the_decision_is_refused_then_applied_on_retry(card):
    early = clearing(card, "iauth_late", 60_00)

    assert send(early) == (409, {"error": "not_decided_yet", "retry": True})
    decide(card, 60_00, reference="iauth_late")
    status, answer = send(early)  # the issuer retries the same message

    assert (status, answer["state"]) == (200, "approved")
    row = CardAuthorisation.objects.get(issuer_reference="iauth_late")
    assert row.cleared_at is not None


def test_a_clearing_while_the_purchase_is_being_decided_is_refused_then_applied(card):
    row, charge = auth._open(request_of(card, "iauth_pending", 60_00), now=NOW)

    assert send(clearing(card, "iauth_pending", 60_00))[0] == 409
    assert send(shop_refund(card, "iauth_pending", 10_00))[0] == 409
    auth._finish(
        authorisation_id=row.pk, charge_id=charge.pk, result=auth._charge_execute(charge), now=NOW
    )

    assert send(clearing(card, "iauth_pending", 60_00))[0] == 200
    assert send(shop_refund(card, "iauth_pending", 10_00))[0] == 200


def test_a_refund_before_the_clearing_is_fine(card):
    _, _, row = decide(card, 90_00)

    assert send(shop_refund(card, row.issuer_reference, 30_00))[0] == 200
    assert send(clearing(card, row.issuer_reference, 90_00))[0] == 200

    payment = Payment.objects.get(pk=row.payment_id)
    assert to_cents(payment.amount_refunded) == 30_00
    assert sum(cents for _, cents in instalment_amounts(payment)) == 60_00


def test_a_reversal_of_an_approved_purchase_refunds_its_plan_in_full(card):
    _, _, row = decide(card, 90_00)

    send(reversal(card, row.issuer_reference, 90_00))
    send(reversal(card, row.issuer_reference, 90_00))  # the advice again

    assert_refunded_in_full(row, 90_00)


def test_a_reversal_while_the_purchase_is_being_decided_is_applied_when_it_is_recorded(card):
    row, charge = auth._open(request_of(card, "iauth_racing", 60_00), now=NOW)
    result = auth._charge_execute(charge)

    status, answer = send(reversal(card, "iauth_racing", 60_00))
    assert (status, answer["state"]) == (200, "pending")
    finished = auth._finish(authorisation_id=row.pk, charge_id=charge.pk, result=result, now=NOW)

    assert finished.state == CardAuthorisation.State.REVERSED
    assert_refunded_in_full(row, 60_00)


def test_a_replay_answered_still_deciding_ends_reversed(card, monkeypatch):
    monkeypatch.setattr(auth, "REPLAY_WAIT", timedelta(milliseconds=120))
    row, charge = auth._open(request_of(card, "iauth_slow", 60_00), now=NOW)

    _, answer, _ = decide(card, 60_00, reference="iauth_slow")
    assert answer["approved"] is False
    assert answer["decline_code"] == rules.STILL_DECIDING
    # The first request's answer comes after the network took the replay's.
    auth._finish(
        authorisation_id=row.pk, charge_id=charge.pk, result=auth._charge_execute(charge), now=NOW
    )

    assert_refunded_in_full(row, 60_00)


def test_the_network_timing_out_on_tranche_refunds_the_plan_it_approved(card):
    with time_machine.travel(NOW, tick=False):
        outcome = issuer_sandbox.purchase(
            **card_details(card), amount_cents=120_13, merchant_name="Fnac"
        )

    assert outcome.status == issuer_sandbox.TIMED_OUT
    assert outcome.decline_code == "issuer_timeout"
    row = CardAuthorisation.objects.get(issuer_reference=outcome.reference)
    assert row.payment.state != PaymentState.STOPPED  # it had been approved and charged
    assert_refunded_in_full(row, 120_13)
    # The first third (40,05 €) went back to the funding card.
    back = SandboxCharge.objects.get(kind="refund")
    assert back.amount_cents == 40_05
    # Nothing left owing: the whole limit is available again.
    assert decide(card, 300_00)[1]["approved"] is True
