"""Every branch of the credit decision on the hosted checkout, in a real Chromium.

yes straight from 3-D Secure (a returning customer), maybe -> phone -> yes (a first-time
customer), maybe -> identity document -> yes, maybe -> bank data -> no -> pay in full, an
operator approving a payment left waiting, and a refused customer asking for a human review.
Test-mode emails steer the first decision (apps/payments/decision.py). Each key page is kept
in var/screenshots (``decision_*.png``) for people to look at.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from apps.payments.models import (
    Charge,
    Checkout,
    CreditDecision,
    DecisionReview,
    Payment,
    SandboxThreeDS,
)
from apps.payments.services.reviews import reviews_queue_waiting
from apps.verification import identity_sandbox
from apps.verification.models import BankCheck, IdentityCheck, PhoneCheck
from tests.browser.conftest import screenshot
from tests.conftest import make_shop
from tests.payments.builders import payment_create_for
from tests.payments.test_checkout import finish, pay_up_to_code

pytestmark = pytest.mark.django_db(transaction=True)  # the live server reads commits

CHALLENGE = "4970100000000014"
FRICTIONLESS = "4970100000000006"
IDENTITY_FILES = Path(__file__).resolve().parents[2] / "docs" / "test-files" / "identity"
# The sandbox ID provider answers after PROCESSING_SECONDS; the checking page refreshes
# every 2 s. A few seconds of processing make sure the checking page is seen first.
PROCESSING_SECONDS = 4
IDENTITY_WAIT_MS = 20_000
CONFIRMED = "Thank you, your payment is confirmed"


@pytest.fixture
def shop(live_server, settings):
    """A merchant whose payment links (``url``, 3-D Secure and bank returns) are on the live
    server; the confirmation page stays put long enough to be checked (no countdown)."""
    settings.PUBLIC_BASE_URL = live_server.url
    settings.CHECKOUT_REDIRECT_SECONDS = 600
    return make_shop()


@pytest.fixture
def customer(page, live_server):
    """The customer's browser, in English."""
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])
    return page


@pytest.fixture
def media(settings, tmp_path):
    """The identity photos go to a folder of this test only."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    return tmp_path / "media"


def checkout_url(live_server, payment: Payment) -> str:
    return live_server.url + reverse("payments:checkout", args=[payment.public_id])


def pay_with(page, *, card: str, email: str | None = None) -> None:
    """Fill the details page (prefilled from the merchant's data) and submit it."""
    expect(page.locator("html")).to_have_attribute("lang", "en")
    if email is not None:
        page.locator("#id_email").fill(email)
    page.locator("#id_card_number").fill(card)
    page.locator("#id_card_expiry").fill("12/30")
    page.locator("#id_card_cvc").fill("123")
    page.locator("#id_birth_date").fill("1990-04-02")
    page.locator("input[name=accept_terms]").check()
    page.get_by_role("button", name=re.compile(r"^Pay the first instalment")).click()


def enter_the_shown_code(page, *, shot: str | None = None) -> None:
    """The phone step: read the code the test-mode banner shows, type it, confirm."""
    expect(page.get_by_role("heading", name="Check your phone")).to_be_visible()
    shown = page.locator("[data-testid=test-code]")
    expect(shown).to_have_text(re.compile(r"^\s*\d{6}\s*$"))
    if shot:
        screenshot(page, shot)
    page.locator("input[name=code]").fill(shown.inner_text().strip())
    page.get_by_role("button", name="Confirm the code").click()


def expect_confirmation(page, *, timeout: float | None = None) -> None:
    expect(page.get_by_role("heading", name=CONFIRMED)).to_be_visible(timeout=timeout)


def journey(payment: Payment) -> list[tuple[str, list[str], str]]:
    decisions = CreditDecision.objects.filter(payment=payment).order_by("created_at", "id")
    return [(d.outcome, d.asks, d.made_by) for d in decisions]


def reverse_review(review: DecisionReview) -> str:
    return reverse("admin:payments_decisionreview_change", args=[review.pk])


def reload(payment: Payment) -> Payment:
    return Payment.objects.get(pk=payment.pk)


def test_a_returning_customer_with_a_verified_phone_goes_from_3d_secure_to_the_confirmation(
    shop, customer, live_server
):
    # An earlier plan, paid through Django's client, proved the customer's phone.
    earlier = payment_create_for(shop)
    client = Client()
    finish(client, pay_up_to_code(client, earlier))
    assert reload(earlier).state == "in_progress"
    assert reload(earlier).customer.phone_verified_at is not None
    payment = payment_create_for(shop)
    assert payment.customer_id == earlier.customer_id

    customer.goto(checkout_url(live_server, payment))
    pay_with(customer, card=CHALLENGE)
    approve = customer.locator("button[name=decision][value=approve]")
    expect(approve).to_be_visible()
    screenshot(customer, "decision_yes_3ds_bank")
    approve.click()

    expect_confirmation(customer)
    expect(customer.locator("main [role=status]")).to_contain_text("The first instalment is paid")
    screenshot(customer, "decision_yes_confirmation")
    payment = reload(payment)
    assert payment.state == "in_progress"
    assert journey(payment) == [("yes", [], "checkout")]
    assert not PhoneCheck.objects.filter(subject=payment.public_id).exists()  # no SMS step
    assert Charge.objects.get(payment=payment).status == "succeeded"


def test_a_first_time_customer_proves_their_phone_and_is_accepted(shop, customer, live_server):
    payment = payment_create_for(shop)

    customer.goto(checkout_url(live_server, payment))
    screenshot(customer, "decision_phone_details")
    pay_with(customer, card=FRICTIONLESS)
    enter_the_shown_code(customer, shot="decision_phone_code")

    expect_confirmation(customer)
    screenshot(customer, "decision_phone_confirmation")
    payment = reload(payment)
    assert payment.state == "in_progress"
    assert journey(payment) == [
        ("maybe", ["phone"], "checkout"),
        ("yes", [], "verification"),
    ]
    assert PhoneCheck.objects.get(subject=payment.public_id).verified_at is not None


def test_an_approved_identity_document_turns_a_maybe_into_a_yes(
    shop, customer, live_server, media, monkeypatch
):
    monkeypatch.setattr(identity_sandbox, "PROCESSING_SECONDS", PROCESSING_SECONDS)
    payment = payment_create_for(shop)

    customer.goto(checkout_url(live_server, payment))
    pay_with(customer, card=FRICTIONLESS, email="lea+maybe_identity@example.com")
    enter_the_shown_code(customer)

    expect(customer.get_by_role("heading", name="One more step")).to_be_visible()
    expect(customer.locator("[data-testid=pay-in-full]")).to_be_visible()
    start = customer.locator("[data-testid=identity-start]")
    expect(start).to_have_text("Verify my identity")
    screenshot(customer, "decision_identity_more_info")
    start.click()

    expect(customer.get_by_role("heading", name="Confirm your identity")).to_be_visible()
    expect(customer.locator("[data-testid=pay-in-full]")).to_be_visible()
    customer.locator("input[name=document]").set_input_files(IDENTITY_FILES / "id-approved.jpg")
    customer.locator("input[name=selfie]").set_input_files(IDENTITY_FILES / "selfie.jpg")
    screenshot(customer, "decision_identity_upload")
    customer.locator("[data-testid=identity-submit]").click()

    expect(customer.get_by_role("heading", name="We are checking your document")).to_be_visible()
    expect(customer.locator("[data-testid=pay-in-full]")).to_be_visible()
    screenshot(customer, "decision_identity_checking")
    # No task worker runs: the page's own refresh pulls the provider's answer.
    expect_confirmation(customer, timeout=IDENTITY_WAIT_MS)
    screenshot(customer, "decision_identity_confirmation")

    payment = reload(payment)
    assert payment.state == "in_progress"
    assert journey(payment) == [
        ("maybe", ["phone", "identity"], "checkout"),
        ("maybe", ["identity"], "verification"),
        ("yes", [], "verification"),
    ]
    check = IdentityCheck.objects.get(subject=payment.public_id)
    assert (check.status, check.names_match, check.birth_date_match) == ("approved", True, True)


def test_bank_data_showing_over_indebtedness_refuses_and_the_customer_pays_in_full(
    shop, customer, live_server
):
    payment = payment_create_for(shop)

    customer.goto(checkout_url(live_server, payment))
    pay_with(customer, card=FRICTIONLESS, email="jp+maybe_bank@example.com")
    enter_the_shown_code(customer)

    expect(
        customer.get_by_role("heading", name="Show that the payments fit your budget")
    ).to_be_visible()
    expect(customer.locator("[data-testid=pay-in-full]")).to_be_visible()
    customer.locator("input[name=consent]").check()
    screenshot(customer, "decision_bank_more_info")
    customer.locator("[data-testid=bank-start]").click()

    overindebted = customer.locator("button[name=profile][value=overindebted]")
    expect(overindebted).to_be_visible()
    assert "/sandbox/bank/" in customer.url
    for profile in ("salaried", "irregular", "gambling", "unavailable"):
        expect(customer.locator(f"button[name=profile][value={profile}]")).to_be_visible()
    expect(customer.get_by_role("button", name="Cancel")).to_be_visible()
    screenshot(customer, "decision_bank_sandbox")
    overindebted.click()

    expect(customer.get_by_role("heading", name="We cannot offer you this plan")).to_be_visible()
    pay_in_full = customer.locator("[data-testid=pay-in-full]")
    expect(pay_in_full).to_have_text("Pay €450.00 now")
    expect(customer.locator("[data-testid=explanation-link]")).to_be_visible()
    screenshot(customer, "decision_bank_refused")
    assert journey(payment) == [
        ("maybe", ["phone", "bank"], "checkout"),
        ("maybe", ["bank"], "verification"),
        ("no", [], "verification"),
    ]
    pay_in_full.click()  # frictionless: 3-D Secure for the whole amount comes straight back

    expect_confirmation(customer)
    expect(customer.locator("main [role=status]")).to_have_text("The whole amount is paid.")
    screenshot(customer, "decision_bank_paid_in_full")
    payment = reload(payment)
    assert payment.state == "paid"
    assert payment.paid_in_full_fallback
    charge = Charge.objects.get(payment=payment)
    assert (charge.kind, charge.status, charge.amount) == (
        Charge.Kind.PAY_IN_FULL,
        "succeeded",
        payment.purchase_amount,
    )
    three_ds = Checkout.objects.get(payment=payment).three_ds_reference
    assert SandboxThreeDS.objects.get(reference=three_ds).amount_cents == 45_000
    assert BankCheck.objects.get(subject=payment.public_id).status == "analysed"


def test_an_operator_approves_a_waiting_payment_and_the_customer_comes_back_to_pay(
    shop, customer, browser, live_server, django_user_model, settings
):
    settings.DECISION_REVIEW_AFTER_MINUTES = 60
    django_user_model.objects.create_superuser("ops", "ops@tranche.example", "operator-pass")
    payment = payment_create_for(shop)
    customer.goto(checkout_url(live_server, payment))
    pay_with(customer, card=FRICTIONLESS, email="lea+maybe_bank@example.com")
    enter_the_shown_code(customer)
    expect(customer.locator("[data-testid=bank-start]")).to_be_visible()  # and left there

    assert reviews_queue_waiting(now=timezone.now() + timedelta(minutes=61)) == 1
    review = DecisionReview.objects.get(payment=payment)

    operator_context = browser.new_context(viewport={"width": 1280, "height": 900})
    operator_context.add_cookies(
        [{"name": "django_language", "value": "en", "url": live_server.url}]
    )
    operator = operator_context.new_page()
    operator.set_default_timeout(15_000)
    try:
        operator.goto(f"{live_server.url}/admin/login/")
        operator.locator("#id_username").fill("ops")
        operator.locator("#id_password").fill("operator-pass")
        operator.locator("input[type=submit]").click()
        expect(operator.locator("#user-tools")).to_contain_text("ops")

        queue = reverse("admin:payments_decisionreview_changelist")
        operator.goto(live_server.url + queue)
        row = operator.locator("#result_list tbody tr")
        expect(row).to_have_count(1)
        expect(row).to_contain_text(payment.public_id)
        expect(row).to_contain_text("Waiting on more information")
        screenshot(operator, "decision_review_queue")
        # The row's own link to the review is swallowed by the payment's link (nested <a>,
        # see test_the_review_queue_links_each_row_to_its_review): open the review directly.
        operator.goto(live_server.url + reverse_review(review))

        expect(operator.locator("#content")).to_contain_text(payment.public_id)
        screenshot(operator, "decision_review_page")
        operator.locator(".object-tools").get_by_role("link", name="Approve").click()

        expect(operator.get_by_text("The payment is accepted")).to_be_visible()
        screenshot(operator, "decision_review_confirm")
        operator.locator("textarea[name=note]").fill("Payslips sent by email: stable income.")
        operator.locator("#content input[type=submit][value=Approve]").click()

        expect(operator.locator(".messagelist")).to_contain_text("Approved")
        screenshot(operator, "decision_review_approved")
    finally:
        operator_context.close()

    review.refresh_from_db()
    assert (review.status, review.operator_note) == (
        "approved",
        "Payslips sent by email: stable income.",
    )
    assert reload(payment).state == "scored_yes"
    customer.reload()
    expect(customer.get_by_role("heading", name="Your plan is accepted")).to_be_visible()
    screenshot(customer, "decision_review_customer_accepted")
    customer.get_by_role("button", name=re.compile(r"^Pay the first instalment")).click()

    expect_confirmation(customer)
    payment = reload(payment)
    assert payment.state == "in_progress"
    assert journey(payment)[-1] == ("yes", [], "operator")
    assert Charge.objects.get(payment=payment).status == "succeeded"


def test_a_refused_customer_reads_the_reasons_and_asks_for_a_human_review(
    shop, customer, live_server
):
    payment = payment_create_for(shop)

    customer.goto(checkout_url(live_server, payment))
    pay_with(customer, card=FRICTIONLESS, email="c+scored_no@example.com")
    expect(customer.get_by_role("heading", name="We cannot offer you this plan")).to_be_visible()
    expect(customer.locator("[data-testid=pay-in-full]")).to_be_visible()
    screenshot(customer, "decision_no_refused")
    customer.locator("[data-testid=explanation-link]").click()

    expect(customer.get_by_role("heading", name="Why this decision")).to_be_visible()
    reasons = customer.locator("[data-testid=reasons]")
    expect(reasons).to_contain_text("Outcome chosen by the test email address.")
    screenshot(customer, "decision_no_explanation")
    customer.locator("textarea[name=message]").fill("I have a stable job and no other credit.")
    customer.locator("[data-testid=request-review]").click()

    expect(customer.locator("[data-testid=review-requested]")).to_contain_text(
        "request for a human review was received"
    )
    screenshot(customer, "decision_no_review_requested")
    assert journey(payment)[0][0] == "no"
    review = DecisionReview.objects.get(payment=payment)
    assert (review.kind, review.status, review.customer_message) == (
        "contested",
        "open",
        "I have a stable job and no other credit.",
    )
    assert reload(payment).state == "scored_no"


def test_the_review_queue_links_each_row_to_its_review(
    shop, browser, live_server, django_user_model, settings
):
    settings.DECISION_REVIEW_AFTER_MINUTES = 60
    django_user_model.objects.create_superuser("ops", "ops@tranche.example", "operator-pass")
    payment = payment_create_for(shop)
    client = Client(HTTP_COOKIE="django_language=en")
    finish(client, pay_up_to_code(client, payment, email="lea+maybe_bank@example.com"))
    assert reviews_queue_waiting(now=timezone.now() + timedelta(minutes=61)) == 1
    review = DecisionReview.objects.get(payment=payment)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])
    operator = context.new_page()
    try:
        operator.goto(f"{live_server.url}/admin/login/?next={reverse_review(review)}")
        operator.locator("#id_username").fill("ops")
        operator.locator("#id_password").fill("operator-pass")
        operator.locator("input[type=submit]").click()
        expect(operator.locator("#content")).to_contain_text(payment.public_id)

        operator.goto(live_server.url + reverse("admin:payments_decisionreview_changelist"))

        to_review = operator.locator(f"#result_list a[href='{reverse_review(review)}']")
        expect(to_review).to_have_count(1)
        expect(to_review).to_be_visible()  # an operator can click through to the review
    finally:
        context.close()
