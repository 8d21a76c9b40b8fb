"""django-q2 entry points of the common kernel: thin, idempotent, safe to run twice."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django_q.models import Task

from apps.common.bulk import rows_delete
from apps.common.emails import email_send, emails_send, emails_send_unsent
from apps.common.idempotency import idempotency_prune


def prune_idempotency_records() -> int:
    return idempotency_prune(now=timezone.now())


def prune_task_results() -> int:
    """django-q2 keeps every result (``save_limit`` 0, see docs/background-jobs.md): the
    successes go after TASK_RESULTS_KEEP_DAYS, the failures after TASK_FAILURES_KEEP_DAYS."""
    now = timezone.now()
    successes = Task.objects.filter(
        success=True, stopped__lt=now - timedelta(days=settings.TASK_RESULTS_KEEP_DAYS)
    )
    failures = Task.objects.filter(
        success=False, stopped__lt=now - timedelta(days=settings.TASK_FAILURES_KEEP_DAYS)
    )
    return rows_delete(successes) + rows_delete(failures)


def send_email(email_id: int) -> str:
    """Queued after commit by email_queue; a rerun never sends a message twice."""
    return email_send(email_id=email_id, now=timezone.now())


def send_emails(email_ids: list[int]) -> dict[str, int]:
    """Queued after commit by emails_queue_many (one task for a batch of messages)."""
    return emails_send(email_ids=email_ids, now=timezone.now())


def send_unsent_emails() -> int:
    """The periodic sweep for messages whose after-commit task was lost or failed."""
    return emails_send_unsent(now=timezone.now())
