import os
from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from apps.common.config_cache import config_cache
from apps.merchants import services
from apps.merchants.models import Merchant
from tests.factories import MembershipFactory, MerchantFactory


@dataclass
class Shop:
    """An active merchant with a test and a live key and a dashboard owner."""

    merchant: Merchant
    test_key: str
    live_key: str
    owner: object

    def client(self, *, live: bool = False, scheme: str = "Alma-Auth") -> APIClient:
        client = APIClient()
        client.credentials(
            HTTP_AUTHORIZATION=f"{scheme} {self.live_key if live else self.test_key}"
        )
        return client


def make_shop(*, status: str = Merchant.Status.ACTIVE, **merchant_fields) -> Shop:
    now = timezone.now()
    merchant = MerchantFactory(**merchant_fields)
    if status == Merchant.Status.ACTIVE:
        merchant = services.merchant_activate(merchant=merchant, now=now)
    elif status == Merchant.Status.SUSPENDED:
        merchant = services.merchant_suspend(merchant=merchant, now=now)
    owner = MembershipFactory(merchant=merchant).user
    return Shop(
        merchant=merchant,
        test_key=services.api_key_create(merchant=merchant, livemode=False, now=now).secret,
        live_key=services.api_key_create(merchant=merchant, livemode=True, now=now).secret,
        owner=owner,
    )


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """TEST_DB_SUFFIX=x gives this run its own test database, so two suites can run side
    by side on one machine (pytest-django's xdist support does the same per worker)."""
    suffix = os.environ.get("TEST_DB_SUFFIX")
    if suffix:
        from django.conf import settings

        test = settings.DATABASES["default"].setdefault("TEST", {})
        test["NAME"] = f"test_{settings.DATABASES['default']['NAME']}_{suffix}"


@pytest.fixture(scope="session", autouse=True)
def _stop_listening_before_the_test_database_goes(django_db_setup, django_db_blocker):
    yield
    config_cache.close()  # its connection would keep the test database from being dropped


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Rate-limit counters and cached key lookups must not leak between tests.
    cache.clear()
    config_cache.clear()
    yield
    cache.clear()
    config_cache.clear()


@pytest.fixture
def shop(db) -> Shop:
    return make_shop()


@pytest.fixture
def other_shop(db) -> Shop:
    return make_shop()


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


@pytest.fixture(autouse=True)
def _ledger_audit(request):
    """check_ledger's invariants, on the data each database test leaves, before it goes.

    Requesting the database fixture from here sets it up first, so this teardown runs
    while the test's rows still exist (before the rollback or flush).
    """
    uses = set(request.fixturenames)
    database = next((name for name in ("transactional_db", "db") if name in uses), None)
    if database is None and request.node.get_closest_marker("django_db"):
        database = "_django_db_helper"  # what pytest-django's marker sets up
    if database is None or request.node.get_closest_marker("ledger_corrupt"):
        yield
        return
    request.getfixturevalue(database)
    yield
    from django.db import connection

    from apps.ledger.audit import ledger_audit

    if connection.needs_rollback:  # the test ended inside a failed transaction on purpose
        return
    report = ledger_audit()
    assert report.ok, f"ledger invariants broken: {report.violations}"
