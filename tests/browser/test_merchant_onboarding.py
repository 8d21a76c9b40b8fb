"""A merchant signs up, is activated, creates a key and calls the API with it."""

import re

import pytest
import requests
from django.utils import timezone

from apps.merchants import services
from apps.merchants.models import Merchant
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_merchant_signs_up_gets_a_key_and_calls_the_api(page, live_server):
    page.goto(f"{live_server.url}/register/")
    page.fill("#id_legal_name", "Atelier Lumière SAS")
    page.select_option("#id_country", "FR")
    page.fill("#id_website", "https://atelier-lumiere.example")
    page.fill("#id_first_name", "Camille")
    page.fill("#id_last_name", "Durand")
    page.fill("#id_email", "camille@atelier-lumiere.example")
    page.fill("#id_password1", "lumiere-et-ombre-2026")
    page.fill("#id_password2", "lumiere-et-ombre-2026")
    page.check("#id_accept_terms")
    screenshot(page, "register")
    page.click("button[type=submit]")

    assert page.url.endswith("/dashboard/")
    assert "en attente d’activation" in page.inner_text(".banner")
    screenshot(page, "dashboard-pending")

    merchant = Merchant.objects.get(legal_name="Atelier Lumière SAS")
    services.merchant_activate(merchant=merchant, now=timezone.now())
    page.click("text=API")
    page.click("text=Créer une clé de test")
    secret = page.inner_text("#new-secret")
    screenshot(page, "api-keys-new")

    assert re.fullmatch(r"sk_test_[0-9A-Za-z]{32}", secret)
    response = requests.get(
        f"{live_server.url}/v1/me", headers={"Authorization": f"Alma-Auth {secret}"}, timeout=10
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Atelier Lumière SAS"

    page.goto(f"{live_server.url}/dashboard/api/")
    assert secret not in page.content()
    assert page.locator("td code").count() == 1  # the one key; nothing was created twice


def test_registration_errors_show_next_to_their_fields(page, live_server):
    page.goto(f"{live_server.url}/register/")
    page.fill("#id_email", "pas-un-email")
    page.click("button[type=submit]")

    errors = page.locator(".field.has-error")
    assert errors.count() >= 5
    assert page.locator(".field.has-error #id_email").count() == 1
    screenshot(page, "register-errors")
