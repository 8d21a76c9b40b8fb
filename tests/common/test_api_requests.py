"""What every write endpoint shares: JSON bodies, validation errors, Idempotency-Key."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from apps.common.idempotency import request_fingerprint
from apps.common.models import IdempotencyRecord
from apps.merchants.models import MerchantEvent
from tests import api_urls

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api_urls")]


def effects(shop):
    return MerchantEvent.objects.filter(merchant=shop.merchant, kind="test_effect").count()


def test_a_json_body_is_read(shop):
    response = shop.client().post("/v1/_test/effects", {"amount": 5}, format="json")

    assert response.status_code == 201
    assert response.json()["amount"] == 5


def test_an_empty_body_without_content_type_reads_as_an_empty_object(shop):
    # PHP's client sends bodiless POST/PUT with no content type at all.
    response = shop.client().generic("POST", "/v1/_test/effects", b"", content_type="")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "amount", "error_code": "missing_field", "message": "This field is required."}
    ]


def test_malformed_json_is_400_naming_the_problem(shop):
    response = shop.client().generic(
        "POST", "/v1/_test/effects", b'{"amount": 5,', content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid_json"
    assert "Malformed JSON" in response.json()["message"]
    assert "line 1" in response.json()["message"]


def test_a_form_body_is_415_with_the_error_body(shop):
    response = shop.client().post("/v1/_test/effects", {"amount": "5"})

    assert response.status_code == 415
    assert response.json()["error_code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"amount": "5"}, "amount", "invalid_type"),
        ({"amount": 5.5}, "amount", "invalid_type"),
        ({"amount": True}, "amount", "invalid_type"),
        ({"amount": None}, "amount", "invalid_value"),
        ({"amount": 0}, "amount", "invalid_value"),
        ({"amount": 10**12}, "amount", "invalid_value"),
        ({"amount": 5, "note": "x" * 21}, "note", "too_long"),
        ({"amount": 5, "note": ["<b>"]}, "note", "invalid_type"),
    ],
)
def test_wrong_typed_or_out_of_range_fields_are_400_listing_each_field(shop, body, field, code):
    response = shop.client().post("/v1/_test/effects", body, format="json")

    assert response.status_code == 400
    payload = response.json()
    assert payload["error_code"] == "validation_error"
    assert payload["message"].startswith("Invalid request.")
    assert [(e["field"], e["error_code"]) for e in payload["errors"]] == [(field, code)]


def test_the_offending_value_is_echoed_when_it_is_simple(shop):
    response = shop.client().post("/v1/_test/effects", {"amount": "ten"}, format="json")

    assert response.json()["errors"][0]["value"] == "ten"


def test_unknown_fields_are_tolerated(shop):
    response = shop.client().post(
        "/v1/_test/effects", {"amount": 5, "online": "online", "x": {"y": [1]}}, format="json"
    )

    assert response.status_code == 201


def test_a_json_array_body_is_a_validation_error_not_a_crash(shop):
    response = shop.client().post("/v1/_test/effects", [1, 2], format="json")

    assert response.status_code == 400
    assert response.json()["error_code"] == "validation_error"


def test_hostile_strings_are_plain_data(shop):
    body = {"amount": 5, "note": "'; DROP TABLE x;--"}

    response = shop.client().post("/v1/_test/effects", body, format="json")

    assert response.status_code == 201


def test_an_oversized_body_is_refused_with_400(shop, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"amount": 5, "padding": "x" * 2000})

    response = shop.client().generic(
        "POST", "/v1/_test/effects", body, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["error_code"] == "request_too_large"
    assert "too large" in response.json()["message"]


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"amount": 5, "note": "\\ud800"}', "surrogates"),
        (b'{"amount": 5, "note": "a\\u0000b"}', "NUL"),
        (b'{"amount": 1e400}', "out of range"),
        (b'{"amount": NaN}', "not a JSON number"),
        (b'{"amount": 5, "note": "\xff\xfe"}', "not UTF-8"),
    ],
)
def test_bodies_that_would_break_later_are_refused_up_front(shop, raw, words):
    response = shop.client().generic(
        "POST",
        "/v1/_test/effects",
        raw,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="hostile",
    )

    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid_json"
    assert words in response.json()["message"]
    assert effects(shop) == 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.dictionaries(st.sampled_from(["amount", "note", "x"]), json_values) | json_values)
def test_no_json_body_makes_a_write_endpoint_fail(shop, body):
    client = shop.client()
    raw = json.dumps(body).encode()

    plain = client.generic("POST", "/v1/_test/effects", raw, content_type="application/json")
    keyed = client.generic(
        "POST",
        "/v1/_test/effects",
        raw,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=f"fuzz-{hash(raw)}",
    )

    assert plain.status_code < 500, plain.content
    assert keyed.status_code < 500, keyed.content
    assert keyed["Content-Type"] == "application/json"


# --- Idempotency-Key -----------------------------------------------------------------


def test_the_same_key_and_body_replays_the_first_response(shop):
    client = shop.client()

    first = client.post(
        "/v1/_test/effects", {"amount": 5}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    second = client.post(
        "/v1/_test/effects", {"amount": 5}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )

    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert effects(shop) == 1


def test_a_replayed_validation_error_is_the_same_error(shop):
    client = shop.client()

    first = client.post("/v1/_test/effects", {"amount": 0}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    second = client.post(
        "/v1/_test/effects", {"amount": 0}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )

    assert first.status_code == second.status_code == 400
    assert first.json() == second.json()


def test_the_same_key_with_another_body_is_422(shop):
    client = shop.client()
    client.post("/v1/_test/effects", {"amount": 5}, format="json", HTTP_IDEMPOTENCY_KEY="k2")

    response = client.post(
        "/v1/_test/effects", {"amount": 6}, format="json", HTTP_IDEMPOTENCY_KEY="k2"
    )

    assert response.status_code == 422
    assert response.json()["error_code"] == "idempotency_key_reused"
    assert effects(shop) == 1


def test_the_same_key_on_another_method_is_422(shop):
    client = shop.client()
    client.post("/v1/_test/effects", {"amount": 5}, format="json", HTTP_IDEMPOTENCY_KEY="k3")

    response = client.put(
        "/v1/_test/effects", {"amount": 5}, format="json", HTTP_IDEMPOTENCY_KEY="k3"
    )

    assert response.status_code == 422


def test_the_same_key_on_another_query_string_is_422(shop):
    client = shop.client()
    client.post("/v1/_test/effects?a=1", {"amount": 5}, format="json", HTTP_IDEMPOTENCY_KEY="q")

    response = client.post(
        "/v1/_test/effects?a=2", {"amount": 5}, format="json", HTTP_IDEMPOTENCY_KEY="q"
    )

    assert response.status_code == 422


def test_a_method_the_endpoint_does_not_have_is_405_and_claims_nothing(shop):
    response = shop.client().post("/v1/me", {"a": 1}, format="json", HTTP_IDEMPOTENCY_KEY="m")

    assert response.status_code == 405
    assert not IdempotencyRecord.objects.exists()


def test_a_claim_whose_request_never_answered_is_taken_over_after_five_minutes(shop, time_machine):
    time_machine.move_to("2026-11-22 10:00:00+00:00", tick=False)
    fingerprint = request_fingerprint("POST", "/v1/_test/effects", {"amount": 5})
    IdempotencyRecord.objects.create(
        scope=f"merchant:{shop.merchant.pk}:test",
        key="dead",
        fingerprint=fingerprint,
        created_at=timezone.now(),
    )
    client = shop.client()

    time_machine.move_to("2026-11-22 10:04:00+00:00", tick=False)
    early = client.post(
        "/v1/_test/effects", {"amount": 5}, format="json", HTTP_IDEMPOTENCY_KEY="dead"
    )
    time_machine.move_to("2026-11-22 10:05:01+00:00", tick=False)
    late = client.post(
        "/v1/_test/effects", {"amount": 5}, format="json", HTTP_IDEMPOTENCY_KEY="dead"
    )

    assert early.status_code == 409
    assert early.json()["error_code"] == "idempotent_request_in_progress"
    assert late.status_code == 201
    assert effects(shop) == 1


def test_without_a_key_every_post_acts(shop):
    client = shop.client()

    client.post("/v1/_test/effects", {"amount": 5}, format="json")
    client.post("/v1/_test/effects", {"amount": 5}, format="json")

    assert effects(shop) == 2


def test_keys_of_one_merchant_do_not_collide_with_another_merchants(shop, other_shop):
    shop.client().post("/v1/_test/effects", {"amount": 5}, format="json", HTTP_IDEMPOTENCY_KEY="s")

    response = other_shop.client().post(
        "/v1/_test/effects", {"amount": 5}, format="json", HTTP_IDEMPOTENCY_KEY="s"
    )

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert effects(other_shop) == 1


def test_test_and_live_keys_never_share_idempotency_records(shop):
    shop.client().post("/v1/_test/effects", {"amount": 5}, format="json", HTTP_IDEMPOTENCY_KEY="m")

    live = shop.client(live=True).post(
        "/v1/_test/effects", {"amount": 5}, format="json", HTTP_IDEMPOTENCY_KEY="m"
    )

    assert live.status_code == 201
    assert "Idempotent-Replayed" not in live
    assert sorted(
        MerchantEvent.objects.filter(kind="test_effect").values_list("detail", flat=True)
    ) == ["live:5", "test:5"]


def test_a_key_is_forgotten_after_24_hours(shop, time_machine):
    client = shop.client()
    client.post("/v1/_test/effects", {"amount": 5}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    time_machine.move_to(timezone.now() + timedelta(hours=24, seconds=1))

    response = client.post(
        "/v1/_test/effects", {"amount": 5}, format="json", HTTP_IDEMPOTENCY_KEY="old"
    )

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert effects(shop) == 2


def test_an_over_long_key_is_a_validation_error(shop):
    response = shop.client().post(
        "/v1/_test/effects", {"amount": 5}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 256
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert effects(shop) == 0


@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_requests_with_one_key_act_once(shop):
    api_urls.handler_gate.clear()  # hold the first request inside its handler
    start = threading.Barrier(20)

    def send(_):
        client = Client()
        start.wait()
        try:
            response = client.post(
                "/v1/_test/effects",
                {"amount": 5},
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Alma-Auth {shop.test_key}",
                HTTP_IDEMPOTENCY_KEY="race",
            )
            return response.status_code, response.json()
        finally:
            connection.close()

    try:
        with ThreadPoolExecutor(max_workers=20) as pool:
            futures = [pool.submit(send, i) for i in range(20)]
            # Everyone but the request holding the key answers 409 while it is held.
            deadline = time.monotonic() + 30
            while sum(f.done() for f in futures) < 19 and time.monotonic() < deadline:
                threading.Event().wait(0.01)
            api_urls.handler_gate.set()
            responses = [f.result() for f in futures]
    finally:
        api_urls.handler_gate.set()

    statuses = sorted(status for status, _ in responses)
    assert statuses == [201] + [409] * 19
    conflicts = [body for status, body in responses if status == 409]
    assert all(body["error_code"] == "idempotent_request_in_progress" for body in conflicts)
    assert all(body["message"] for body in conflicts)
    assert effects(shop) == 1
    replay = APIClient()
    replay.credentials(HTTP_AUTHORIZATION=f"Alma-Auth {shop.test_key}")
    again = replay.post(
        "/v1/_test/effects", {"amount": 5}, format="json", HTTP_IDEMPOTENCY_KEY="race"
    )
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"


def test_an_unexpected_error_is_a_json_500_quoting_the_request_id(shop, caplog):
    response = shop.client().get("/v1/_test/crash")

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json()["error_code"] == "server_error"
    assert response["X-Request-Id"] in response.json()["message"]
    assert "secret internal detail" not in response.content.decode()
    assert "secret internal detail" in caplog.text  # logged loudly for us, not shown
