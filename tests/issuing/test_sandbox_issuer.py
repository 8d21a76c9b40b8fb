"""The sandbox issuer as an outside party: its cards, its network checks, its advices'
delivery, and the card number and CVC kept out of Tranche's tables and logs."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.issuing import issuer_sandbox
from apps.issuing.issuer import CardSecrets, IssuerError
from apps.issuing.issuer_sandbox import SandboxIssuer
from apps.issuing.models import (
    CardAuthorisation,
    IssuerMessage,
    SandboxIssuedCard,
    SandboxIssuerAuthorisation,
    SandboxIssuerOutbox,
)
from apps.issuing.services import authorisations as auth
from apps.issuing.services.cards import card_reveal
from apps.payments.card_rules import luhn_valid
from tests.issuing.helpers import card_details, card_for
from tests.support import all_database_text

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def card(clock):
    return card_for(when=NOW)


def buy(card, amount: int = 50_00, **overrides) -> issuer_sandbox.PurchaseOutcome:
    details = {**card_details(card), **overrides}
    return issuer_sandbox.purchase(**details, amount_cents=amount, merchant_name="Fnac")


# --- the cards ---------------------------------------------------------------------------------


def test_derived_numbers_are_16_luhn_valid_digits_unique_per_card(clock):
    issuer = SandboxIssuer()
    numbers = set()
    for index in range(25):
        issued = issuer.card_issue(
            cardholder_name="Léa Bernard", livemode=False, idempotency_key=f"key-{index}"
        )
        secrets_ = issuer.card_reveal(token=issued.token)
        assert len(secrets_.number) == 16
        assert secrets_.number.isdigit()
        assert secrets_.number.startswith(issuer_sandbox.BIN)
        assert luhn_valid(secrets_.number)
        assert secrets_.number[-4:] == issued.last4
        assert len(secrets_.cvc) == 3 and secrets_.cvc.isdigit()
        assert (secrets_.exp_month, secrets_.exp_year) == (11, 2029)
        numbers.add(secrets_.number)
    assert len(numbers) == 25


def test_the_same_idempotency_key_issues_one_card(clock):
    issuer = SandboxIssuer()

    first = issuer.card_issue(cardholder_name="A", livemode=False, idempotency_key="same")
    again = issuer.card_issue(cardholder_name="A", livemode=False, idempotency_key="same")

    assert first == again
    assert SandboxIssuedCard.objects.count() == 1


def test_secrets_never_show_the_number_or_cvc_in_their_repr():
    secrets_ = CardSecrets(number="5355090012345678", exp_month=1, exp_year=2030, cvc="987")

    assert "5355090012345678" not in repr(secrets_)
    assert "987" not in str(secrets_)
    assert secrets_.number_groups == "5355 0900 1234 5678"


def test_a_closed_card_cannot_be_revealed_or_used(card):
    SandboxIssuer().card_close(token=card.issuer_token)
    SandboxIssuer().card_unfreeze(token=card.issuer_token)  # closed stays closed

    with pytest.raises(IssuerError):
        SandboxIssuer().card_reveal(token=card.issuer_token)
    outcome = buy(card)
    assert (outcome.status, outcome.decline_code) == ("declined", "card_closed")
    assert not CardAuthorisation.objects.exists()


# --- the network's checks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"cvc": "000"}, "incorrect_cvc"),
        ({"cvc": ""}, "incorrect_cvc"),
        ({"exp_month": 1}, "incorrect_card_details"),
        ({"exp_year": 2031}, "incorrect_card_details"),
        ({"number": "4970100000000006"}, "incorrect_card_details"),
    ],
)
def test_wrong_card_details_are_declined_at_the_network_without_asking_tranche(
    card, overrides, code
):
    if overrides.get("cvc") == "000" and card_details(card)["cvc"] == "000":
        overrides = {"cvc": "001"}

    outcome = buy(card, **overrides)

    assert (outcome.status, outcome.decline_code) == ("declined", code)
    assert not IssuerMessage.objects.exists()
    assert not CardAuthorisation.objects.exists()


def test_an_approved_purchase_is_cleared_by_the_next_delivery(card):
    outcome = buy(card, 80_00)
    assert outcome.status == "approved"

    assert issuer_sandbox.deliver_due() == 1

    row = CardAuthorisation.objects.get(issuer_reference=outcome.reference)
    assert row.cleared_at is not None
    network = SandboxIssuerAuthorisation.objects.get(reference=outcome.reference)
    assert network.cleared_at is not None
    assert issuer_sandbox.deliver_due() == 0


def test_a_shop_refund_and_a_cancellation_reach_tranche(card):
    kept = buy(card, 90_00)
    cancelled = buy(card, 60_00)

    issuer_sandbox.reverse(reference=cancelled.reference)
    issuer_sandbox.refund(reference=kept.reference, amount_cents=30_00)

    kept_row = CardAuthorisation.objects.get(issuer_reference=kept.reference)
    assert kept_row.refunded_amount.amount == 30
    cancelled_row = CardAuthorisation.objects.get(issuer_reference=cancelled.reference)
    assert cancelled_row.state == "reversed"
    # The cancelled purchase is never cleared.
    issuer_sandbox.deliver_due()
    cancelled_row.refresh_from_db()
    assert cancelled_row.cleared_at is None
    with pytest.raises(IssuerError):
        issuer_sandbox.refund(reference=kept.reference, amount_cents=60_01)


def test_a_declined_purchase_is_declined_at_the_shop_with_tranches_code(card):
    outcome = buy(card, 400_00)

    assert (outcome.status, outcome.decline_code) == ("declined", "over_limit")
    assert not SandboxIssuerOutbox.objects.exists()


# --- delivery with backoff ---------------------------------------------------------------------


def test_an_advice_tranche_answers_409_is_retried_with_backoff_until_delivered(card, clock):
    request = auth.PurchaseRequest(
        reference="iauth_slow",
        card_token=card.issuer_token,
        amount_cents=50_00,
        currency="EUR",
        merchant_name="Fnac",
        merchant_category="5311",
        merchant_country="FR",
        livemode=False,
    )
    row, charge = auth._open(request, now=NOW)
    advice = issuer_sandbox._queue(
        "transaction.cleared", False, {"authorization": "iauth_slow", "amount": 50_00}
    )

    assert issuer_sandbox.deliver_due() == 0
    advice.refresh_from_db()
    assert (advice.attempts, advice.last_error) == (1, "HTTP 409")
    assert advice.due_at == NOW + timedelta(seconds=30)
    assert issuer_sandbox.deliver_due() == 0  # not due yet: not sent
    advice.refresh_from_db()
    assert advice.attempts == 1

    clock.move_to(NOW + timedelta(seconds=31))
    assert issuer_sandbox.deliver_due() == 0
    advice.refresh_from_db()
    assert advice.attempts == 2
    assert advice.due_at == NOW + timedelta(seconds=31) + timedelta(minutes=2)

    auth._finish(
        authorisation_id=row.pk, charge_id=charge.pk, result=auth._charge_execute(charge), now=NOW
    )
    clock.move_to(NOW + timedelta(minutes=3))
    assert issuer_sandbox.deliver_due() == 1
    advice.refresh_from_db()
    assert advice.delivered_at is not None and advice.last_error == ""
    row.refresh_from_db()
    assert row.cleared_at is not None


# --- secrets stay at the issuer ----------------------------------------------------------------


def test_the_card_number_and_cvc_appear_in_no_table_and_no_log(card, caplog):
    caplog.set_level(logging.DEBUG)
    details = card_details(card)

    shown = card_reveal(card=card, now=NOW)
    approved = buy(card, 60_00)
    buy(card, 60_13)  # timed out at the network: reversed
    buy(card, 60_00, cvc="999" if details["cvc"] != "999" else "998")
    issuer_sandbox.refund(reference=approved.reference, amount_cents=10_00)
    issuer_sandbox.deliver_due()

    assert shown.number == details["number"]
    assert IssuerMessage.objects.count() >= 4
    text = all_database_text()
    assert details["number"] not in text
    assert details["number"][-12:] not in text  # not even without its BIN
    assert '"cvc"' not in text
    assert f'"{details["cvc"]}"' not in text
    bodies = "\n".join(json.dumps(m.body) for m in IssuerMessage.objects.all())
    assert details["number"] not in bodies
    assert not re.search(rf"\b{details['cvc']}\b", bodies)
    messages = "\n".join(record.getMessage() for record in caplog.records)
    assert messages  # the flow logged something: the check below is not vacuous
    assert details["number"] not in messages
    assert details["number"][-12:] not in messages
    assert not re.search(rf"\b{details['cvc']}\b", messages)


@pytest.mark.django_db(transaction=True)
def test_the_network_reaches_tranche_over_http_when_a_webhook_url_is_set(live_server, settings):
    settings.ISSUING_SANDBOX_WEBHOOK_URL = f"{live_server.url}/issuing/webhooks"
    card = card_for(when=datetime.now(UTC))

    approved = buy(card, 70_00)
    declined = buy(card, 5_00)
    delivered = issuer_sandbox.deliver_due()

    assert approved.status == "approved"
    assert (declined.status, declined.decline_code) == ("declined", "amount_too_small")
    assert delivered == 1
    row = CardAuthorisation.objects.get(issuer_reference=approved.reference)
    assert row.state == "approved" and row.cleared_at is not None
    assert IssuerMessage.objects.filter(kind="authorization.request").count() == 2
