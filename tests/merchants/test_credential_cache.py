"""The per-process API key cache never outlives a committed change to a key or a merchant,
whoever makes it: another process, the admin, or plain SQL."""

import psycopg
import pytest
from django.db import connection

from apps.merchants.credential_cache import credential_cache
from apps.merchants.services import hash_secret

pytestmark = pytest.mark.django_db(transaction=True)


def run_elsewhere(sql: str, params: list) -> None:
    """Commit a change from another connection, as another process would."""
    params_ = connection.get_connection_params()
    for name in ("cursor_factory", "context", "prepare_threshold"):
        params_.pop(name, None)
    with psycopg.connect(**params_, autocommit=True) as other:
        assert other.execute(sql, params).rowcount == 1


def test_a_key_revoked_by_another_process_is_refused_at_once(shop):
    client = shop.client()
    assert client.get("/v1/me").status_code == 200  # now cached

    run_elsewhere(
        "UPDATE merchants_apikey SET revoked_at = now() WHERE secret_hash = %s",
        [hash_secret(shop.test_key)],
    )

    assert client.get("/v1/me").status_code == 401


def test_a_merchant_suspended_by_another_process_is_refused_at_once(shop):
    client = shop.client()
    assert client.get("/v1/me").status_code == 200

    run_elsewhere(
        "UPDATE merchants_merchant SET status = 'suspended' WHERE id = %s", [shop.merchant.pk]
    )

    assert client.get("/v1/me").status_code == 403


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
    credential_cache._listener.close()  # the listening connection breaks

    run_elsewhere(
        "UPDATE merchants_apikey SET revoked_at = now() WHERE secret_hash = %s",
        [hash_secret(shop.test_key)],
    )

    assert client.get("/v1/me").status_code == 401
