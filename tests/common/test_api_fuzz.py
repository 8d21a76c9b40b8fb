"""Schemathesis against our own OpenAPI schema: whatever a client sends to any operation,
no 5xx and no response outside the schema.

The one check left out is "schema-violating data must be rejected": the API tolerates unknown
fields and query parameters on purpose (Alma's plugins send extra ones), so a request with an
extra parameter is rightly accepted.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection

from config.wsgi import application

schema = schemathesis.openapi.from_wsgi("/v1/schema", application)


@schema.hook
def filter_body(context, body) -> bool:
    """Bodies with a NUL character anywhere (even in an unknown key) are refused by design:
    PostgreSQL text cannot hold one (tests/common/test_api_requests.py checks the 400)."""
    return "\\x00" not in repr(body)


@pytest.fixture(autouse=True)
def _keep_the_test_transaction_open():
    """Calling the WSGI app directly would close the test's connection after each request,
    as Django does between real requests; its own test Client switches that off too."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def fuzz(max_examples: int):
    return settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@pytest.mark.django_db
@schema.parametrize()
@fuzz(max_examples=100)
def test_no_request_breaks_the_api(case, shop):
    case.call_and_validate(
        headers={"Authorization": f"Alma-Auth {shop.test_key}"},
        excluded_checks=[negative_data_rejection],
    )


@pytest.mark.django_db
@schema.parametrize()
@fuzz(max_examples=25)
def test_no_request_without_a_key_breaks_the_api(case):
    case.call_and_validate(excluded_checks=[negative_data_rejection])
