"""The maybe journey on the hosted checkout: more information (bank data, identity document),
each giving a new decision, the pay-in-full way out, the explanation and the human review."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.common.emails import email_content
from apps.common.models import OutgoingEmail
from apps.payments.decision import rules_validate
from apps.payments.models import (
    Charge,
    Checkout,
    CreditDecision,
    DecisionReview,
    DecisionRuleSet,
    DenyListEntry,
    Payment,
)
from apps.payments.services.payments import potential_fraud_flag
from apps.payments.services.reviews import review_decide, reviews_queue_waiting
from apps.verification.models import BankCheck
from tests.conftest import make_shop
from tests.payments.builders import payment_create_for
from tests.payments.test_checkout import details, finish, pay_up_to_code, url

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    return make_shop()


def english() -> Client:
    client = Client()
    client.cookies["django_language"] = "en"  # beside the checkout's device cookie
    return client


def journey(decisions) -> list[tuple[str, list[str], str]]:
    return [(d.outcome, d.asks, d.made_by) for d in decisions.order_by("created_at", "id")]


def connect_bank(client: Client, payment: Payment, profile: str):
    """Consent, the aggregator's page, the chosen test account, and back."""
    to_bank = client.post(url(payment), {"action": "bank_start", "consent": "on"})
    assert to_bank.status_code == 303
    assert "/sandbox/bank/" in to_bank["Location"]
    back = client.post(to_bank["Location"], {"profile": profile})
    assert back.status_code in (302, 303)
    return finish(client, back)


def test_bank_data_showing_room_in_the_budget_turns_a_maybe_into_a_yes(shop):
    payment = payment_create_for(shop)
    client = english()

    page = finish(client, pay_up_to_code(client, payment, email="lea+maybe_bank@example.com"))
    assert Checkout.objects.get(payment=payment).step == Checkout.Step.MORE_INFO
    text = page.content.decode()
    assert "Connect my bank" in text
    assert "read-only" in text  # what is collected and how, before asking
    assert "without fees" in text  # the pay-in-full way out is always there

    done = connect_bank(client, payment, "salaried")

    payment.refresh_from_db()
    assert done.status_code == 200
    assert payment.state == "in_progress"
    assert journey(payment.decisions) == [
        ("maybe", ["phone", "bank"], "checkout"),
        ("maybe", ["bank"], "verification"),
        ("yes", [], "verification"),
    ]
    check = BankCheck.objects.get(subject=payment.public_id)
    assert check.status == "analysed"
    assert check.repayment_capacity_cents > 0
    assert "bank_capacity_confirmed" in [r["code"] for r in payment.decisions.last().reasons]


def test_bank_data_showing_over_indebtedness_refuses_and_the_customer_pays_in_full(shop):
    payment = payment_create_for(shop)
    client = english()
    finish(client, pay_up_to_code(client, payment, email="jp+maybe_bank@example.com"))

    refused = connect_bank(client, payment, "overindebted")

    assert Checkout.objects.get(payment=payment).step == Checkout.Step.REFUSED
    assert "Pay €450.00 now" in refused.content.decode()
    final = finish(client, client.post(url(payment), {"action": "pay_in_full"}))
    payment.refresh_from_db()
    assert final.status_code == 200
    assert payment.state == "paid"
    charge = Charge.objects.get(payment=payment, status="succeeded")
    assert (charge.kind, charge.amount) == (Charge.Kind.PAY_IN_FULL, payment.purchase_amount)


def test_consent_is_required_before_the_bank_is_asked(shop):
    payment = payment_create_for(shop)
    client = english()
    finish(client, pay_up_to_code(client, payment, email="lea+maybe_bank@example.com"))

    page = client.post(url(payment), {"action": "bank_start"})

    assert page.status_code == 400
    assert "Please tick the box" in page.content.decode()
    assert not BankCheck.objects.exists()


def test_a_bank_cancelled_or_unavailable_leaves_the_choices_open(shop):
    payment = payment_create_for(shop)
    client = english()
    finish(client, pay_up_to_code(client, payment, email="lea+maybe_bank@example.com"))

    connect_bank(client, payment, "unavailable")
    checkout = Checkout.objects.get(payment=payment)
    assert checkout.step == Checkout.Step.BANK
    waiting = client.get(url(payment)).content.decode()
    assert "Connect my bank" in waiting and "without fees" in waiting

    to_bank = client.post(url(payment), {"action": "bank_start", "consent": "on"})
    cancelled = finish(client, client.post(to_bank["Location"], {"cancel": "1"}))

    assert Checkout.objects.get(payment=payment).step == Checkout.Step.MORE_INFO
    assert cancelled.status_code == 200
    assert not Charge.objects.filter(payment=payment).exists()  # nothing charged meanwhile


def test_pay_in_full_is_offered_at_every_step_of_the_maybe_journey(shop):
    payment = payment_create_for(shop)
    client = english()
    finish(client, pay_up_to_code(client, payment, email="lea+maybe_bank@example.com"))

    final = finish(client, client.post(url(payment), {"action": "pay_in_full"}))

    payment.refresh_from_db()
    assert final.status_code == 200
    assert payment.state == "paid"
    assert payment.paid_in_full_fallback


def test_a_refused_customer_reads_the_reasons_and_asks_for_a_human_review(shop):
    payment = payment_create_for(shop)
    client = english()
    refused = finish(client, pay_up_to_code(client, payment, email="c+scored_no@example.com"))
    explanation_url = url(payment) + "/explanation"
    assert explanation_url in refused.content.decode()

    page = client.get(explanation_url).content.decode()
    assert "Outcome chosen by the test email address." in page
    assert "right to obtain a review" in page

    asked = client.post(explanation_url, {"message": "I have a stable job."})
    again = client.post(explanation_url, {"message": "And no other credit."})
    shown = client.get(explanation_url).content.decode()

    assert asked.status_code == again.status_code == 303
    review = DecisionReview.objects.get(payment=payment)
    assert (review.kind, review.status) == ("contested", "open")
    assert review.customer_message == "I have a stable job.\n\nAnd no other credit."
    assert "request for a human review was received" in shown


def test_an_operator_approval_lets_the_customer_come_back_and_pay(shop, django_user_model):
    operator = django_user_model.objects.create_user("ops", password="x", is_staff=True)
    payment = payment_create_for(shop)
    client = english()
    finish(client, pay_up_to_code(client, payment, email="c+scored_no@example.com"))
    client.post(url(payment) + "/explanation", {"message": "Please look again."})
    review = DecisionReview.objects.get(payment=payment)

    review_decide(
        review_id=review.pk,
        approve=True,
        note="Stable income.",
        operator=operator,
        now=timezone.now(),
    )

    payment.refresh_from_db()
    assert payment.state == "scored_yes"
    assert payment.decisions.last().made_by == "operator"
    email = OutgoingEmail.objects.get(key=f"review:{review.pk}:customer")
    assert url(payment) in email_content(email)[0]
    page = client.get(url(payment)).content.decode()
    assert "Your plan is accepted" in page
    done = finish(client, client.post(url(payment), {"action": "pay"}))
    payment.refresh_from_db()
    assert done.status_code == 200
    assert payment.state == "in_progress"


def test_payments_waiting_on_more_information_go_to_the_review_queue_once(shop, settings):
    settings.DECISION_REVIEW_AFTER_MINUTES = 60
    payment = payment_create_for(shop)
    client = english()
    finish(client, pay_up_to_code(client, payment, email="lea+maybe_bank@example.com"))
    later = timezone.now() + timedelta(minutes=61)

    assert reviews_queue_waiting(now=timezone.now()) == 0
    assert reviews_queue_waiting(now=later) == 1
    assert reviews_queue_waiting(now=later) == 0

    review = DecisionReview.objects.get(payment=payment)
    assert (review.kind, review.status) == ("waiting", "open")
    assert review.decision == payment.decisions.order_by("created_at", "id").last()


def test_a_merchant_fraud_flag_puts_the_customer_on_the_deny_list(shop):
    first = payment_create_for(shop)
    client = english()
    finish(client, pay_up_to_code(client, first))
    potential_fraud_flag(payment=first, reason="amount_mismatch", now=timezone.now())

    listed = set(DenyListEntry.objects.values_list("kind", flat=True))
    assert listed == {"email", "phone", "card", "device"}

    second = payment_create_for(shop)
    other = english()  # another browser, the same card
    refused = finish(other, pay_up_to_code(other, second, email="someone.else@example.com"))

    assert Checkout.objects.get(payment=second).step == Checkout.Step.REFUSED
    assert refused.status_code == 200
    decision = CreditDecision.objects.filter(payment=second).last()
    assert decision.reasons[0]["code"] == "deny_listed"
    assert decision.features["denied"] == ["card", "phone"]


def test_a_card_used_by_other_people_lately_asks_for_an_identity_document(shop):
    first = payment_create_for(shop)
    finish(english(), pay_up_to_code(english(), first))
    second = payment_create_for(shop, customer={"email": "someone.else@example.com"})
    other = english()

    finish(
        other,
        pay_up_to_code(other, second, email="someone.else@example.com", phone="06 98 76 54 32"),
    )

    decision = CreditDecision.objects.filter(payment=second).last()
    assert decision.features["card_customers_recent"] == 2
    assert (decision.outcome, decision.asks) == ("maybe", ["identity"])
    assert decision.reasons[0]["code"] == "velocity_card_customers"
    assert Checkout.objects.get(payment=second).step == Checkout.Step.MORE_INFO


def test_the_decision_sees_the_customers_history_and_exposure(shop):
    # Operators lowered the exposure limit to 2,600 EUR in a new version of the rules.
    DecisionRuleSet.objects.create(
        version="limit-2600",
        rules=rules_validate({"version": "limit-2600", "exposure_limit_cents": 260_000}),
        is_active=True,
        created_at=timezone.now(),
    )
    first = payment_create_for(shop, purchase_amount=100_000, installments_count=4)
    client = english()
    finish(client, pay_up_to_code(client, first))
    second = payment_create_for(shop, purchase_amount=200_000, installments_count=4)

    refused = finish(client, client.post(url(second), details()))

    decision = CreditDecision.objects.filter(payment=second).last()
    assert decision.features["open_plans"] == 1
    assert decision.features["outstanding_cents"] == 75_000  # 3 of 4 instalments left
    assert decision.rules_version == "limit-2600"
    assert decision.outcome == "no"
    assert decision.reasons[0]["code"] == "exposure_limit"
    assert refused.status_code == 200
