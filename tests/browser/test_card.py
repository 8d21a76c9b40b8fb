"""The Tranche card in a real Chromium, as issue 12's "done when" says: an account created by
phone (the SMS code read from the sandbox outbox), the profile filled (its email confirmed by
the code emailed to it), a funding card added
through the 3-D Secure challenge on the sandbox bank's page, the virtual card issued, its
details shown, a 150 € purchase made from the card page through the sandbox network, seen
as a 3x plan (3 instalments, the first paid), and its second instalment postponed.
Screenshots: var/screenshots/card-*.png (and -phone variants)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import translation
from django.utils.translation import gettext
from playwright.sync_api import expect

from apps.common.emails import email_content
from apps.common.models import OutgoingEmail
from apps.issuing.models import CardAuthorisation, FundingCardSetup, VirtualCard
from apps.payments.emails import date_display
from apps.payments.models import Customer, Payment
from apps.schedules.models import SignInCode
from apps.verification.models import SmsMessage
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.django_db(transaction=True)  # the live server reads commits

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
CHALLENGE_CARD = "4970100000000014"


def french(text: str) -> str:
    """What the pages say in French (the browser asks for French)."""
    with translation.override("fr"):
        return gettext(text)


def in_french(day) -> str:
    with translation.override("fr"):
        return date_display(day)


def fits_a_phone(page, name: str) -> None:
    page.set_viewport_size(PHONE)
    screenshot(page, f"{name}-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1, name
    page.set_viewport_size(DESKTOP)


@pytest.fixture
def portal(settings, live_server):
    settings.PUBLIC_BASE_URL = live_server.url  # where the bank sends the browser back
    return live_server


def test_a_new_customer_gets_the_card_and_pays_a_purchase_in_3(page, portal):
    base = portal.url

    # An account by phone: the code is in the sandbox SMS outbox.
    page.goto(f"{base}/portal/sign-up?mode=test")
    expect(page.locator(".test-banner")).to_be_visible()
    page.fill("#id_phone", "06 12 34 56 78")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/portal/sign-up/code")
    sms = SmsMessage.objects.filter(phone="+33612345678").latest("created_at", "pk")
    code = re.search(r"\b(\d{6})\b", sms.text).group(1)
    page.fill("#id_code", code)
    page.click(".code-form button[type=submit]")

    # The profile the card needs.
    page.wait_for_url(f"{base}/portal/profile")
    page.fill("#id_first_name", "Léa")
    page.fill("#id_last_name", "Bernard")
    page.fill("#id_birth_date", "1990-04-12")
    page.fill("#id_email", "lea.bernard@example.com")
    page.fill("#id_line1", "12 rue de la Paix")
    page.fill("#id_postal_code", "75002")
    page.fill("#id_city", "Paris")
    page.click("main form button[type=submit]")

    # The new email is saved once the code sent to it is typed (read from the email outbox).
    page.wait_for_url(f"{base}/portal/profile/email")
    row = SignInCode.objects.filter(
        purpose=SignInCode.Purpose.EMAIL, destination="lea.bernard@example.com"
    ).latest("created_at", "pk")
    text, _html = email_content(OutgoingEmail.objects.get(key=f"email-check:{row.public_id}"))
    code = re.search(r"\b(\d{6})\b", text).group(1)
    screenshot(page, "card-profile-email")
    fits_a_phone(page, "card-profile-email")
    page.fill("#id_code", code)
    page.click(".code-form button[type=submit]")

    # The checklist: everything but the funding card.
    page.wait_for_url(f"{base}/portal/card/")
    expect(page.locator(".messages .success")).to_contain_text(french("Your email is confirmed."))
    expect(page.get_by_test_id("check-phone")).to_have_class("done")
    expect(page.get_by_test_id("check-profile")).to_have_class("done")
    expect(page.get_by_test_id("check-age")).to_have_class("done")
    expect(page.get_by_test_id("check-funding")).not_to_have_class("done")
    screenshot(page, "card-checklist")
    fits_a_phone(page, "card-checklist")
    customer = Customer.objects.get(phone="+33612345678", livemode=False)
    assert customer.first_name == "Léa" and customer.phone_verified_at is not None
    assert customer.email == "lea.bernard@example.com"

    # The funding card, through the bank's 3-D Secure challenge.
    page.get_by_test_id("check-funding").locator('a[href="/portal/card/funding"]').click()
    page.wait_for_url(f"{base}/portal/card/funding")
    page.fill("#id_card_number", CHALLENGE_CARD)
    page.fill("#id_card_expiry", "12/35")
    page.fill("#id_card_cvc", "123")
    screenshot(page, "card-funding")
    fits_a_phone(page, "card-funding")
    page.click("main form button[type=submit]")
    approve = page.locator("button[name=decision][value=approve]")
    expect(approve).to_be_visible()
    assert "/sandbox/acs/" in page.url
    approve.click()
    page.wait_for_url(f"{base}/portal/card/")
    expect(page.locator(".messages .success")).to_contain_text("•••• 0014")
    expect(page.get_by_test_id("check-funding")).to_have_class("done")
    setup = FundingCardSetup.objects.get(customer=customer)
    assert setup.status == "authenticated"

    # The card.
    page.click('form[action="/portal/card/request"] button[type=submit]')
    page.wait_for_url(f"{base}/portal/card/")
    card = VirtualCard.objects.get(customer=customer)
    expect(page.get_by_test_id("card-number")).to_have_text(f"•••• •••• •••• {card.last4}")
    expect(page.get_by_test_id("funding")).to_contain_text("•••• 0014")
    expect(page.get_by_test_id("no-purchases")).to_be_visible()
    screenshot(page, "card-issued")
    fits_a_phone(page, "card-issued")

    # Its details, on request, never cached.
    with page.expect_response(lambda r: r.url.endswith("/portal/card/details")) as shown:
        page.click('form[action="/portal/card/details"] button[type=submit]')
    assert "no-store" in shown.value.headers["cache-control"]
    number = page.get_by_test_id("number")
    expect(number).to_have_text(re.compile(rf"^\d{{4}} \d{{4}} \d{{4}} {card.last4}$"))
    expect(page.get_by_test_id("cvc")).to_have_text(re.compile(r"^\d{3}$"))
    screenshot(page, "card-details")
    fits_a_phone(page, "card-details")
    page.get_by_test_id("hide").click()
    page.wait_for_url(f"{base}/portal/card/")

    # A purchase of 150 € at a shop, from the card page (sandbox network).
    form = page.get_by_test_id("sandbox-form")
    form.locator("#id_shop").fill("Fnac Paris")
    form.locator("#id_amount").fill("150")
    form.locator("#id_category").select_option("5732")
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"{base}/portal/card/")
    success = page.locator(".messages .success")
    expect(success).to_contain_text("Fnac Paris")
    expect(page.get_by_test_id("purchase")).to_have_count(1)
    expect(page.get_by_test_id("purchase")).to_contain_text("150,00")
    screenshot(page, "card-purchase")
    fits_a_phone(page, "card-purchase")
    purchase = CardAuthorisation.objects.get(card=card)
    assert purchase.state == "approved" and purchase.merchant_category == "5732"
    plan = purchase.payment
    assert plan.origin == Payment.Origin.CARD and plan.state == "in_progress"

    # The 3x plan: three instalments, the first paid.
    success.locator("a").click()
    page.wait_for_url(f"{base}/portal/plans/{plan.public_id}")
    expect(page.locator("#plan-title")).to_have_text(
        french("Tranche card · %(shop)s") % {"shop": "Fnac Paris"}
    )
    expect(page.locator("[data-testid^=instalment-]")).to_have_count(3)
    expect(page.get_by_test_id("instalment-1")).to_contain_text(french("Paid"))
    expect(page.get_by_test_id("instalment-1")).to_contain_text("50,00")
    expect(page.get_by_test_id("instalment-2")).to_contain_text(french("Scheduled"))
    screenshot(page, "card-plan")
    fits_a_phone(page, "card-plan")

    # Its second instalment postponed, the new date on the plan.
    second = plan.instalments.get(number=2)
    new_date = second.due_date + timedelta(days=10)
    page.get_by_test_id("instalment-2").locator('a[href$="/instalments/2/postpone"]').click()
    page.wait_for_url("**/instalments/2/postpone")
    page.fill("#id_date", new_date.isoformat())
    page.click("form.once button[type=submit]")
    page.locator("[data-testid=confirm-form] button[type=submit]").click()
    page.wait_for_url(f"{base}/portal/plans/{plan.public_id}")
    expect(page.locator(".messages .success")).to_contain_text(in_french(new_date))
    expect(page.get_by_test_id("instalment-2")).to_contain_text(in_french(new_date))
    screenshot(page, "card-plan-postponed")
    second.refresh_from_db()
    assert second.due_date == new_date
