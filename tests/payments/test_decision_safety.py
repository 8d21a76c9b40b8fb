"""The credit decision's edges: a yes never covers another card or person, a refused SMS
never strands the customer, an operator's approval always leads to a payable page, the
reasons stay the customer's, and a new email does not reset what a person owes."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from apps.payments.decision import BankFacts
from apps.payments.links import explanation_url
from apps.payments.models import Charge, Checkout, CreditDecision, DecisionReview
from apps.payments.services import checkout as checkout_service
from apps.payments.services.charges import charge_open
from apps.payments.services.reviews import ChargeUnderWay, review_decide
from apps.verification.models import BankCheck
from tests.conftest import make_shop
from tests.payments.builders import payment_create_for
from tests.payments.test_checkout import (
    DECLINED,
    FRICTIONLESS,
    details,
    finish,
    pay_up_to_code,
    url,
)
from tests.payments.test_checkout_more_info import connect_bank, english

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    return make_shop()


def test_a_yes_does_not_cover_a_card_given_after_it(shop):
    payment = payment_create_for(shop)
    client = english()
    declined = finish(client, pay_up_to_code(client, payment, DECLINED))
    assert declined.status_code == 402
    payment.refresh_from_db()
    assert payment.state == "scored_yes"  # the yes stands, for the declined card

    # New details and card, 3-D Secure not yet completed: the old yes must not pay them.
    client.post(url(payment), details(FRICTIONLESS, first_name="Robert", last_name="Dupont"))
    refused = client.post(url(payment), {"action": "pay"})

    assert refused.status_code == 409
    assert list(Charge.objects.filter(payment=payment).values_list("status", flat=True)) == [
        "failed"
    ]


def test_a_refused_sms_leaves_the_customer_a_way_forward(shop, settings):
    settings.PHONE_CHECKS_PER_IP_PER_HOUR = 0  # every code from this address is refused
    payment = payment_create_for(shop)
    client = english()

    page = finish(client, client.post(url(payment), details()))

    assert page.status_code == 429
    checkout = Checkout.objects.get(payment=payment)
    assert (checkout.step, checkout.phone_check_id) == (Checkout.Step.PHONE, "")
    decision = CreditDecision.objects.get(payment=payment)
    assert (decision.outcome, decision.asks) == ("maybe", ["phone"])
    text = page.content.decode()
    assert "Too many verification codes" in text and "without fees" in text

    paid = finish(client, client.post(url(payment), {"action": "pay_in_full"}))
    payment.refresh_from_db()
    assert paid.status_code == 200
    assert payment.state == "paid"


def test_an_approval_after_the_customer_chose_to_pay_in_full_asks_3ds_for_the_first_instalment(
    shop, django_user_model
):
    operator = django_user_model.objects.create_user("ops", password="x", is_staff=True)
    payment = payment_create_for(shop)
    client = english()
    finish(client, pay_up_to_code(client, payment, email="c+scored_no@example.com"))
    client.post(url(payment) + "/explanation", {"message": "Please."})
    # They chose to pay in full, then left during 3-D Secure.
    checkout_service.checkout_pay_in_full_start(
        payment_id=payment.pk, return_path="/back", now=timezone.now()
    )
    review = DecisionReview.objects.get(payment=payment)

    review_decide(
        review_id=review.pk, approve=True, note="ok", operator=operator, now=timezone.now()
    )

    checkout = Checkout.objects.get(payment=payment)
    assert (checkout.step, checkout.pay_in_full) == (Checkout.Step.THREE_DS, False)
    done = finish(client, client.post(url(payment), {"action": "three_ds"}))
    payment.refresh_from_db()
    assert done.status_code == 200
    assert payment.state == "in_progress"
    charge = Charge.objects.get(payment=payment, status="succeeded")
    assert charge.kind == Charge.Kind.FIRST_INSTALMENT
    assert payment.decisions.order_by("created_at", "id").last().made_by == "operator"


def test_no_review_is_decided_while_a_charge_is_under_way(shop, django_user_model):
    operator = django_user_model.objects.create_user("ops", password="x", is_staff=True)
    payment = payment_create_for(shop)
    client = english()
    finish(client, pay_up_to_code(client, payment, email="c+scored_no@example.com"))
    client.post(url(payment) + "/explanation", {"message": "Please."})
    charge_open(
        payment_id=payment.pk,
        kind=Charge.Kind.PAY_IN_FULL,
        amount_cents=45_000,
        three_ds_reference="x",
        now=timezone.now(),
    )

    with pytest.raises(ChargeUnderWay):
        review_decide(
            review_id=DecisionReview.objects.get().pk,
            approve=True,
            note="ok",
            operator=operator,
            now=timezone.now(),
        )
    payment.refresh_from_db()
    assert payment.state == "scored_no"


def test_a_new_name_on_the_checkout_drops_the_checks_made_for_the_old_one(shop):
    payment = payment_create_for(shop)
    client = english()
    finish(client, pay_up_to_code(client, payment, DECLINED, email="lea+maybe_bank@example.com"))
    declined = connect_bank(client, payment, "salaried")  # a yes, then the card is declined
    assert declined.status_code == 402
    assert Checkout.objects.get(payment=payment).bank_check_id

    client.post(url(payment), details(first_name="Robert", last_name="Dupont"))

    assert Checkout.objects.get(payment=payment).bank_check_id == ""


def test_bank_data_of_someone_else_does_not_lift_a_doubt(shop):
    payment = payment_create_for(shop)
    client = english()
    # The salaried test account belongs to Camille Martin; this customer is Léa Bernard.
    finish(
        client,
        pay_up_to_code(
            client,
            payment,
            email="lea+maybe_bank@example.com",
            first_name="Léa",
            last_name="Bernard",
        ),
    )

    refused = connect_bank(client, payment, "salaried")

    decision = payment.decisions.order_by("created_at", "id").last()
    assert decision.outcome == "no"
    assert "bank_holder_mismatch" in [r["code"] for r in decision.reasons]
    assert "bank_capacity_confirmed" not in [r["code"] for r in decision.reasons]
    assert BankCheck.objects.get().status == "analysed"
    assert "Pay €450.00 now" in refused.content.decode()


def test_the_reasons_are_the_customers_not_whoever_holds_the_payment_url(shop):
    payment = payment_create_for(shop)
    customer = english()
    finish(customer, pay_up_to_code(customer, payment, email="c+scored_no@example.com"))
    explanation = url(payment) + "/explanation"

    merchant = Client()  # the shop knows the payment's URL, not the customer's browser
    merchant.cookies["django_language"] = "en"
    hidden = merchant.get(explanation, HTTP_ACCEPT_LANGUAGE="en")
    shown = customer.get(explanation)
    from_email = merchant.get(explanation_url(payment.public_id), HTTP_ACCEPT_LANGUAGE="en")
    forged = merchant.get(explanation + "?t=forged", HTTP_ACCEPT_LANGUAGE="en")

    reason = "Outcome chosen by the test email address."
    assert hidden.status_code == 403 and reason not in hidden.content.decode()
    assert merchant.post(explanation, {"message": "x"}).status_code == 403
    assert not DecisionReview.objects.exists()
    assert shown.status_code == 200 and reason in shown.content.decode()
    assert from_email.status_code == 200 and reason in from_email.content.decode()
    assert forged.status_code == 403


def test_a_new_email_does_not_reset_what_the_person_owes(shop):
    first = payment_create_for(shop, purchase_amount=150_000, installments_count=3)
    client = english()
    finish(client, pay_up_to_code(client, first))
    # The same card and phone under another email: the same person.
    second = payment_create_for(
        shop, purchase_amount=150_000, installments_count=3, customer={"email": "new@example.com"}
    )

    finish(client, client.post(url(second), details(email="new@example.com")))

    decision = CreditDecision.objects.filter(payment=second).last()
    assert decision.features["open_plans"] == 1
    assert decision.features["outstanding_cents"] == 100_000
    assert decision.features["paid_plans"] == 0  # good history is not borrowed


def test_bank_facts_of_another_holder_stop_the_bank_being_asked_again():
    from dataclasses import replace

    from apps.payments.decision import decide
    from tests.payments.test_decision import features

    doubtful = features(
        purchase_cents=150_000,
        installments_count=12,
        largest_instalment_cents=13_000,
        card_funding="debit",
        customer_age=20,
    )
    mismatch = decide(replace(doubtful, bank=BankFacts(status="holder_mismatch")))

    assert decide(doubtful).asks == ("bank",)
    assert mismatch.asks == ()
    assert mismatch.outcome == "no"
