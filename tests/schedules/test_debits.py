from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command

from apps.common.emails import email_content
from apps.common.models import OutgoingEmail
from apps.ledger.audit import ledger_audit
from apps.ledger.models import Posting
from apps.payments.models import Charge, DenyListEntry, Instalment, Notification, SandboxCharge
from apps.schedules.models import Receipt
from apps.schedules.services.debits import debit_run
from apps.schedules.services.dunning import collection_close, dunning_advance
from apps.verification.models import SmsMessage
from tests.schedules.builders import LATER_DECLINED, accepted

pytestmark = pytest.mark.django_db

BOUGHT = datetime(2026, 1, 10, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _receipts_in_tmp(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "receipts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "allow_overwrite": True},
        },
    }


def run(at: datetime, **kwargs):
    with time_machine.travel(at, tick=False):
        return debit_run(now=at, **kwargs)


def debit_moment(instalment: Instalment) -> datetime:
    return instalment.next_debit_at + timedelta(minutes=5)


def test_a_due_instalment_is_charged_once_with_its_receipt_email_and_ledger_posting(shop):
    payment = accepted(shop, when=BOUGHT, locale="en")
    second = payment.instalments.get(number=2)
    assert second.next_debit_at is not None
    at = debit_moment(second)

    summary = run(at)
    again = run(at + timedelta(hours=1))

    assert (summary.claimed, summary.succeeded, summary.failed) == (1, 1, 0)
    assert again.claimed == 0
    second.refresh_from_db()
    assert second.state == "paid" and second.next_debit_at is None
    charge = Charge.objects.get(instalment=second, kind="instalment")
    assert charge.status == "succeeded" and charge.idempotency_key.endswith(":attempt:1")
    assert SandboxCharge.objects.filter(idempotency_key=charge.idempotency_key).count() == 1
    posting = Posting.objects.get(idempotency_key=f"{second.public_id}:collected")
    assert posting.kind == "instalment_collected"
    receipt = Receipt.objects.get(instalment=second)
    assert receipt.data["instalment_number"] == 2 and receipt.data["instalments_count"] == 4
    assert [row["number"] for row in receipt.data["remaining"]] == [3, 4]
    email = OutgoingEmail.objects.get(key=receipt.email_key)
    assert email.attachments[0]["filename"] == f"{receipt.number}.pdf"
    text, _html = email_content(email)
    assert "Instalment 2 of 4" in text and receipt.number in text
    assert payment.events.filter(kind="instalment_paid").count() == 1
    payment.refresh_from_db()
    assert payment.state == "in_progress"
    assert ledger_audit().ok, ledger_audit().violations


def test_the_last_debit_pays_the_payment_off_with_an_email_and_an_ipn(shop):
    payment = accepted(shop, when=BOUGHT, installments_count=2, amount=10_000, locale="fr")
    shop.merchant.ipn_callback_url = "https://shop.example/ipn"
    shop.merchant.save(update_fields=["ipn_callback_url"])

    run(debit_moment(payment.instalments.get(number=2)))

    payment.refresh_from_db()
    assert payment.state == "paid"
    assert payment.events.filter(kind="paid_off", to_state="paid").count() == 1
    paid_off = OutgoingEmail.objects.get(key=f"payment:{payment.public_id}:paid_off")
    text, _html = email_content(paid_off)
    assert "soldé" in text or "paid off" in text
    assert Notification.objects.filter(payment=payment, event="paid").count() == 1


def test_a_declined_debit_is_retried_on_days_1_3_5_7_then_contact_then_default(shop):
    payment = accepted(shop, when=BOUGHT, card_number=LATER_DECLINED, locale="en")
    second = payment.instalments.get(number=2)
    due = second.due_date
    first_try = debit_moment(second)

    run(first_try)

    second.refresh_from_db()
    payment.refresh_from_db()
    assert second.state == "incident"
    assert payment.state == "late_dunning"
    retries = []
    for _attempt in range(4):
        retries.append((second.next_debit_at.date() - due).days)
        run(second.next_debit_at + timedelta(minutes=1))
        second.refresh_from_db()
    assert retries == [1, 3, 5, 7]
    assert second.next_debit_at is None  # no more automatic retries
    assert second.debit_attempts == 5
    failed_emails = OutgoingEmail.objects.filter(
        key__startswith=f"instalment:{second.public_id}:failed:"
    )
    assert failed_emails.count() == 5
    text, _html = email_content(failed_emails.order_by("pk").first())
    assert "We will try again on" in text and "/portal/link/" in text

    day8 = first_try + timedelta(days=8)
    with time_machine.travel(day8, tick=False):
        assert dunning_advance(now=day8).contacted == 1
    payment.refresh_from_db()
    assert payment.state == "late_contact_customer"
    assert (
        SmsMessage.objects.filter(key=f"payment:{payment.public_id}:late_contact:sms").count() == 1
    )
    assert OutgoingEmail.objects.filter(key=f"payment:{payment.public_id}:late_contact").exists()

    day15 = first_try + timedelta(days=15)
    with time_machine.travel(day15, tick=False):
        assert dunning_advance(now=day15).defaulted == 0  # 15 days: not yet
    day16 = first_try + timedelta(days=16)
    with time_machine.travel(day16, tick=False):
        assert dunning_advance(now=day16).defaulted == 1
        assert dunning_advance(now=day16).defaulted == 0  # a rerun changes nothing

    payment.refresh_from_db()
    assert payment.state == "default"
    assert set(payment.instalments.exclude(number=1).values_list("state", flat=True)) == {"claimed"}
    assert not payment.instalments.filter(next_debit_at__isnull=False).exists()
    written_off = Posting.objects.get(idempotency_key=f"{payment.public_id}:written_off")
    assert written_off.kind == "receivable_written_off"
    assert DenyListEntry.objects.filter(payment=payment, source="default").exists()
    assert OutgoingEmail.objects.filter(key=f"payment:{payment.public_id}:default").exists()
    assert ledger_audit().ok, ledger_audit().violations

    collection_close(payment_id=payment.pk, now=day16, note="closed")
    payment.refresh_from_db()
    assert payment.state == "collection_done"
    assert set(payment.instalments.exclude(number=1).values_list("state", flat=True)) == {"covered"}


def test_run_debits_command_dry_run_charges_nothing_and_the_run_prints_a_summary(shop, capsys):
    payment = accepted(shop, when=BOUGHT)
    at = debit_moment(payment.instalments.get(number=2))
    with time_machine.travel(at, tick=False):
        call_command("run_debits", "--dry-run")
        assert Charge.objects.filter(kind="instalment").count() == 0
        call_command("run_debits", "--limit", "5")
    out = capsys.readouterr().out
    assert "1 instalments due (dry run: nothing charged)." in out
    assert "1 charged" in out and "1 paid" in out
