"""My data, help and privacy in a real Chromium: the customer downloads a copy of their
data (JSON and PDF) from "My data"; screenshots of the pages (var/screenshots/portal-*.png)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext
from playwright.sync_api import expect

from apps.payments.models import CreditDecision, Customer
from tests.browser.conftest import screenshot
from tests.conftest import make_shop
from tests.portal.helpers import CAMILLE, browser_sign_in, plan_for

pytestmark = pytest.mark.django_db(transaction=True)  # the live server reads commits

PHONE = {"width": 390, "height": 844}


def french(text: str) -> str:
    """What the pages say in French (the browser asks for French)."""
    with translation.override("fr"):
        return gettext(text)


@pytest.fixture
def camille():
    now = timezone.now()
    plan = plan_for(make_shop(), CAMILLE, when=now - timedelta(days=3))
    CreditDecision.objects.create(
        payment=plan,
        outcome="yes",
        score=35,
        reasons=[{"code": "paid_plans", "message": "", "points": 10, "category": "history"}],
        rules_version="2026-10",
        created_at=now - timedelta(days=3),
    )
    plan.customer.plan = plan
    return plan.customer


def test_a_customer_downloads_a_copy_of_their_data(page, live_server, camille):
    browser_sign_in(page, live_server.url, camille, when=timezone.now())

    page.goto(f"{live_server.url}/portal/data")
    expect(page.locator("h1")).to_have_text(french("My data"))
    expect(page.locator('.portal-nav a[aria-current="page"]')).to_have_text(french("My data"))
    screenshot(page, "portal-data")

    with page.expect_download() as json_download:
        page.click("[data-testid=export-json]")
    download = json_download.value
    assert download.suggested_filename.startswith("tranche-data-")
    assert download.suggested_filename.endswith(".json")
    data = json.loads(Path(download.path()).read_text(encoding="utf-8"))
    assert data["language"] == "fr"
    assert data["profile"]["email"] == CAMILLE["email"]
    assert [plan["id"] for plan in data["plans"]] == [camille.plan.public_id]
    assert data["plans"][0]["credit_decisions"][0]["reasons"] == [
        french("You paid your previous plans on time.")
    ]

    with page.expect_download() as pdf_download:
        page.click("[data-testid=export-pdf]")
    pdf = Path(pdf_download.value.path()).read_bytes()
    assert pdf_download.value.suggested_filename.endswith(".pdf")
    assert pdf.startswith(b"%PDF-")

    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/portal/data")
    screenshot(page, "portal-data-phone")


def test_help_and_privacy_pages(page, live_server, camille):
    browser_sign_in(page, live_server.url, camille, when=timezone.now())

    page.goto(f"{live_server.url}/portal/help")
    expect(page.locator('.portal-nav a[aria-current="page"]')).to_have_text(french("Help"))
    page.click("a[href='#postpone']")
    expect(page.locator("#postpone")).to_be_in_viewport()
    screenshot(page, "portal-help")

    page.goto(f"{live_server.url}/privacy")
    expect(page.locator("h1")).to_be_visible()
    expect(page.locator("#retention + table")).to_contain_text("L123-22")
    screenshot(page, "portal-privacy")

    page.goto(f"{live_server.url}/portal/decisions")
    page.click("summary")
    page.fill("textarea[name=message]", "Je voudrais comprendre.")
    page.click("[data-testid^=contest-]")
    expect(page.locator("[data-testid=review-open]")).to_be_visible()
    screenshot(page, "portal-decisions")


def test_a_deletion_is_confirmed_first_then_explained_while_a_plan_is_open(
    page, live_server, camille
):
    browser_sign_in(page, live_server.url, camille, when=timezone.now())
    page.set_viewport_size(PHONE)

    page.goto(f"{live_server.url}/portal/data")
    page.click(f"a[href='{reverse('portal:deletion')}']")
    expect(page.locator("[data-testid=deletion-confirm]")).to_contain_text(
        french("This cannot be undone.")
    )
    page.check("input[name=confirm]")
    page.click("[data-testid=confirm-deletion]")

    expect(page.locator("[data-testid=deletion-refused] h1")).to_have_text(
        french("We cannot delete your data yet")
    )
    expect(page.locator("[data-testid=kept]")).to_contain_text("L123-22")
    screenshot(page, "portal-deletion-refused")
    assert Customer.objects.get(pk=camille.pk).erased_at is None
