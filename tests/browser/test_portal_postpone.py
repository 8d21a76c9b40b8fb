"""Postponing an instalment in a real Chromium: from the plan's page, "Postpone" on
instalment 2, a date picked in the window, confirmed (a double click moves it once), and the
new date on the plan's page; then, once moved, a longer delay asked of support. Screenshots:
var/screenshots/portal-postpone*.png and portal-longer-delay-phone.png."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone, translation
from django.utils.translation import gettext
from playwright.sync_api import expect

from apps.payments.emails import date_display
from apps.payments.models import PaymentEvent
from apps.schedules.models import SupportRequest
from tests.browser.conftest import screenshot
from tests.conftest import make_shop
from tests.portal.helpers import CAMILLE, browser_sign_in, plan_for

pytestmark = pytest.mark.django_db(transaction=True)  # the live server reads commits

PHONE = {"width": 390, "height": 844}


def french(text: str) -> str:
    """What the pages say in French (the browser asks for French)."""
    with translation.override("fr"):
        return gettext(text)


def in_french(day) -> str:
    with translation.override("fr"):
        return date_display(day)


def test_a_customer_postpones_an_instalment_and_sees_the_new_date(page, live_server):
    now = timezone.now()
    plan = plan_for(make_shop(), CAMILLE, when=now - timedelta(days=13))
    second = plan.instalments.get(number=2)
    new_date = second.due_date + timedelta(days=10)
    browser_sign_in(page, live_server.url, plan.customer, when=now)

    page.goto(f"{live_server.url}/portal/plans/{plan.public_id}")
    row = page.locator("[data-testid=instalment-2]")
    expect(row).to_contain_text(in_french(second.due_date))
    row.locator('a[href$="/instalments/2/postpone"]').click()

    page.wait_for_url("**/instalments/2/postpone")
    date_input = page.locator("#id_date")
    expect(date_input).to_have_attribute("min", (second.due_date + timedelta(days=1)).isoformat())
    expect(date_input).to_have_attribute("max", (second.due_date + timedelta(days=15)).isoformat())
    expect(page.locator("table.data")).to_contain_text(in_french(second.due_date))
    screenshot(page, "portal-postpone")
    date_input.fill(new_date.isoformat())
    page.click("form.once button[type=submit]")

    confirm = page.locator("[data-testid=confirm-form] button[type=submit]")
    expect(page.locator(".new-date")).to_contain_text(in_french(new_date))
    screenshot(page, "portal-postpone-confirm")
    confirm.dblclick()

    page.wait_for_url(f"{live_server.url}/portal/plans/{plan.public_id}")
    expect(page.locator(".messages .success")).to_contain_text(in_french(new_date))
    expect(row).to_contain_text(in_french(new_date))
    expect(row).to_contain_text(in_french(second.due_date))  # "moved from"
    screenshot(page, "portal-postponed")
    second.refresh_from_db()
    assert second.due_date == new_date and second.postponements == 1
    assert PaymentEvent.objects.filter(payment=plan, kind="instalment_postponed").count() == 1

    # Once per instalment: the page now explains, on a phone too.
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/portal/plans/{plan.public_id}/instalments/2/postpone")
    expect(page.locator("[data-testid=refusal]")).to_be_visible()
    expect(page.locator("#id_date")).to_have_count(0)
    expect(page.locator('a[href$="/instalments/2/longer"]').first).to_be_visible()
    screenshot(page, "portal-postpone-refused-phone")

    # A longer delay is a request to support.
    page.locator('a[href$="/instalments/2/longer"]').first.click()
    page.wait_for_url("**/instalments/2/longer")
    page.fill("#id_date", (new_date + timedelta(days=20)).isoformat())
    page.fill("#id_message", "Mon salaire arrive plus tard ce mois-ci.")
    screenshot(page, "portal-longer-delay-phone")
    page.click("form.once button[type=submit]")
    page.wait_for_url(f"{live_server.url}/portal/plans/{plan.public_id}")
    expect(page.locator(".messages .success")).to_have_text(
        french("We received your request. We answer within 2 working days, by email.")
    )
    ticket = SupportRequest.objects.get(payment=plan)
    assert ticket.requested_date == new_date + timedelta(days=20)
    assert ticket.message == "Mon salaire arrive plus tard ce mois-ci."
