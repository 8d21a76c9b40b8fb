"""The hosted checkout through Django's client, with the sandbox processor and SMS outbox."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.common.models import OutgoingEmail
from apps.common.money import to_cents
from apps.ledger.models import Posting
from apps.payments.models import (
    Card,
    Charge,
    Checkout,
    CreditDecision,
    Instalment,
    Notification,
    Payment,
    SandboxCharge,
    SandboxThreeDS,
)
from apps.payments.services import checkout as checkout_service
from apps.payments.services.charges import (
    charge_execute,
    charge_open,
    charge_record,
    charges_settle_in_doubt,
)
from apps.payments.services.payments import payments_expire
from apps.verification.models import PhoneCheck
from tests.conftest import make_shop
from tests.payments.builders import payment_create_for
from tests.support import all_database_text

pytestmark = pytest.mark.django_db

FRICTIONLESS = "4970100000000006"
CHALLENGE = "4970100000000014"
DECLINED = "4000000000000002"
TIMEOUT = "4000000000007775"
PREPAID = "4970150000000001"


def details(card: str = FRICTIONLESS, **overrides) -> dict:
    return {
        "action": "details",
        "first_name": "Camille",
        "last_name": "Martin",
        "email": "camille.martin@example.com",
        "phone": "06 12 34 56 78",
        "birth_date": "1990-04-02",
        "line1": "12 rue de la Paix",
        "postal_code": "75002",
        "city": "Paris",
        "country": "FR",
        "card_number": card,
        "card_expiry": "12/30",
        "card_cvc": "123",
        "accept_terms": "on",
        **overrides,
    }


def url(payment: Payment) -> str:
    return reverse("payments:checkout", args=[payment.public_id])


def sms_code(payment: Payment) -> str:
    checkout = Checkout.objects.get(payment=payment)
    return PhoneCheck.objects.get(public_id=checkout.phone_check_id).test_code


def pay_up_to_code(client: Client, payment: Payment, card: str = FRICTIONLESS, **overrides):
    """Details and card, then 3-D Secure: a challenge card stops at the bank's page (the
    response redirects there); a frictionless one comes straight back to the decision and,
    when it asks for the phone (a customer's first check), the SMS code is entered."""
    response = client.post(url(payment), details(card, **overrides))
    assert response.status_code == 303, response.content.decode()[:2000]
    while response.status_code in (302, 303) and "/sandbox/acs/" not in response["Location"]:
        response = client.get(response["Location"])
    if response.status_code in (302, 303):
        return response
    return _code_if_asked(client, response)


def _code_if_asked(client: Client, response):
    checkout = (response.context or {}).get("checkout") if response.status_code < 300 else None
    if checkout is None or checkout.step != Checkout.Step.PHONE:
        return response
    return client.post(
        url(checkout.payment), {"action": "verify_code", "code": sms_code(checkout.payment)}
    )


def finish(client: Client, response):
    """Follow redirects (through the 3-D Secure return) to the page it lands on, entering the
    SMS code on the way when the decision asks for it."""
    while True:
        while response.status_code in (302, 303):
            response = client.get(response["Location"])
        answered = _code_if_asked(client, response)
        if answered is response:
            return response
        response = answered


@pytest.fixture
def shop():
    return make_shop()


def test_the_page_shows_the_plan_and_prefills_the_customer(shop):
    payment = payment_create_for(shop)

    page = Client().get(url(payment)).content.decode()

    assert "camille.martin@example.com" in page
    assert "Camille" in page
    assert page.count('class="date"') == 3
    assert "Mode test" in page or "Test mode" in page


def test_a_frictionless_card_pays_the_first_instalment_and_accepts_the_payment(shop):
    payment = payment_create_for(shop)
    client = Client()

    response = finish(client, pay_up_to_code(client, payment))

    payment.refresh_from_db()
    assert response.status_code == 200
    assert payment.state == "in_progress"
    assert payment.card is not None and payment.card.last4 == "0006"
    first, *rest = payment.instalments.order_by("number")
    assert first.state == Instalment.State.PAID
    assert all(i.state == Instalment.State.PENDING for i in rest)
    charge = Charge.objects.get(payment=payment)
    assert charge.status == Charge.Status.SUCCEEDED
    assert charge.amount == first.total_amount
    assert charge.idempotency_key == f"instalment:{first.public_id}:attempt:1"
    assert Posting.objects.filter(reference=payment.public_id, kind="payment_captured").count() == 1
    assert Notification.objects.filter(payment=payment, event="accepted").count() == 1
    assert OutgoingEmail.objects.filter(key__contains=payment.public_id).count() == 2
    # A first-time customer: a maybe that asks for the phone, then a yes once it is verified.
    decisions = list(CreditDecision.objects.filter(payment=payment).order_by("created_at", "id"))
    assert [(d.outcome, d.asks, d.made_by) for d in decisions] == [
        ("maybe", ["phone"], "checkout"),
        ("yes", [], "verification"),
    ]
    assert "shop.example/return?pid=" in response.content.decode()


def test_the_challenge_card_goes_through_the_bank_page(shop):
    payment = payment_create_for(shop)
    client = Client()

    response = pay_up_to_code(client, payment, CHALLENGE)
    assert reverse("payments:sandbox-acs", args=["x"])[:-1] in response["Location"]
    approved = client.post(response["Location"], {"decision": "approve"})
    page = finish(client, approved)

    payment.refresh_from_db()
    assert page.status_code == 200
    assert payment.state == "in_progress"


def test_denying_3ds_returns_to_the_card_step_without_charging(shop):
    payment = payment_create_for(shop)
    client = Client()

    response = pay_up_to_code(client, payment, CHALLENGE)
    page = finish(client, client.post(response["Location"], {"decision": "deny"}))

    assert page.status_code == 402
    assert Checkout.objects.get(payment=payment).step == Checkout.Step.CARD
    assert not Charge.objects.filter(payment=payment).exists()


def test_a_declined_card_can_be_replaced_without_a_second_code(shop):
    payment = payment_create_for(shop)
    client = Client()

    declined = finish(client, pay_up_to_code(client, payment, DECLINED))
    assert declined.status_code == 402
    again = client.post(url(payment), details(FRICTIONLESS))
    assert Checkout.objects.get(payment=payment).step == Checkout.Step.THREE_DS
    page = finish(client, again)  # 3-D Secure, then a yes: the phone is already verified

    payment.refresh_from_db()
    assert page.status_code == 200
    assert payment.state == "in_progress"
    statuses = sorted(Charge.objects.filter(payment=payment).values_list("status", flat=True))
    assert statuses == ["failed", "succeeded"]


@pytest.mark.parametrize(
    ("card", "birth_date", "message"),
    [
        (PREPAID, "1990-04-02", "prepaid"),
        ("4000560000000005", "1990-04-02", "country"),
        (FRICTIONLESS, "2015-01-01", "18"),
    ],
)
def test_a_card_or_customer_refused_by_a_rule_gets_a_clear_page(shop, card, birth_date, message):
    payment = payment_create_for(shop)

    response = Client(HTTP_COOKIE="django_language=en").post(
        url(payment), details(card, birth_date=birth_date)
    )

    assert response.status_code == 402
    assert message in response.content.decode().lower()
    assert not Card.objects.exists()
    assert Checkout.objects.get(payment=payment).step == Checkout.Step.DETAILS


def test_a_refused_customer_may_pay_the_whole_amount_without_fees(shop):
    payment = payment_create_for(shop)
    client = Client()

    refused = finish(client, pay_up_to_code(client, payment, email="camille+scored_no@example.com"))
    assert Checkout.objects.get(payment=payment).step == Checkout.Step.REFUSED
    assert refused.status_code == 200
    page = finish(client, client.post(url(payment), {"action": "pay_in_full"}))  # 3DS, charge

    payment.refresh_from_db()
    assert page.status_code == 200
    assert payment.state == "paid"
    assert payment.paid_in_full_fallback
    charge = Charge.objects.get(payment=payment)
    assert charge.kind == Charge.Kind.PAY_IN_FULL
    assert charge.amount == payment.purchase_amount
    assert set(payment.instalments.values_list("state", flat=True)) == {"paid"}


def test_a_timeout_is_settled_by_asking_the_processor_and_charges_once(shop):
    payment = payment_create_for(shop)
    client = Client()

    page = finish(client, pay_up_to_code(client, payment, TIMEOUT))

    payment.refresh_from_db()
    assert page.status_code == 200
    assert payment.state == "in_progress"
    assert SandboxCharge.objects.filter(kind="charge").count() == 1
    charge = Charge.objects.get(payment=payment)
    assert charge.status == Charge.Status.SUCCEEDED
    assert charge.processor_reference == SandboxCharge.objects.get().reference


def _to_decision(client: Client, payment: Payment) -> None:
    """Details, code and an approved 3-D Secure challenge, then the decision: the payment is
    ready to be charged."""
    acs = pay_up_to_code(client, payment, CHALLENGE)["Location"]
    client.post(acs, {"decision": "approve"})  # the return is not followed
    reference = Checkout.objects.get(payment=payment).three_ds_reference
    checkout_service.checkout_three_ds_complete(
        payment_id=payment.pk, reference=reference, now=timezone.now()
    )
    decision = checkout_service.checkout_decide(payment_id=payment.pk, now=timezone.now())
    if decision.asks == ["phone"]:  # the customer's first phone check
        checkout_service.checkout_phone_send(payment_id=payment.pk, now=timezone.now())
        checkout_service.checkout_phone_verify(
            payment_id=payment.pk, code=sms_code(payment), now=timezone.now()
        )
        decision = checkout_service.checkout_decide(payment_id=payment.pk, now=timezone.now())
    assert decision.outcome == "yes"


def test_a_crash_after_the_processor_charged_is_repaired_by_the_sweep(shop):
    payment = payment_create_for(shop)
    _to_decision(Client(), payment)
    reference = Checkout.objects.get(payment=payment).three_ds_reference
    now = timezone.now()
    first = payment.instalments.get(number=1)
    charge = charge_open(
        payment_id=payment.pk,
        kind=Charge.Kind.FIRST_INSTALMENT,
        amount_cents=to_cents(first.total_amount),
        three_ds_reference=reference,
        now=now,
    )
    charge_execute(charge=charge, three_ds_reference=reference)  # ...and the process dies

    assert charges_settle_in_doubt(now=now) == 0  # too recent: may still be in flight
    settled = charges_settle_in_doubt(now=now + timedelta(minutes=5))

    payment.refresh_from_db()
    assert settled == 1
    assert payment.state == "in_progress"
    assert Charge.objects.get(pk=charge.pk).status == Charge.Status.SUCCEEDED
    assert SandboxCharge.objects.filter(kind="charge").count() == 1
    assert Posting.objects.filter(reference=payment.public_id).count() == 1
    assert charges_settle_in_doubt(now=now + timedelta(minutes=10)) == 0


def test_a_charge_that_never_reached_the_processor_fails_and_may_be_retried(shop):
    payment = payment_create_for(shop)
    client = Client()
    _to_decision(client, payment)
    first = payment.instalments.get(number=1)
    now = timezone.now()
    charge = charge_open(
        payment_id=payment.pk,
        kind=Charge.Kind.FIRST_INSTALMENT,
        amount_cents=to_cents(first.total_amount),
        three_ds_reference=Checkout.objects.get(payment=payment).three_ds_reference,
        now=now,
    )  # the process dies before calling the processor

    stuck = client.post(url(payment), {"action": "pay"})
    charges_settle_in_doubt(now=now + timedelta(minutes=5))
    retried = finish(client, client.post(url(payment), {"action": "pay"}))

    assert stuck.status_code == 409
    assert Charge.objects.get(pk=charge.pk).failure_code == "not_received"
    assert retried.status_code == 200
    payment.refresh_from_db()
    assert payment.state == "in_progress"
    assert Charge.objects.filter(payment=payment, status="succeeded").get().attempt == 2


def test_an_expired_payment_cannot_be_paid(shop):
    payment = payment_create_for(shop, expires_after=10)
    client = Client()

    Payment.objects.filter(pk=payment.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    response = client.post(url(payment), details())

    assert response.status_code == 410
    assert not Card.objects.exists()


def test_steps_out_of_order_are_refused(shop):
    payment = payment_create_for(shop)
    client = Client()
    client.get(url(payment))

    response = client.post(url(payment), {"action": "verify_code", "code": "123456"})
    replayed_return = client.get(
        reverse("payments:checkout-3ds-return", args=[payment.public_id]) + "?threeds=x"
    )

    assert response.status_code == 409
    assert replayed_return.status_code == 302
    assert Checkout.objects.get(payment=payment).step == Checkout.Step.DETAILS


def test_a_pay_later_plan_is_accepted_without_a_charge(shop):
    shop.merchant.fee_plans.filter(installments_count=1, deferred_days=30).update(allowed=True)
    payment = payment_create_for(shop, installments_count=1, deferred_days=30)
    client = Client()

    finish(client, pay_up_to_code(client, payment))

    payment.refresh_from_db()
    assert payment.state == "in_progress"
    assert not Charge.objects.filter(payment=payment).exists()
    assert payment.instalments.get().state == "pending"


def test_the_card_number_reaches_neither_the_database_nor_the_logs(shop, caplog):
    payment = payment_create_for(shop)
    client = Client()
    caplog.set_level(logging.DEBUG)
    spaced = "4970 1000 0000 0014"

    acs = pay_up_to_code(client, payment, spaced)["Location"]
    finish(client, client.post(acs, {"decision": "approve"}))

    payment.refresh_from_db()
    assert payment.state == "in_progress"
    for form in (CHALLENGE, spaced, CHALLENGE[6:12]):
        assert form not in all_database_text()
        assert form not in caplog.text
    assert "123" not in Checkout.objects.filter(payment=payment).values_list("address", flat=True)


def _open(payment: Payment, now) -> tuple[str, Charge]:
    reference = Checkout.objects.get(payment=payment).three_ds_reference
    charge = charge_open(
        payment_id=payment.pk,
        kind=Charge.Kind.FIRST_INSTALMENT,
        amount_cents=to_cents(payment.instalments.get(number=1).total_amount),
        three_ds_reference=reference,
        now=now,
    )
    return reference, charge


def test_a_reload_while_the_charge_is_on_its_way_neither_loses_it_nor_charges_twice(shop):
    payment = payment_create_for(shop)
    client = Client()
    _to_decision(client, payment)
    now = timezone.now()
    reference, charge = _open(payment, now)  # request A is calling the processor...

    reload = client.get(url(payment))  # ...when the customer reloads the page
    charge_record(
        charge_id=charge.pk,
        result=charge_execute(charge=charge, three_ds_reference=reference),
        now=now,
    )

    assert reload.status_code == 200
    assert "refresh" in reload.content.decode()  # "we are checking", not "declined"
    payment.refresh_from_db()
    assert payment.state == "in_progress"
    assert SandboxCharge.objects.filter(kind="charge").count() == 1


def test_a_payment_stopped_while_its_charge_was_in_doubt_is_refunded_not_stuck(shop):
    payment = payment_create_for(shop)
    _to_decision(Client(), payment)
    now = timezone.now()
    reference, charge = _open(payment, now)
    charge_execute(charge=charge, three_ds_reference=reference)  # charged; the process dies
    Payment.objects.filter(pk=payment.pk).update(state="stopped", cancelled_at=now)

    charges_settle_in_doubt(now=now + timedelta(minutes=5))
    charges_settle_in_doubt(now=now + timedelta(minutes=10))

    charge.refresh_from_db()
    assert charge.status == Charge.Status.SUCCEEDED
    assert charge.failure_code == "orphaned_refunded"
    refund = SandboxCharge.objects.get(kind="refund")
    assert refund.amount_cents == to_cents(charge.amount)
    assert not Posting.objects.filter(reference=payment.public_id).exists()


def test_after_a_declined_pay_in_full_a_new_card_pays_in_full_without_a_new_decision(shop):
    payment = payment_create_for(shop)
    client = Client()
    finish(client, pay_up_to_code(client, payment, DECLINED, email="c+scored_no@example.com"))

    declined = finish(client, client.post(url(payment), {"action": "pay_in_full"}))
    again = client.post(url(payment), details(FRICTIONLESS, email="c@example.com"))
    page = finish(client, again)

    assert declined.status_code == 402
    assert page.status_code == 200
    payment.refresh_from_db()
    assert payment.state == "paid"
    charge = Charge.objects.get(payment=payment, status="succeeded")
    assert charge.kind == Charge.Kind.PAY_IN_FULL
    assert charge.amount == payment.purchase_amount
    assert CreditDecision.objects.filter(payment=payment).count() == 1


def test_the_pay_in_full_offer_is_authenticated_for_the_whole_amount(shop):
    payment = payment_create_for(shop)
    client = Client()
    finish(client, pay_up_to_code(client, payment, email="c+scored_maybe@example.com"))

    client.post(url(payment), {"action": "pay_in_full"})

    three_ds = SandboxThreeDS.objects.order_by("-created_at").first()
    assert three_ds.amount_cents == to_cents(payment.purchase_amount)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_completions_charge_once():
    shop = make_shop()
    payment = payment_create_for(shop)
    _to_decision(Client(), payment)
    results: list[str] = []
    barrier = threading.Barrier(2)

    def complete():
        try:
            barrier.wait()
            checkout_service.checkout_pay(payment_id=payment.pk, now=timezone.now())
            results.append("paid")
        except Exception as error:
            results.append(type(error).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=complete) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results)[-1] == "paid" and len(results) == 2
    assert results.count("paid") == 1
    assert Charge.objects.filter(payment=payment).count() == 1
    assert SandboxCharge.objects.filter(kind="charge").count() == 1
    assert Payment.objects.get(pk=payment.pk).state == "in_progress"


def test_a_payment_whose_charge_is_in_doubt_neither_expires_nor_is_cancelled(shop):
    payment = payment_create_for(shop)
    _to_decision(Client(), payment)
    now = timezone.now()
    _open(payment, now)  # in doubt: the processor may have charged
    Payment.objects.filter(pk=payment.pk).update(expires_at=now - timedelta(minutes=1))

    expired = payments_expire(now=now)
    cancel = shop.client().put(f"/v1/payments/{payment.public_id}/cancel")

    payment.refresh_from_db()
    assert expired == 0
    assert cancel.status_code == 409
    assert payment.state == "scored_yes"
    assert payment.expired_at is None
