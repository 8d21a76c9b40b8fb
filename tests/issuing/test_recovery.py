"""What a failure half-way leaves is finished later: a reversal's refund, a replacement card;
and what erasing a customer's data does to their Tranche card."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.common.money import to_cents
from apps.issuing.issuer import IssuerUnavailable
from apps.issuing.issuer_sandbox import SandboxIssuer
from apps.issuing.models import CardAuthorisation, VirtualCard
from apps.issuing.services import authorisations as auth
from apps.issuing.services.cards import card_replace
from apps.payments.models import Customer, PaymentState
from apps.refunds.allocation import RefundWaitForDebit
from apps.refunds.models import Refund
from apps.schedules.services.data_rights import deletion_request
from tests.issuing.helpers import card_for, decide, reversal, send

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def card() -> VirtualCard:
    with time_machine.travel(NOW, tick=False):
        yield card_for(when=NOW)


def _failing_once(monkeypatch, error: Exception) -> list:
    calls = []
    real = auth.refund_open

    def refund_open(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise error
        return real(**kwargs)

    monkeypatch.setattr(auth, "refund_open", refund_open)
    return calls


def _refunded_in_full(row: CardAuthorisation) -> None:
    row.refresh_from_db()
    assert row.state == CardAuthorisation.State.REVERSED
    refund = Refund.objects.get(payment_id=row.payment_id)
    assert refund.merchant_reference == f"reversal:{row.issuer_reference}"
    assert to_cents(refund.amount) == to_cents(row.amount)
    assert row.payment.__class__.objects.get(pk=row.payment_id).state == PaymentState.PAID


def test_a_replayed_reversal_finishes_the_refund_the_first_one_could_not_make(card, monkeypatch):
    with time_machine.travel(NOW, tick=False):
        _, _, row = decide(card, 90_00)
        calls = _failing_once(monkeypatch, RefundWaitForDebit())
        message = reversal(card, row.issuer_reference, 90_00)

        first = send(message)
        again = send(message)

    assert first[0] == 409  # the issuer retries
    assert again[0] == 200
    assert len(calls) == 2
    _refunded_in_full(row)


def test_the_sweep_refunds_a_reversal_whose_process_died_before_its_refund(card, monkeypatch):
    with time_machine.travel(NOW, tick=False):
        _, _, row = decide(card, 90_00)
        _failing_once(monkeypatch, RuntimeError("the process died"))
        with pytest.raises(RuntimeError):
            auth.authorisation_reverse(
                livemode=False,
                reference=row.issuer_reference,
                card_token=card.issuer_token,
                amount_cents=90_00,
                now=NOW,
            )
    assert not Refund.objects.exists()

    later = NOW + timedelta(minutes=3)
    with time_machine.travel(later, tick=False):
        first = auth.authorisations_settle_pending(now=later)
        second = auth.authorisations_settle_pending(now=later)

    assert (first, second) == (1, 0)
    _refunded_in_full(row)


def test_the_sweep_leaves_a_declined_purchase_alone(card):
    with time_machine.travel(NOW, tick=False):
        _, _, row = decide(card, 9_00)  # under the minimum: no plan
        send(reversal(card, row.issuer_reference, 9_00))
    later = NOW + timedelta(minutes=3)
    with time_machine.travel(later, tick=False):
        assert auth.authorisations_settle_pending(now=later) == 0
    assert not Refund.objects.exists()


def test_a_replacement_the_issuer_fails_leaves_the_old_card_working(card, monkeypatch):
    def unavailable(self, **kwargs):
        raise IssuerUnavailable()

    with time_machine.travel(NOW, tick=False):
        monkeypatch.setattr(SandboxIssuer, "card_issue", unavailable)
        with pytest.raises(IssuerUnavailable):
            card_replace(card=card, now=NOW)
        card.refresh_from_db()
        assert card.state == VirtualCard.State.ACTIVE

        monkeypatch.undo()
        new = card_replace(card=card, now=NOW)

    card.refresh_from_db()
    assert card.state == VirtualCard.State.REPLACED
    assert new.replaces_id == card.pk
    assert new.state == VirtualCard.State.ACTIVE
    assert new.limit == card.limit
    assert new.funding_card_id == card.funding_card_id


def test_a_replacement_retried_after_a_crash_gets_the_card_the_issuer_already_made(card):
    # The issuer issued the new card but the process died before recording it: the retry
    # uses the same key and records that card, never a second one.
    issuer = SandboxIssuer()
    first = issuer.card_issue(
        cardholder_name="Léa Bernard",
        livemode=False,
        idempotency_key=f"vcard:replace:{card.public_id}",
    )
    with time_machine.travel(NOW, tick=False):
        new = card_replace(card=card, now=NOW)
    assert new.issuer_token == first.token


def test_erasing_the_customer_s_data_closes_their_card_and_blanks_their_address(card):
    with time_machine.travel(NOW, tick=False):
        deletion_request(customer=card.customer, now=NOW)
        card.refresh_from_db()
        status, answer, _row = decide(card, 50_00)

    customer = Customer.objects.get(pk=card.customer_id)
    assert customer.address == {}
    assert card.state == VirtualCard.State.CLOSED
    assert card.closed_at == NOW
    assert (status, answer["approved"], answer["decline_code"]) == (200, False, "card_inactive")


def test_the_data_copy_has_the_card_its_decisions_and_purchases_but_never_its_number(card):
    from apps.issuing.issuer_sandbox import _number
    from apps.schedules.portal.data_export import customer_data, customer_data_html

    with time_machine.travel(NOW, tick=False):
        _, _, row = decide(card, 90_00, shop="Boulanger")
        data = customer_data(card.customer)
        html = customer_data_html(card.customer)

    assert data["profile"]["address"]["city"] == "Paris"
    assert [c["last4"] for c in data["tranche_cards"]] == [card.last4]
    assert [d["outcome"] for d in data["tranche_card_decisions"]] == ["approved"]
    [purchase] = data["tranche_card_purchases"]
    assert (purchase["shop"], purchase["amount"], purchase["state"]) == (
        "Boulanger",
        90_00,
        "approved",
    )
    assert purchase["plan"] == row.payment.public_id
    number = _number(card.issuer_token)
    assert number not in str(data) and number not in html
    assert "Boulanger" in html
