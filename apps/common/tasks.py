"""django-q2 entry points of the common kernel: thin, idempotent, safe to run twice."""

from django.utils import timezone

from apps.common.emails import email_send, emails_send_unsent
from apps.common.idempotency import idempotency_prune


def prune_idempotency_records() -> int:
    return idempotency_prune(now=timezone.now())


def send_email(email_id: int) -> str:
    """Queued after commit by email_queue; a rerun never sends a message twice."""
    return email_send(email_id=email_id, now=timezone.now())


def send_unsent_emails() -> int:
    """The periodic sweep for messages whose after-commit task was lost or failed."""
    return emails_send_unsent(now=timezone.now())
