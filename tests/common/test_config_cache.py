"""The per-process API key cache never outlives a committed change to a key or a merchant,
whoever makes it: another process, the admin, or plain SQL."""

import threading
import time

import psycopg
import pytest

from apps.common.config_cache import config_cache, plain_connection_params
from apps.merchants.keys import hash_secret

pytestmark = pytest.mark.django_db(transaction=True)


def run_elsewhere(sql: str, params: list) -> None:
    """Commit a change from another connection, as another process would."""
    with psycopg.connect(**plain_connection_params(), autocommit=True) as other:
        assert other.execute(sql, params).rowcount == 1


def status_soon(client, expected: int, *, within: float = 2.0) -> int:
    """The notification crosses a socket after the commit: allow it milliseconds, not more
    than `within` seconds."""
    deadline = time.monotonic() + within
    status = client.get("/v1/me").status_code
    while status != expected and time.monotonic() < deadline:
        threading.Event().wait(0.005)
        status = client.get("/v1/me").status_code
    return status


def test_a_key_revoked_by_another_process_is_refused_within_milliseconds(shop):
    client = shop.client()
    assert client.get("/v1/me").status_code == 200  # now cached

    run_elsewhere(
        "UPDATE merchants_apikey SET revoked_at = now() WHERE secret_hash = %s",
        [hash_secret(shop.test_key)],
    )

    assert status_soon(client, 401) == 401


def test_a_merchant_suspended_by_another_process_is_refused_within_milliseconds(shop):
    client = shop.client()
    assert client.get("/v1/me").status_code == 200

    run_elsewhere(
        "UPDATE merchants_merchant SET status = 'suspended' WHERE id = %s", [shop.merchant.pk]
    )

    assert status_soon(client, 403) == 403


def test_recording_a_keys_last_use_does_not_empty_the_caches(shop, django_assert_num_queries):
    client = shop.client()
    client.get("/v1/me")
    run_elsewhere(
        "UPDATE merchants_apikey SET last_used_at = now() WHERE secret_hash = %s",
        [hash_secret(shop.test_key)],
    )

    with django_assert_num_queries(0):
        assert client.get("/v1/me").status_code == 200


def test_when_notifications_are_lost_every_request_looks_the_key_up(shop):
    client = shop.client()
    client.get("/v1/me")
    config_cache._listener.close()  # the listening connection breaks

    run_elsewhere(
        "UPDATE merchants_apikey SET revoked_at = now() WHERE secret_hash = %s",
        [hash_secret(shop.test_key)],
    )

    assert client.get("/v1/me").status_code == 401
