"""The embeddable widget on the demo shop, in a real Chromium, against the real eligibility API."""

import json
import re
from urllib.parse import urlsplit

import pytest
import requests
from django.utils import timezone
from playwright.sync_api import expect

from apps.common.dates import business_date
from apps.common.money import to_money
from apps.merchants import services
from apps.merchants.fee_plan_specs import DEFAULT_FEE_PLANS_FILE, parse_fee_plan_specs
from apps.payments.models import UsuryRate
from apps.payments.regulation import quarter_start
from tests.browser.conftest import screenshot
from tests.conftest import make_shop

pytestmark = pytest.mark.django_db(transaction=True)  # the live server reads committed rows

WIDGET_JS = "/static/widget/tranche-widget-1.0.0.js"
TIMES = "\N{MULTIPLICATION SIGN}"
THREE = '[data-plan="3:0:0"]'


@pytest.fixture
def merchant(transactional_db):
    this_quarters_usury_rates()
    return make_shop().merchant


def this_quarters_usury_rates() -> None:
    """What an operator enters each quarter (the shipped table stops at Q1 2026): without
    it, credit plans (10x) are refused as the usury rate is unknown."""
    quarter = quarter_start(business_date(timezone.now()))
    for cents, rate_bps in ((300000, 2356), (600000, 1587), (None, 867)):
        UsuryRate.objects.get_or_create(
            effective_from=quarter,
            max_credit_amount=None if cents is None else to_money(cents),
            defaults={"rate_bps": rate_bps},
        )


def french_euros(cents: int) -> str:
    units, rest = divmod(cents, 100)
    return f"{units:,}".replace(",", " ") + f",{rest:02d} €"


def french_rate(bps: int) -> str:
    return f"{bps // 100},{bps % 100:02d} %"


def eligibility(live_server, merchant, amount: int, plans: list[tuple[int, int]]) -> list[dict]:
    """What the API answers the widget, to compare the page with."""
    response = requests.post(
        f"{live_server.url}/v2/payments/eligibility",
        json={
            "purchase_amount": amount,
            "queries": [{"installments_count": n, "deferred_days": d} for n, d in plans],
            "locale": "fr",
        },
        headers={"Authorization": f"Alma-Merchant-Auth {merchant.public_id}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def schedule_rows(dialog) -> list[str]:
    return [
        " ".join(row.split())
        for row in dialog.locator(".tranche-instalment").all_inner_texts()  # one per instalment
    ]


def expected_rows(plan: dict) -> list[str]:
    rows = []
    for instalment in plan["payment_plan"]:
        date = instalment["localized_due_date"]
        row = f"{date[0].upper()}{date[1:]} {french_euros(instalment['total_amount'])}"
        if instalment["customer_fee"]:
            row += f" dont frais : {french_euros(instalment['customer_fee'])}"
        rows.append(row)
    return rows


def focus_is_in_dialog(page) -> bool:
    return page.evaluate(
        "document.querySelector('.tranche-dialog').contains(document.activeElement)"
    )


def test_the_product_page_offers_the_eligible_plans_with_their_schedule(
    page, live_server, merchant
):
    plans = eligibility(live_server, merchant, 45_000, [(3, 0), (10, 0)])
    three, ten = plans
    assert three["eligible"] and ten["eligible"]

    page.goto(f"{live_server.url}/widget/demo?merchant={merchant.public_id}")
    widget = page.locator("#product-widget")

    expect(widget.locator(".tranche-headline")).to_have_text("Payez en 3x, 4x ou 10x avec Tranche")
    pills = widget.locator("button.tranche-plan")
    expect(pills).to_have_count(5)
    assert [pill.get_attribute("data-plan") for pill in pills.all()] == [
        "1:0:0",
        "3:0:0",
        "4:0:0",
        "10:0:0",
        "1:30:0",
    ]
    labels = widget.locator("button.tranche-plan > span:first-child").all_inner_texts()
    assert labels == ["1x", "3x", "4x", "10x", "J+30"]
    expect(widget.locator(".tranche-summary")).to_have_text(f"3 {TIMES} 150,00 € sans frais")
    expect(widget.locator("[aria-live=polite]")).to_have_text(
        f"Payez en 3x, 4x ou 10x avec Tranche. 3 {TIMES} 150,00 € sans frais"
    )
    height = widget.bounding_box()["height"]
    screenshot(page, "widget_product_1280")

    widget.locator(THREE).focus()
    page.keyboard.press("Enter")

    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("aria-modal", "true")
    expect(dialog).to_have_accessible_name("Payer en plusieurs fois avec Tranche")
    expect(dialog.get_by_role("tab", name="3x", exact=True)).to_be_focused()
    expect(dialog.get_by_role("tab", name="3x", exact=True)).to_have_attribute(
        "aria-selected", "true"
    )
    expect(dialog.locator(".tranche-instalment")).to_have_count(3)
    assert schedule_rows(dialog) == expected_rows(three)
    assert schedule_rows(dialog)[0].startswith("Aujourd")  # today, in French
    expect(dialog.locator(".tranche-total-cost dd")).to_have_text("Sans frais")
    expect(dialog.locator(".tranche-total-paid dd")).to_have_text("450,00 €")
    expect(dialog.locator(".tranche-apr")).to_have_text(
        f"TAEG fixe : {french_rate(three['annual_interest_rate'])}"
    )
    assert page.evaluate("getComputedStyle(document.documentElement).overflow") == "hidden"
    screenshot(page, "widget_product_modal_1280")

    for _ in range(6):  # the close button, the tabs, round and round: never out of the dialog
        page.keyboard.press("Tab")
        assert focus_is_in_dialog(page)
    page.keyboard.press("Shift+Tab")
    assert focus_is_in_dialog(page)

    dialog.get_by_role("tab", name="3x", exact=True).focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(dialog.get_by_role("tab", name="10x", exact=True)).to_be_focused()
    expect(dialog.locator(".tranche-instalment")).to_have_count(10)
    assert schedule_rows(dialog) == expected_rows(ten)
    assert ten["customer_total_cost_amount"] > 0
    assert ten["annual_interest_rate"] > 0
    expect(dialog.locator(".tranche-total-cost dd")).to_have_text(
        french_euros(ten["customer_total_cost_amount"])
    )
    expect(dialog.locator(".tranche-total-paid dd")).to_have_text(
        french_euros(45_000 + ten["customer_total_cost_amount"])
    )
    expect(dialog.locator(".tranche-apr")).to_have_text(
        f"TAEG fixe : {french_rate(ten['annual_interest_rate'])}"
    )
    expect(dialog.locator(".tranche-legal")).to_contain_text("Un crédit vous engage")
    screenshot(page, "widget_product_modal_10x_1280")

    page.keyboard.press("Escape")

    expect(dialog).to_be_hidden()
    expect(widget.locator(THREE)).to_be_focused()  # back on the button that opened it
    screenshot(page, "widget_product_focus_returned_1280")
    expect(widget.locator('[data-plan="10:0:0"]')).to_have_class(re.compile("is-selected"))
    assert page.evaluate("getComputedStyle(document.documentElement).overflow") == "visible"

    page.locator("input[name=size][value=large]").check()

    expect(page.locator("#product-price")).to_have_text("1 290,00 €")
    expect(widget).to_have_attribute("data-amount", "129000")
    ten_large = eligibility(live_server, merchant, 129_000, [(10, 0)])[0]
    expect(widget.locator(".tranche-summary")).to_have_text(summary(ten_large))
    widget.locator(THREE).click()
    expect(dialog.locator(".tranche-total-paid dd")).to_have_text("1 290,00 €")
    dialog.get_by_role("button", name="Fermer").click()
    expect(dialog).to_be_hidden()
    assert widget.bounding_box()["height"] == height  # no layout shift from one amount to another


def summary(plan: dict) -> str:
    """The badge's one-line summary of a plan, as a customer reads it."""
    runs: list[list[int]] = []
    for instalment in plan["payment_plan"]:
        if runs and runs[-1][0] == instalment["total_amount"]:
            runs[-1][1] += 1
        else:
            runs.append([instalment["total_amount"], 1])
    text = " puis ".join(
        f"{count} {TIMES} {french_euros(amount)}" if count > 1 else french_euros(amount)
        for amount, count in runs
    )
    return f"{text} sans frais" if plan["customer_total_cost_amount"] == 0 else text


def test_the_cart_follows_its_quantities_and_says_when_the_total_is_too_high(
    page, live_server, merchant
):
    three = eligibility(live_server, merchant, 73_550, [(3, 0)])[0]

    page.goto(f"{live_server.url}/widget/demo/cart?merchant={merchant.public_id}")
    widget = page.locator("#cart-widget")

    expect(page.locator("#cart-total")).to_have_text("735,50 €")
    expect(widget.locator(".tranche-headline")).to_have_text("Payez en 3x, 4x ou 10x avec Tranche")
    expect(widget.locator("button.tranche-plan")).to_have_count(3)
    expect(widget.locator(".tranche-summary")).to_have_text(summary(three))
    height = widget.bounding_box()["height"]
    screenshot(page, "widget_cart_1280")

    page.locator("input[name=quantity-lamp]").fill("4")

    expect(page.locator("#cart-total")).to_have_text("2 295,50 €")
    expect(widget.locator(".tranche-none")).to_have_text(
        "Paiement en plusieurs fois avec Tranche jusqu’à 2 000 €"
    )
    expect(widget.locator("button")).to_have_count(0)
    assert widget.bounding_box()["height"] == height
    screenshot(page, "widget_cart_too_high_1280")

    page.locator("input[name=quantity-lamp]").fill("2")

    expect(page.locator("#cart-total")).to_have_text("1 255,50 €")
    expect(widget.locator("button.tranche-plan")).to_have_count(3)


def test_a_plan_with_a_lower_maximum_is_shown_disabled_with_its_limit(page, live_server, merchant):
    plans = json.loads(DEFAULT_FEE_PLANS_FILE.read_text())
    for plan in plans:
        if plan["installments_count"] == 10:
            plan["max_purchase_amount"] = 100_000
    services.fee_plans_replace(merchant=merchant, specs=parse_fee_plan_specs(plans))

    page.goto(f"{live_server.url}/widget/demo?merchant={merchant.public_id}")
    page.locator("input[name=size][value=large]").check()
    widget = page.locator("#product-widget")

    ten = widget.locator(".tranche-plan.is-disabled")
    expect(ten).to_have_count(1)
    expect(ten).to_contain_text("10x")
    expect(ten.locator(".tranche-plan-reason")).to_have_text("Jusqu’à 1 000 €")
    expect(widget.locator("button.tranche-plan")).to_have_count(4)
    expect(widget.locator(".tranche-headline")).to_have_text("Payez en 3x ou 4x avec Tranche")
    screenshot(page, "widget_product_disabled_plan_1280")


def test_in_english_on_a_phone(browser, live_server, merchant):
    context = browser.new_context(locale="en-GB", viewport={"width": 375, "height": 740})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{live_server.url}/widget/demo?merchant={merchant.public_id}")
        widget = page.locator("#product-widget")

        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(widget.locator(".tranche-headline")).to_have_text(
            "Pay in 3, 4 or 10 instalments with Tranche"
        )
        expect(widget.locator(".tranche-summary")).to_have_text(f"3 {TIMES} €150.00, no fees")
        last = widget.locator("button.tranche-plan > span:first-child").last
        expect(last).to_have_text("D+30")
        box = widget.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375  # fits a small phone
        screenshot(page, "widget_product_375_en")

        widget.locator('[data-plan="1:30:0"]').click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_have_accessible_name("Pay in instalments with Tranche")
        expect(dialog.locator(".tranche-panel-summary")).to_have_text(
            re.compile(r"^€450\.00 on [A-Z][a-z]+ \d{1,2}, \d{4}, no fees$")
        )
        expect(dialog.locator(".tranche-instalment")).to_have_count(1)
        expect(dialog.locator(".tranche-total-cost dd")).to_have_text("No fees")
        expect(dialog.locator(".tranche-apr")).to_have_text("Fixed APR: 0.00%")
        dialog_box = dialog.bounding_box()
        assert dialog_box["width"] <= 375
        screenshot(page, "widget_product_modal_375_en")

        dialog.get_by_role("tab", name="10x", exact=True).click()
        expect(dialog.locator(".tranche-instalment")).to_have_count(10)
        expect(dialog.locator(".tranche-apr")).to_have_text(re.compile(r"^Fixed APR: \d+\.\d\d%$"))
        screenshot(page, "widget_product_modal_10x_375_en")
    finally:
        context.close()


def test_the_cart_on_a_phone(browser, live_server, merchant):
    context = browser.new_context(locale="fr-FR", viewport={"width": 375, "height": 740})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{live_server.url}/widget/demo/cart?merchant={merchant.public_id}")

        expect(page.locator("#cart-widget button.tranche-plan")).to_have_count(3)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scroll
        screenshot(page, "widget_cart_375")
    finally:
        context.close()


def test_the_space_is_reserved_before_the_answer_arrives(page, live_server, merchant):
    # Eligibility answers only when the test says so: the page is measured meanwhile.
    page.add_init_script(
        """
        const realFetch = window.fetch;
        let release;
        const gate = new Promise((resolve) => { release = resolve; });
        window.releaseEligibility = release;
        window.fetch = (...args) => gate.then(() => realFetch(...args));
        """
    )
    page.goto(f"{live_server.url}/widget/demo?merchant={merchant.public_id}")
    widget = page.locator("#product-widget")
    below = page.locator(".variants")

    expect(widget).to_have_attribute("data-tranche-state", "loading")
    expect(widget.locator(".tranche-skeleton")).to_be_visible()
    waiting = (widget.bounding_box()["height"], below.bounding_box()["y"])
    screenshot(page, "widget_product_loading_1280")

    page.evaluate("window.releaseEligibility()")

    expect(widget).to_have_attribute("data-tranche-state", "ready")
    expect(widget.locator(".tranche-summary")).to_have_text(f"3 {TIMES} 150,00 € sans frais")
    assert (widget.bounding_box()["height"], below.bounding_box()["y"]) == waiting
    assert waiting[0] == 116


def test_quick_changes_make_one_request_and_the_last_amount_wins(page, live_server, merchant):
    page.goto(f"{live_server.url}/widget/demo?merchant={merchant.public_id}")
    widget = page.locator("#product-widget")
    expect(widget.locator(".tranche-summary")).to_have_text(f"3 {TIMES} 150,00 € sans frais")
    sent = []
    page.on(
        "request",
        lambda request: (
            sent.append(request.post_data_json)
            if request.url.endswith("/v2/payments/eligibility")
            else None
        ),
    )

    page.evaluate(
        """() => {
            const widget = document.getElementById('product-widget');
            for (const amount of ['52000', '129000', '52000', '129000']) {
                widget.setAttribute('data-amount', amount);
            }
        }"""
    )

    expect(widget.locator(".tranche-summary")).to_have_text(f"3 {TIMES} 430,00 € sans frais")
    assert [body["purchase_amount"] for body in sent] == [129_000]


def test_a_shop_can_drive_the_widget_from_javascript(page, live_server, merchant):
    page.goto(f"{live_server.url}/widget/demo?merchant={merchant.public_id}")
    expect(page.locator("#product-widget .tranche-summary")).to_be_visible()

    page.evaluate(
        """(merchantId) => {
            const element = document.createElement('div');
            element.id = 'scripted';
            document.querySelector('main').prepend(element);
            const options = {merchantId, amount: 52000, plans: [3, 4], locale: 'en'};
            window.scripted = Tranche.widget(element, options);
        }""",
        merchant.public_id,
    )
    scripted = page.locator("#scripted")

    expect(scripted.locator(".tranche-headline")).to_have_text(
        "Pay in 3 or 4 instalments with Tranche"
    )
    expect(scripted.locator(".tranche-summary")).to_have_text(
        f"€173.34 then 2 {TIMES} €173.33, no fees"
    )

    page.evaluate("window.scripted.update({amount: 129000})")

    expect(scripted.locator(".tranche-summary")).to_have_text(f"3 {TIMES} €430.00, no fees")
    expect(scripted).to_have_attribute("data-amount", "129000")


def test_the_widget_calls_the_api_cross_origin(page, live_server, merchant):
    port = urlsplit(live_server.url).port
    api_root = f"http://127.0.0.1:{port}"

    with page.expect_request(f"{api_root}/v2/payments/eligibility") as request_info:
        page.goto(
            f"http://localhost:{port}/widget/demo?merchant={merchant.public_id}&api_root={api_root}"
        )
    request = request_info.value
    widget = page.locator("#product-widget")

    expect(widget.locator(".tranche-summary")).to_have_text(f"3 {TIMES} 150,00 € sans frais")
    headers = request.all_headers()
    assert headers["authorization"] == f"Alma-Merchant-Auth {merchant.public_id}"
    assert headers["x-alma-agent"] == "Tranche Widget/1.0.0"
    assert "cookie" not in headers
    assert json.loads(request.post_data) == {
        "purchase_amount": 45_000,
        "queries": [
            {"installments_count": 1, "deferred_days": 0, "deferred_months": 0},
            {"installments_count": 3, "deferred_days": 0, "deferred_months": 0},
            {"installments_count": 4, "deferred_days": 0, "deferred_months": 0},
            {"installments_count": 10, "deferred_days": 0, "deferred_months": 0},
            {"installments_count": 1, "deferred_days": 30, "deferred_months": 0},
        ],
        "locale": "fr",
    }
    preflight = requests.options(
        f"{api_root}/v2/payments/eligibility",
        headers={
            "Origin": f"http://localhost:{port}",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-alma-agent",
        },
        timeout=10,
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "content-type", "x-alma-agent"} <= set(re.split(r"\s*,\s*", allowed))
    assert "Access-Control-Allow-Credentials" not in preflight.headers


def test_an_api_error_leaves_no_broken_widget(page, live_server, merchant):
    warnings = []
    page.on(
        "console",
        lambda message: warnings.append(message.text) if message.type == "warning" else None,
    )
    page.route(
        "**/v2/payments/eligibility",
        lambda route: route.fulfill(
            status=400,
            content_type="application/json",
            body='{"error_code": "invalid_request", "message": "purchase_amount is required"}',
        ),
    )

    page.goto(f"{live_server.url}/widget/demo?merchant={merchant.public_id}")
    widget = page.locator("#product-widget")

    expect(widget).to_have_attribute("data-tranche-state", "error")
    expect(widget.locator("button")).to_have_count(0)
    expect(widget).to_have_js_property("offsetHeight", 0)
    assert any("invalid_request" in warning for warning in warnings)


def test_the_widget_files_are_cached_for_a_year(client):
    response = client.get(WIDGET_JS)

    assert response.status_code == 200
    assert "javascript" in response["Content-Type"]
    assert "max-age=31536000" in response["Cache-Control"]
    assert "immutable" in response["Cache-Control"]


def test_the_demo_explains_what_is_missing_without_an_active_merchant(client, transactional_db):
    unknown = "merchant_" + "0" * 34

    empty = client.get("/widget/demo")
    missing = client.get(f"/widget/demo?merchant={unknown}")

    assert empty.status_code == 200
    assert "make run" in empty.content.decode()
    assert missing.status_code == 404
    assert unknown in missing.content.decode()


def test_the_demo_takes_an_api_root_on_this_server_only(client, merchant):
    demo = f"/widget/demo?merchant={merchant.public_id}"

    same_server = client.get(f"{demo}&api_root=http://127.0.0.1:8000/").content.decode()
    elsewhere = client.get(f"{demo}&api_root=https://evil.example/").content.decode()
    hostile = client.get(f"{demo}&api_root=javascript:alert(1)").content.decode()

    assert 'data-api-root="http://127.0.0.1:8000"' in same_server
    assert "api_root=http%3A%2F%2F127.0.0.1%3A8000" in same_server  # the cart link keeps it
    assert "data-api-root" not in elsewhere
    assert "data-api-root" not in hostile
    assert f'href="/widget/demo/cart?merchant={merchant.public_id}"' in hostile
    assert f'href="/widget/demo/cart?merchant={merchant.public_id}"' in hostile
