"""Time travel through a postponed instalment: moved by 10 days from the portal, it is not
debited on its old date, reminded exactly REMINDER_LEAD_HOURS (72 h) before its new debit
and not for the old one, then debited on its new date with its receipt."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine
from django.core import mail
from django_q.conf import Conf

from apps.common.dates import BUSINESS_TZ, debit_time
from apps.payments.models import Charge, SandboxCharge
from apps.schedules.models import Receipt
from apps.schedules.services import debits
from apps.schedules.services.postponing import instalment_postpone
from apps.schedules.services.reminders import reminders_send
from tests.portal.helpers import CAMILLE, plan_for

pytestmark = pytest.mark.django_db

BOUGHT = datetime(2026, 11, 10, 10, 0, tzinfo=UTC)  # 4 x 100 EUR: Nov 10, Dec 10, Jan 10, Feb 10
POSTPONED_AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
OLD_DATE = date(2026, 12, 10)
NEW_DATE = date(2026, 12, 20)


@pytest.fixture(autouse=True)
def _inline(settings, tmp_path, monkeypatch):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.STORAGES = {
        **settings.STORAGES,
        "receipts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "allow_overwrite": True},
        },
    }
    monkeypatch.setattr(Conf, "SYNC", True)  # tasks queued after commit run at once


def test_a_postponed_instalment_is_reminded_and_debited_on_its_new_date(
    shop, django_capture_on_commit_callbacks
):
    plan = plan_for(shop, CAMILLE, when=BOUGHT, locale="en")
    second = plan.instalments.get(number=2)
    assert second.due_date == OLD_DATE
    with time_machine.travel(POSTPONED_AT, tick=False):
        instalment_postpone(
            payment_id=plan.pk,
            number=2,
            new_date=NEW_DATE,
            now=POSTPONED_AT,
            customer_id=plan.customer_id,
        )
    mail.outbox.clear()

    sent: list[tuple[datetime, str]] = []
    paid_at = None
    charged_before_new_date = False
    new_debit = debit_time(NEW_DATE, hour=8)
    # Day by day for four weeks, the hourly jobs at 7:00, 8:00 (the debit hour) and 20:00 in
    # Paris: an hour early, on time, and long after.
    moments = [
        datetime.combine(date(2026, 11, 24) + timedelta(days=day), time(hour), BUSINESS_TZ)
        for day in range(28)
        for hour in (7, 8, 20)
    ]
    for at in moments:
        with (
            time_machine.travel(at, tick=False),
            django_capture_on_commit_callbacks(execute=True),
        ):
            reminders_send(now=at)
            debits.debit_run(now=at)
        sent += [(at, message.subject) for message in mail.outbox]
        mail.outbox.clear()
        second.refresh_from_db()
        if at < new_debit and Charge.objects.filter(instalment=second).exists():
            charged_before_new_date = True
        if paid_at is None and second.state == "paid":
            paid_at = at

    reminders = [(moment, subject) for moment, subject in sent if "Reminder" in subject]
    assert reminders == [
        (new_debit - timedelta(hours=72), "Reminder: €100.00 will be debited on December 20, 2026")
    ]
    assert not any("December 10" in subject for _moment, subject in sent)
    assert not charged_before_new_date
    assert paid_at == new_debit
    assert new_debit == datetime(2026, 12, 20, 7, 0, tzinfo=UTC)  # 8:00 in Paris
    paid_emails = [(moment, s) for moment, s in sent if s.startswith("Instalment 2 of 4 paid")]
    assert [moment for moment, _s in paid_emails] == [new_debit]
    assert len(sent) == 2  # the reminder and the receipt: nothing else in four weeks
    receipt = Receipt.objects.get(instalment=second)
    assert receipt.created_at == new_debit
    [charge] = Charge.objects.filter(instalment=second)
    assert charge.status == "succeeded" and charge.created_at == new_debit
    assert SandboxCharge.objects.filter(idempotency_key=charge.idempotency_key).count() == 1
    third = plan.instalments.get(number=3)
    assert third.state == "pending" and third.due_date == date(2027, 1, 10)  # did not move
