"""``customer_can_postpone`` in the API's payment plan: the postponement rule, read by
Alma's official client (GET /v1/payments/{id}) and without extra queries in the list."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import time_machine
from alma_client import Client
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.common.dates import date_to_timestamp
from apps.payments.models import Charge, Instalment, Payment
from apps.schedules.services.postponing import instalment_postpone
from tests.portal.helpers import CAMILLE, DOMINIQUE, plan_for

BOUGHT = datetime(2026, 11, 10, 10, 0, tzinfo=UTC)  # 4 x 100 EUR: Nov 10, Dec 10, Jan 10, Feb 10
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _now():
    with time_machine.travel(NOW, tick=True):
        yield


def can_postpone(shop, payment) -> list[bool]:
    body = shop.client().get(f"/v1/payments/{payment.public_id}").json()
    return [item["customer_can_postpone"] for item in body["payment_plan"]]


def test_the_official_client_reads_which_instalments_the_customer_may_postpone(live_server, shop):
    plan = plan_for(shop, CAMILLE, when=BOUGHT)
    alma = Client.with_api_key(shop.test_key, api_root=live_server.url)

    before = alma.payments.fetch(plan.public_id)
    instalment_postpone(
        payment_id=plan.pk,
        number=2,
        new_date=date(2026, 12, 20),
        now=NOW,
        customer_id=plan.customer_id,
    )
    after = alma.payments.fetch(plan.public_id)

    assert [i.customer_can_postpone for i in before.payment_plan] == [False, True, True, True]
    assert [i.customer_can_postpone for i in after.payment_plan] == [False, False, True, True]
    assert after.payment_plan[1].due_date == date_to_timestamp(date(2026, 12, 20))


@pytest.mark.django_db
def test_an_instalment_being_debited_cannot_be_postponed(shop):
    plan = plan_for(shop, CAMILLE, when=BOUGHT)
    second = plan.instalments.get(number=2)
    Instalment.objects.filter(pk=second.pk).update(next_debit_at=None)  # claimed
    charge = Charge.objects.create(
        payment=plan,
        instalment=second,
        card=plan.card,
        kind=Charge.Kind.INSTALMENT,
        idempotency_key=f"instalment:{second.public_id}:attempt:1",
        amount=second.total_amount,
        created_at=NOW,
    )

    in_flight = can_postpone(shop, plan)
    Charge.objects.filter(pk=charge.pk).update(status=Charge.Status.FAILED)
    retries_over = can_postpone(shop, plan)  # late, no debit planned, nothing in flight

    assert in_flight == [False, False, True, True]
    assert retries_over == [False, True, True, True]


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["default", "stopped", "paid"])
def test_nothing_can_be_postponed_in_a_closed_plan(shop, state):
    plan = plan_for(shop, CAMILLE, when=BOUGHT)
    Payment.objects.filter(pk=plan.pk).update(state=state)

    assert can_postpone(shop, plan) == [False] * 4


@pytest.mark.django_db
def test_a_plan_in_progress_is_postponable_before_and_while_late(shop):
    plan = plan_for(shop, CAMILLE, when=BOUGHT)
    Payment.objects.filter(pk=plan.pk).update(state="late_dunning")
    Instalment.objects.filter(payment=plan, number=2).update(
        state="incident", due_date=date(2026, 11, 20)
    )

    assert can_postpone(shop, plan) == [False, True, True, True]


@pytest.mark.django_db
def test_an_instalment_too_late_or_too_close_to_the_next_cannot_be_postponed(shop):
    plan = plan_for(shop, CAMILLE, when=BOUGHT)
    Instalment.objects.filter(payment=plan, number=2).update(
        state="incident", due_date=date(2026, 11, 8)
    )  # 15 days late
    Instalment.objects.filter(payment=plan, number=4).update(due_date=date(2027, 1, 11))

    assert can_postpone(shop, plan) == [False, False, False, True]


@pytest.mark.django_db
def test_the_list_reads_customer_can_postpone_without_a_query_per_payment(shop):
    client = shop.client()
    for _ in range(2):
        plan_for(shop, CAMILLE, when=BOUGHT)
    client.get("/v1/payments")  # warm the key cache
    with CaptureQueriesContext(connection) as small:
        client.get("/v1/payments")
    for _ in range(4):
        plan_for(shop, DOMINIQUE, when=BOUGHT)

    with CaptureQueriesContext(connection) as large:
        body = client.get("/v1/payments").json()

    assert len(body["data"]) == 6
    assert all(
        [i["customer_can_postpone"] for i in p["payment_plan"]] == [False, True, True, True]
        for p in body["data"]
    )
    assert len(large.captured_queries) == len(small.captured_queries)
    # A payment with a debit in flight costs one query to tell it apart.
    Instalment.objects.filter(payment__merchant=shop.merchant, number=2).update(next_debit_at=None)
    with CaptureQueriesContext(connection) as claimed:
        client.get("/v1/payments")
    assert len(claimed.captured_queries) == len(large.captured_queries) + 6
