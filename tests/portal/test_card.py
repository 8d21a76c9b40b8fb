"""Changing the card of one's plans in the portal: 3-D Secure (frictionless, challenge,
failed), the card rules, every plan on the old card switched, the old token detached, the
next debit on the new card; and paying early with a card that needs a challenge."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.test import Client
from django.utils import translation

from apps.common.emails import email_content
from apps.common.models import OutgoingEmail
from apps.payments.models import Card, Charge, Payment, SandboxCard, SandboxCharge
from apps.payments.processor import ChargeRequest
from apps.payments.processor_sandbox import SandboxProcessor
from apps.payments.services.checkout import CardRefused, ThreeDSFailed
from apps.schedules.models import CardSetup
from apps.schedules.services.cards import (
    CardSetupDone,
    CardSetupNotFound,
    card_setup_complete,
    card_setup_start,
)
from apps.schedules.services.debits import debit_run
from tests.portal.helpers import CAMILLE, DOMINIQUE, plan_for, sign_in
from tests.portal.test_pay_early import page_token, said, tokenise
from tests.support import all_database_text

pytestmark = pytest.mark.django_db

BOUGHT = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # 4x: Nov 2, Dec 2, Jan 2, Feb 2
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
NEW_CARD = "5130100000000000"  # Mastercard, frictionless
CHALLENGE_CARD = "4970100000000014"


@pytest.fixture(autouse=True)
def _receipts_in_tmp(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "receipts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "allow_overwrite": True},
        },
    }


def replace(payment: Payment, number: str, *, exp_year: int = 2035, at: datetime = NOW):
    """Start replacing ``payment``'s card with ``number``: the setup and the browser's way."""
    with time_machine.travel(at, tick=False):
        return card_setup_start(
            customer=payment.customer,
            payment_id=payment.pk,
            card=tokenise(number, exp_year=exp_year),
            purpose=CardSetup.Purpose.REPLACE,
            now=at,
        )


def complete(setup: CardSetup, target: str, *, at: datetime = NOW) -> CardSetup:
    with time_machine.travel(at, tick=False):
        return card_setup_complete(
            setup_id=setup.pk,
            customer=setup.customer,
            reference=target.rsplit("threeds=", 1)[1],
            now=at,
        )


def acs(client: Client, target: str, decision: str) -> str:
    """Answer the sandbox bank's challenge page; where it sends the browser back."""
    path = urlsplit(target).path
    assert path.startswith("/sandbox/acs/")
    assert client.get(path).status_code == 200
    answer = client.post(path, {"decision": decision})
    assert answer.status_code in (302, 303), answer.status_code
    back = urlsplit(answer["Location"])
    return f"{back.path}?{back.query}"


def test_a_frictionless_new_card_replaces_the_old_one_which_is_detached(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT, locale="en")
    old = payment.card

    setup, target = replace(payment, NEW_CARD)
    assert target == f"/portal/cards/{setup.public_id}/3ds?threeds={setup.three_ds_reference}"
    done = complete(setup, target)

    payment.refresh_from_db()
    old.refresh_from_db()
    assert done.status == "done" and payment.card_id == setup.card_id != old.pk
    assert payment.card.last4 == "0000" and payment.card.three_ds_authenticated_at == NOW
    event = payment.events.get(kind="card_replaced")
    assert event.detail == {
        "old": old.public_id,
        "new": payment.card.public_id,
        "setup": setup.public_id,
    }
    assert old.detached_at == NOW
    assert SandboxCard.objects.get(token=old.processor_token).scenario.startswith("detached:")
    email = OutgoingEmail.objects.get(key=f"cardsetup:{setup.public_id}:card_changed")
    assert email.subject == "Your card was changed" and email.to == CAMILLE["email"]
    text, _html = email_content(email)
    assert "debited from your card Mastercard •••• 0000" in text
    assert "The card CB •••• 0006 will no longer be debited." in text
    with pytest.raises(CardSetupDone):  # the return URL replayed
        complete(setup, target)


def test_the_old_token_can_no_longer_be_charged_and_the_next_debit_uses_the_new_card(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT)
    old_token = payment.card.processor_token
    setup, target = replace(payment, NEW_CARD)
    complete(setup, target)
    second = payment.instalments.get(number=2)

    [refused] = SandboxProcessor().charge_many(
        [
            ChargeRequest(
                token=old_token, amount_cents=100, idempotency_key="try-old", livemode=False
            )
        ]
    )
    at = second.next_debit_at + timedelta(minutes=5)
    with time_machine.travel(at, tick=False):
        summary = debit_run(now=at)

    assert refused.status == "declined" and refused.decline_code == "token_detached"
    assert summary.succeeded == 1
    charge = Charge.objects.get(instalment=second, kind="instalment")
    new_card = Card.objects.get(pk=setup.card_id)
    assert charge.card_id == new_card.pk
    sandbox = SandboxCharge.objects.get(idempotency_key=charge.idempotency_key)
    assert sandbox.card.token == new_card.processor_token and sandbox.status == "succeeded"


def test_every_open_plan_on_the_old_card_is_switched_and_the_others_are_left(shop, other_shop):
    first = plan_for(shop, CAMILLE, when=BOUGHT)
    second = plan_for(other_shop, CAMILLE, when=BOUGHT)
    Payment.objects.filter(pk=second.pk).update(card=first.card)  # the same card on both
    third = plan_for(shop, CAMILLE, when=BOUGHT)  # another card
    paid = plan_for(shop, CAMILLE, when=BOUGHT, installments_count=1, amount=5_000)
    Payment.objects.filter(pk=paid.pk).update(card=first.card)
    stranger = plan_for(shop, DOMINIQUE, when=BOUGHT)
    old = first.card

    setup, target = replace(second, NEW_CARD)
    complete(setup, target)

    cards = dict(Payment.objects.values_list("pk", "card_id"))
    assert cards[first.pk] == cards[second.pk] == setup.card_id
    assert cards[third.pk] == third.card_id and cards[stranger.pk] == stranger.card_id
    assert cards[paid.pk] == old.pk  # paid off: nothing more is debited from it
    for plan in (first, second):
        assert plan.events.filter(kind="card_replaced").count() == 1
    assert not third.events.filter(kind="card_replaced").exists()
    old.refresh_from_db()
    assert old.detached_at is not None  # no open plan uses it any more
    text, _html = email_content(OutgoingEmail.objects.get(key__startswith="cardsetup:"))
    assert first.public_id in text and second.public_id in text and third.public_id not in text


def test_a_challenge_card_is_approved_at_the_bank_then_used(shop, caplog):
    caplog.set_level(logging.DEBUG)
    payment = plan_for(shop, CAMILLE, when=BOUGHT)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    sign_in(client, payment.customer, when=NOW)
    url = f"/portal/plans/{payment.public_id}/card"
    card = {"card_number": CHALLENGE_CARD, "card_expiry": "12/35", "card_cvc": "123"}

    with time_machine.travel(NOW, tick=False):
        shown = client.get(url)
        sent = client.post(url, card)
        back = acs(client, sent["Location"], "approve")
        finished = client.get(back)
        messages = said(client, finished)

    page = shown.content.decode()
    assert shown.status_code == 200 and "CB •••• 0006" in page and payment.public_id in page
    assert sent.status_code == 303
    assert finished.status_code == 303
    assert finished["Location"] == f"/portal/plans/{payment.public_id}"
    assert messages == [
        "Your card CB •••• 0014 is saved: your next instalments will be debited from it."
    ]
    payment.refresh_from_db()
    assert payment.card.last4 == "0014"
    # The number and the CVC went to the processor only: not to the pages, tables or logs.
    assert CHALLENGE_CARD not in page
    for form in (CHALLENGE_CARD, CHALLENGE_CARD[6:12]):
        assert form not in all_database_text()
        assert form not in caplog.text


def test_a_denied_challenge_leaves_the_card_as_it_was(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT)
    old = payment.card
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    sign_in(client, payment.customer, when=NOW)
    setup, target = replace(payment, CHALLENGE_CARD)
    back = acs(client, target, "deny")

    with time_machine.travel(NOW, tick=False):
        response = client.get(back)

    assert response.status_code == 303 and response["Location"].endswith("/card")
    assert said(client, response)[0].startswith(
        "Your bank could not confirm that the card is yours"
    )
    setup.refresh_from_db()
    payment.refresh_from_db()
    old.refresh_from_db()
    assert setup.status == "failed" and payment.card_id == old.pk and old.detached_at is None
    with pytest.raises(ThreeDSFailed):
        complete(setup, back)


def test_a_card_expiring_before_the_last_instalment_is_refused_with_the_reason(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT)  # last instalment on February 2, 2027
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    sign_in(client, payment.customer, when=NOW)
    card = {"card_number": NEW_CARD, "card_expiry": "01/27", "card_cvc": "123"}

    with translation.override("en"), pytest.raises(CardRefused) as refused:
        replace(payment, NEW_CARD, exp_year=2026)  # valid through December 2026
    with time_machine.travel(NOW, tick=False):
        page = client.post(f"/portal/plans/{payment.public_id}/card", card)

    assert [r.code for r in refused.value.refusals] == ["expires_too_soon"]
    assert page.status_code == 402
    assert "This card expires before the last instalment is due." in page.content.decode()
    assert not CardSetup.objects.exists()
    payment.refresh_from_db()
    assert payment.card.last4 == "0006"
    assert payment.events.filter(kind="card_refused").count() == 2


def test_another_customers_plan_and_card_setup_are_not_found(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT)
    stranger = plan_for(shop, DOMINIQUE, when=BOUGHT)
    setup, _target = replace(payment, CHALLENGE_CARD)
    client = Client()
    sign_in(client, stranger.customer, when=NOW)

    with time_machine.travel(NOW, tick=False):
        page = client.get(f"/portal/plans/{payment.public_id}/card")
        sent = client.post(f"/portal/plans/{payment.public_id}/card", {"card_number": NEW_CARD})
        back = client.get(f"/portal/cards/{setup.public_id}/3ds?threeds={setup.three_ds_reference}")

    assert page.status_code == sent.status_code == back.status_code == 404
    with time_machine.travel(NOW, tick=False), pytest.raises(CardSetupNotFound):
        card_setup_complete(
            setup_id=setup.pk,
            customer=stranger.customer,
            reference=setup.three_ds_reference,
            now=NOW,
        )
    setup.refresh_from_db()
    assert setup.status == "started"


def saved_card(payment: Payment, number: str) -> Card:
    """Make ``number`` the plan's saved card (as if the customer had given it before)."""
    details = tokenise(number)
    card = Card.objects.create(
        customer=payment.customer,
        livemode=False,
        processor_token=details.token,
        bin=details.bin,
        last4=details.last4,
        brand=details.brand,
        funding=details.funding,
        issuer_country=details.issuer_country,
        exp_month=details.exp_month,
        exp_year=details.exp_year,
        created_at=BOUGHT,
    )
    Payment.objects.filter(pk=payment.pk).update(card=card)
    return card


def test_paying_early_with_a_challenge_card_pays_on_the_return_from_the_bank(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT)
    saved_card(payment, CHALLENGE_CARD)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    sign_in(client, payment.customer, when=NOW)
    url = f"/portal/plans/{payment.public_id}/pay?all=1"

    with time_machine.travel(NOW, tick=False):
        token, amount = page_token(client.get(url))
        sent = client.post(url, {"token": token, "amount": amount, "card": "saved"})
        again = client.post(url, {"token": token, "amount": amount, "card": "saved"})
        back = acs(client, sent["Location"], "approve")
        finished = client.get(back)
        messages = said(client, finished)
        replayed = client.get(back)

    assert sent.status_code == 303 and "/sandbox/acs/" in sent["Location"]
    assert again["Location"] == sent["Location"]  # the same bank page, nothing more
    assert messages == ["Payment of €300.00 received; your receipt is on its way."]
    assert said(client, replayed) == [
        "This step is already done: your plan shows where things stand."
    ]
    payment.refresh_from_db()
    assert payment.state == "paid"
    [charge] = Charge.objects.filter(kind="early_payment")
    assert charge.status == "succeeded" and charge.card_id == payment.card_id
    assert CardSetup.objects.get().status == "done"


def test_the_sandbox_refuses_every_charge_on_a_detached_token_but_still_refunds(shop):
    processor = SandboxProcessor()
    card = tokenise(NEW_CARD)
    authenticated = processor.three_ds_start(
        token=card.token, amount_cents=2_000, return_url="", livemode=False
    )
    charged = processor.charge(
        token=card.token,
        amount_cents=1_000,
        idempotency_key="before",
        livemode=False,
        three_ds_reference=authenticated.reference,
    )

    processor.detach(token=card.token, livemode=False)
    processor.detach(token=card.token, livemode=False)  # twice is fine
    customer = processor.charge(
        token=card.token,
        amount_cents=1_000,
        idempotency_key="after",
        livemode=False,
        three_ds_reference=authenticated.reference,
    )
    merchant = processor.charge(
        token=card.token,
        amount_cents=1_000,
        idempotency_key="after-mit",
        livemode=False,
        merchant_initiated=True,
    )
    refund = processor.refund(
        charge_reference=charged.reference,
        amount_cents=1_000,
        idempotency_key="refund",
        livemode=False,
    )

    assert charged.succeeded and refund.succeeded
    assert (customer.status, customer.decline_code) == ("declined", "token_detached")
    assert (merchant.status, merchant.decline_code) == ("declined", "token_detached")
    assert SandboxCard.objects.get(token=card.token).scenario == "detached:success"
