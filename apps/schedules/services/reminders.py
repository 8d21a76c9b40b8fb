"""Reminders: an email REMINDER_LEAD_HOURS (72 h) before each debit.

Hourly and catch-up safe: an instalment is reminded once per due date (``reminded_for``; a
postponed instalment gets a reminder for its new date), only while it is pending, and only
while at least REMINDER_MIN_LEAD_HOURS are left before its debit: after an outage, a debit
already done or about to be is not announced as if the reminder were on time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from apps.common.bulk import rows_update
from apps.common.emails import emails_queue_many
from apps.payments.models import Instalment, Payment, PaymentState
from apps.schedules import emails

S = PaymentState
OPEN_STATES = (S.IN_PROGRESS, S.LATE_DUNNING, S.LATE_CONTACT_CUSTOMER)
BATCH = 500


def reminders_due(*, now: datetime):
    return Instalment.objects.filter(
        next_debit_at__gt=now + timedelta(hours=settings.REMINDER_MIN_LEAD_HOURS),
        next_debit_at__lte=now + timedelta(hours=settings.REMINDER_LEAD_HOURS),
        state=Instalment.State.PENDING,
        payment__state__in=OPEN_STATES,
    ).filter(Q(reminded_for__isnull=True) | ~Q(reminded_for=F("due_date")))


def reminders_send(*, now: datetime, limit: int = 50_000) -> int:
    sent = 0
    while sent < limit:
        with transaction.atomic():
            rows = list(
                reminders_due(now=now)
                .order_by("next_debit_at", "id")
                .select_for_update(skip_locked=True, of=("self",))[: min(BATCH, limit - sent)]
            )
            if not rows:
                break
            payments = list(
                Payment.objects.filter(pk__in={row.payment_id for row in rows}).select_related(
                    "merchant", "customer", "card"
                )
            )
            context = emails.BatchContext.load(
                payments, Instalment.objects.filter(payment_id__in=[p.pk for p in payments])
            )
            by_id = {payment.pk: payment for payment in payments}
            specs = [
                emails.reminder(context, payment=by_id[row.payment_id], instalment=row)
                for row in rows
            ]
            emails_queue_many([spec for spec in specs if spec.to], now=now)
            for row in rows:
                row.reminded_for = row.due_date
            rows_update(rows, ["reminded_for"])
            sent += len(rows)
    return sent
