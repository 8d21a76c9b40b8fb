"""A purchase with the Tranche card, decided as the issuer asks: the rules, the funding
card's charge, clearings and the shop's refunds, and the programme merchant's ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.common.money import to_cents
from apps.issuing import rules
from apps.issuing.models import CardAuthorisation, VirtualCard
from apps.issuing.services.authorisations import authorisations_settle_pending
from apps.issuing.services.cards import card_freeze, card_replace
from apps.issuing.services.programme import PROGRAMME_MERCHANT_ID, programme_merchant
from apps.ledger.models import Posting
from apps.ledger.selectors import merchant_balance
from apps.merchants.models import Merchant
from apps.payments.models import Card, Charge, Payment, PaymentState, SandboxCharge
from apps.payments.services.charges import charges_settle_in_doubt
from apps.refunds.models import Refund
from tests.issuing.helpers import (
    DECLINING_CARD,
    TIMEOUT_CARD,
    card_for,
    clearing,
    decide,
    instalment_amounts,
    purchase_request,
    send,
    shop_refund,
)

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def card(clock) -> VirtualCard:
    return card_for(when=NOW)


def programme_balance() -> int:
    merchant = Merchant.objects.get(public_id=PROGRAMME_MERCHANT_ID)
    return merchant_balance(
        merchant_id=merchant.pk, livemode=False, settlement_delay_days=0
    ).total_cents


# --- approved -----------------------------------------------------------------------------


def test_an_approved_purchase_is_a_3x_plan_of_the_programme_with_its_first_third_paid(card):
    status, answer, row = decide(card, 150_00, shop="Fnac Paris", category="5732")

    assert status == 200
    assert answer["approved"] is True
    assert answer["decline_code"] is None
    assert row.state == CardAuthorisation.State.APPROVED
    payment = row.payment
    assert payment.merchant.public_id == PROGRAMME_MERCHANT_ID
    assert payment.origin == Payment.Origin.CARD
    assert payment.state == PaymentState.IN_PROGRESS
    assert payment.customer_id == card.customer_id
    assert to_cents(payment.customer_fee) == 0
    assert instalment_amounts(payment) == [
        ("paid", 50_00),
        ("pending", 50_00),
        ("pending", 50_00),
    ]
    assert payment.custom_data["card_purchase"] == {
        "shop": "Fnac Paris",
        "category": "5732",
        "country": "FR",
        "issuer_reference": row.issuer_reference,
        "card": card.public_id,
    }
    charge = Charge.objects.get(payment=payment)
    assert charge.card_id == card.funding_card_id
    assert charge.status == Charge.Status.SUCCEEDED
    assert SandboxCharge.objects.get(idempotency_key=charge.idempotency_key).amount_cents == 50_00


def test_the_programme_merchant_is_never_listed_and_is_created_once(card):
    decide(card, 20_00)
    decide(card, 30_00)

    merchants = Merchant.objects.filter(public_id=PROGRAMME_MERCHANT_ID)
    assert merchants.count() == 1
    assert merchants.get().listed_in_directory is False
    assert programme_merchant(now=NOW).pk == merchants.get().pk


# --- declined by the rules ----------------------------------------------------------------


def assert_declined(result, code: str) -> CardAuthorisation:
    status, answer, row = result
    assert status == 200
    assert answer["approved"] is False
    assert answer["decline_code"] == code
    assert row.state == CardAuthorisation.State.DECLINED
    assert row.decline_code == code
    assert row.payment_id is None
    return row


def test_a_frozen_card_is_declined(card):
    card_freeze(card=card, now=NOW)

    assert_declined(decide(card, 50_00), rules.CARD_FROZEN)
    assert not Payment.objects.filter(origin=Payment.Origin.CARD).exists()


def test_a_replaced_card_is_declined_and_the_new_one_works(card):
    new = card_replace(card=card, now=NOW)

    assert_declined(decide(card, 50_00), rules.CARD_INACTIVE)
    assert decide(new, 50_00)[1]["approved"] is True


def test_an_unknown_card_is_declined(card):
    card.issuer_token = "ic_test_nobody"

    row = assert_declined(decide(card, 50_00), rules.CARD_UNKNOWN)
    assert row.card_id is None


@pytest.mark.parametrize(
    ("kwargs", "amount", "code"),
    [
        ({"category": "7995"}, 50_00, rules.CATEGORY_BLOCKED),
        ({"category": "6011"}, 50_00, rules.CATEGORY_BLOCKED),
        ({"currency": "USD"}, 50_00, rules.CURRENCY_NOT_SUPPORTED),
        ({}, 9_99, rules.AMOUNT_TOO_SMALL),
        ({}, 300_01, rules.OVER_LIMIT),
    ],
)
def test_purchases_outside_the_rules_are_declined(card, kwargs, amount, code):
    assert_declined(decide(card, amount, **kwargs), code)


def test_the_limit_is_300_euros_for_a_new_customer(card):
    assert to_cents(card.limit) == 300_00

    assert decide(card, 300_00)[1]["approved"] is True


def test_what_earlier_card_plans_still_owe_counts_against_the_limit(card):
    assert decide(card, 240_00)[1]["approved"] is True  # 160 € still owed

    assert_declined(decide(card, 140_01), rules.OVER_LIMIT)
    assert decide(card, 140_00)[1]["approved"] is True  # about 253 € owed now
    assert_declined(decide(card, 50_00), rules.OVER_LIMIT)
    assert decide(card, 45_00)[1]["approved"] is True


def test_a_sixth_purchase_within_24_hours_is_declined(card, clock):
    for _ in range(5):
        assert decide(card, 10_00)[1]["approved"] is True

    assert_declined(decide(card, 10_00), rules.TOO_MANY_PURCHASES)
    clock.shift(timedelta(hours=24, minutes=1))
    assert decide(card, 10_00)[1]["approved"] is True


def test_a_customer_with_a_late_plan_is_declined(card):
    decide(card, 60_00)
    Payment.objects.filter(customer=card.customer).update(state=PaymentState.LATE_DUNNING)

    assert_declined(decide(card, 20_00), rules.CUSTOMER_LATE)


def test_a_detached_funding_card_is_declined(card):
    Card.objects.filter(pk=card.funding_card_id).update(detached_at=NOW)

    assert_declined(decide(card, 20_00), rules.FUNDING_CARD_UNUSABLE)


def test_a_funding_card_expiring_before_the_last_instalment_is_declined(card):
    # Valid through the end of December 2026: the last instalment falls in January 2027.
    Card.objects.filter(pk=card.funding_card_id).update(exp_month=12, exp_year=2026)

    assert_declined(decide(card, 20_00), rules.FUNDING_CARD_UNUSABLE)


# --- the funding card's charge ------------------------------------------------------------


def test_a_declined_funding_card_declines_the_purchase_and_stops_its_plan(clock):
    card = card_for(when=NOW, number=DECLINING_CARD)

    _status, answer, row = decide(card, 90_00)

    assert answer == {
        "approved": False,
        "decline_code": rules.FUNDING_CARD_DECLINED,
        "authorization": row.issuer_reference,
        "amount": 90_00,
    }
    assert row.state == CardAuthorisation.State.DECLINED
    assert row.payment.state == PaymentState.STOPPED
    assert Charge.objects.get(payment=row.payment).status == Charge.Status.FAILED
    assert not Posting.objects.filter(reference=row.payment.public_id).exists()
    # A declined purchase owes nothing: the limit is whole again.
    assert_declined(decide(card, 300_01), rules.OVER_LIMIT)


def test_a_processor_timeout_declines_in_doubt_and_the_sweep_refunds_the_orphan(clock):
    card = card_for(when=NOW, number=TIMEOUT_CARD)

    _status, answer, row = decide(card, 90_00)

    assert answer["approved"] is False
    assert answer["decline_code"] == rules.FUNDING_CHARGE_IN_DOUBT
    payment = row.payment
    assert payment.state == PaymentState.STOPPED
    charge = Charge.objects.get(payment=payment)
    assert charge.status == Charge.Status.UNKNOWN
    # The money did move at the processor; the sweep finds it and gives it back.
    clock.shift(timedelta(minutes=5))
    charges_settle_in_doubt(now=NOW + timedelta(minutes=5))
    charges_settle_in_doubt(now=NOW + timedelta(minutes=6))  # the refund's answer was lost
    charge.refresh_from_db()
    assert charge.status == Charge.Status.SUCCEEDED
    assert charge.failure_code == "orphaned_refunded"
    refunds = SandboxCharge.objects.filter(
        kind="refund", charge_reference=charge.processor_reference
    )
    assert [(r.status, r.amount_cents) for r in refunds] == [("succeeded", 30_00)]
    row.refresh_from_db()
    assert row.state == CardAuthorisation.State.DECLINED
    assert not Posting.objects.filter(reference=payment.public_id).exists()


# --- the purchase's life after the decision -------------------------------------------


def test_a_clearing_at_the_authorised_amount_changes_nothing(card):
    _, _, row = decide(card, 120_00)

    status, answer = send(clearing(card, row.issuer_reference, 120_00))

    assert (status, answer["state"]) == (200, "approved")
    row.refresh_from_db()
    assert row.cleared_at == NOW
    assert to_cents(row.cleared_amount) == 120_00
    assert not Refund.objects.exists()


def test_a_clearing_at_a_smaller_amount_refunds_the_difference(card):
    _, _, row = decide(card, 120_00)

    send(clearing(card, row.issuer_reference, 90_00))
    send(clearing(card, row.issuer_reference, 90_00))  # a new message id, the same advice

    refund = Refund.objects.get(payment=row.payment)
    assert to_cents(refund.amount) == 30_00
    assert refund.origin == Refund.Origin.CARD
    row.refresh_from_db()
    assert to_cents(row.refunded_amount) == 30_00
    # The plan is reduced from its last instalment.
    assert sum(cents for _, cents in instalment_amounts(row.payment)) == 90_00


def test_shop_refunds_reduce_the_plan_partly_then_entirely(card):
    _, _, row = decide(card, 150_00)

    first = shop_refund(card, row.issuer_reference, 40_00, refund="irefund_a")
    assert send(first)[0] == 200
    assert send(first) == send(first)  # the same message: its kept answer
    again = shop_refund(card, row.issuer_reference, 40_00, refund="irefund_a")
    assert send(again)[0] == 200  # the same refund, a new message id

    payment = Payment.objects.get(pk=row.payment_id)
    assert to_cents(payment.amount_refunded) == 40_00
    assert sum(cents for _, cents in instalment_amounts(payment)) == 110_00

    send(shop_refund(card, row.issuer_reference, 110_00, refund="irefund_b"))

    payment.refresh_from_db()
    assert to_cents(payment.amount_refunded) == 150_00
    assert Refund.objects.filter(payment=payment).count() == 2
    row.refresh_from_db()
    assert to_cents(row.refunded_amount) == 150_00
    # 50 € were charged; 50 € go back to the funding card, the rest is cancelled.
    back = SandboxCharge.objects.filter(kind="refund", status="succeeded")
    assert sum(r.amount_cents for r in back) == 50_00


def test_a_refund_above_what_is_left_is_refused_with_its_reason(card):
    _, _, row = decide(card, 50_00)

    status, answer = send(shop_refund(card, row.issuer_reference, 60_00))

    # Received (a 4xx would be retried forever), refused with its reason, nothing refunded.
    assert status == 200
    assert answer["refused"] == "validation_error"
    assert not Refund.objects.exists()


def test_a_refund_of_a_declined_purchase_is_refused(card):
    _, _, row = decide(card, 9_00)

    status, answer = send(shop_refund(card, row.issuer_reference, 9_00))

    assert status == 200
    assert answer["refused"] == "purchase_not_approved"


def test_the_programme_balance_is_purchases_less_interchange_less_refunds(card):
    _, _, a = decide(card, 100_00)
    _, _, b = decide(card, 50_00)
    decide(card, 9_00)  # declined: nothing

    send(shop_refund(card, b.issuer_reference, 20_00))
    send(clearing(card, a.issuer_reference, 80_00))

    interchange = (100_00 * 30 + 50_00 * 30) // 10_000
    assert programme_balance() == 150_00 - interchange - 20_00 - 20_00


# --- the sweep of purchases a dead process left ----------------------------------------------


def test_the_sweep_finishes_a_purchase_whose_process_died_after_the_charge(card, clock):
    from apps.issuing.services import authorisations as auth

    request = auth.PurchaseRequest(
        reference="iauth_dead",
        card_token=card.issuer_token,
        amount_cents=60_00,
        currency="EUR",
        merchant_name="Darty",
        merchant_category="5732",
        merchant_country="FR",
        livemode=False,
    )
    row, charge = auth._open(request, now=NOW)
    auth._charge_execute(charge)  # the money moved; the process died before recording it

    assert authorisations_settle_pending(now=NOW + timedelta(minutes=1)) == 0  # still in grace
    clock.shift(timedelta(minutes=3))
    assert authorisations_settle_pending(now=NOW + timedelta(minutes=3)) == 1
    assert authorisations_settle_pending(now=NOW + timedelta(minutes=4)) == 0

    row.refresh_from_db()
    assert row.state == CardAuthorisation.State.APPROVED
    assert row.payment.state == PaymentState.IN_PROGRESS
    assert SandboxCharge.objects.filter(kind="charge").count() == 1


def test_the_sweep_declines_a_purchase_whose_process_died_before_the_charge(card, clock):
    from apps.issuing.services import authorisations as auth

    request = auth.PurchaseRequest(
        reference="iauth_dead_early",
        card_token=card.issuer_token,
        amount_cents=60_00,
        currency="EUR",
        merchant_name="Darty",
        merchant_category="5732",
        merchant_country="FR",
        livemode=False,
    )
    row, _charge = auth._open(request, now=NOW)
    clock.shift(timedelta(minutes=3))

    assert authorisations_settle_pending(now=NOW + timedelta(minutes=3)) == 1

    row.refresh_from_db()
    assert row.state == CardAuthorisation.State.DECLINED
    assert row.payment.state == PaymentState.STOPPED
    assert not SandboxCharge.objects.exists()
    # The issuer's replay of the request gets the recorded answer.
    _status, answer = send(purchase_request(card, 60_00, reference="iauth_dead_early"))
    assert answer["approved"] is False
