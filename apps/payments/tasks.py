"""django-q2 entry points of payments: thin, idempotent, safe to run twice and at once."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apps.common.dates import business_date


def expire_payments() -> int:
    """Payments not paid in time become stopped with ``expired_at`` (every minute)."""
    from apps.payments.services.payments import payments_expire

    return payments_expire(now=timezone.now())


def settle_charges_in_doubt() -> int:
    """Checkout charges left pending or unknown: ask the processor and record its answer."""
    from apps.payments.services.charges import charges_settle_in_doubt

    return charges_settle_in_doubt(now=timezone.now())


def deliver_due_notifications() -> int:
    """IPN retries whose time has come."""
    from apps.payments.notifications import notifications_deliver_due

    return notifications_deliver_due(now=timezone.now())


def write_sandbox_settlement_reports() -> int:
    """The sandbox processor delivers yesterday's settlement report in each mode, as a real
    processor does each morning; rewriting a day writes the same file. Does nothing when the
    processor is not the sandbox."""
    from django.conf import settings

    if not settings.CARD_PROCESSOR.endswith("processor_sandbox.SandboxProcessor"):
        return 0
    from apps.payments.processor_sandbox import write_settlement_report

    yesterday = business_date(timezone.now()) - timedelta(days=1)
    for livemode in (False, True):
        write_settlement_report(report_date=yesterday, livemode=livemode)
    return 2


def queue_waiting_decisions_for_review() -> int:
    """Payments left waiting on more information too long go to the operators' queue."""
    from apps.payments.services.reviews import reviews_queue_waiting

    return reviews_queue_waiting(now=timezone.now())


def export_build_task(export_id: int) -> str:
    """Build a data export's CSV and XLSX files (queued when the export is asked for)."""
    from apps.payments.exports import export_build

    return export_build(export_id)


def requeue_stale_exports() -> int:
    """Data exports left pending or silent for 10 minutes are queued again (every 5 min)."""
    from apps.payments.exports import exports_requeue_stale

    return exports_requeue_stale(now=timezone.now())
