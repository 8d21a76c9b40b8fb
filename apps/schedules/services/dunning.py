"""Dunning after the retries: contacting the customer, then the default, then closing.

``dunning_advance`` (hourly, catch-up safe) moves each late payment to where its oldest
unpaid instalment's lateness puts it (``apps.schedules.policy``): ``late_contact_customer``
from day 8, with an email and an SMS; ``default`` over 15 days late: every unpaid
instalment ``claimed``, no more debits, the principal still owed written off as a credit
loss (the merchant keeps what it was paid: Tranche guarantees the payment), the customer's
email, phone, card and device on the deny list, the merchant notified (IPN ``default``) and
the customer told. A payment caught up after an outage passes through every state it
missed, but is only sent the messages of the stage it is in now.

``collection_close`` ends the collection of a defaulted payment (an operator's decision):
claimed instalments become ``covered`` (the loss is Tranche's) and the payment reads
``collection_done``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Min, Q

from apps.common.dates import business_date
from apps.common.emails import emails_queue_many
from apps.common.money import to_cents
from apps.ledger import recipes
from apps.ledger.services import postings_create
from apps.payments.models import Instalment, Payment, PaymentEvent, PaymentState
from apps.payments.notifications import notifications_schedule_many
from apps.payments.services.deny_list import deny_list_add_for_payment
from apps.payments.services.transitions import payment_lock, payments_transition_many
from apps.schedules import emails
from apps.schedules.policy import CONTACT, DEFAULT, days_late, policy_from_settings, stage
from apps.verification.services import sms_send

S = PaymentState
LATE_STATES = (S.LATE_DUNNING, S.LATE_CONTACT_CUSTOMER)
UNPAID = (Instalment.State.PENDING, Instalment.State.INCIDENT)
BATCH = 100


@dataclass
class DunningSummary:
    contacted: int = 0
    defaulted: int = 0


def dunning_advance(*, now: datetime, limit: int = 5000) -> DunningSummary:
    policy = policy_from_settings()
    today = business_date(now)
    contact_before = today - timedelta(days=policy.contact_from_days - 1)
    ids = list(
        Payment.objects.filter(state__in=LATE_STATES)
        .annotate(oldest=Min("instalments__due_date", filter=Q(instalments__state="incident")))
        .filter(oldest__lt=contact_before)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    summary = DunningSummary()
    for start in range(0, len(ids), BATCH):
        contacted, defaulted = _advance(ids[start : start + BATCH], now=now)
        summary.contacted += contacted
        summary.defaulted += defaulted
    return summary


def _advance(ids: list[int], *, now: datetime) -> tuple[int, int]:
    policy = policy_from_settings()
    today = business_date(now)
    with transaction.atomic():
        payments = list(
            Payment.objects.filter(pk__in=ids, state__in=LATE_STATES)
            .select_related("merchant", "customer", "card")
            .order_by("pk")
            .select_for_update(of=("self",), no_key=True)
        )
        if not payments:
            return 0, 0
        instalments = list(
            Instalment.objects.filter(payment_id__in=[p.pk for p in payments]).select_for_update()
        )
        context = emails.BatchContext.load(payments, instalments)
        changes, contacts, defaults = [], [], []
        for payment in payments:
            rows = context.instalments[payment.pk]
            incidents = [row.due_date for row in rows if row.state == Instalment.State.INCIDENT]
            if not incidents:
                continue
            days = days_late(due_date=min(incidents), today=today)
            where = stage(policy, days=days)
            if where == CONTACT and payment.state == S.LATE_DUNNING:
                changes.append((payment, S.LATE_CONTACT_CUSTOMER, "late_contact", {"days": days}))
                contacts.append((payment, days))
            elif where == DEFAULT:
                if payment.state == S.LATE_DUNNING:  # caught up: the contact stage was missed
                    changes.append(
                        (payment, S.LATE_CONTACT_CUSTOMER, "late_contact", {"days": days})
                    )
                defaults.append((payment, days))
        events = payments_transition_many(changes, now=now)
        specs = []
        for payment, days in contacts:
            spec, sms = emails.late_contact(context, payment=payment, today=today, days=days)
            specs.append(spec)
            phone = context.phone(payment)
            if phone:
                sms_send(
                    phone=phone,
                    text=sms,
                    livemode=payment.livemode,
                    key=f"payment:{payment.public_id}:late_contact:sms",
                    now=now,
                )
        if defaults:
            events += _default([payment for payment, _days in defaults], context, now=now)
            specs += [
                emails.defaulted(context, payment=payment, today=today) for payment, _d in defaults
            ]
        emails_queue_many([spec for spec in specs if spec.to], now=now)
        PaymentEvent.objects.bulk_create(events)
    return len(contacts), len(defaults)


def _default(
    payments: list[Payment], context: emails.BatchContext, *, now: datetime
) -> list[PaymentEvent]:
    """Claim, write off, deny-list, notify: the payments are in default."""
    postings, claimed_ids = [], []
    for payment in payments:
        unpaid = [row for row in context.instalments[payment.pk] if row.state in UNPAID]
        claimed_ids += [row.pk for row in unpaid]
        for row in unpaid:
            row.state = Instalment.State.CLAIMED
        principal = sum(to_cents(row.purchase_amount) for row in unpaid)
        if principal:
            postings.append(
                recipes.receivable_written_off(
                    merchant_id=payment.merchant_id,
                    livemode=payment.livemode,
                    payment_id=payment.public_id,
                    cents=principal,
                    effective_at=now,
                )
            )
    Instalment.objects.filter(pk__in=claimed_ids).update(
        state=Instalment.State.CLAIMED, next_debit_at=None
    )
    postings_create(postings)
    events = payments_transition_many(
        [(payment, S.DEFAULT, "default", {}) for payment in payments], now=now
    )
    for payment in payments:
        deny_list_add_for_payment(
            payment=payment,
            source="default",
            note=f"{payment.public_id} in default",
            now=now,
        )
    events += notifications_schedule_many(payments, event="default", now=now)
    return events


def collection_close(*, payment_id: int, now: datetime, note: str = "") -> Payment:
    """End the collection of a payment in default: what is still claimed is covered."""
    with transaction.atomic():
        payment = payment_lock(payment_id=payment_id)
        covered = Instalment.objects.filter(payment=payment, state=Instalment.State.CLAIMED).update(
            state=Instalment.State.COVERED
        )
        [event] = payments_transition_many(
            [(payment, S.COLLECTION_DONE, "collection_done", {"covered": covered, "note": note})],
            now=now,
        )
        event.save()
    return payment
