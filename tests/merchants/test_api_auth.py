"""Who may call the merchant API, and what every error looks like."""

import pytest
from django.test import override_settings
from django.utils import timezone

from apps.merchants import services
from apps.merchants.models import APIKey, Merchant
from tests.conftest import make_shop

pytestmark = pytest.mark.django_db

INVALID = {"error_code": "unauthorized", "message": "Invalid API key."}


def test_a_test_key_reaches_its_merchant(shop):
    response = shop.client().get("/v1/me")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["id"] == shop.merchant.public_id


def test_bearer_is_accepted_as_an_alias_of_alma_auth(shop):
    response = shop.client(scheme="Bearer").get("/v1/me")

    assert response.status_code == 200


def test_the_scheme_is_case_insensitive(shop, anonymous):
    anonymous.credentials(HTTP_AUTHORIZATION=f"alma-auth {shop.test_key}")

    assert anonymous.get("/v1/me").status_code == 200


def test_a_missing_key_is_401_with_the_error_body(anonymous):
    response = anonymous.get("/v1/me")

    assert response.status_code == 401
    assert response.json() == INVALID
    assert response["Content-Type"] == "application/json"
    assert "Alma-Auth" in response["WWW-Authenticate"]


@pytest.mark.parametrize(
    "header",
    [
        "sk_test_abc",  # no scheme
        "Basic dXNlcjpwYXNz",
        "Alma-Auth",
        "Alma-Auth ",
        "Alma-Auth sk_test_doesnotexist000000000000000000",
        "Alma-Auth pk_test_123",
        "Alma-Auth " + "sk_test_" + "x" * 5000,
        "Alma-Auth sk_test_' OR 1=1 --",
        "Bearer \u00e9\u00e8\u00ea",
    ],
)
def test_malformed_or_unknown_keys_are_401_saying_only_invalid_key(anonymous, db, header):
    anonymous.credentials(HTTP_AUTHORIZATION=header)

    response = anonymous.get("/v1/me")

    assert response.status_code == 401
    assert response.json() == INVALID


def test_a_revoked_key_is_401(shop):
    key = APIKey.objects.get(merchant=shop.merchant, livemode=False)
    services.api_key_revoke(key=key, now=timezone.now())

    response = shop.client().get("/v1/me")

    assert response.status_code == 401
    assert response.json() == INVALID


def test_a_rotated_key_works_during_the_grace_period_then_stops(shop, time_machine):
    key = APIKey.objects.get(merchant=shop.merchant, livemode=False)
    issued = services.api_key_rotate(key=key, now=timezone.now())
    new_client = shop.client()
    new_client.credentials(HTTP_AUTHORIZATION=f"Alma-Auth {issued.secret}")

    assert shop.client().get("/v1/me").status_code == 200
    assert new_client.get("/v1/me").status_code == 200

    time_machine.move_to(timezone.now() + timezone.timedelta(hours=24, seconds=1))

    assert shop.client().get("/v1/me").status_code == 401
    assert new_client.get("/v1/me").status_code == 200


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        (Merchant.Status.PENDING, "merchant_pending", "pending activation"),
        (Merchant.Status.SUSPENDED, "merchant_suspended", "suspended"),
    ],
)
def test_a_merchant_that_is_not_active_gets_403_saying_so(db, status, code, words):
    shop = make_shop(status=status)

    response = shop.client().get("/v1/me")

    assert response.status_code == 403
    assert response.json()["error_code"] == code
    assert words in response.json()["message"]


def test_an_unknown_endpoint_is_a_json_404(shop):
    response = shop.client().post("/v1/nothing/here", {"a": 1}, format="json")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error_code"] == "not_found"
    assert response.json()["message"]


def test_a_wrong_method_is_a_json_405(shop):
    response = shop.client().delete("/v1/me")

    assert response.status_code == 405
    assert response.json()["error_code"] == "method_not_allowed"
    assert "DELETE" in response.json()["message"]


def test_every_response_carries_a_request_id(shop, anonymous):
    ok = shop.client().get("/v1/me")
    refused = anonymous.get("/v1/me")

    assert ok["X-Request-Id"].startswith("req_")
    assert refused["X-Request-Id"].startswith("req_")
    assert ok["X-Request-Id"] != refused["X-Request-Id"]


def test_a_well_formed_incoming_request_id_is_kept(shop):
    response = shop.client().get("/v1/me", HTTP_X_REQUEST_ID="lb-1234567890")

    assert response["X-Request-Id"] == "lb-1234567890"


def test_a_hostile_incoming_request_id_is_replaced(shop):
    response = shop.client().get("/v1/me", HTTP_X_REQUEST_ID="<script>alert(1)</script>")

    assert response["X-Request-Id"].startswith("req_")


def test_log_lines_written_while_serving_carry_the_request_id(anonymous, caplog):
    caplog.set_level("WARNING", logger="django.request")

    response = anonymous.get("/v1/me")

    records = [r for r in caplog.records if r.name == "django.request"]
    assert records, "Django logs refused requests"
    from apps.common.request_id import RequestIdLogFilter

    RequestIdLogFilter().filter(records[-1])
    assert records[-1].request_id == response["X-Request-Id"]


@override_settings(API_RATE_LIMIT="3/minute")
def test_too_many_requests_get_429_with_retry_after(shop, time_machine):
    time_machine.move_to("2026-11-22 10:00:10+00:00", tick=False)  # mid-window
    client = shop.client()
    statuses = [client.get("/v1/me").status_code for _ in range(4)]

    response = client.get("/v1/me")

    assert statuses == [200, 200, 200, 429]
    assert response.status_code == 429
    assert response.json()["error_code"] == "too_many_requests"
    assert response["Retry-After"] == "50"


@override_settings(API_RATE_LIMIT="2/minute")
def test_the_rate_limit_is_counted_per_key(shop, time_machine):
    time_machine.move_to("2026-11-22 10:00:10+00:00", tick=False)
    test_client, live_client = shop.client(), shop.client(live=True)
    for _ in range(2):
        test_client.get("/v1/me")

    assert test_client.get("/v1/me").status_code == 429
    assert live_client.get("/v1/me").status_code == 200


def test_api_messages_are_english_even_for_a_french_browser(anonymous):
    response = anonymous.get("/v1/me", HTTP_ACCEPT_LANGUAGE="fr")

    assert response.json()["message"] == "Invalid API key."


@override_settings(API_RATE_LIMIT="2/minute")
def test_the_limit_opens_again_in_the_next_window(shop, time_machine):
    time_machine.move_to("2026-11-22 10:00:10+00:00", tick=False)
    client = shop.client()
    for _ in range(3):
        client.get("/v1/me")

    time_machine.move_to("2026-11-22 10:01:00+00:00", tick=False)

    assert client.get("/v1/me").status_code == 200
