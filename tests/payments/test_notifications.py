import hashlib
import hmac
import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.utils import timezone
from django_q.conf import Conf

from apps.merchants import services as merchant_services
from apps.merchants.models import APIKey
from apps.merchants.selectors import api_key_signing_secret
from apps.payments.models import Notification, NotificationAttempt, PaymentState
from apps.payments.notifications import (
    NO_SIGNING_KEY,
    NotificationStale,
    notification_attempt,
    notification_deliver,
    notification_is_stale,
    notification_resend,
    notification_schedule,
    notifications_deliver_due,
)
from apps.payments.services.transitions import payment_lock, payment_transition
from tests.common.http_receiver import Receiver
from tests.conftest import make_shop
from tests.payments.builders import payment_create_for
from tests.support import all_database_text

S = PaymentState
DELAYS = [60, 300, 900, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600]
START = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _ipn_settings(settings):
    settings.IPN_RETRY_DELAYS = DELAYS
    settings.IPN_TIMEOUT_SECONDS = 3
    settings.OUTGOING_PRIVATE_ADDRESSES_IN_LIVE = False


@pytest.fixture
def tasks_run_at_once(monkeypatch):
    """django-q2's sync mode: a task queued after commit runs right there, in this process."""
    monkeypatch.setattr(Conf, "SYNC", True)


def move(payment, *states):
    with transaction.atomic():
        locked = payment_lock(payment_id=payment.pk)
        for state in states:
            payment_transition(locked, state, now=timezone.now())
    return locked


def accepted_payment(shop, *, ipn_callback_url, livemode=False):
    payment = payment_create_for(shop, livemode=livemode, ipn_callback_url=ipn_callback_url)
    return move(payment, S.SCORED_YES, S.IN_PROGRESS)


def scheduled(payment, *, event="accepted"):
    with transaction.atomic():
        return notification_schedule(payment=payment, event=event, now=timezone.now())


def signature(secret: str, pid: str) -> str:
    return hmac.new(secret.encode(), pid.encode(), hashlib.sha256).hexdigest()


def sweep() -> int:
    return notifications_deliver_due(now=timezone.now())


# --- scheduling --------------------------------------------------------------------------


def test_accepting_notifies_the_merchant_after_commit_with_a_signed_get(
    shop, receiver, tasks_run_at_once, django_capture_on_commit_callbacks
):
    payment = accepted_payment(shop, ipn_callback_url=receiver.url("/ipn?shop=1"))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        notification = scheduled(payment)
        assert receiver.requests == []  # nothing is sent before the commit

    notification.refresh_from_db()
    assert len(callbacks) == 1
    assert notification.status == Notification.Status.DELIVERED
    assert notification.url == receiver.url(f"/ipn?shop=1&pid={payment.public_id}")
    [request] = receiver.requests
    assert request.query == {"shop": ["1"], "pid": [payment.public_id]}
    assert request.headers["x-alma-signature"] == signature(shop.test_key, payment.public_id)
    assert request.headers["user-agent"] == "Tranche-IPN/1.0"
    [attempt] = notification.attempt_rows.all()
    assert (attempt.number, attempt.status_code, attempt.error) == (1, 200, "")
    assert attempt.response_snippet == '{"success": true}'


def test_a_live_payment_is_signed_with_the_live_key(shop, receiver, settings):
    settings.OUTGOING_PRIVATE_ADDRESSES_IN_LIVE = True
    payment = accepted_payment(shop, ipn_callback_url=receiver.url(), livemode=True)
    notification = scheduled(payment)

    assert notification_deliver(notification.pk) == "delivered"

    expected = signature(shop.live_key, payment.public_id)
    assert receiver.requests[0].headers["x-alma-signature"] == expected


def test_deciding_twice_records_one_notification_and_queues_one_attempt(
    shop, django_capture_on_commit_callbacks
):
    payment = accepted_payment(shop, ipn_callback_url="https://shop.example/ipn")

    with django_capture_on_commit_callbacks() as callbacks:
        first = scheduled(payment)
        second = scheduled(payment)

    assert first.pk == second.pk
    assert len(callbacks) == 1
    assert Notification.objects.filter(payment=payment).count() == 1
    assert first.state_at_event == S.IN_PROGRESS
    assert first.next_attempt_at is not None


def test_without_any_ipn_url_nothing_is_scheduled_and_the_history_says_why(shop):
    payment = accepted_payment(shop, ipn_callback_url="")

    assert scheduled(payment) is None
    assert scheduled(payment) is None

    assert not Notification.objects.filter(payment=payment).exists()
    skipped = payment.events.filter(kind="notification_skipped")
    assert [event.detail["event"] for event in skipped] == ["accepted"]


def test_the_merchants_default_url_is_used_when_the_payment_has_none(shop):
    payment = accepted_payment(shop, ipn_callback_url="")
    shop.merchant.ipn_callback_url = "https://shop.example/alma/ipn?a=1"
    shop.merchant.save(update_fields=["ipn_callback_url"])
    payment.refresh_from_db()

    notification = scheduled(payment)

    assert notification.url == f"https://shop.example/alma/ipn?a=1&pid={payment.public_id}"


# --- retries -----------------------------------------------------------------------------


def test_a_failing_merchant_is_retried_on_the_schedule_then_given_up(shop, receiver):
    receiver.status = 500
    receiver.body = b'{"error": "boom"}'
    with time_machine.travel(START, tick=False) as clock:
        payment = accepted_payment(shop, ipn_callback_url=receiver.url())
        notification = scheduled(payment)
        assert sweep() == 1

        for number, delay in enumerate(DELAYS, start=1):
            notification.refresh_from_db()
            last = notification.attempt_rows.get(number=number)
            assert notification.status == Notification.Status.PENDING
            assert notification.next_attempt_at - last.created_at == timedelta(seconds=delay)
            clock.move_to(notification.next_attempt_at - timedelta(seconds=1))
            assert sweep() == 0
            clock.move_to(notification.next_attempt_at)
            assert sweep() == 1

    notification.refresh_from_db()
    attempts = list(notification.attempt_rows.all())
    assert notification.status == Notification.Status.FAILED
    assert notification.next_attempt_at is None
    assert [attempt.number for attempt in attempts] == list(range(1, len(DELAYS) + 2))
    assert {attempt.status_code for attempt in attempts} == {500}
    assert attempts[0].response_snippet == '{"error": "boom"}'
    assert len(receiver.requests) == len(DELAYS) + 1


def test_a_retry_that_succeeds_delivers(shop, receiver):
    receiver.status = 503
    with time_machine.travel(START, tick=False) as clock:
        payment = accepted_payment(shop, ipn_callback_url=receiver.url())
        notification = scheduled(payment)
        assert notification_deliver(notification.pk) == "retry_scheduled"
        assert notification_deliver(notification.pk) == "not_due"  # the retry is not due yet
        receiver.status = 200
        clock.shift(timedelta(seconds=DELAYS[0]))

        assert notification_deliver(notification.pk) == "delivered"

    notification.refresh_from_db()
    assert notification.status == Notification.Status.DELIVERED
    assert [a.status_code for a in notification.attempt_rows.all()] == [503, 200]
    assert notification_deliver(notification.pk) == "not_due"
    assert len(receiver.requests) == 2


def test_a_retry_for_a_payment_since_stopped_is_dropped(shop, receiver):
    receiver.status = 500
    with time_machine.travel(START, tick=False) as clock:
        payment = accepted_payment(shop, ipn_callback_url=receiver.url())
        notification = scheduled(payment)
        assert notification_deliver(notification.pk) == "retry_scheduled"
        move(payment, S.STOPPED)
        clock.shift(timedelta(seconds=DELAYS[0]))

        assert sweep() == 1

    notification.refresh_from_db()
    assert notification.status == Notification.Status.DROPPED
    assert len(receiver.requests) == 1
    assert notification.attempt_rows.count() == 1
    dropped = payment.events.get(kind="notification_dropped")
    assert dropped.detail == {"event": "accepted", "state": S.STOPPED}


def test_a_retry_for_a_payment_since_paid_is_still_sent(shop, receiver):
    receiver.status = 500
    with time_machine.travel(START, tick=False) as clock:
        payment = accepted_payment(shop, ipn_callback_url=receiver.url())
        notification = scheduled(payment)
        notification_deliver(notification.pk)
        move(payment, S.PAID)
        receiver.status = 200
        clock.shift(timedelta(seconds=DELAYS[0]))

        assert notification_deliver(notification.pk) == "delivered"

    assert len(receiver.requests) == 2


@pytest.mark.parametrize(
    ("event", "at_event", "now", "stale"),
    [
        ("accepted", S.IN_PROGRESS, S.IN_PROGRESS, False),
        ("accepted", S.IN_PROGRESS, S.PAID, False),
        ("accepted", S.IN_PROGRESS, S.LATE_DUNNING, False),
        ("accepted", S.IN_PROGRESS, S.STOPPED, True),
        ("accepted", S.IN_PROGRESS, S.DEFAULT, True),
        ("accepted", S.PAID, S.COLLECTION_DONE, True),
        ("default", S.DEFAULT, S.DEFAULT, False),
        ("default", S.DEFAULT, S.COLLECTION_DONE, False),
        ("default", S.DEFAULT, S.PAID, True),
        ("refunded", S.STOPPED, S.STOPPED, False),
        ("refunded", S.IN_PROGRESS, S.STOPPED, False),
    ],
)
def test_when_a_notification_is_stale(event, at_event, now, stale):
    assert notification_is_stale(event=event, state_at_event=at_event, current_state=now) is stale


# --- the guard and the signing key -------------------------------------------------------


def test_live_mode_refuses_a_loopback_url_without_calling_or_retrying(shop, receiver):
    payment = accepted_payment(shop, ipn_callback_url=receiver.url(), livemode=True)
    notification = scheduled(payment)

    assert notification_deliver(notification.pk) == "failed"

    notification.refresh_from_db()
    [attempt] = notification.attempt_rows.all()
    assert notification.status == Notification.Status.FAILED
    assert attempt.status_code is None
    assert "live mode only calls public addresses" in attempt.error
    assert receiver.requests == []


def test_test_mode_calls_a_local_receiver_by_name(shop, receiver):
    payment = accepted_payment(shop, ipn_callback_url=receiver.url(host="localhost"))
    notification = scheduled(payment)

    assert notification_deliver(notification.pk) == "delivered"

    assert receiver.requests[0].headers["host"] == f"localhost:{receiver.port}"


def test_a_key_without_a_sealed_copy_cannot_sign_until_it_is_rotated(shop, receiver):
    APIKey.objects.filter(merchant=shop.merchant).update(secret_encrypted="")  # a legacy key
    with time_machine.travel(START, tick=False) as clock:
        payment = accepted_payment(shop, ipn_callback_url=receiver.url())
        notification = scheduled(payment)

        assert notification_deliver(notification.pk) == "retry_scheduled"
        old_key = APIKey.objects.get(merchant=shop.merchant, livemode=False)
        issued = merchant_services.api_key_rotate(key=old_key, now=timezone.now())
        clock.shift(timedelta(seconds=DELAYS[0]))

        assert notification_deliver(notification.pk) == "delivered"

    first, second = notification.attempt_rows.all()
    assert (first.status_code, first.error) == (None, NO_SIGNING_KEY)
    assert second.status_code == 200
    [request] = receiver.requests
    assert request.headers["x-alma-signature"] == signature(issued.secret, payment.public_id)


def test_the_signing_secret_is_the_newest_usable_key_of_the_mode(shop):
    now = timezone.now()
    test_key = APIKey.objects.get(merchant=shop.merchant, livemode=False)

    assert api_key_signing_secret(merchant=shop.merchant, livemode=False, now=now) == (
        shop.test_key
    )
    assert api_key_signing_secret(merchant=shop.merchant, livemode=True, now=now) == (shop.live_key)

    rotated = merchant_services.api_key_rotate(key=test_key, now=now)
    assert api_key_signing_secret(merchant=shop.merchant, livemode=False, now=now) == (
        rotated.secret
    )

    merchant_services.api_key_revoke(key=rotated.key, now=now)
    assert api_key_signing_secret(merchant=shop.merchant, livemode=False, now=now) == (
        shop.test_key  # the old key, still in its grace period
    )
    later = now + timedelta(days=30)
    assert api_key_signing_secret(merchant=shop.merchant, livemode=False, now=later) is None


def test_secret_keys_are_never_stored_in_the_clear(shop):
    text = all_database_text()

    assert shop.test_key not in text
    assert shop.live_key not in text
    assert APIKey.objects.get(merchant=shop.merchant, livemode=False).secret_encrypted


# --- replays -----------------------------------------------------------------------------


def test_a_merchant_can_replay_a_delivered_notification(
    shop, receiver, tasks_run_at_once, django_capture_on_commit_callbacks
):
    payment = accepted_payment(shop, ipn_callback_url=receiver.url())
    notification = scheduled(payment)
    assert notification_deliver(notification.pk) == "delivered"

    with django_capture_on_commit_callbacks(execute=True):
        notification_resend(notification=notification, now=timezone.now())

    notification.refresh_from_db()
    assert notification.status == Notification.Status.DELIVERED
    assert [a.number for a in notification.attempt_rows.all()] == [1, 2]
    assert len(receiver.requests) == 2
    assert payment.events.filter(kind="notification_resent").count() == 1


def test_a_stale_notification_cannot_be_replayed(shop, receiver):
    payment = accepted_payment(shop, ipn_callback_url=receiver.url())
    notification = scheduled(payment)
    notification_deliver(notification.pk)
    move(payment, S.STOPPED)

    with pytest.raises(NotificationStale):
        notification_resend(notification=notification, now=timezone.now())

    notification.refresh_from_db()
    assert notification.status == Notification.Status.DELIVERED
    assert len(receiver.requests) == 1


# --- at the same time --------------------------------------------------------------------


def _in_thread(results, index, notification_id, barrier=None):
    try:
        if barrier is not None:
            barrier.wait(timeout=10)
        results[index] = notification_deliver(notification_id)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_second_worker_does_not_call_while_the_first_call_is_in_flight(receiver):
    shop = make_shop()
    receiver.hold = True
    payment = accepted_payment(shop, ipn_callback_url=receiver.url())
    notification = scheduled(payment)
    results = [None]
    first = threading.Thread(target=_in_thread, args=(results, 0, notification.pk))
    first.start()
    assert receiver.received.wait(timeout=10)

    second = notification_attempt(notification_id=notification.pk, now=timezone.now())

    receiver.release()
    first.join(timeout=10)
    assert second == "not_due"
    assert results == ["delivered"]
    assert len(receiver.requests) == 1
    assert NotificationAttempt.objects.filter(notification=notification).count() == 1


@pytest.mark.django_db(transaction=True)
def test_workers_racing_on_one_notification_make_one_call(receiver):
    shop = make_shop()
    payment = accepted_payment(shop, ipn_callback_url=receiver.url())
    notification = scheduled(payment)
    workers = 8
    barrier = threading.Barrier(workers)
    results = [None] * workers
    threads = [
        threading.Thread(target=_in_thread, args=(results, i, notification.pk, barrier))
        for i in range(workers)
    ]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert sorted(results) == ["delivered"] + ["not_due"] * (workers - 1)
    assert len(receiver.requests) == 1
    assert NotificationAttempt.objects.filter(notification=notification).count() == 1
