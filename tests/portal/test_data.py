"""Data rights in the portal: a copy of my data (JSON and PDF), a correction, the deletion of
my data (honoured with no plan open, explained otherwise), and contesting a decision."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from apps.common.models import OutgoingEmail
from apps.ledger.models import Posting
from apps.payments.models import (
    Card,
    Checkout,
    CreditDecision,
    Customer,
    DecisionReview,
    Instalment,
    Payment,
    PaymentEvent,
    SandboxCard,
)
from apps.payments.processor import ChargeResult
from apps.payments.processor_sandbox import SandboxProcessor
from apps.schedules.models import SignInCode, SupportRequest
from apps.schedules.portal.data_export import (
    customer_data,
    customer_data_document,
)
from apps.schedules.services import data_rights
from apps.schedules.services.data_rights import (
    AlreadyErased,
    DeletionNotPossible,
    PaymentNotFound,
    contest_decision,
    deletion_request,
)
from apps.verification.services import phone_check_start
from tests.payments.builders import payment_create_for
from tests.portal.helpers import CAMILLE, DOMINIQUE, plan_for, sign_in

pytestmark = pytest.mark.django_db

BOUGHT = datetime(2026, 11, 10, 10, 0, tzinfo=UTC)  # 4 x 100 EUR: Nov 10, Dec 10, Jan 10, Feb 10
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
THREADS = 8


@pytest.fixture(autouse=True)
def _now():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def camille(shop, other_shop) -> Customer:
    """Camille, with a plan at two merchants, a decision with its reasons, a phone check,
    a support request and a sign-in."""
    first = plan_for(shop, CAMILLE, when=BOUGHT, locale="en")
    plan_for(other_shop, CAMILLE, when=BOUGHT + timedelta(days=1), locale="en")
    CreditDecision.objects.create(
        payment=first,
        outcome="yes",
        score=40,
        reasons=[
            {"code": "new_customer", "message": "", "points": -5, "category": "history"},
            {"code": "paid_plans", "message": "", "points": 10, "category": "history"},
        ],
        rules_version="2026-10",
        created_at=BOUGHT,
    )
    phone_check_start(
        phone=CAMILLE["phone"],
        livemode=False,
        purpose="checkout",
        subject=first.public_id,
        language="en",
        now=BOUGHT,
    )
    customer = first.customer
    SupportRequest.objects.create(
        kind="contact",
        livemode=False,
        customer=customer,
        email=customer.email,
        message="Where is my parcel?",
        created_at=BOUGHT,
    )
    SignInCode.objects.create(
        customer=customer,
        livemode=False,
        channel="email",
        destination=customer.email,
        code_hash="x" * 64,
        created_at=NOW - timedelta(minutes=5),
        expires_at=NOW + timedelta(minutes=5),
        verified_at=NOW - timedelta(minutes=4),
    )
    return customer


@pytest.fixture
def dominique(other_shop) -> Customer:
    return plan_for(other_shop, DOMINIQUE, when=BOUGHT).customer


def paid_off(customer: Customer) -> None:
    """Every plan of the customer paid (as the debit run would leave them)."""
    Payment.objects.filter(customer=customer).update(state="paid")
    Instalment.objects.filter(payment__customer=customer).update(state="paid", next_debit_at=None)


# --- the copy of my data ------------------------------------------------------------------


def test_the_json_download_holds_my_data_at_every_merchant_and_nobody_elses(
    client, camille, dominique
):
    sign_in(client, camille, when=NOW)

    response = client.get(reverse("portal:export-json"), **EN)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"] == 'attachment; filename="tranche-data-2026-11-23.json"'
    assert "no-store" in response["Cache-Control"]
    text = response.content.decode()
    data = json.loads(text)
    assert data["profile"]["email"] == CAMILLE["email"]
    plans = Payment.objects.filter(customer=camille).select_related("merchant")
    assert {plan["id"] for plan in data["plans"]} == {plan.public_id for plan in plans}
    assert {plan["merchant"] for plan in data["plans"]} == {p.merchant.legal_name for p in plans}
    first = data["plans"][0]
    assert [row["amount_cents"] for row in first["instalments"]] == [10_000] * 4
    assert first["instalments"][0]["state"] == "paid"
    assert first["instalments"][1]["state_label"] == "Pending"
    assert first["orders"][0]["merchant_reference"] == "A-1001"
    assert first["merchant_sent"]["customer"]["email"] == CAMILLE["email"]
    assert first["merchant_sent"]["shipping_address"]["city"] == "Paris"
    assert first["checkout"]["first_name"] == "Camille"
    decision = first["credit_decisions"][0]
    assert decision["outcome"] == "yes"
    assert decision["decided_by"] == "automated"
    assert decision["reasons"] == [
        "It is your first purchase with Tranche.",
        "You paid your previous plans on time.",
    ]
    assert first["verification"]["phone_checks"][0]["phone"] == CAMILLE["phone"]
    assert data["cards"] and data["cards"][0]["last4"] == "0006"
    assert data["support_requests"][0]["message"] == "Where is my parcel?"
    assert any("payment" in row["subject"].lower() for row in data["emails_sent"])
    assert data["sms_sent"][0]["to"] == CAMILLE["phone"]
    assert data["sign_ins"][0]["channel"] == "email"
    # Nobody else's data, and never a card token.
    assert DOMINIQUE["email"] not in text
    assert DOMINIQUE["phone"] not in text
    for token in Card.objects.values_list("processor_token", flat=True):
        assert token not in text
    assert "processor_token" not in text


def test_the_export_is_a_fixed_number_of_queries_however_many_plans(
    camille, shop, django_assert_max_num_queries
):
    # 14 for the plans and messages, 4 for the Tranche card (cards, their purchases and
    # the purchases' plans, decisions).
    with django_assert_max_num_queries(18):
        few = customer_data(camille)
    for day in range(3):
        plan_for(shop, CAMILLE, when=BOUGHT + timedelta(days=2 + day))

    with django_assert_max_num_queries(18):
        many = customer_data(camille)

    assert len(few["plans"]) == 2
    assert len(many["plans"]) == 5


def test_the_pdf_download_is_a_pdf_of_my_data_in_my_language(client, camille):
    sign_in(client, camille, when=NOW)

    response = client.get(reverse("portal:export-pdf"), **EN)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].endswith('tranche-data-2026-11-23.pdf"')
    assert response.content.startswith(b"%PDF-")
    with translation.override("en"):
        text = document_text(customer_data_document(camille, now=NOW))
    assert "Your data at Tranche" in text
    assert "camille.martin@example.com" in text
    assert "It is your first purchase with Tranche." in text
    assert "A-1001" in text
    with translation.override("fr"):
        french = document_text(customer_data_document(camille, now=NOW))
        assert gettext("Your payments") in french
        assert "23 novembre 2026" in french


def document_text(document) -> str:
    lines = []
    for page in document.pages:
        for box in page._page_box.descendants(placeholders=True):
            if type(box).__name__ == "LineBox":
                lines.append(
                    "".join(child.text for child in box.descendants() if hasattr(child, "text"))
                )
    return "\n".join(lines)


def test_downloads_need_a_signed_in_customer(client, camille):
    for name in ("portal:export-json", "portal:export-pdf", "portal:data"):
        response = client.get(reverse(name))

        assert response.status_code == 302
        assert response["Location"].startswith(reverse("portal:sign-in"))


def test_the_data_page_offers_every_right(client, camille):
    sign_in(client, camille, when=NOW)

    page = client.get(reverse("portal:data"), **EN)

    assert page.status_code == 200
    for name in ("export-json", "export-pdf", "correction", "deletion", "decisions", "privacy"):
        assert reverse(f"portal:{name}") in page.text


# --- correction ---------------------------------------------------------------------------


def test_a_correction_becomes_a_ticket_with_its_emails_once(client, camille):
    sign_in(client, camille, when=NOW)
    body = {"message": "My last name is Martin-Dupont."}

    first = client.post(reverse("portal:correction"), body, **EN)
    again = client.post(reverse("portal:correction"), body, **EN)  # a double click

    assert first.status_code == again.status_code == 303
    assert first["Location"] == reverse("portal:data")
    ticket = SupportRequest.objects.get(kind="correction")
    assert ticket.customer == camille
    assert ticket.status == "open"
    assert ticket.message == "My last name is Martin-Dupont."
    assert ticket.name == "Camille Martin"
    keys = set(OutgoingEmail.objects.values_list("key", flat=True))
    assert {f"support:{ticket.public_id}:received", f"support:{ticket.public_id}:notice"} <= keys
    page = client.get(reverse("portal:data"), **EN)
    assert ticket.public_id in page.text


def test_a_correction_needs_a_message(client, camille):
    sign_in(client, camille, when=NOW)

    response = client.post(reverse("portal:correction"), {"message": "  "}, **EN)

    assert response.status_code == 400
    assert not SupportRequest.objects.filter(kind="correction").exists()


# --- deletion -----------------------------------------------------------------------------


def test_deletion_asks_for_a_confirmation_first(client, camille):
    paid_off(camille)
    sign_in(client, camille, when=NOW)

    asked = client.get(reverse("portal:deletion"), **EN)
    unconfirmed = client.post(reverse("portal:deletion"), {"action": "delete"}, **EN)

    assert asked.status_code == 200
    assert "This cannot be undone." in asked.text
    assert unconfirmed.status_code == 400
    assert "Please tick the box to confirm." in unconfirmed.text
    assert Customer.objects.get(pk=camille.pk).erased_at is None


def test_deletion_with_no_plan_open_erases_me_keeps_what_the_law_keeps_and_signs_me_out(
    client, camille, django_capture_on_commit_callbacks
):
    paid_off(camille)
    sign_in(client, camille, when=NOW)
    payments = list(Payment.objects.filter(customer=camille).order_by("pk"))
    postings = Posting.objects.count()
    tokens = list(Card.objects.filter(customer=camille).values_list("processor_token", flat=True))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("portal:deletion"), {"action": "delete", "confirm": "on"}, **EN
        )

    assert response.status_code == 200
    assert "Your data has been deleted" in response.text
    customer = Customer.objects.get(pk=camille.pk)
    assert customer.erased_at == NOW
    assert customer.email == f"erased-{camille.public_id}@invalid"
    assert (customer.first_name, customer.last_name, customer.phone) == ("", "", "")
    assert customer.birth_date is None and customer.phone_verified_at is None
    for checkout in Checkout.objects.filter(payment__customer=camille):
        assert (checkout.first_name, checkout.last_name, checkout.email, checkout.phone) == (
            ("", "", "", "")
        )
        assert checkout.address == {} and checkout.ip_address is None
        assert checkout.device_id == "" and checkout.birth_date is None
    # Kept: payments, instalments, the ledger, the merchant's own copy of the order.
    assert Payment.objects.filter(customer=camille).count() == len(payments)
    assert Instalment.objects.filter(payment__customer=camille).count() == 8
    assert Posting.objects.count() == postings
    assert payments[0].customer_data["email"] == CAMILLE["email"]
    assert Payment.objects.get(pk=payments[0].pk).customer_data["email"] == CAMILLE["email"]
    ticket = SupportRequest.objects.get(kind="deletion")
    assert ticket.status == "done" and ticket.handled_at == NOW
    assert (
        OutgoingEmail.objects.get(key=f"support:{ticket.public_id}:received").to
        == (CAMILLE["email"])
    )
    erased = PaymentEvent.objects.filter(kind="customer_erased")
    assert sorted(erased.values_list("payment_id", flat=True)) == [p.pk for p in payments]
    # The cards can never be charged again.
    assert not Card.objects.filter(customer=camille, detached_at__isnull=True).exists()
    assert all(
        card.scenario.startswith("detached")
        for card in SandboxCard.objects.filter(token__in=tokens)
    )
    # Signed out, for good.
    after = client.get(reverse("portal:data"))
    assert after.status_code == 302
    assert after["Location"].startswith(reverse("portal:sign-in"))


def test_a_detached_card_of_an_erased_customer_is_declined(
    camille, django_capture_on_commit_callbacks
):
    paid_off(camille)
    token = Card.objects.filter(customer=camille).values_list("processor_token", flat=True)[0]

    with django_capture_on_commit_callbacks(execute=True):
        deletion_request(customer=camille, now=NOW)
    result: ChargeResult = SandboxProcessor().charge(
        token=token,
        amount_cents=1000,
        idempotency_key="after-erasure",
        livemode=False,
        merchant_initiated=True,
    )

    assert not result.succeeded
    with pytest.raises(AlreadyErased):
        deletion_request(customer=camille, now=NOW)


@pytest.mark.django_db(transaction=True)  # each thread commits on its own connection
def test_deletion_asked_from_many_tabs_at_once_is_done_once(camille):
    paid_off(camille)
    start = threading.Barrier(THREADS)
    outcomes: list[object] = [None] * THREADS

    def ask(index: int) -> None:
        try:
            start.wait()
            outcomes[index] = deletion_request(customer=camille, now=NOW)
        except AlreadyErased as refusal:
            outcomes[index] = refusal
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    done = [outcome for outcome in outcomes if isinstance(outcome, SupportRequest)]
    assert len(done) == 1
    assert all(isinstance(o, AlreadyErased) for o in outcomes if o is not done[0])
    assert SupportRequest.objects.filter(kind="deletion").count() == 1
    assert PaymentEvent.objects.filter(kind="customer_erased").count() == 2
    assert not Card.objects.filter(customer=camille, detached_at__isnull=True).exists()


def test_deletion_is_refused_and_explained_while_a_plan_is_open(client, camille):
    sign_in(client, camille, when=NOW)

    response = client.post(reverse("portal:deletion"), {"action": "delete", "confirm": "on"}, **EN)

    assert response.status_code == 200
    assert "We cannot delete your data yet" in response.text
    # The last instalment still due: the second plan's (bought a day later).
    assert "February 11, 2027" in response.text
    assert "L123-22" in response.text
    assert Customer.objects.get(pk=camille.pk).erased_at is None
    assert Customer.objects.get(pk=camille.pk).email == CAMILLE["email"]
    assert not SupportRequest.objects.filter(kind="deletion").exists()
    assert not PaymentEvent.objects.filter(kind="customer_erased").exists()


def test_a_refused_deletion_can_still_be_sent_to_support(client, camille):
    sign_in(client, camille, when=NOW)

    response = client.post(
        reverse("portal:deletion"), {"action": "support", "message": "Please call me."}, **EN
    )

    assert response.status_code == 303
    ticket = SupportRequest.objects.get(kind="deletion")
    assert ticket.status == "open"
    assert ticket.message == "Please call me."
    assert Customer.objects.get(pk=camille.pk).erased_at is None


def test_a_payment_waiting_at_checkout_also_holds_the_deletion(shop, camille):
    paid_off(camille)
    waiting = payment_create_for(shop, customer=dict(CAMILLE), now=NOW - timedelta(minutes=5))

    with pytest.raises(DeletionNotPossible) as refused:
        deletion_request(customer=camille, now=NOW)

    assert refused.value.blockers.waiting == [Payment.objects.get(pk=waiting.pk)]
    assert refused.value.blockers.open_plans == []
    # Once it expired, nothing holds it.
    later = waiting.expires_at + timedelta(seconds=1)
    assert not data_rights.deletion_blockers(camille, now=later)


def test_a_plan_in_default_is_a_debt_that_holds_the_deletion(camille):
    paid_off(camille)
    plan = Payment.objects.filter(customer=camille).first()
    Payment.objects.filter(pk=plan.pk).update(state="default")
    plan.instalments.filter(number=4).update(state="claimed", due_date=date(2026, 10, 1))

    blockers = data_rights.deletion_blockers(camille, now=NOW)

    assert [payment.pk for payment in blockers.open_plans] == [plan.pk]


# --- decisions ----------------------------------------------------------------------------


def test_the_decisions_page_shows_each_decision_its_reasons_and_the_explanation(
    client, camille, shop
):
    refused = payment_create_for(shop, customer=dict(CAMILLE), now=NOW - timedelta(hours=1))
    CreditDecision.objects.create(
        payment=refused,
        outcome="no",
        score=-80,
        reasons=[{"code": "late_now", "message": "", "points": -80, "category": "history"}],
        rules_version="2026-10",
        created_at=NOW - timedelta(hours=1),
    )
    sign_in(client, camille, when=NOW)

    page = client.get(reverse("portal:decisions"), **EN)

    assert page.status_code == 200
    assert "An instalment of another plan is late." in page.text  # the refused one
    assert "You paid your previous plans on time." in page.text  # the accepted one
    assert f"/checkout/{refused.public_id}/explanation?t=" in page.text
    assert f'data-testid="contest-{refused.public_id}"' in page.text


def test_contesting_a_decision_asks_a_person_to_review_it(client, camille):
    payment = CreditDecision.objects.get(payment__customer=camille).payment
    sign_in(client, camille, when=NOW)

    response = client.post(
        reverse("portal:decisions"),
        {"payment": payment.public_id, "message": "I always pay on time."},
        **EN,
    )

    assert response.status_code == 303
    review = DecisionReview.objects.get(payment=payment)
    assert review.kind == "contested" and review.status == "open"
    assert review.customer_message == "I always pay on time."
    page = client.get(reverse("portal:decisions"), **EN)
    assert "A person will review this decision." in page.text
    assert 'data-testid="review-open"' in page.text


def test_contesting_another_customers_payment_is_not_found(client, camille, dominique):
    theirs = Payment.objects.get(customer=dominique)
    CreditDecision.objects.create(
        payment=theirs, outcome="yes", score=10, rules_version="2026-10", created_at=BOUGHT
    )
    sign_in(client, camille, when=NOW)

    response = client.post(reverse("portal:decisions"), {"payment": theirs.public_id})

    assert response.status_code == 404
    assert not DecisionReview.objects.exists()
    with pytest.raises(PaymentNotFound):
        contest_decision(customer=camille, payment_id=theirs.public_id, message="", now=NOW)


def test_contesting_a_payment_without_a_decision_says_so(client, camille):
    undecided = Payment.objects.filter(customer=camille, decisions__isnull=True).first()
    sign_in(client, camille, when=NOW)

    response = client.post(reverse("portal:decisions"), {"payment": undecided.public_id}, **EN)

    assert response.status_code == 400
    assert "There is no decision on this payment to review." in response.text
    assert not DecisionReview.objects.exists()
