"""Time travel through a plan's life: from the hosted checkout to the paid-off email, and
from a declined debit to the default, with the messages the customer really receives."""

import re
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django_q.conf import Conf

from apps.common.dates import BUSINESS_TZ, debit_time
from apps.ledger.audit import ledger_audit
from apps.payments import links
from apps.payments.models import Payment
from apps.schedules.models import Receipt
from apps.schedules.tasks import advance_dunning, run_debits, send_reminders
from tests.payments.builders import payment_create_for
from tests.payments.test_checkout import finish, pay_up_to_code

BOUGHT = datetime(2026, 1, 30, 10, 0, tzinfo=UTC)  # 4x: Jan 30, Feb 28, Mar 30, Apr 30


@pytest.fixture(autouse=True)
def _inline(settings, tmp_path, monkeypatch):
    settings.STORAGES = {
        **settings.STORAGES,
        "receipts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "allow_overwrite": True},
        },
    }
    monkeypatch.setattr(Conf, "SYNC", True)  # tasks queued after commit run at once


def hourly(at: datetime, django_capture_on_commit_callbacks):
    """What the hourly jobs do at ``at``, their after-commit tasks included."""
    with time_machine.travel(at, tick=False), django_capture_on_commit_callbacks(execute=True):
        send_reminders()
        run_debits()
        advance_dunning()


@pytest.mark.django_db
def test_a_4x_payment_from_checkout_to_the_paid_off_email(shop, django_capture_on_commit_callbacks):
    with time_machine.travel(BOUGHT, tick=False):
        payment = payment_create_for(
            shop, purchase_amount=40_000, installments_count=4, locale="en"
        )
        client = Client()
        with django_capture_on_commit_callbacks(execute=True):
            finish(client, pay_up_to_code(client, payment))
    payment = Payment.objects.get(pk=payment.pk)
    assert payment.state == "in_progress"
    dues = [row.due_date for row in payment.instalments.order_by("number")][1:]
    assert [d.isoformat() for d in dues] == ["2026-02-28", "2026-03-30", "2026-04-30"]
    mail.outbox.clear()

    for number, due in enumerate(dues, start=2):
        debit_at = debit_time(due, hour=8)
        hourly(debit_at - timedelta(hours=72), django_capture_on_commit_callbacks)
        [reminder] = mail.outbox
        assert reminder.subject.startswith("Reminder: €100.00 will be debited on")
        assert f"Instalment {number} of 4" in reminder.body and "•••• 0006" in reminder.body
        mail.outbox.clear()
        hourly(debit_at - timedelta(hours=71), django_capture_on_commit_callbacks)
        assert mail.outbox == []  # reminded once
        hourly(debit_at, django_capture_on_commit_callbacks)
        messages = {message.subject: message for message in mail.outbox}
        paid = messages.pop(f"Instalment {number} of 4 paid: {shop.merchant.legal_name}")
        [(filename, pdf, mimetype)] = paid.attachments
        receipt = Receipt.objects.get(payment=payment, instalment__number=number)
        assert filename == f"{receipt.number}.pdf" and mimetype == "application/pdf"
        assert pdf.startswith(b"%PDF")
        if number == 4:
            [paid_off] = messages.values()
            assert "is paid off" in paid_off.subject
            assert "€400.00 in all" in paid_off.body
        else:
            assert messages == {}
        mail.outbox.clear()

    payment.refresh_from_db()
    assert payment.state == "paid"
    assert ledger_audit().ok
    # The receipts stay downloadable from the portal, which the emails' link signs in to.
    client = Client()
    opened = client.get(links.plan_url(payment.public_id).removeprefix("http://127.0.0.1:8000"))
    assert opened.status_code == 302 and opened.url == f"/portal/plans/{payment.public_id}"
    page = client.get(opened.url)
    assert page.status_code == 200
    downloads = set(re.findall(r'href="(/portal/plans/[^"]+\.pdf)"', page.content.decode()))
    assert len(downloads) == 3
    receipt = Receipt.objects.get(payment=payment, instalment__number=3)
    download = next(path for path in downloads if receipt.number in path)
    response = client.get(download)
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    assert Client().get(download).status_code == 302  # signed out: to the sign-in page
    assert Client().get(f"/plan/{payment.public_id}").status_code == 400  # no token


@pytest.mark.django_db
def test_a_declined_plan_goes_through_dunning_to_default_with_its_emails_and_sms(
    shop, django_capture_on_commit_callbacks
):
    with time_machine.travel(BOUGHT, tick=False):
        payment = payment_create_for(
            shop, purchase_amount=40_000, installments_count=4, locale="fr"
        )
        client = Client()
        with django_capture_on_commit_callbacks(execute=True):
            finish(client, pay_up_to_code(client, payment, card="4970100000000345"))
    payment = Payment.objects.get(pk=payment.pk)
    second = payment.instalments.get(number=2)
    mail.outbox.clear()

    start = debit_time(second.due_date, hour=8)
    states, subjects = [], []
    for day in range(0, 18):
        hourly(start + timedelta(days=day, minutes=1), django_capture_on_commit_callbacks)
        payment.refresh_from_db()
        states.append(payment.state)
        subjects += [message.subject for message in mail.outbox]
        mail.outbox.clear()

    assert states[0] == "late_dunning" and states[7] == "late_dunning"
    assert states[8] == "late_contact_customer" and states[15] == "late_contact_customer"
    assert states[16] == "default" and states[17] == "default"
    failed = [s for s in subjects if s.startswith("Action requise")]
    assert len(failed) == 5  # the due date and days 1, 3, 5, 7
    assert sum("en retard" in s for s in subjects) == 1
    assert sum("défaut" in s for s in subjects) == 1
    assert payment.instalments.filter(state="claimed").count() == 3
    assert ledger_audit().ok
    from apps.verification.models import SmsMessage

    [sms] = SmsMessage.objects.filter(key__endswith=":late_contact:sms")
    assert "/portal/link/" in sms.text


def test_debits_happen_at_eight_in_paris_across_dst_changes():
    spring = debit_time(date(2027, 3, 28), hour=8)  # clocks go forward that night
    autumn = debit_time(date(2026, 10, 25), hour=8)  # and back
    leap = debit_time(date(2028, 2, 29), hour=8)
    assert spring.astimezone(UTC).hour == 6 and autumn.astimezone(UTC).hour == 7
    assert leap.astimezone(BUSINESS_TZ).date().isoformat() == "2028-02-29"
