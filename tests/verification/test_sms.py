import json
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone
from django_q.models import OrmQ

from apps.verification import services, tasks
from apps.verification.errors import InvalidPhone, SmsProviderUnavailable, SmsRejected
from apps.verification.models import SmsMessage
from apps.verification.sms import HttpJsonSmsGateway, OutboxSmsGateway
from tests.support import all_database_text

PHONE = "+33612345678"
START = "2026-11-22 10:00:00+00:00"


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


def send(*, key="test:1", phone=PHONE, text="Hello", livemode=False, secret=""):
    return services.sms_send(
        phone=phone, text=text, livemode=livemode, key=key, now=timezone.now(), secret=secret
    )


def queued_tasks() -> list[tuple[str, tuple]]:
    return [(queued.func(), queued.args()) for queued in OrmQ.objects.order_by("pk")]


def test_the_same_key_twice_records_one_message(db, clock):
    first = send(key="order:1:confirmation", text="First")

    second = send(key="order:1:confirmation", text="Second")

    assert second.pk == first.pk
    assert second.text == "First"
    assert SmsMessage.objects.count() == 1


def test_the_same_live_key_twice_enqueues_one_sending(
    db, clock, sms_provider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        send(key="k", livemode=True)
        send(key="k", livemode=True)

    assert len(callbacks) == 1
    assert len(queued_tasks()) == 1


def test_a_test_mode_message_is_never_handed_to_the_provider(
    db, clock, sms_provider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        message = send(livemode=False)

    assert callbacks == []
    assert queued_tasks() == []
    assert message.status == SmsMessage.Status.NOT_SENT_TEST_MODE
    assert tasks.send_sms(message.pk) == SmsMessage.Status.NOT_SENT_TEST_MODE
    assert sms_provider.handed == []


def test_a_live_message_is_sent_after_commit_by_the_task(
    db, clock, sms_provider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        message = send(key="live:1", text="Your order has shipped.", livemode=True)
        assert sms_provider.handed == []  # nothing leaves before the commit
        assert queued_tasks() == []
    assert queued_tasks() == [("apps.verification.tasks.send_sms", (message.pk,))]

    status = tasks.send_sms(message.pk)

    sent = SmsMessage.objects.get(pk=message.pk)
    assert status == SmsMessage.Status.SENT
    assert sms_provider.handed == [
        {"phone": PHONE, "text": "Your order has shipped.", "key": "live:1"}
    ]
    assert sent.sent_at == timezone.now()
    assert sent.provider_reference.startswith("outbox_")
    assert sent.attempts == 1


def test_running_the_send_task_twice_sends_once(db, clock, sms_provider):
    message = send(livemode=True)

    tasks.send_sms(message.pk)
    tasks.send_sms(message.pk)

    assert len(sms_provider.handed) == 1
    assert SmsMessage.objects.get(pk=message.pk).attempts == 1


def test_a_live_secret_is_sealed_until_sent_then_erased(db, clock, sms_provider):
    message = send(text="Your code is 482913.", secret="482913", livemode=True)

    assert message.text == "Your code is ••••••."
    assert "482913" not in all_database_text()
    tasks.send_sms(message.pk)

    assert sms_provider.handed[0]["text"] == "Your code is 482913."
    assert SmsMessage.objects.get(pk=message.pk).sealed_text == ""
    assert "482913" not in all_database_text()


def test_a_test_mode_secret_stays_readable(db, clock):
    message = send(text="Your code is 482913.", secret="482913", livemode=False)

    assert message.text == "Your code is 482913."
    assert message.sealed_text == ""


def test_a_message_refused_by_the_provider_is_failed_for_good(db, clock, sms_provider):
    message = send(phone=OutboxSmsGateway.REJECTED_NUMBER, secret="Hel", livemode=True)

    status = tasks.send_sms(message.pk)
    tasks.send_sms(message.pk)

    failed = SmsMessage.objects.get(pk=message.pk)
    assert status == SmsMessage.Status.FAILED
    assert failed.error.startswith("sms_rejected")
    assert failed.sealed_text == ""
    assert len(sms_provider.handed) == 1


def test_a_provider_outage_queues_the_message_again_then_gives_up(db, clock, sms_provider):
    message = send(phone=OutboxSmsGateway.UNAVAILABLE_NUMBER, livemode=True)

    for attempt in range(1, services.SMS_MAX_ATTEMPTS):
        with pytest.raises(SmsProviderUnavailable):
            tasks.send_sms(message.pk)
        queued = SmsMessage.objects.get(pk=message.pk)
        assert (queued.status, queued.attempts) == (SmsMessage.Status.QUEUED, attempt)
        assert queued.error.startswith("sms_provider_unavailable")
    last = tasks.send_sms(message.pk)

    assert last == SmsMessage.Status.FAILED
    assert len(sms_provider.handed) == services.SMS_MAX_ATTEMPTS


def test_a_bug_in_the_gateway_is_logged_and_the_message_tried_again(db, clock, settings, caplog):
    settings.SMS_GATEWAY = "tests.verification.gateways.BrokenSmsGateway"
    message = send(livemode=True)

    with pytest.raises(SmsProviderUnavailable):
        tasks.send_sms(message.pk)

    assert SmsMessage.objects.get(pk=message.pk).status == SmsMessage.Status.QUEUED
    assert "the gateway failed unexpectedly" in caplog.text


def test_a_message_whose_worker_died_is_sent_again_after_ten_minutes(
    db, clock, settings, sms_provider
):
    settings.SMS_GATEWAY = "tests.verification.gateways.DyingSmsGateway"
    message = send(livemode=True)
    with pytest.raises(SystemExit):
        tasks.send_sms(message.pk)
    settings.SMS_GATEWAY = "tests.verification.gateways.RecordingSmsGateway"
    clock.shift(timedelta(minutes=9))

    meanwhile = tasks.send_sms(message.pk)
    enqueued_early = services.sms_outbox_requeue(now=timezone.now())
    clock.shift(timedelta(minutes=1))
    enqueued = services.sms_outbox_requeue(now=timezone.now())
    status = tasks.send_sms(message.pk)

    assert meanwhile == SmsMessage.Status.SENDING
    assert enqueued_early == 0
    assert enqueued == 1
    assert queued_tasks() == [("apps.verification.tasks.send_sms", (message.pk,))]
    assert status == SmsMessage.Status.SENT
    assert SmsMessage.objects.get(pk=message.pk).attempts == 2


def test_the_sweep_enqueues_live_messages_whose_task_was_lost(db, clock):
    lost = send(key="lost", livemode=True)  # no commit callback ran: the task was never queued
    send(key="test-mode", livemode=False)
    clock.shift(timedelta(seconds=30))
    send(key="fresh", livemode=True)
    clock.shift(timedelta(seconds=31))

    enqueued = tasks.send_pending_sms()

    assert enqueued == 1
    assert queued_tasks() == [("apps.verification.tasks.send_sms", (lost.pk,))]


def test_an_sms_to_an_invalid_number_is_refused(db, clock):
    with pytest.raises(InvalidPhone):
        send(phone="01 23 45 67 89")

    assert not SmsMessage.objects.exists()


def test_the_number_is_stored_in_e164(db, clock):
    assert send(phone="06 12 34 56 78").phone == PHONE


# --- the HTTP provider adapter -----------------------------------------------------------


def provider(handler) -> HttpJsonSmsGateway:
    return HttpJsonSmsGateway(
        url="https://sms.example/v1/messages",
        token="tok_123",
        sender="Tranche",
        transport=httpx.MockTransport(handler),
    )


def test_the_http_provider_gets_the_message_as_json_with_the_token():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": "msg_42"})

    reference = provider(handler).send(phone=PHONE, text="Bonjour", key="k:1")

    assert reference == "msg_42"
    assert seen[0].method == "POST"
    assert str(seen[0].url) == "https://sms.example/v1/messages"
    assert seen[0].headers["Authorization"] == "Bearer tok_123"
    assert json.loads(seen[0].content) == {
        "to": PHONE,
        "text": "Bonjour",
        "sender": "Tranche",
        "reference": "k:1",
    }


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_an_http_provider_that_is_busy_or_failing_is_unavailable(status):
    gateway = provider(lambda request: httpx.Response(status))

    with pytest.raises(SmsProviderUnavailable):
        gateway.send(phone=PHONE, text="x")


@pytest.mark.parametrize("status", [400, 401, 403, 422])
def test_an_http_provider_refusal_is_a_rejection(status):
    gateway = provider(lambda request: httpx.Response(status, text="bad number"))

    with pytest.raises(SmsRejected) as caught:
        gateway.send(phone=PHONE, text="x")

    assert "bad number" in caught.value.extra["detail"]


def test_an_http_provider_that_times_out_is_unavailable():
    def handler(request):
        raise httpx.ReadTimeout("too slow", request=request)

    with pytest.raises(SmsProviderUnavailable):
        provider(handler).send(phone=PHONE, text="x")


def test_an_http_provider_without_configuration_is_unavailable(monkeypatch):
    monkeypatch.delenv("SMS_HTTP_URL", raising=False)
    monkeypatch.delenv("SMS_HTTP_TOKEN", raising=False)

    with pytest.raises(SmsProviderUnavailable):
        HttpJsonSmsGateway().send(phone=PHONE, text="x")


def test_the_http_provider_reads_its_configuration_from_the_environment(monkeypatch):
    monkeypatch.setenv("SMS_HTTP_URL", "https://sms.example/send")
    monkeypatch.setenv("SMS_HTTP_TOKEN", "tok_env")
    monkeypatch.setenv("SMS_HTTP_SENDER", "Boutique")

    gateway = HttpJsonSmsGateway()

    assert (gateway.url, gateway.token, gateway.sender) == (
        "https://sms.example/send",
        "tok_env",
        "Boutique",
    )
