"""Operators' card pages: read-only lists and pages of cards, decisions, purchases, issuer
messages and funding cards, searchable, and never a card number."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse

from apps.issuing import issuer_sandbox
from apps.issuing.models import (
    CardAuthorisation,
    CardDecision,
    FundingCardSetup,
    IssuerMessage,
    VirtualCard,
)
from tests.issuing.helpers import card_details, card_for, purchase_request, send

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
MODELS = {
    "virtualcard": VirtualCard,
    "carddecision": CardDecision,
    "cardauthorisation": CardAuthorisation,
    "issuermessage": IssuerMessage,
    "fundingcardsetup": FundingCardSetup,
}


def _listed(response) -> list:
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


@pytest.fixture
def purchased():
    """A card with one approved purchase (through the sandbox network) and one declined."""
    with time_machine.travel(NOW, tick=False):
        card = card_for(when=NOW)
        approved = issuer_sandbox.purchase(
            **card_details(card), amount_cents=150_00, merchant_name="Fnac Paris"
        )
        status, answer = send(purchase_request(card, 5_00, reference="iauth_small", shop="Kiosque"))
    assert approved.status == "approved" and status == 200 and not answer["approved"]
    return card, CardAuthorisation.objects.get(issuer_reference=approved.reference)


@pytest.mark.parametrize("name", MODELS)
def test_every_card_list_and_page_renders_for_an_operator(admin_client, purchased, name):
    row = MODELS[name].objects.order_by("pk").first()

    listed = _listed(admin_client.get(reverse(f"admin:issuing_{name}_changelist")))
    page = admin_client.get(reverse(f"admin:issuing_{name}_change", args=[row.pk]))

    assert row in listed
    assert page.status_code == 200


def test_no_card_page_ever_shows_the_cards_number(admin_client, purchased):
    card, authorisation = purchased
    details = card_details(card)
    pages = [
        reverse("admin:issuing_virtualcard_changelist"),
        reverse("admin:issuing_virtualcard_change", args=[card.pk]),
        reverse("admin:issuing_cardauthorisation_change", args=[authorisation.pk]),
        *(
            reverse("admin:issuing_issuermessage_change", args=[message.pk])
            for message in IssuerMessage.objects.all()
        ),
    ]

    html = "".join(admin_client.get(url).content.decode() for url in pages)

    assert f"•••• {card.last4}" in html
    assert details["number"] not in html
    assert details["number"][-8:] not in html


def test_operators_find_cards_by_id_email_or_phone(admin_client, purchased):
    card, _ = purchased
    with time_machine.travel(NOW, tick=False):
        other = card_for(when=NOW, email="paul.martin@example.com", phone="+33699887766")
    url = reverse("admin:issuing_virtualcard_changelist")

    by_id = _listed(admin_client.get(url, {"q": card.public_id}))
    by_email = _listed(admin_client.get(url, {"q": "paul.martin@"}))
    by_phone = _listed(admin_client.get(url, {"q": "+33611223344"}))
    frozen = _listed(admin_client.get(url, {"state__exact": "frozen"}))

    assert by_id == [card]
    assert by_email == [other]
    assert by_phone == [card]
    assert frozen == []


def test_operators_find_a_purchase_by_the_issuers_reference_and_filter_the_declined(
    admin_client, purchased
):
    _, authorisation = purchased
    url = reverse("admin:issuing_cardauthorisation_changelist")

    by_reference = _listed(admin_client.get(url, {"q": authorisation.issuer_reference}))
    declined = _listed(admin_client.get(url, {"state__exact": "declined"}))
    page = admin_client.get(
        reverse("admin:issuing_cardauthorisation_change", args=[authorisation.pk])
    ).content.decode()

    assert by_reference == [authorisation]
    assert [row.issuer_reference for row in declined] == ["iauth_small"]
    assert declined[0].decline_code == "amount_too_small"
    assert reverse("admin:payments_payment_change", args=[authorisation.payment_id]) in page


def test_operators_find_issuer_messages_by_id_and_by_purchase(admin_client, purchased):
    _, authorisation = purchased
    request = IssuerMessage.objects.get(kind="authorization.request", authorisation=authorisation)
    url = reverse("admin:issuing_issuermessage_changelist")

    by_id = _listed(admin_client.get(url, {"q": request.message_id}))
    by_purchase = _listed(admin_client.get(url, {"q": authorisation.issuer_reference}))

    assert by_id == [request]
    assert request in by_purchase


def test_card_rows_cannot_be_added_changed_or_deleted_from_the_admin(admin_client, purchased):
    card, authorisation = purchased

    added = admin_client.get(reverse("admin:issuing_virtualcard_add"))
    changed = admin_client.post(
        reverse("admin:issuing_virtualcard_change", args=[card.pk]), {"state": "closed"}
    )
    deleted = admin_client.post(
        reverse("admin:issuing_cardauthorisation_delete", args=[authorisation.pk]),
        {"post": "yes"},
    )

    assert (added.status_code, changed.status_code, deleted.status_code) == (403, 403, 403)
    assert VirtualCard.objects.get(pk=card.pk).state == "active"
    assert CardAuthorisation.objects.filter(pk=authorisation.pk).exists()


def test_the_sandbox_issuers_tables_are_not_in_the_admin(admin_client):
    index = admin_client.get(reverse("admin:index")).content.decode()

    assert "/admin/issuing/virtualcard/" in index
    assert "sandboxissuedcard" not in index
    assert "sandboxissuerauthorisation" not in index
    assert "sandboxissueroutbox" not in index
