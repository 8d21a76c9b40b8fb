import smtplib
import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django_q.conf import Conf

from apps.common import tasks
from apps.common.emails import (
    MAX_SEND_ATTEMPTS,
    email_content,
    email_queue,
    email_send,
    emails_send_unsent,
)
from apps.common.models import OutgoingEmail

START = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
CONTEXT = {
    "payment_id": "payment_123",
    "purchase_amount": "100,00 €",
    "customer_name": "Ada & Co <script>",
    "order_references": ["A-1"],
    "plan": "Paiement en 2 fois",
    "instalments": [{"label": "1 sur 2", "date": "4 mai 2026", "amount": "50,00 €"}],
    "total": "100,00 €",
    "livemode": True,
    "dashboard_link": "https://tranche.example/dashboard",
}


class FailingBackend:
    """A mail server that refuses every message."""

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise smtplib.SMTPServerDisconnected("connection unexpectedly closed")


@pytest.fixture
def tasks_run_at_once(monkeypatch):
    monkeypatch.setattr(Conf, "SYNC", True)


def queue(key="payment:payment_123:accepted:merchant", *, now=None, language="en"):
    return email_queue(
        key=key,
        to="owner@shop.example",
        subject="New payment payment_123 accepted",
        template="emails/payment_accepted_merchant",
        context=CONTEXT,
        language=language,
        now=now or START,
    )


@pytest.mark.django_db
def test_queueing_a_key_twice_records_one_email_and_sends_it_once_after_commit(
    tasks_run_at_once, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        first = queue()
        second = queue()
        assert mail.outbox == []  # nothing leaves before the commit

    assert first.pk == second.pk
    assert OutgoingEmail.objects.count() == 1
    assert len(callbacks) == 1
    [message] = mail.outbox
    assert message.to == ["owner@shop.example"]
    assert message.subject == "New payment payment_123 accepted"
    assert "Ada & Co <script>" in message.body  # plain text is not HTML-escaped
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert "Ada &amp; Co &lt;script&gt;" in html
    first.refresh_from_db()
    assert first.sent_at is not None
    assert first.attempts == 1


@pytest.mark.django_db
def test_running_the_send_task_again_does_not_send_twice(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        email = queue()

    assert tasks.send_email(email.pk) == "sent"
    assert tasks.send_email(email.pk) == "already_sent"
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_a_rolled_back_decision_sends_nothing(django_capture_on_commit_callbacks):
    from django.db import transaction

    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        queue()
        raise RuntimeError("the acceptance failed")

    assert callbacks == []
    assert OutgoingEmail.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_an_email_being_sent_by_another_worker_is_skipped():
    email = queue()
    held, done = threading.Event(), threading.Event()

    def other_worker():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_lock(hashtextextended(%s, 0))", [f"outgoing_email:{email.pk}"]
            )
            held.set()
            done.wait(timeout=10)
            cursor.execute(
                "SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [f"outgoing_email:{email.pk}"]
            )
        connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    assert held.wait(timeout=10)

    outcome = email_send(email_id=email.pk, now=START)

    done.set()
    thread.join(timeout=10)
    assert outcome == "busy"
    assert mail.outbox == []
    assert email_send(email_id=email.pk, now=START) == "sent"
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_the_sweep_sends_leftovers_older_than_two_minutes(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():  # the tasks queued at commit are lost
        old = queue("a", now=START)
        recent = queue("b", now=START + timedelta(minutes=2, seconds=30))

    with time_machine.travel(START + timedelta(minutes=3), tick=False):
        assert tasks.send_unsent_emails() == 1

    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.sent_at == START + timedelta(minutes=3)
    assert recent.sent_at is None
    assert len(mail.outbox) == 1
    assert emails_send_unsent(now=START + timedelta(minutes=3)) == 0


@pytest.mark.django_db
def test_a_refused_send_is_kept_and_retried_by_the_sweep_up_to_a_limit(
    settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        email = queue()
    settings.EMAIL_BACKEND = "tests.common.test_emails.FailingBackend"

    assert email_send(email_id=email.pk, now=START) == "failed"

    email.refresh_from_db()
    assert email.sent_at is None
    assert email.attempts == 1
    assert "SMTPServerDisconnected" in email.last_error
    later = START + timedelta(minutes=5)
    for _ in range(MAX_SEND_ATTEMPTS + 3):
        emails_send_unsent(now=later)
    email.refresh_from_db()
    assert email.attempts == MAX_SEND_ATTEMPTS
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert emails_send_unsent(now=later) == 0  # given up: an operator looks at last_error


@pytest.mark.django_db
def test_the_same_template_renders_in_french_and_in_english(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        french = queue("fr", language="fr")
        english = queue("en", language="en")

    _french_text, french_html = email_content(french)
    english_text, english_html = email_content(english)
    assert '<html lang="fr">' in french_html
    assert '<html lang="en">' in english_html
    assert "Open your dashboard" in english_text
    assert "Order reference: A-1" in english_text
