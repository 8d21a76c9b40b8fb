"""An in-store sale in a real Chromium: the simulated terminal (/pos/simulator/) drives the
terminal API with its secret, the customer opens the link from the SMS (the sandbox outbox)
on a phone and pays in 3x through the hosted checkout, and the terminal, polling, shows the
outcome and prints its tickets. Cancel and expiry too. Screenshots: var/screenshots/pos-*.png.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from apps.pos.models import PosSession
from apps.verification.models import SmsMessage
from tests.browser.conftest import screenshot
from tests.conftest import make_shop
from tests.pos.helpers import PHONE, PHONE_E164, terminal_for

pytestmark = pytest.mark.django_db(transaction=True)  # the live server reads commits

PASSWORD = "un-mot-de-passe-solide"
CHALLENGE = "4970100000000014"  # the sandbox's 3-D Secure card with a bank page
PHONE_VIEWPORT = {"width": 390, "height": 844}
POLL_MS = 30_000  # a long poll answers within POS_LONG_POLL_MAX_SECONDS (20 s) of a change


@pytest.fixture
def counter(live_server, settings):
    """A French shop with a registered terminal, its owner able to log in, and links (the
    SMS's short link, the checkout's returns) on the live server."""
    settings.PUBLIC_BASE_URL = live_server.url
    shop = make_shop()
    shop.owner.set_password(PASSWORD)
    shop.owner.save()
    shop.terminal, shop.secret = terminal_for(shop, name="Caisse 1")
    return shop


def log_in(page, live_server, shop) -> None:
    """The simulated terminal opens to dashboard users outside development."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", shop.owner.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/dashboard/**")


def start_sale(page, live_server, shop, *, amount: str = "300") -> PosSession:
    """On the simulated terminal: ALMA -> Payment, the amount, the customer's phone."""
    log_in(page, live_server, shop)
    page.goto(f"{live_server.url}/pos/simulator/#secret={shop.secret}")
    page.locator("#menu-payment").click()
    page.locator("#amount").fill(amount)
    page.locator("#amount-ok").click()
    page.locator("#phone").fill(PHONE)
    page.locator("#start").click()
    expect(page.locator("#state")).to_have_attribute("data-state", "link_sent")
    session_id = page.locator("body").get_attribute("data-session-id")
    return PosSession.objects.get(public_id=session_id)


def link_from_the_sms(session: PosSession) -> str:
    """The short link, as the customer reads it in the SMS (the test-mode outbox)."""
    sms = SmsMessage.objects.get(key=f"pos_session:{session.public_id}:link")
    assert sms.phone == PHONE_E164
    urls = re.findall(r"https?://\S+", sms.text)
    assert len(urls) == 1, sms.text
    return urls[0]


@pytest.fixture
def phone(browser):
    """The customer's smartphone: a second browser, with its own cookies."""
    context = browser.new_context(
        locale="fr-FR", viewport=PHONE_VIEWPORT, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def no_sideways_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_VIEWPORT["width"]


def test_a_sale_started_on_the_terminal_is_paid_in_3x_on_the_customers_phone(
    page, phone, live_server, counter
):
    terminal = page
    session = start_sale(terminal, live_server, counter)
    expect(terminal.locator("pre.ticket[data-kind=in_progress]")).to_be_visible()
    screenshot(terminal, "pos-1-terminal-link-sent")
    link = link_from_the_sms(session)
    assert link.startswith(f"{live_server.url}/p/")

    phone.goto(link)
    expect(phone.locator("html")).to_have_attribute("lang", "fr")
    assert phone.locator("label.plan input[name=plan]").count() >= 4  # 2x, 3x, 4x, pay later
    for key in ("2_0_0", "3_0_0", "4_0_0"):
        expect(phone.locator(f"label.plan[data-plan='{key}']")).to_be_visible()
    expect(phone.locator("[data-testid=amount]")).to_have_text("300,00\xa0€")
    no_sideways_scroll(phone)
    screenshot(phone, "pos-2-customer-plans")
    expect(terminal.locator("#state")).to_have_attribute(
        "data-state", "customer_in_progress", timeout=POLL_MS
    )
    screenshot(terminal, "pos-3-terminal-customer-in-progress")

    phone.locator("label.plan[data-plan='3_0_0']").click()
    expect(phone.locator("input[name=plan][value='3_0_0']")).to_be_checked()
    phone.get_by_role("button", name=re.compile("Continu")).click()

    # The hosted checkout, as online, with the phone the staff typed already filled in.
    expect(phone.locator("#id_phone")).to_have_value(PHONE_E164)
    payment = PosSession.objects.select_related("payment").get(pk=session.pk).payment
    assert phone.url == f"{live_server.url}{reverse('payments:checkout', args=[payment.public_id])}"
    expect(phone.locator(".schedule li")).to_have_count(3)
    phone.locator("#id_first_name").fill("Camille")
    phone.locator("#id_last_name").fill("Martin")
    phone.locator("#id_email").fill("camille.martin@example.com")
    phone.locator("#id_birth_date").fill("1990-04-02")
    phone.locator("#id_line1").fill("12 rue de la Paix")
    phone.locator("#id_postal_code").fill("75002")
    phone.locator("#id_city").fill("Paris")
    phone.locator("#id_card_number").fill(CHALLENGE)
    phone.locator("#id_card_expiry").fill("12/30")
    phone.locator("#id_card_cvc").fill("123")
    phone.locator("input[name=accept_terms]").check()
    no_sideways_scroll(phone)
    screenshot(phone, "pos-4-customer-details")
    phone.locator("form.checkout-form button[type=submit].primary").click()

    approve = phone.locator("button[name=decision][value=approve]")
    expect(approve).to_be_visible()
    screenshot(phone, "pos-5-customer-3ds")
    approve.click()

    code = phone.locator("[data-testid=test-code]")
    expect(code).to_be_visible()
    phone.locator("input[name=code]").fill(code.inner_text().strip())
    screenshot(phone, "pos-6-customer-sms-code")
    phone.locator("input[name=code]").locator("xpath=ancestor::form").locator(
        "button[type=submit]"
    ).click()
    expect(phone.locator(".schedule li.paid")).to_have_count(1)  # the checkout's done page
    no_sideways_scroll(phone)
    screenshot(phone, "pos-7-customer-paid")

    # The terminal learns it by polling (no reload) and prints both tickets.
    expect(terminal.locator("#state")).to_have_attribute("data-state", "paid", timeout=POLL_MS)
    customer_ticket = terminal.locator("pre.ticket[data-kind=customer]")
    merchant_ticket = terminal.locator("pre.ticket[data-kind=merchant]")
    expect(customer_ticket).to_be_visible()
    expect(merchant_ticket).to_be_visible()
    screenshot(terminal, "pos-8-terminal-paid-tickets")
    session.refresh_from_db()
    payment.refresh_from_db()
    assert session.state == PosSession.State.PAID
    assert payment.installments_count == 3
    assert payment.accepted_at is not None
    assert payment.terminal_name == "Caisse 1"
    instalments = list(payment.instalments.order_by("number"))
    for instalment in instalments:  # the customer's ticket carries the schedule
        expect(customer_ticket).to_contain_text(instalment.due_date.strftime("%d/%m/%Y"))
    expect(merchant_ticket).to_contain_text(payment.public_id)

    # The link now leads to the checkout's confirmation.
    phone.goto(link)
    assert phone.url == f"{live_server.url}{reverse('payments:checkout', args=[payment.public_id])}"
    expect(phone.locator(".schedule li.paid")).to_have_count(1)


def test_a_sale_cancelled_on_the_terminal_tells_the_customer(page, phone, live_server, counter):
    terminal = page
    session = start_sale(terminal, live_server, counter)
    link = link_from_the_sms(session)
    phone.goto(link)
    expect(phone.locator("label.plan[data-plan='3_0_0']")).to_be_visible()

    terminal.locator("#cancel").click()

    expect(terminal.locator("#state")).to_have_attribute("data-state", "cancelled")
    screenshot(terminal, "pos-cancel-terminal")
    phone.reload()
    expect(phone.locator("[data-state=cancelled]")).to_be_visible()
    no_sideways_scroll(phone)
    screenshot(phone, "pos-cancel-customer")
    session.refresh_from_db()
    assert session.state == PosSession.State.CANCELLED
    assert session.payment_id is None


def test_a_sale_not_finished_in_time_expires_on_the_terminal_and_the_phone(
    page, phone, live_server, counter
):
    terminal = page
    session = start_sale(terminal, live_server, counter)
    link = link_from_the_sms(session)
    phone.goto(link)
    expect(terminal.locator("#state")).to_have_attribute(
        "data-state", "customer_in_progress", timeout=POLL_MS
    )

    # Time is up (as if the customer had walked away POS_SESSION_MINUTES ago).
    PosSession.objects.filter(pk=session.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    expect(terminal.locator("#state")).to_have_attribute("data-state", "expired", timeout=POLL_MS)
    expect(terminal.locator("#cancel")).to_be_hidden()
    screenshot(terminal, "pos-expiry-terminal")
    phone.reload()
    expect(phone.locator("[data-state=expired]")).to_be_visible()
    screenshot(phone, "pos-expiry-customer")
    session.refresh_from_db()
    assert session.state == PosSession.State.EXPIRED
