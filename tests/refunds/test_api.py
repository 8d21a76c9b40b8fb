"""``POST /v1/payments/{id}/refund`` (contract section 6): partial and complete refunds, the
dry run, every refusal (400 naming ``amount`` and its maximum, 404, 409, 422) and the schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
import yaml

from apps.common.money import to_cents
from apps.ledger.models import Posting
from apps.merchants.models import FeePlan
from apps.payments.models import Payment, SandboxCharge
from apps.payments.processor_sandbox import REFUND
from apps.payments.services.payments import payments_expire
from apps.refunds.models import CardRefund, Refund
from tests.payments.builders import payment_create_for
from tests.schedules.builders import accepted

pytestmark = pytest.mark.django_db

BOUGHT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LATER = datetime(2026, 3, 5, 10, 0, tzinfo=UTC)
REFUND_FIELDS = {
    "id",
    "created",
    "amount",
    "merchant_reference",
    "payment",
    "payment_refund_amount",
    "rebate_amount",
    "state",
}


@pytest.fixture(autouse=True)
def _refund_day():
    with time_machine.travel(LATER, tick=False):
        yield


def refund(client, payment_id: str, body: dict | None = None, **headers):
    return client.post(f"/v1/payments/{payment_id}/refund", body or {}, format="json", **headers)


def plan(body: dict) -> list[tuple[int, int, str]]:
    return [
        (item["purchase_amount"], item["original_purchase_amount"], item["state"])
        for item in body["payment_plan"]
    ]


def card_refunds_at_sandbox() -> int:
    return SandboxCharge.objects.filter(kind=REFUND).count()


@pytest.fixture
def payment(shop) -> Payment:
    """400 EUR in 4: the first 100 EUR charged, 300 EUR still owed."""
    return accepted(shop, when=BOUGHT, installments_count=4, amount=40_000)


@pytest.fixture
def fee_payment(shop) -> Payment:
    """400 EUR in 4 on a plan with a 2.32 % customer fee, paid with the first instalment."""
    FeePlan.objects.filter(merchant=shop.merchant, kind="general", installments_count=4).update(
        customer_fee_variable=232
    )
    return accepted(shop, when=BOUGHT, installments_count=4, amount=40_000)


# --- refunding ------------------------------------------------------------------------------


def test_a_partial_refund_answers_the_payment_reduced_from_the_last_instalment(shop, payment):
    response = refund(
        shop.client(),
        payment.public_id,
        {"amount": 15_000, "merchant_reference": "R-1", "comment": "Returned a shoe"},
    )

    assert response.status_code == 200, response.content
    body = response.json()
    [made] = body["refunds"]
    assert set(made) >= REFUND_FIELDS
    assert made["id"].startswith("refund_")
    assert made["amount"] == 15_000
    assert made["merchant_reference"] == "R-1"
    assert made["payment"] == payment.public_id
    assert made["rebate_amount"] == 15_000  # all of it cancelled what was still owed
    assert made["payment_refund_amount"] == 0  # nothing back to the card
    assert made["state"] == "succeeded"
    assert made["created"] == int(LATER.timestamp())
    assert plan(body) == [
        (10_000, 10_000, "paid"),
        (10_000, 10_000, "pending"),
        (5_000, 10_000, "pending"),
        (0, 10_000, "paid"),
    ]
    assert body["purchase_amount"] == 40_000
    assert body["amount_already_refunded"] == 15_000
    assert body["customer_fees_refunded"] == 0
    assert body["is_completely_refunded"] is False
    assert body["state"] == "in_progress"
    assert body["amount_left_to_pay"] == 15_000
    stored = Refund.objects.get()
    assert stored.public_id == made["id"]
    assert stored.origin == Refund.Origin.API
    assert stored.api_key is not None and stored.api_key.merchant_id == shop.merchant.pk
    assert stored.comment == "Returned a shoe"
    assert card_refunds_at_sandbox() == 0


def test_fetching_the_payment_afterwards_reads_the_same_refunds(shop, payment):
    refunded = refund(shop.client(), payment.public_id, {"amount": 12_345}).json()

    fetched = shop.client().get(f"/v1/payments/{payment.public_id}").json()

    assert fetched["refunds"] == refunded["refunds"]
    assert fetched["payment_plan"] == refunded["payment_plan"]
    assert fetched["amount_already_refunded"] == 12_345


def test_a_refund_without_an_amount_refunds_everything_left_and_the_payment_reads_paid(
    shop, payment
):
    refund(shop.client(), payment.public_id, {"amount": 15_000})

    response = refund(shop.client(), payment.public_id, {"merchant_reference": "R-2"})

    assert response.status_code == 200, response.content
    body = response.json()
    first, complete = body["refunds"]
    assert first["amount"] == 15_000
    assert complete["amount"] == 25_000
    assert complete["merchant_reference"] == "R-2"
    assert complete["rebate_amount"] == 15_000  # instalments 2 and 3 (what was left of it)
    assert complete["payment_refund_amount"] == 10_000  # the first instalment, by card
    assert complete["state"] == "succeeded"
    assert [purchase for purchase, _original, _state in plan(body)] == [10_000, 0, 0, 0]
    assert {state for _p, _o, state in plan(body)} == {"paid"}
    assert [original for _p, original, _state in plan(body)] == [10_000] * 4
    assert body["amount_already_refunded"] == 40_000
    assert body["is_completely_refunded"] is True
    assert body["state"] == "paid"
    assert body["amount_left_to_pay"] == 0
    [back] = SandboxCharge.objects.filter(kind=REFUND)
    assert back.amount_cents == 10_000 and back.status == "succeeded"


def test_a_complete_refund_gives_the_customer_fees_back(shop, fee_payment):
    assert to_cents(fee_payment.customer_fee) == 928

    body = refund(shop.client(), fee_payment.public_id).json()

    [complete] = body["refunds"]
    assert complete["amount"] == 40_000
    assert complete["rebate_amount"] == 30_000
    assert complete["payment_refund_amount"] == 10_000 + 928
    assert complete["customer_fees_refunded"] == 928
    assert body["customer_fees_refunded"] == 928
    assert body["customer_fee"] == 928  # what the plan cost, kept as it was
    assert body["is_completely_refunded"] is True
    assert body["state"] == "paid"
    [back] = SandboxCharge.objects.filter(kind=REFUND)
    assert back.amount_cents == 10_928


def test_a_partial_refund_keeps_the_customer_fees(shop, fee_payment):
    body = refund(shop.client(), fee_payment.public_id, {"amount": 39_000}).json()

    [made] = body["refunds"]
    assert made["rebate_amount"] == 30_000
    assert made["payment_refund_amount"] == 9_000
    assert body["customer_fees_refunded"] == 0
    assert body["is_completely_refunded"] is False
    assert body["state"] == "paid"  # nothing left due: the rest is the merchant's to refund
    assert SandboxCharge.objects.get(kind=REFUND).amount_cents == 9_000


def test_the_last_cent_is_a_complete_refund_and_gives_the_fees_back(shop, fee_payment):
    refund(shop.client(), fee_payment.public_id, {"amount": 39_999})

    body = refund(shop.client(), fee_payment.public_id, {"amount": 1}).json()

    last = body["refunds"][-1]
    assert last["amount"] == 1
    assert last["payment_refund_amount"] == 1 + 928
    assert body["customer_fees_refunded"] == 928
    assert body["is_completely_refunded"] is True
    backs = SandboxCharge.objects.filter(kind=REFUND, status="succeeded")
    assert sum(row.amount_cents for row in backs) == 10_000 + 928  # all the card paid


# --- dry run --------------------------------------------------------------------------------


def test_a_dry_run_answers_the_would_be_refund_and_changes_nothing(shop, payment):
    postings = Posting.objects.count()

    response = refund(
        shop.client(), payment.public_id, {"amount": 15_000, "merchant_reference": "R-1",
                                          "dry_run": True}
    )  # fmt: skip

    assert response.status_code == 200, response.content
    body = response.json()
    [would_be] = body["refunds"]
    assert set(would_be) >= REFUND_FIELDS
    assert would_be["id"] is None
    assert would_be["amount"] == 15_000
    assert would_be["merchant_reference"] == "R-1"
    assert would_be["rebate_amount"] == 15_000
    assert would_be["payment"] == payment.public_id
    assert plan(body)[2:] == [(5_000, 10_000, "pending"), (0, 10_000, "paid")]
    assert body["amount_already_refunded"] == 15_000
    assert body["dry_run"] is True
    assert not Refund.objects.exists()
    assert Posting.objects.count() == postings
    assert card_refunds_at_sandbox() == 0
    payment.refresh_from_db()
    assert to_cents(payment.amount_refunded) == 0
    fetched = shop.client().get(f"/v1/payments/{payment.public_id}").json()
    assert fetched["refunds"] == []
    assert [item["purchase_amount"] for item in fetched["payment_plan"]] == [10_000] * 4


def test_a_complete_dry_run_shows_the_card_refund_and_the_fees_without_calling_the_card(
    shop, fee_payment
):
    with time_machine.travel(LATER - timedelta(hours=1), tick=False):
        refund(shop.client(), fee_payment.public_id, {"amount": 5_000})
    postings = Posting.objects.count()

    body = refund(shop.client(), fee_payment.public_id, {"dry_run": True}).json()

    made, would_be = body["refunds"]
    assert made["id"].startswith("refund_")
    assert would_be["id"] is None
    assert would_be["amount"] == 35_000
    assert would_be["payment_refund_amount"] == 10_000 + 928
    assert would_be["state"] == "pending"  # it would go back to the card
    assert body["state"] == "paid"
    assert body["is_completely_refunded"] is True
    assert body["customer_fees_refunded"] == 928
    assert Refund.objects.count() == 1
    assert not CardRefund.objects.exists()
    assert Posting.objects.count() == postings
    assert card_refunds_at_sandbox() == 0


def test_a_dry_run_is_refused_like_the_refund(shop, payment):
    response = refund(shop.client(), payment.public_id, {"amount": 40_001, "dry_run": True})

    assert response.status_code == 400
    assert response.json()["errors"][0]["maximum"] == 40_000


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [0, -5, 12.5, 100.0, "100", True, False, None, 40_001, [100], {"cents": 100}],
    ids=repr,
)
def test_a_bad_amount_is_a_400_naming_the_field_and_the_maximum(shop, payment, amount):
    response = refund(shop.client(), payment.public_id, {"amount": amount})

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error_code"] == "validation_error"
    assert body["message"]
    assert body["errors"][0]["field"] == "amount"
    assert body["errors"][0]["maximum"] == 40_000
    assert not Refund.objects.exists()


def test_more_than_what_is_left_names_what_is_left(shop, payment):
    refund(shop.client(), payment.public_id, {"amount": 30_000})

    response = refund(shop.client(), payment.public_id, {"amount": 10_001})

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == "amount"
    assert error["maximum"] == 10_000
    assert "10000" in error["message"]
    assert Refund.objects.count() == 1


def test_a_completely_refunded_payment_has_nothing_left_to_refund(shop, payment):
    refund(shop.client(), payment.public_id)

    again = refund(shop.client(), payment.public_id)
    more = refund(shop.client(), payment.public_id, {"amount": 1})

    assert again.status_code == more.status_code == 400
    assert again.json()["errors"][0]["maximum"] == 0
    assert more.json()["errors"][0]["field"] == "amount"
    assert Refund.objects.count() == 1


def test_an_unknown_payment_is_a_404(shop):
    response = refund(shop.client(), "payment_" + "0" * 34, {"amount": 100})

    assert response.status_code == 404
    assert response.json()["object_type"] == "payment"


def test_another_merchants_payment_is_a_404_and_stays_untouched(shop, other_shop, payment):
    response = refund(other_shop.client(), payment.public_id, {"amount": 100})

    assert response.status_code == 404
    assert response.json()["error_code"] == "not_found"
    assert not Refund.objects.exists()


def test_the_live_key_never_reaches_a_test_payment(shop, payment):
    response = refund(shop.client(live=True), payment.public_id, {"amount": 100})

    assert response.status_code == 404
    assert not Refund.objects.exists()


def test_without_a_key_it_is_a_401(anonymous, payment):
    response = refund(anonymous, payment.public_id, {"amount": 100})

    assert response.status_code == 401
    assert not Refund.objects.exists()


def test_an_unpaid_payment_cannot_be_refunded(shop):
    created = payment_create_for(shop)

    response = refund(shop.client(), created.public_id, {"amount": 100})

    assert response.status_code == 409
    assert response.json()["error_code"] == "invalid_payment_state"
    assert "has not been paid" in response.json()["message"]
    assert not Refund.objects.exists()


def test_an_expired_payment_cannot_be_refunded(shop):
    created = payment_create_for(shop, expires_after=5)
    payments_expire(now=LATER + timedelta(minutes=6))

    response = refund(shop.client(), created.public_id)

    assert response.status_code == 409
    assert response.json()["error_code"] == "invalid_payment_state"
    assert "expired" in response.json()["message"]


def test_a_cancelled_payment_cannot_be_refunded(shop):
    created = payment_create_for(shop)
    assert shop.client().put(f"/v1/payments/{created.public_id}/cancel").status_code == 200

    response = refund(shop.client(), created.public_id, {"amount": 100})

    assert response.status_code == 409
    assert response.json()["error_code"] == "invalid_payment_state"
    assert "cancelled" in response.json()["message"]


# --- idempotency ----------------------------------------------------------------------------


def test_the_same_idempotency_key_twice_refunds_once_and_answers_the_same(shop, payment):
    client = shop.client()

    first = refund(client, payment.public_id, {"amount": 5_000}, HTTP_IDEMPOTENCY_KEY="rf-1")
    again = refund(client, payment.public_id, {"amount": 5_000}, HTTP_IDEMPOTENCY_KEY="rf-1")

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Refund.objects.count() == 1
    payment.refresh_from_db()
    assert to_cents(payment.amount_refunded) == 5_000


def test_the_same_idempotency_key_with_another_body_is_a_422(shop, payment):
    client = shop.client()
    refund(client, payment.public_id, {"amount": 5_000}, HTTP_IDEMPOTENCY_KEY="rf-1")

    other = refund(client, payment.public_id, {"amount": 6_000}, HTTP_IDEMPOTENCY_KEY="rf-1")

    assert other.status_code == 422
    assert other.json()["error_code"] == "idempotency_key_reused"
    assert Refund.objects.count() == 1


def test_another_idempotency_key_makes_another_refund(shop, payment):
    client = shop.client()

    refund(client, payment.public_id, {"amount": 5_000}, HTTP_IDEMPOTENCY_KEY="rf-1")
    refund(client, payment.public_id, {"amount": 5_000}, HTTP_IDEMPOTENCY_KEY="rf-2")

    assert Refund.objects.count() == 2


# --- schema ---------------------------------------------------------------------------------


def test_the_schema_documents_the_refund_operation(client):
    response = client.get("/v1/schema")

    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    operation = schema["paths"]["/v1/payments/{payment_id}/refund"]["post"]
    assert operation["operationId"] == "payments_refund"
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    fields = schema["components"]["schemas"][body.rsplit("/", 1)[1]]["properties"]
    assert {"amount", "merchant_reference", "comment", "dry_run"} <= set(fields)
    assert "200" in operation["responses"]
