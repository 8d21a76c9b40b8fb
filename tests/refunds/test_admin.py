"""The operators' refunds pages: read-only lists in both languages, search, the card refunds of
a refund, and the action that sends the card refunds still waiting for the processor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from apps.ledger.models import Posting
from apps.payments.models import SandboxCharge
from apps.payments.processor_sandbox import REFUND, SandboxProcessor
from apps.refunds.models import CardRefund, Refund
from apps.refunds.services import RefundRequest, refund_open
from tests.refunds.builders import refunded
from tests.schedules.builders import accepted

pytestmark = pytest.mark.django_db

BOUGHT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LATER = datetime(2026, 3, 5, 10, 0, tzinfo=UTC)
CHANGELIST = "admin:refunds_refund_changelist"


def opened(shop) -> Refund:
    """A complete refund decided but never sent to the card (its request died before)."""
    payment = accepted(shop, when=BOUGHT)
    with time_machine.travel(LATER, tick=False):
        return refund_open(
            payment_id=payment.pk, request=RefundRequest(), origin=Refund.Origin.API, now=LATER
        )


def send_again(admin_client, *refunds: Refund):
    chosen = {"action": "send_to_card_again", ACTION_CHECKBOX_NAME: [r.pk for r in refunds]}
    with time_machine.travel(LATER + timedelta(minutes=5), tick=False):
        return admin_client.post(
            reverse(CHANGELIST), chosen, follow=True, HTTP_ACCEPT_LANGUAGE="en"
        )


def card_refunds_made() -> int:
    return SandboxCharge.objects.filter(kind=REFUND).count()


def test_the_list_renders_in_french_and_in_english(shop, admin_client):
    refund = refunded(accepted(shop, when=BOUGHT), amount=5_000, when=LATER)

    french = admin_client.get(reverse(CHANGELIST), HTTP_ACCEPT_LANGUAGE="fr")
    english = admin_client.get(reverse(CHANGELIST), HTTP_ACCEPT_LANGUAGE="en")

    assert french.status_code == english.status_code == 200
    assert refund.public_id in french.text and refund.public_id in english.text
    assert refund.payment.public_id in english.text
    assert '<html lang="fr"' in french.text and "Filtre" in french.text
    assert "Montant" in french.text and "État" in french.text
    assert '<html lang="en"' in english.text and "Filter" in english.text
    assert "Amount" in english.text and "Send the card refunds again" in english.text
    assert "Add refund" not in english.text  # read-only: written by services only


def test_search_finds_a_refund_by_its_id_its_payment_or_the_merchants_reference(shop, admin_client):
    first = refunded(
        accepted(shop, when=BOUGHT), amount=5_000, when=LATER, merchant_reference="RMA-1001"
    )
    second = refunded(
        accepted(shop, when=BOUGHT), amount=5_000, when=LATER, merchant_reference="RMA-2002"
    )

    def found(term: str) -> set[str]:
        page = admin_client.get(reverse(CHANGELIST), {"q": term})
        assert page.status_code == 200
        return {r.public_id for r in (first, second) if r.public_id in page.text}

    assert found(first.public_id) == {first.public_id}
    assert found(second.payment.public_id) == {second.public_id}
    assert found("RMA-1001") == {first.public_id}
    assert found("rma-") == {first.public_id, second.public_id}
    assert found("refund_nothing") == set()


def test_a_refund_page_shows_its_card_refunds(shop, admin_client):
    refund = refunded(accepted(shop, when=BOUGHT), amount=None, when=LATER)
    [part] = refund.card_refunds.all()

    page = admin_client.get(
        reverse("admin:refunds_refund_change", args=[refund.pk]), HTTP_ACCEPT_LANGUAGE="en"
    )

    assert page.status_code == 200
    assert part.idempotency_key in page.text
    assert part.processor_reference in page.text
    assert part.charge.processor_reference in page.text


def test_the_action_sends_a_pending_card_refund(shop, admin_client):
    refund = opened(shop)
    assert refund.card_refunds.get().status == CardRefund.Status.PENDING
    assert card_refunds_made() == 0

    page = send_again(admin_client, refund)

    assert page.status_code == 200
    assert "1 refund(s) given back to the card." in page.text
    refund.refresh_from_db()
    assert refund.state == Refund.State.SUCCEEDED
    assert refund.card_refunds.get().status == CardRefund.Status.SUCCEEDED
    assert card_refunds_made() == 1
    assert Posting.objects.filter(kind="refund_to_card", memo=refund.public_id).count() == 1


def test_the_action_run_twice_refunds_the_card_once(shop, admin_client):
    refund = opened(shop)

    send_again(admin_client, refund)
    page = send_again(admin_client, refund)

    assert "already refunded to the card, nothing to send" in page.text
    assert card_refunds_made() == 1
    assert Posting.objects.filter(kind="refund_to_card", memo=refund.public_id).count() == 1


def test_the_action_does_not_send_a_refused_card_refund_again(shop, admin_client):
    payment = accepted(shop, when=BOUGHT)
    charge = payment.charges.get()
    # The whole charge was already given back outside Tranche: the processor refuses more.
    with time_machine.travel(LATER - timedelta(days=1), tick=False):
        SandboxProcessor().refund(
            charge_reference=charge.processor_reference,
            amount_cents=10_000,
            idempotency_key="console:1",
            livemode=False,
        )
    refund = refunded(payment, amount=None, when=LATER)
    assert refund.state == Refund.State.FAILED
    made = card_refunds_made()

    page = send_again(admin_client, refund)

    assert "the customer must be paid back another way" in page.text.lower()
    assert card_refunds_made() == made
    refund.refresh_from_db()
    assert refund.state == Refund.State.FAILED
    assert refund.card_refunds.get().attempts == 1
