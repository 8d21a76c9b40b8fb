"""Alma's official Python client (alma-client 3.0.2) against a real Tranche server:
``payments.ask_acceptance`` and ``payments.charge_first_installment`` on in-store payments
(from an in-store session, and created through the API with origin ``pos_device``)."""

from __future__ import annotations

import pytest
from alma_client import Client
from alma_client.entities import Payment
from alma_client.entities.payment import PaymentState
from alma_client.request import RequestError
from django.test import Client as Browser
from django.urls import reverse
from django.utils import timezone

from apps.payments.models import Charge, Checkout
from apps.payments.models import Payment as StoredPayment
from apps.payments.processor_sandbox import SandboxCharge
from apps.payments.services import checkout as checkout_service
from apps.pos import services
from apps.verification.models import SmsMessage
from tests.payments.test_checkout import (
    CHALLENGE,
    DECLINED,
    details,
    finish,
    pay_up_to_code,
    sms_code,
    url,
)
from tests.pos.helpers import PHONE, started

POS_PAYMENT = {
    "payment": {"purchase_amount": 30000, "installments_count": 3, "origin": "pos_device"},
    "customer": {"first_name": "Camille", "last_name": "Martin", "phone": PHONE},
}


@pytest.fixture
def alma(live_server, shop):
    return Client.with_api_key(shop.test_key, api_root=live_server.url)


def session_payment(shop) -> StoredPayment:
    """An in-store session whose customer chose 3 instalments (the payment exists)."""
    session = started(shop)
    return services.session_choose_plan(session_id=session.pk, key="3_0_0", now=timezone.now())


def to_a_yes_without_the_charge(payment: StoredPayment, card: str = CHALLENGE) -> None:
    """The customer's checkout up to a yes after 3-D Secure, cut short before the first
    charge (the tab closed on the bank's return, which is not followed)."""
    browser = Browser()
    back = reverse("payments:checkout-3ds-return", args=[payment.public_id])
    response = browser.post(url(payment), details(card))
    while response.status_code in (302, 303) and not any(
        stop in response["Location"] for stop in ("/sandbox/acs/", back)
    ):
        response = browser.get(response["Location"])
    if "/sandbox/acs/" in response["Location"]:
        browser.post(response["Location"], {"decision": "approve"})
    reference = Checkout.objects.get(payment=payment).three_ds_reference
    checkout_service.checkout_three_ds_complete(
        payment_id=payment.pk, reference=reference, now=timezone.now()
    )
    decision = checkout_service.checkout_decide(payment_id=payment.pk, now=timezone.now())
    if decision.asks == ["phone"]:
        checkout_service.checkout_phone_send(payment_id=payment.pk, now=timezone.now())
        checkout_service.checkout_phone_verify(
            payment_id=payment.pk, code=sms_code(payment), now=timezone.now()
        )
        decision = checkout_service.checkout_decide(payment_id=payment.pk, now=timezone.now())
    assert decision.outcome == "yes"
    assert not Charge.objects.filter(payment=payment).exists()


def test_asking_acceptance_of_a_session_payment_sends_no_second_sms(alma, shop):
    payment = session_payment(shop)

    asked = alma.payments.ask_acceptance(payment.public_id)

    assert isinstance(asked, Payment)
    assert asked.id == payment.public_id
    assert asked.state == PaymentState.NOT_STARTED
    assert SmsMessage.objects.count() == 1  # the session's short link only
    assert SmsMessage.objects.get().key.startswith("pos_session:")


def test_asking_acceptance_of_an_api_pos_payment_texts_its_link_once(alma):
    created = alma.payments.create(POS_PAYMENT)

    first = alma.payments.ask_acceptance(created.id)
    again = alma.payments.ask_acceptance(created.id)

    assert first.id == again.id == created.id
    assert created.origin == "pos_device"
    sms = SmsMessage.objects.get()
    assert sms.key == f"payment:{created.id}:link:1"
    assert created.id in sms.text


def test_the_first_instalment_is_charged_once_the_customer_said_yes(alma, shop):
    payment = session_payment(shop)
    with pytest.raises(RequestError) as too_early:
        alma.payments.charge_first_installment(payment.public_id, {})
    to_a_yes_without_the_charge(payment)

    charged = alma.payments.charge_first_installment(payment.public_id, {})
    again = alma.payments.charge_first_installment(payment.public_id, {})

    assert too_early.value.response.status_code == 409
    assert too_early.value.response.json["error_code"] == "payment_not_accepted"
    assert isinstance(charged, Payment)
    assert charged.state == again.state == PaymentState.IN_PROGRESS
    assert Charge.objects.filter(payment=payment, status="succeeded").count() == 1
    assert SandboxCharge.objects.filter(kind="charge").count() == 1
    assert services.session_sync(session_id=payment.pos_session.pk, now=timezone.now()).state == (
        "paid"
    )


def test_after_the_checkout_paid_charge_first_installment_answers_the_payment(alma):
    created = alma.payments.create(POS_PAYMENT)
    payment = StoredPayment.objects.get(public_id=created.id)
    browser = Browser()
    finish(browser, pay_up_to_code(browser, payment))

    charged = alma.payments.charge_first_installment(created.id, {})

    assert charged.state == PaymentState.IN_PROGRESS
    assert SandboxCharge.objects.filter(kind="charge").count() == 1


def test_a_declined_first_charge_is_a_402_and_the_customer_may_try_another_card(alma):
    created = alma.payments.create(POS_PAYMENT)
    payment = StoredPayment.objects.get(public_id=created.id)
    to_a_yes_without_the_charge(payment, DECLINED)

    with pytest.raises(RequestError) as declined:
        alma.payments.charge_first_installment(created.id, {})

    assert declined.value.response.status_code == 402
    assert declined.value.response.json["error_code"] == "charge_declined"
    assert alma.payments.fetch(created.id).state == PaymentState.SCORED_YES  # not accepted
    assert Charge.objects.get(payment=payment).status == "failed"
    assert Checkout.objects.get(payment=payment).step == Checkout.Step.CARD  # another card


def test_an_online_payment_is_not_a_pos_payment(alma):
    online = alma.payments.create(
        {**POS_PAYMENT, "payment": {"purchase_amount": 30000, "installments_count": 3}}
    )

    with pytest.raises(RequestError) as asked:
        alma.payments.ask_acceptance(online.id)
    with pytest.raises(RequestError) as charged:
        alma.payments.charge_first_installment(online.id, {})

    assert online.origin == "online"
    for error in (asked, charged):
        assert error.value.response.status_code == 409
        assert error.value.response.json["error_code"] == "not_a_pos_payment"
    assert not SmsMessage.objects.exists()


def test_another_merchants_payment_is_a_404(alma, other_shop):
    theirs = session_payment(other_shop)

    with pytest.raises(RequestError) as asked:
        alma.payments.ask_acceptance(theirs.public_id)
    with pytest.raises(RequestError) as charged:
        alma.payments.charge_first_installment(theirs.public_id, {})

    assert asked.value.response.status_code == charged.value.response.status_code == 404
