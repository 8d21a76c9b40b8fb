"""Signing in to the customer portal in a real Chromium: type the email, type the code the
customer received, land on the plans, open a plan and download a receipt; screenshots of
each page, at desktop and phone widths (var/screenshots/portal-*.png)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.common.emails import email_content
from apps.common.models import OutgoingEmail
from apps.schedules.models import Receipt, SignInCode
from apps.schedules.receipts import receipt_render
from apps.schedules.services.debits import debit_run
from tests.browser.conftest import screenshot
from tests.conftest import make_shop
from tests.portal.helpers import CAMILLE, plan_for
from tests.refunds.builders import refunded

pytestmark = pytest.mark.django_db(transaction=True)  # the live server reads commits

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def camilles_plans(settings, tmp_path):
    """Camille's two test-mode plans: one at a furniture shop with its second instalment
    debited (a receipt) and a partial refund (a credit note), one just bought elsewhere."""
    settings.STORAGES = {
        **settings.STORAGES,
        "receipts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "allow_overwrite": True},
        },
    }
    now = timezone.now()
    furniture = make_shop(legal_name="Maison Lumière")
    books = make_shop(legal_name="Librairie des Quais")
    older = plan_for(
        furniture, CAMILLE, when=now - timedelta(days=35), order={"merchant_reference": "ML-2087"}
    )
    assert debit_run(now=now).succeeded == 1
    receipt = Receipt.objects.get(payment=older, instalment__number=2)
    receipt_render(number=receipt.number, now=now)
    refund = refunded(older, amount=5_000, when=now)
    receipt_render(number=refund.credit_note_number, now=now)
    newer = plan_for(
        books, CAMILLE, when=now - timedelta(days=2), amount=24_000, installments_count=3
    )
    return older, newer, receipt


def test_a_customer_signs_in_by_code_and_opens_a_plan(page, live_server, camilles_plans):
    older, newer, receipt = camilles_plans

    page.goto(f"{live_server.url}/portal/sign-in?mode=test")
    expect(page.locator(".test-banner")).to_be_visible()
    page.fill("#id_identifier", "Camille.Martin@example.com")
    screenshot(page, "portal-sign-in")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/portal/sign-in/code")
    row = SignInCode.objects.latest("created_at", "pk")
    assert row.customer_id == older.customer_id
    text, _html = email_content(OutgoingEmail.objects.get(key=f"signin:{row.public_id}"))
    code = re.search(r"\b(\d{6})\b", text).group(1)
    expect(page.get_by_test_id("test-code")).to_have_text(code)
    page.fill("#id_code", code)
    screenshot(page, "portal-sign-in-code")
    page.click(".code-form button[type=submit]")

    page.wait_for_url(f"{live_server.url}/portal/")
    cards = page.get_by_test_id("plan-card")
    expect(cards).to_have_count(2)
    expect(cards.nth(0)).to_contain_text("Librairie des Quais")
    expect(cards.nth(0)).to_have_attribute("href", f"/portal/plans/{newer.public_id}")
    expect(cards.nth(0)).to_contain_text("240,00\xa0€")
    expect(cards.nth(1)).to_contain_text("Maison Lumière")
    screenshot(page, "portal-plans")

    cards.nth(1).click()
    page.wait_for_url(f"{live_server.url}/portal/plans/{older.public_id}")
    expect(page.locator("#plan-title")).to_have_text("Maison Lumière")
    expect(page.get_by_test_id("instalment-2")).to_contain_text(receipt.number)
    expect(page.get_by_test_id("instalment-4")).to_contain_text("50,00\xa0€")
    expect(page.locator("#receipts tbody tr")).to_have_count(2)
    with page.expect_download() as download:
        page.get_by_test_id("instalment-2").locator("a.receipt-link").click()
    assert download.value.suggested_filename == f"{receipt.number}.pdf"
    screenshot(page, "portal-plan")
    page.set_viewport_size(PHONE)
    screenshot(page, "portal-plan-mobile")
    page.goto(f"{live_server.url}/portal/")
    screenshot(page, "portal-plans-mobile")

    page.get_by_role("button", name=re.compile("Sign out|Se déconnecter")).click()
    page.wait_for_url(f"{live_server.url}/portal/sign-in")
    page.goto(f"{live_server.url}/portal/plans/{older.public_id}")
    assert page.url.startswith(f"{live_server.url}/portal/sign-in?next=")
