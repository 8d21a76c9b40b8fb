"""django-q2 entry points of the schedules: thin, idempotent, safe to run twice and at once."""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone

from apps.common.emails import email_send
from apps.common.models import OutgoingEmail
from apps.schedules.receipts import receipt_render, receipts_unrendered
from apps.schedules.services.debits import debit_run, debits_due_count
from apps.schedules.services.dunning import dunning_advance
from apps.schedules.services.reminders import reminders_send

logger = logging.getLogger(__name__)

RECEIPT_SWEEP_AFTER_MINUTES = 2


def run_debits() -> dict[str, int]:
    """Hourly: charge what is due. A run stops after DEBIT_RUN_BUDGET_SECONDS and queues
    another for the rest, so a backlog is worked through by every worker, in turns."""
    now = timezone.now()
    summary = debit_run(now=now, budget_seconds=settings.DEBIT_RUN_BUDGET_SECONDS)
    if debits_due_count(now=now):
        from django_q.tasks import async_task

        async_task("apps.schedules.tasks.run_debits")
    return vars(summary)


def send_reminders() -> int:
    return reminders_send(now=timezone.now())


def advance_dunning() -> dict[str, int]:
    return vars(dunning_advance(now=timezone.now()))


def render_receipts(numbers: list[str]) -> int:
    """Render each receipt (keyed by its number: a rerun overwrites the same file), then
    send the email that carries it."""
    rendered = 0
    for number in numbers:
        try:
            receipt = receipt_render(number=number, now=timezone.now())
        except Exception:  # one bad receipt never blocks the others; the sweep retries
            logger.exception("Could not render receipt %s", number)
            continue
        rendered += 1
        if receipt.email_key:
            email_id = (
                OutgoingEmail.objects.filter(key=receipt.email_key)
                .values_list("pk", flat=True)
                .first()
            )
            if email_id is not None:
                email_send(email_id=email_id, now=timezone.now())
    return rendered


def render_pending_receipts() -> int:
    """The sweep for receipts whose render task was lost."""
    from datetime import timedelta

    numbers = receipts_unrendered(
        now=timezone.now(),
        older_than=timedelta(minutes=RECEIPT_SWEEP_AFTER_MINUTES),
        limit=500,
    )
    return render_receipts(numbers)


def detach_erased_cards() -> int:
    """Hourly: the cards of customers whose data was erased, detached at the processor
    (after an outage, the ones the erasure itself could not detach)."""
    from apps.schedules.services.data_rights import erased_cards_detach

    return erased_cards_detach(now=timezone.now())
