"""The issuer's signed messages: refused unsigned, stale or malformed; kept and answered once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from apps.issuing.models import CardAuthorisation, IssuerMessage
from apps.issuing.webhooks import SIGNATURE_HEADER, receive, signature_for
from apps.payments.models import Payment
from tests.issuing.helpers import card_for, message, purchase_request

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
URL = "/issuing/webhooks"


@pytest.fixture
def card():
    with time_machine.travel(NOW, tick=False):
        yield card_for(when=NOW)


def raw(body: dict) -> bytes:
    return json.dumps(body).encode()


def signed(data: bytes, *, at: datetime = NOW, secret: str | None = None) -> str:
    return signature_for(data, timestamp=int(at.timestamp()), secret=secret)


def post(client: Client, data: bytes, signature: str | None):
    headers = {} if signature is None else {SIGNATURE_HEADER: signature}
    return client.post(URL, data=data, content_type="application/json", headers=headers)


def test_the_webhook_url_is_the_contract():
    assert reverse("issuing:webhook") == URL


def test_a_signed_purchase_over_http_is_decided_and_answered(card):
    body = raw(purchase_request(card, 80_00, reference="iauth_http"))

    response = post(Client(), body, signed(body))

    assert response.status_code == 200
    assert response.json() == {
        "approved": True,
        "decline_code": None,
        "authorization": "iauth_http",
        "amount": 80_00,
    }
    assert CardAuthorisation.objects.get(issuer_reference="iauth_http").state == "approved"


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "garbage",
        "t=notanumber,v1=00",
        "v1=abc",
    ],
)
def test_a_message_without_a_valid_signature_is_401_and_not_kept(card, signature):
    body = raw(purchase_request(card, 80_00))

    response = post(Client(), body, signature)

    assert response.status_code == 401
    assert response.json() == {"error": "invalid_signature"}
    assert not IssuerMessage.objects.exists()
    assert not CardAuthorisation.objects.exists()


def test_a_message_signed_with_another_secret_is_401(card):
    body = raw(purchase_request(card, 80_00))

    assert post(Client(), body, signed(body, secret="whsec_attacker")).status_code == 401


def test_a_signature_of_another_body_is_401(card):
    body = raw(purchase_request(card, 80_00))
    tampered = body.replace(b"8000", b"800")

    assert post(Client(), tampered, signed(body)).status_code == 401


@pytest.mark.parametrize("age", [timedelta(minutes=6), -timedelta(minutes=6)])
def test_a_stale_or_future_timestamp_is_401(card, age):
    body = raw(purchase_request(card, 80_00))

    with time_machine.travel(NOW, tick=False):
        status, answer = receive(body, signed(body, at=NOW - age), now=NOW)

    assert (status, answer) == (401, {"error": "invalid_signature"})


def test_a_recent_timestamp_within_the_tolerance_is_accepted(card):
    body = raw(purchase_request(card, 80_00))

    with time_machine.travel(NOW, tick=False):
        status, _ = receive(body, signed(body, at=NOW - timedelta(minutes=4)), now=NOW)

    assert status == 200


def test_an_oversized_body_is_refused(card):
    body = raw({**purchase_request(card, 80_00), "padding": "x" * 70_000})

    assert post(Client(), body, signed(body)).status_code == 401


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "not JSON"),
        (b"[]", "data object"),
        (raw({"id": "m1", "type": "authorization.request", "livemode": False}), "data object"),
        (raw(message("card.stolen", {"authorization": "a"})), "Unknown type"),
        (
            raw({**message("transaction.cleared", {"authorization": "a", "amount": 1}), "id": ""}),
            "id must be",
        ),
        (
            raw(
                {
                    **message("transaction.cleared", {"authorization": "a", "amount": 1}),
                    "livemode": "no",
                }
            ),
            "livemode",
        ),
        (raw(message("transaction.cleared", {"amount": 100})), "data.authorization"),
        (raw(message("transaction.cleared", {"authorization": "a", "amount": -1})), "amount"),
        (raw(message("transaction.cleared", {"authorization": "a", "amount": 1.5})), "amount"),
        (raw(message("transaction.cleared", {"authorization": "a", "amount": True})), "amount"),
        (raw(message("authorization.reversal", {"authorization": "a", "amount": 1})), "data.card"),
        (raw(message("transaction.refund", {"authorization": "a", "amount": 1})), "data.refund"),
        (
            raw(message("authorization.request", {"authorization": "a", "amount": 1, "card": "c"})),
            "data.currency",
        ),
        (
            raw(
                message(
                    "authorization.request",
                    {"authorization": "a", "amount": 1, "card": "c", "currency": "EUR"},
                )
            ),
            "data.merchant",
        ),
    ],
)
def test_a_malformed_message_is_400_with_its_reason(db, body, fragment):
    response = post(Client(), body, signed(body, at=datetime.now(UTC)))

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_message"
    assert fragment in response.json()["message"]
    assert not IssuerMessage.objects.exists()


def test_each_message_is_kept_with_its_answer_and_a_replay_gets_the_same_answer(card):
    body = raw(purchase_request(card, 80_00, message_id="imsg_kept"))

    first = post(Client(), body, signed(body))
    # The same message later (a new signature): the kept answer, no second decision.
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        again = post(Client(), body, signed(body, at=NOW + timedelta(minutes=1)))

    assert again.status_code == first.status_code == 200
    assert again.json() == first.json()
    kept = IssuerMessage.objects.get(message_id="imsg_kept")
    assert kept.kind == "authorization.request"
    assert kept.status_code == 200
    assert kept.response == first.json()
    assert kept.authorisation.issuer_reference == first.json()["authorization"]
    assert kept.answered_at is not None
    assert Payment.objects.count() == 1


def test_a_409_is_not_kept_so_the_retry_is_answered(card):
    early = raw(message("transaction.cleared", {"authorization": "iauth_x", "amount": 80_00}))

    assert post(Client(), early, signed(early)).status_code == 409
    kept = IssuerMessage.objects.get()
    assert kept.answered_at is None and kept.status_code is None


def test_the_webhook_only_takes_post(db):
    assert Client().get(URL).status_code == 405
