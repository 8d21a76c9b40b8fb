"""The simulated terminal's page: who may open it, and the hooks its script and the
browser tests rely on."""

from __future__ import annotations

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/pos/simulator/"


def test_the_simulator_lives_at_its_documented_address():
    assert reverse("pos:simulator") == URL


def test_a_dashboard_user_opens_the_simulated_terminal(client, shop):
    client.force_login(shop.owner)

    response = client.get(URL)

    assert response.status_code == 200
    assert (
        response["Cache-Control"].startswith("max-age=0") or "no-cache" in response["Cache-Control"]
    )
    html = response.content.decode()
    for hook in (
        'id="secret"',
        'id="amount"',
        'id="phone"',
        'id="start"',
        'id="state"',
        'id="cancel"',
        'id="tickets"',
        'id="menu-payment"',
        'id="error"',
    ):
        assert hook in html
    assert "/static/js/pos-simulator.js" in html
    assert 'id="pos-strings"' in html
    assert 'data-wait="20"' in html


def test_an_anonymous_visitor_finds_nothing_outside_development(client):
    response = client.get(URL)

    assert response.status_code == 404


def test_a_user_without_a_merchant_finds_nothing(client):
    client.force_login(UserFactory())

    assert client.get(URL).status_code == 404


def test_in_development_anybody_opens_it(client, settings):
    settings.DEBUG = True

    response = client.get(URL)

    assert response.status_code == 200


def test_a_staff_user_opens_it(client):
    client.force_login(UserFactory(is_staff=True))

    assert client.get(URL).status_code == 200


def test_the_page_is_english_on_request(client, shop):
    client.force_login(shop.owner)

    html = client.get(URL, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert '<html lang="en">' in html
    assert "Send the link" in html
    assert "Type an amount in euros" in html  # the script's own lines, translated too


def test_only_get_is_allowed(client, shop):
    client.force_login(shop.owner)

    assert client.post(URL).status_code == 405


def test_the_script_documents_its_hooks_and_speaks_the_terminal_api():
    path = finders.find("js/pos-simulator.js")
    assert path is not None
    with open(path, encoding="utf-8") as handle:
        source = handle.read()

    for hook in ("#secret", "#amount", "#phone", "#start", "#state", "#cancel", "data-kind"):
        assert hook in source.split("(function")[0]
    assert '"Authorization": "Terminal "' in source
    assert '"Idempotency-Key"' in source
    assert '"If-None-Match"' in source
    assert "v1/pos/sessions" in source
    assert "?wait=" in source
