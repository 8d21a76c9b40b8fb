"""The payment services on their own: expiry (batched, rerun, concurrent), order history,
the customer found by email under concurrency, business dates."""

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection

from apps.common.errors import DomainError
from apps.payments.models import Customer, Order, Payment, PaymentEvent, PaymentState
from apps.payments.services.orders import orders_append, orders_replace
from apps.payments.services.payments import (
    PaymentStateConflict,
    payment_cancel,
    payments_expire,
)
from tests.payments.builders import create_request, payment_create_for

PARIS = ZoneInfo("Europe/Paris")
MOMENT = datetime(2026, 1, 31, 10, 0, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(MOMENT, tick=False):
        yield


def expiring(shop, count: int, *, minutes: int = 10) -> list[Payment]:
    return [payment_create_for(shop, expires_after=minutes) for _ in range(count)]


# --- expiry -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_only_payments_whose_time_is_up_expire(shop):
    due = expiring(shop, 2, minutes=10)
    later = expiring(shop, 1, minutes=60)
    cancelled = payment_cancel(payment=expiring(shop, 1, minutes=10)[0], now=MOMENT)
    accepted = expiring(shop, 1, minutes=10)[0]
    Payment.objects.filter(pk=accepted.pk).update(state=PaymentState.IN_PROGRESS)

    count = payments_expire(now=MOMENT + timedelta(minutes=10))

    assert count == 2
    states = dict(Payment.objects.values_list("pk", "state"))
    assert [states[p.pk] for p in due] == ["stopped", "stopped"]
    assert states[later[0].pk] == "not_started"
    assert states[accepted.pk] == "in_progress"
    cancelled.refresh_from_db()
    assert cancelled.expired_at is None
    assert set(Payment.objects.filter(pk__in=[p.pk for p in due]).values_list(
        "expired_at", flat=True)) == {MOMENT + timedelta(minutes=10)}  # fmt: skip
    assert PaymentEvent.objects.filter(kind="expired", to_state="stopped").count() == 2


@pytest.mark.django_db
def test_expiring_twice_changes_nothing_the_second_time(shop):
    expiring(shop, 3)
    later = MOMENT + timedelta(minutes=30)

    first = payments_expire(now=later)
    second = payments_expire(now=later + timedelta(minutes=1))

    assert (first, second) == (3, 0)
    assert PaymentEvent.objects.filter(kind="expired").count() == 3


@pytest.mark.django_db
def test_expiry_works_through_batches(shop):
    expiring(shop, 7)

    count = payments_expire(now=MOMENT + timedelta(hours=1), batch_size=3)

    assert count == 7
    assert not Payment.objects.exclude(state=PaymentState.STOPPED).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_expiry_workers_expire_each_payment_once(shop):
    expiring(shop, 40)
    start = threading.Barrier(4)
    counts, failures = [], []

    def worker():
        try:
            start.wait()
            counts.append(payments_expire(now=MOMENT + timedelta(hours=1), batch_size=5))
        except Exception as error:  # reported below, not lost in the thread
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert sum(counts) == 40
    assert PaymentEvent.objects.filter(kind="expired").count() == 40
    assert not Payment.objects.exclude(state=PaymentState.STOPPED).exists()


@pytest.mark.django_db
def test_an_expired_payment_is_not_cancelled_afterwards(shop):
    payment = expiring(shop, 1)[0]
    payments_expire(now=MOMENT + timedelta(hours=1))

    with pytest.raises(PaymentStateConflict):
        payment_cancel(payment=payment, now=MOMENT + timedelta(hours=2))


# --- orders -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_replacing_orders_keeps_every_earlier_order_on_record(shop):
    payment = payment_create_for(shop, order={"merchant_reference": "first"})
    orders_append(payment=payment, orders=[{"merchant_reference": "second"}], now=MOMENT)

    later = MOMENT + timedelta(minutes=1)
    current = orders_replace(payment=payment, orders=[{"merchant_reference": "third"}], now=later)
    orders_replace(payment=payment, orders=[], now=later + timedelta(minutes=1))

    assert [o.merchant_reference for o in current] == ["third"]
    rows = Order.objects.filter(payment=payment).order_by("created_at", "id")
    assert [(o.merchant_reference, o.detached_at) for o in rows] == [
        ("first", later),
        ("second", later),
        ("third", later + timedelta(minutes=1)),
    ]
    assert PaymentEvent.objects.filter(payment=payment, kind="orders_replaced").count() == 2


# --- creation -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_purchase_date_is_the_day_in_paris():
    from tests.conftest import make_shop

    shop = make_shop()
    late_evening_utc = datetime(2026, 3, 31, 22, 30, tzinfo=ZoneInfo("UTC"))  # 1 April in Paris

    payment = payment_create_for(shop, now=late_evening_utc)

    assert payment.purchase_date.isoformat() == "2026-04-01"
    assert [i.due_date.isoformat() for i in payment.instalment_rows] == [
        "2026-04-01",
        "2026-05-01",
        "2026-06-01",
    ]


@pytest.mark.django_db
def test_a_refused_creation_leaves_nothing_behind(shop):
    with pytest.raises(DomainError):
        payment_create_for(shop, purchase_amount=10, customer={"email": "ghost@example.com"})

    assert not Payment.objects.exists()
    assert not Customer.objects.filter(email="ghost@example.com").exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_payments_of_a_new_email_make_one_customer(shop):
    start = threading.Barrier(6)
    failures = []

    def worker():
        try:
            start.wait()
            payment_create_for(shop, customer={"email": "race@example.com"})
        except Exception as error:
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert Customer.objects.filter(email="race@example.com").count() == 1
    assert Payment.objects.filter(customer__email="race@example.com").count() == 6


@pytest.mark.django_db
def test_the_builder_body_is_what_the_api_accepts(shop):
    from apps.payments.api.payment_serializers import PaymentCreateSerializer

    serializer = PaymentCreateSerializer(data=create_request())

    assert serializer.is_valid(), serializer.errors
