"""The funding bank card: card rules first, then 3-D Secure (frictionless, challenge approved
or denied), the processor's answer recorded once whatever the browser replays; a new
authenticated card funds the live Tranche card's future purchases."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from apps.issuing.models import FundingCardSetup, VirtualCard
from apps.issuing.services.cards import card_facts, funding_setup
from apps.issuing.services.funding import (
    FundingSetupDone,
    FundingSetupMismatch,
    FundingSetupNotFound,
    FundingSetupWaiting,
    funding_setup_complete,
    funding_setup_start,
)
from apps.payments.models import Card
from apps.payments.processor import card_processor
from apps.payments.processor_sandbox import three_ds_complete
from apps.payments.services.checkout import CardRefused, ThreeDSFailed
from tests.issuing.helpers import GOOD_CARD, card_for, signed_up
from tests.portal.helpers import sign_in
from tests.support import all_database_text

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CHALLENGE_CARD = "4970100000000014"
PREPAID_CARD = "4970150000000001"
MASTERCARD = "5130100000000000"


@pytest.fixture(autouse=True)
def _clock():
    with time_machine.travel(NOW, tick=False):
        yield


def tokenised(number: str, *, livemode: bool = False):
    return card_processor().tokenise(
        number=number, exp_month=12, exp_year=NOW.year + 3, cvc="123", livemode=livemode
    )


def test_a_frictionless_card_is_authenticated_and_funds_the_card_request():
    customer = signed_up(when=NOW)

    setup, target = funding_setup_start(customer=customer, card=tokenised(GOOD_CARD), now=NOW)
    done = funding_setup_complete(
        setup_id=setup.public_id, customer=customer, reference=setup.three_ds_reference, now=NOW
    )

    assert target == (
        f"/portal/card/funding/{setup.public_id}/3ds?threeds={setup.three_ds_reference}"
    )
    assert done.status == FundingCardSetup.Status.AUTHENTICATED
    assert done.completed_at == NOW
    card = Card.objects.get(pk=setup.card_id)
    assert card.three_ds_authenticated_at == NOW
    assert card.customer_id == customer.pk and card.last4 == "0006"
    facts, _record = card_facts(customer, now=NOW)
    assert facts.funding_card_authenticated and not facts.funding_card_refused


def test_a_challenge_goes_to_the_bank_and_its_approval_authenticates_the_card():
    customer = signed_up(when=NOW)

    setup, target = funding_setup_start(customer=customer, card=tokenised(CHALLENGE_CARD), now=NOW)
    assert f"/sandbox/acs/{setup.three_ds_reference}" in target
    with pytest.raises(FundingSetupWaiting):  # back before answering the bank
        funding_setup_complete(
            setup_id=setup.public_id,
            customer=customer,
            reference=setup.three_ds_reference,
            now=NOW,
        )
    three_ds_complete(reference=setup.three_ds_reference, approved=True, now=NOW)
    done = funding_setup_complete(
        setup_id=setup.public_id, customer=customer, reference=setup.three_ds_reference, now=NOW
    )

    assert done.status == FundingCardSetup.Status.AUTHENTICATED
    assert Card.objects.get(pk=setup.card_id).three_ds_authenticated_at == NOW


def test_a_denied_challenge_fails_the_setup_and_the_card_request_names_3ds():
    customer = signed_up(when=NOW)
    setup, _target = funding_setup_start(customer=customer, card=tokenised(CHALLENGE_CARD), now=NOW)
    three_ds_complete(reference=setup.three_ds_reference, approved=False, now=NOW)

    with pytest.raises(ThreeDSFailed):
        funding_setup_complete(
            setup_id=setup.public_id,
            customer=customer,
            reference=setup.three_ds_reference,
            now=NOW,
        )

    setup.refresh_from_db()
    assert setup.status == FundingCardSetup.Status.FAILED
    assert Card.objects.get(pk=setup.card_id).three_ds_authenticated_at is None
    facts, _record = card_facts(customer, now=NOW)
    assert facts.funding_card and not facts.funding_card_authenticated


def test_a_replayed_return_changes_nothing_more():
    customer = signed_up(when=NOW)
    setup, _target = funding_setup_start(customer=customer, card=tokenised(GOOD_CARD), now=NOW)
    funding_setup_complete(
        setup_id=setup.public_id, customer=customer, reference=setup.three_ds_reference, now=NOW
    )

    with time_machine.travel(NOW.replace(hour=11), tick=False), pytest.raises(FundingSetupDone):
        funding_setup_complete(
            setup_id=setup.public_id,
            customer=customer,
            reference=setup.three_ds_reference,
            now=NOW.replace(hour=11),
        )

    setup.refresh_from_db()
    assert setup.completed_at == NOW
    assert Card.objects.get(pk=setup.card_id).three_ds_authenticated_at == NOW


def test_a_replay_of_a_failed_setup_stays_failed():
    customer = signed_up(when=NOW)
    setup, _target = funding_setup_start(customer=customer, card=tokenised(CHALLENGE_CARD), now=NOW)
    three_ds_complete(reference=setup.three_ds_reference, approved=False, now=NOW)
    reference = setup.three_ds_reference
    with pytest.raises(ThreeDSFailed):
        funding_setup_complete(
            setup_id=setup.public_id, customer=customer, reference=reference, now=NOW
        )

    three_ds_complete(reference=reference, approved=True, now=NOW)  # ignored: answered
    with pytest.raises(ThreeDSFailed):
        funding_setup_complete(
            setup_id=setup.public_id, customer=customer, reference=reference, now=NOW
        )

    assert Card.objects.get(pk=setup.card_id).three_ds_authenticated_at is None


def test_a_reference_from_elsewhere_or_another_customer_is_refused():
    customer = signed_up(when=NOW)
    other = signed_up(when=NOW, email="other@example.com", phone="+33600000001")
    setup, _target = funding_setup_start(customer=customer, card=tokenised(GOOD_CARD), now=NOW)
    theirs, _t = funding_setup_start(customer=other, card=tokenised(GOOD_CARD), now=NOW)

    with pytest.raises(FundingSetupMismatch):
        funding_setup_complete(
            setup_id=setup.public_id,
            customer=customer,
            reference=theirs.three_ds_reference,
            now=NOW,
        )
    with pytest.raises(FundingSetupNotFound):
        funding_setup_complete(
            setup_id=theirs.public_id,
            customer=customer,
            reference=theirs.three_ds_reference,
            now=NOW,
        )

    setup.refresh_from_db()
    assert setup.status == FundingCardSetup.Status.STARTED


@pytest.mark.parametrize(
    ("number", "code"),
    [(PREPAID_CARD, "prepaid_card"), ("4970180000000008", "virtual_card")],
)
def test_a_card_the_rules_refuse_is_refused_with_its_reasons_and_not_saved(number, code):
    customer = signed_up(when=NOW)

    with pytest.raises(CardRefused) as refused:
        funding_setup_start(customer=customer, card=tokenised(number), now=NOW)

    assert code in [refusal.code for refusal in refused.value.refusals]
    assert not FundingCardSetup.objects.filter(customer=customer).exists()
    assert not Card.objects.filter(customer=customer).exists()


def test_a_card_expiring_before_a_purchase_is_paid_off_is_refused():
    customer = signed_up(when=NOW)
    soon = card_processor().tokenise(
        number=GOOD_CARD, exp_month=1, exp_year=NOW.year + 1, cvc="123", livemode=False
    )

    with pytest.raises(CardRefused) as refused:
        funding_setup_start(customer=customer, card=soon, now=NOW)

    assert [refusal.code for refusal in refused.value.refusals] == ["expires_too_soon"]


def test_a_new_authenticated_card_funds_the_live_cards_future_purchases():
    card = card_for(when=NOW)
    old_funding = card.funding_card_id
    customer = card.customer

    setup, _target = funding_setup_start(customer=customer, card=tokenised(MASTERCARD), now=NOW)
    card.refresh_from_db()
    assert card.funding_card_id == old_funding  # not before 3-D Secure
    funding_setup_complete(
        setup_id=setup.public_id, customer=customer, reference=setup.three_ds_reference, now=NOW
    )

    card.refresh_from_db()
    assert card.funding_card_id == setup.card_id
    assert funding_setup(customer).pk == setup.pk


def test_an_older_setup_finishing_late_does_not_take_over_from_a_newer_card():
    card = card_for(when=NOW)
    customer = card.customer
    older, _t = funding_setup_start(customer=customer, card=tokenised(CHALLENGE_CARD), now=NOW)
    with time_machine.travel(NOW.replace(minute=5), tick=False):
        newer, _t = funding_setup_start(
            customer=customer, card=tokenised(MASTERCARD), now=NOW.replace(minute=5)
        )
        funding_setup_complete(
            setup_id=newer.public_id,
            customer=customer,
            reference=newer.three_ds_reference,
            now=NOW.replace(minute=5),
        )
    three_ds_complete(reference=older.three_ds_reference, approved=True, now=NOW)

    funding_setup_complete(
        setup_id=older.public_id,
        customer=customer,
        reference=older.three_ds_reference,
        now=NOW.replace(minute=6),
    )

    card.refresh_from_db()
    assert card.funding_card_id == newer.card_id


def test_a_failed_new_card_leaves_the_live_card_on_its_funding_card():
    card = card_for(when=NOW)
    customer = card.customer
    setup, _t = funding_setup_start(customer=customer, card=tokenised(CHALLENGE_CARD), now=NOW)
    three_ds_complete(reference=setup.three_ds_reference, approved=False, now=NOW)

    with pytest.raises(ThreeDSFailed):
        funding_setup_complete(
            setup_id=setup.public_id,
            customer=customer,
            reference=setup.three_ds_reference,
            now=NOW,
        )

    assert VirtualCard.objects.get(pk=card.pk).funding_card_id == card.funding_card_id


# --- through the pages ------------------------------------------------------------------


def _client(customer) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    sign_in(client, customer, when=NOW)
    return client


def _form(number: str) -> dict:
    return {"card_number": number, "card_expiry": "12/35", "card_cvc": "123"}


def test_the_funding_page_adds_a_frictionless_card_and_comes_back_to_the_card_page():
    customer = signed_up(when=NOW)
    client = _client(customer)

    page = client.get(reverse("issuing:funding"))
    response = client.post(reverse("issuing:funding"), _form("4970 1000 0000 0006"))

    assert page.status_code == 200 and 'name="card_number"' in page.content.decode()
    assert response.status_code == 303 and response["Location"] == reverse("issuing:card")
    setup = funding_setup(customer)
    assert setup.status == FundingCardSetup.Status.AUTHENTICATED
    landed = client.get(response["Location"])
    assert "•••• 0006" in landed.content.decode()


def test_the_funding_page_through_the_bank_challenge_never_keeps_the_number(caplog):
    caplog.set_level(logging.DEBUG)
    customer = signed_up(when=NOW)
    client = _client(customer)

    response = client.post(reverse("issuing:funding"), _form(CHALLENGE_CARD))
    acs = response["Location"]
    back = client.post(acs, {"decision": "approve"})
    landed = client.get(back["Location"])
    replay = client.get(back["Location"])

    assert "/sandbox/acs/" in acs
    assert landed.status_code == 303 and landed["Location"] == reverse("issuing:card")
    setup = funding_setup(customer)
    assert setup.status == FundingCardSetup.Status.AUTHENTICATED
    assert replay.status_code == 303  # the replay is told it is done, nothing changes
    assert FundingCardSetup.objects.filter(customer=customer).count() == 1
    for form in (CHALLENGE_CARD, CHALLENGE_CARD[6:12]):
        assert form not in all_database_text()
        assert form not in caplog.text


def test_the_funding_page_shows_the_card_rules_refusal():
    customer = signed_up(when=NOW)

    response = _client(customer).post(reverse("issuing:funding"), _form(PREPAID_CARD))

    assert response.status_code == 402
    assert "prepaid" in response.content.decode().lower()
    assert not FundingCardSetup.objects.filter(customer=customer).exists()


def test_the_funding_page_sends_a_denied_challenge_back_to_the_form():
    customer = signed_up(when=NOW)
    client = _client(customer)

    acs = client.post(reverse("issuing:funding"), _form(CHALLENGE_CARD))["Location"]
    back = client.post(acs, {"decision": "deny"})
    landed = client.get(back["Location"])

    assert landed["Location"] == reverse("issuing:funding")
    page = client.get(landed["Location"])
    assert "3-D Secure" in page.content.decode()
    assert funding_setup(customer).status == FundingCardSetup.Status.FAILED


def test_another_customers_3ds_return_is_a_404():
    customer = signed_up(when=NOW)
    other = signed_up(when=NOW, email="other@example.com", phone="+33600000001")
    theirs, _t = funding_setup_start(customer=other, card=tokenised(GOOD_CARD), now=NOW)

    response = _client(customer).get(
        reverse("issuing:funding-3ds", args=[theirs.public_id]),
        {"threeds": theirs.three_ds_reference},
    )

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == FundingCardSetup.Status.STARTED
