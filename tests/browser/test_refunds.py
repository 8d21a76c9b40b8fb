"""Refunds from the dashboard in a real Chromium: a partial refund shrinks the schedule from
the last instalment, then "Refund everything" leaves the payment paid and completely refunded;
screenshots of the preview and the payment page at desktop and phone widths
(var/screenshots/refund-*.png)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.common.money import to_cents
from apps.payments.models import PaymentState
from apps.refunds.models import Refund
from tests.browser.conftest import screenshot
from tests.conftest import make_shop
from tests.schedules.builders import accepted

pytestmark = pytest.mark.django_db(transaction=True)  # the live server reads commits

PASSWORD = "un-mot-de-passe-solide"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
PARTIAL = "form.refund-action:has(#refund-amount)"
FULL = "form.refund-action:has(input[name=full])"
CONFIRM = ".refund-buttons button[type=submit]"


@pytest.fixture
def shop_with_a_sale():
    shop = make_shop()
    shop.owner.set_password(PASSWORD)
    shop.owner.save()
    shop.sale = accepted(
        shop, when=timezone.now() - timedelta(hours=1), installments_count=4, amount=40_000
    )
    return shop


def log_in(page, live_server, shop):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", shop.owner.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/dashboard/")


def schedule_row(page, number: int):
    return page.locator("section[aria-labelledby=schedule-title] tbody tr").nth(number - 1)


def test_staff_refund_partially_then_everything(page, live_server, shop_with_a_sale):
    shop = shop_with_a_sale
    sale = shop.sale
    first = sale.instalments.get(number=1)
    paid_cents = to_cents(first.purchase_amount + first.customer_fee + first.customer_interest)
    payment_url = f"{live_server.url}/dashboard/payments/{sale.public_id}/"
    log_in(page, live_server, shop)

    page.goto(payment_url)
    expect(page.locator("#refunds .refund-totals")).to_contain_text("400,00\xa0€")
    expect(page.locator("#refund-amount-help")).to_contain_text("400,00\xa0€")
    page.fill("#refund-amount", "150,00")
    page.fill("#refund-reference", "RMA-7")
    page.fill("#refund-comment", "Un article retourné")
    page.click(f"{PARTIAL} button[type=submit]")

    page.wait_for_selector(".refund-preview")
    cuts = page.locator(".refund-cuts tbody tr")
    expect(cuts).to_have_count(2)
    expect(cuts.nth(0).locator("td").nth(0)).to_have_text("4")
    expect(cuts.nth(0).locator("td").nth(2)).to_have_text("100,00\xa0€")
    expect(cuts.nth(1).locator("td").nth(0)).to_have_text("3")
    expect(cuts.nth(1).locator("td").nth(2)).to_have_text("50,00\xa0€")
    after = page.locator(".refund-schedule tbody tr")
    expect(after.nth(2).locator("td").nth(3)).to_have_text("50,00\xa0€")
    expect(after.nth(3).locator(".badge.cancelled")).to_be_visible()
    assert not Refund.objects.exists()
    screenshot(page, "refund-preview-partial-desktop")
    page.click(CONFIRM)

    page.wait_for_url(f"{payment_url}#refunds")
    expect(page.locator(".messages")).to_contain_text("150,00\xa0€")
    expect(schedule_row(page, 4).locator(".badge.cancelled")).to_be_visible()
    expect(schedule_row(page, 3).locator("del")).to_contain_text("100,00\xa0€")
    expect(schedule_row(page, 3).locator("td").nth(2)).to_contain_text("50,00\xa0€")
    expect(schedule_row(page, 2).locator("del")).to_have_count(0)
    refunds = page.locator("#refunds .refund-list tbody tr")
    expect(refunds).to_have_count(1)
    expect(refunds.first).to_contain_text("RMA-7")
    expect(refunds.first).to_contain_text(shop.owner.email)
    expect(page.locator("#refunds .refund-totals")).to_contain_text("250,00\xa0€")
    screenshot(page, "refund-payment-partial-desktop")

    page.click(f"{FULL} button[type=submit]")
    page.wait_for_selector(".refund-preview")
    expect(page.locator(".refund-headline")).to_contain_text("250,00\xa0€")
    expect(page.locator(".refund-headline")).to_contain_text(
        f"{paid_cents // 100},{paid_cents % 100:02d}\xa0€"
    )
    expect(page.locator(".refund-cuts tbody tr")).to_have_count(2)  # 3 and 2 (4 is gone)
    screenshot(page, "refund-preview-full-desktop")
    page.set_viewport_size(PHONE)
    screenshot(page, "refund-preview-full-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
    page.set_viewport_size(DESKTOP)
    page.dblclick(CONFIRM)  # a double click refunds once

    page.wait_for_url(f"{payment_url}#refunds")
    expect(page.locator(".page-head .badge.paid")).to_be_visible()
    expect(page.locator("#refunds .refund-note")).to_be_visible()
    expect(page.locator(f"#refunds {PARTIAL}")).to_have_count(0)
    expect(page.locator("#refunds .refund-list tbody tr")).to_have_count(2)
    for number in (2, 3, 4):
        expect(schedule_row(page, number).locator(".badge.cancelled")).to_be_visible()
    sale.refresh_from_db()
    assert sale.state == PaymentState.PAID
    assert sale.is_completely_refunded
    assert Refund.objects.filter(payment=sale).count() == 2
    screenshot(page, "refund-payment-full-desktop")

    page.set_viewport_size(PHONE)
    page.reload()
    screenshot(page, "refund-payment-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
