"""Paying early and changing the card in a real Chromium: instalment 2 paid early with the
saved card, seen paid on the plan, its receipt downloaded; then the card changed with the
3-D Secure challenge card through the sandbox bank's page, the new card on the plan.
Screenshots: var/screenshots/portal-pay.png, portal-paid.png, portal-card.png,
portal-card-changed.png (and -phone variants)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone, translation
from django.utils.translation import gettext
from playwright.sync_api import expect

from apps.common.money import to_cents
from apps.payments.models import Charge, Payment
from apps.schedules.models import Receipt
from apps.schedules.tasks import render_receipts
from tests.browser.conftest import screenshot
from tests.conftest import make_shop
from tests.portal.helpers import CAMILLE, browser_sign_in, plan_for

pytestmark = pytest.mark.django_db(transaction=True)  # the live server reads commits

PHONE = {"width": 390, "height": 844}
CHALLENGE_CARD = "4970100000000014"


def french(text: str) -> str:
    with translation.override("fr"):
        return gettext(text)


def euros(cents: int) -> str:
    return f"{cents // 100},{cents % 100:02d}\xa0€"


@pytest.fixture
def portal(settings, live_server, tmp_path):
    settings.PUBLIC_BASE_URL = live_server.url  # where the bank sends the browser back
    settings.STORAGES = {
        **settings.STORAGES,
        "receipts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "receipts"), "allow_overwrite": True},
        },
    }
    return live_server


def test_a_customer_pays_an_instalment_early_and_downloads_its_receipt(page, portal):
    now = timezone.now()
    plan = plan_for(make_shop(), CAMILLE, when=now - timedelta(days=3))
    second = plan.instalments.get(number=2)
    cents = to_cents(second.total_amount)
    plan_url = f"{portal.url}/portal/plans/{plan.public_id}"
    browser_sign_in(page, portal.url, plan.customer, when=now)

    page.goto(plan_url)
    row = page.locator("[data-testid=instalment-2]")
    row.locator('a[href*="/pay?"]').click()

    page.wait_for_url("**/pay?*")
    expect(page.locator(".pay-lines .total")).to_contain_text(euros(cents))
    expect(page.locator("input[name=card][value=saved]")).to_be_checked()
    expect(page.locator(".card-choice")).to_contain_text("•••• 0006")
    expect(page.locator("#new-card")).to_be_hidden()
    screenshot(page, "portal-pay")
    page.set_viewport_size(PHONE)
    screenshot(page, "portal-pay-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
    page.set_viewport_size({"width": 1280, "height": 900})
    page.locator("#pay-form button[type=submit]").click()

    page.wait_for_url(plan_url)
    expect(page.locator(".messages .success")).to_contain_text(euros(cents))
    [charge] = Charge.objects.filter(kind="early_payment")
    assert charge.status == "succeeded" and charge.covers == [second.pk]
    second.refresh_from_db()
    assert second.state == "paid"
    # The receipt is rendered by a task (no worker in this test): run it here.
    receipt = Receipt.objects.get(charge=charge)
    assert render_receipts([receipt.number]) == 1
    page.reload()
    expect(row).to_contain_text(receipt.number)
    screenshot(page, "portal-paid")
    with page.expect_download() as download:
        row.locator(f'a[href$="/receipts/{receipt.number}.pdf"]').click()
    pdf = download.value.path().read_bytes()
    assert pdf.startswith(b"%PDF")
    assert Payment.objects.get(pk=plan.pk).state == "in_progress"


def test_a_customer_changes_the_card_through_the_bank_challenge(page, portal):
    now = timezone.now()
    plan = plan_for(make_shop(), CAMILLE, when=now - timedelta(days=3))
    old = plan.card
    plan_url = f"{portal.url}/portal/plans/{plan.public_id}"
    browser_sign_in(page, portal.url, plan.customer, when=now)

    page.goto(plan_url)
    expect(page.locator("[data-testid=card]")).to_contain_text("0006")
    page.locator('[data-testid=card] a[href$="/card"]').click()

    page.wait_for_url("**/card")
    expect(page.locator(".card-now")).to_contain_text("•••• 0006")
    page.fill("#id_card_number", CHALLENGE_CARD)
    page.fill("#id_card_expiry", "12/35")
    page.fill("#id_card_cvc", "123")
    expect(page.locator("#card-brand")).to_have_attribute("data-brand", "visa")
    screenshot(page, "portal-card")
    page.set_viewport_size(PHONE)
    screenshot(page, "portal-card-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("button", name=french("Use this card")).click()

    approve = page.locator("button[name=decision][value=approve]")
    expect(approve).to_be_visible()
    assert "/sandbox/acs/" in page.url
    approve.click()

    page.wait_for_url(plan_url)
    expect(page.locator(".messages .success")).to_contain_text("•••• 0014")
    expect(page.locator("[data-testid=card]")).to_contain_text("0014")
    screenshot(page, "portal-card-changed")
    plan.refresh_from_db()
    old.refresh_from_db()
    assert plan.card.last4 == "0014" and plan.card.three_ds_authenticated_at is not None
    assert old.detached_at is not None
