"""django-q2 entry points of verification: thin, idempotent, safe to run twice."""

from django.utils import timezone

from apps.verification import services


def send_sms(message_id: int) -> str:
    """Hand one outbox message to the SMS provider (enqueued after commit by ``sms_send``)."""
    return services.sms_deliver(message_id=message_id, now=timezone.now()).status


def send_pending_sms() -> int:
    """Periodic: enqueue again the live messages whose task was lost."""
    return services.sms_outbox_requeue(now=timezone.now())
