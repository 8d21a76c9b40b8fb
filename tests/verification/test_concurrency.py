"""Phone checks and the SMS outbox under many workers at once, each on its own connection."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from apps.verification import services, tasks
from apps.verification.errors import ResendTooSoon, TooManyAttempts, WrongCode
from apps.verification.models import PhoneCheck, SmsMessage
from tests.support import run_in_threads as threads_run

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 20
PHONE = "+33612345678"


def run_in_threads(work: Callable[[int], object], count: int = THREADS) -> list[object]:
    return threads_run(work, count, expected=(WrongCode, TooManyAttempts, ResendTooSoon))


@pytest.fixture(autouse=True)
def _phone_code_settings(settings):
    settings.PHONE_CODE_MAX_ATTEMPTS = 5
    settings.PHONE_CODE_RESEND_SECONDS = 30


def start() -> PhoneCheck:
    return services.phone_check_start(
        phone=PHONE,
        livemode=False,
        purpose="checkout",
        subject="s",
        language="en",
        now=timezone.now(),
    )


def test_wrong_codes_sent_at_the_same_moment_never_exceed_the_limit():
    check = start()
    wrong = f"{(int(check.test_code) + 1) % 1_000_000:06d}"

    outcomes = run_in_threads(
        lambda i: services.phone_check_verify(
            check_id=check.public_id, code=wrong, now=timezone.now()
        )
    )

    wrong_codes = [o for o in outcomes if isinstance(o, WrongCode)]
    too_many = [o for o in outcomes if isinstance(o, TooManyAttempts)]
    assert sorted(o.attempts_left for o in wrong_codes) == [1, 2, 3, 4]
    assert len(too_many) == THREADS - 4
    locked = PhoneCheck.objects.get(pk=check.pk)
    assert locked.attempts == 5
    assert locked.locked_at is not None
    with pytest.raises(TooManyAttempts):
        services.phone_check_verify(
            check_id=check.public_id, code=check.test_code, now=timezone.now()
        )


def test_the_right_code_sent_many_times_at_once_verifies_once():
    check = start()

    outcomes = run_in_threads(
        lambda i: services.phone_check_verify(
            check_id=check.public_id, code=check.test_code, now=timezone.now()
        )
    )

    assert len({o.verified_at for o in outcomes}) == 1
    assert PhoneCheck.objects.get(pk=check.pk).attempts == 0


def test_many_resends_at_once_send_one_new_code():
    check = start()
    later = timezone.now() + timedelta(seconds=31)

    outcomes = run_in_threads(
        lambda i: services.phone_check_resend(check_id=check.public_id, now=later)
    )

    assert sum(isinstance(o, PhoneCheck) for o in outcomes) == 1
    assert sum(isinstance(o, ResendTooSoon) for o in outcomes) == THREADS - 1
    assert SmsMessage.objects.filter(key__startswith=f"phonecheck:{check.public_id}:").count() == 2
    assert PhoneCheck.objects.get(pk=check.pk).sends == 2


def test_one_key_sent_by_many_workers_at_once_is_recorded_and_enqueued_once():
    outcomes = run_in_threads(
        lambda i: (
            services.sms_send(
                phone=PHONE, text=f"from {i}", livemode=True, key="shared", now=timezone.now()
            ).pk
        )
    )

    assert len(set(outcomes)) == 1
    assert SmsMessage.objects.count() == 1
    assert [queued.args() for queued in OrmQ.objects.all()] == [(outcomes[0],)]


def test_many_workers_running_the_send_task_at_once_send_once(sms_provider):
    message = services.sms_send(
        phone=PHONE, text="Hello", livemode=True, key="k", now=timezone.now()
    )

    outcomes = run_in_threads(lambda i: tasks.send_sms(message.pk))

    assert len(sms_provider.handed) == 1
    assert SmsMessage.Status.SENT in outcomes
    sent = SmsMessage.objects.get(pk=message.pk)
    assert (sent.status, sent.attempts) == (SmsMessage.Status.SENT, 1)
