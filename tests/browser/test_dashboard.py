"""The merchant dashboard in a real Chromium: log in, filter, search, open a payment, send an
IPN again, create a key, download a CSV export, see the payouts; screenshots of the home
and payment pages at desktop and phone widths (var/screenshots/dashboard-*.png)."""

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.ledger.services import payouts_run
from apps.payments.models import DataExport, Notification
from apps.payments.tasks import export_build_task
from tests.browser.conftest import screenshot
from tests.conftest import make_shop
from tests.payments.builders import payment_create_for
from tests.schedules.builders import accepted

pytestmark = pytest.mark.django_db(transaction=True)

IBAN = "FR7630006000011234567890189"
PASSWORD = "un-mot-de-passe-solide"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def merchant_shop():
    shop = make_shop(
        payout_iban=IBAN,
        settlement_delay_days=0,
        ipn_callback_url="http://127.0.0.1:9/ipn",  # nothing listens: deliveries fail
    )
    shop.owner.set_password(PASSWORD)
    shop.owner.save()
    now = timezone.now()
    shop.paid = [
        accepted(
            shop, when=now - timedelta(days=days, hours=1), installments_count=count, amount=amount
        )
        for days, count, amount in [(9, 3, 45_000), (6, 4, 82_000), (3, 3, 12_990), (1, 4, 30_000)]
    ]
    shop.waiting = payment_create_for(
        shop,
        purchase_amount=25_000,
        customer={"first_name": "Jean", "last_name": "Dupont", "email": "jean.dupont@example.com"},
        order={"merchant_reference": "CMD-4242"},
    )
    payouts_run(run_date=timezone.localdate(), livemode=False, now=now)
    return shop


def log_in(page, live_server, shop):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", shop.owner.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/dashboard/")


def test_staff_find_a_payment_resend_its_ipn_and_look_around(page, live_server, merchant_shop):
    shop = merchant_shop
    log_in(page, live_server, shop)
    screenshot(page, "dashboard-home-desktop")
    assert page.locator("svg[role=img]").count() >= 1

    page.click("nav >> text=Paiements")
    assert page.locator("tbody tr").count() == 5
    page.select_option("#id_state", "in_progress")
    page.click("text=Appliquer")
    assert page.locator("tbody tr").count() == 4
    page.fill("#id_q", "jean.dupont@example.com")
    page.select_option("#id_state", "")
    page.click("text=Appliquer")
    rows = page.locator("tbody tr")
    assert rows.count() == 1
    assert "Jean Dupont" in rows.inner_text()
    page.fill("#id_q", "CMD-4242")
    page.click("text=Appliquer")
    assert page.locator("tbody tr").count() == 1

    paid = shop.paid[0]
    page.fill("#id_q", paid.public_id)
    page.click("text=Appliquer")
    page.click(f"a[href$='/dashboard/payments/{paid.public_id}/']")
    assert paid.public_id in page.inner_text("main")
    assert page.locator("#schedule-title").is_visible()
    assert page.locator(".timeline li").count() >= 2
    screenshot(page, "dashboard-payment-desktop")

    notification = Notification.objects.get(payment=paid)
    before = paid.events.filter(kind="notification_resent").count()
    page.click("#notifications >> text=Renvoyer")
    assert "sera renvoyée" in page.inner_text(".messages")
    assert paid.events.filter(kind="notification_resent").count() == before + 1
    notification.refresh_from_db()
    assert notification.status in {Notification.Status.PENDING, Notification.Status.FAILED}

    page.set_viewport_size(PHONE)
    page.reload()
    screenshot(page, "dashboard-payment-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
    page.goto(f"{live_server.url}/dashboard/")
    screenshot(page, "dashboard-home-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1


def test_staff_create_a_key_export_payments_and_see_payouts(page, live_server, merchant_shop):
    shop = merchant_shop
    log_in(page, live_server, shop)

    page.click("nav >> text=API")
    page.click("text=Créer une clé de test")
    assert page.inner_text("#new-secret").startswith("sk_test_")

    page.click("nav >> text=Exports")
    page.click("main form >> button[type=submit]")
    export = DataExport.objects.get(merchant=shop.merchant)
    export_build_task(export.pk)  # the worker's job (no cluster in tests)
    page.wait_for_selector("a[href$='/csv/']", timeout=15_000)
    screenshot(page, "dashboard-export-done")
    with page.expect_download() as download_info:
        page.click("a[href$='/csv/']")
    content = download_info.value.path().read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(content)))
    assert len(rows) == 1 + 5
    assert any("jean.dupont@example.com" in ",".join(row) for row in rows)

    page.click("nav >> text=Versements")
    assert page.locator(".kpi").count() >= 2
    payout = shop.merchant.payouts.get()
    assert page.locator(f"a[href*='{payout.public_id}']").count() >= 1
    screenshot(page, "dashboard-payouts")
    page.click(f"a[href*='{payout.public_id}']")
    assert payout.public_id in page.inner_text("main")
