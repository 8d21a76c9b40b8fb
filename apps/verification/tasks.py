"""django-q2 entry points of verification: thin, idempotent, safe to run twice."""

from django.utils import timezone

from apps.verification import services


def send_sms(message_id: int) -> str:
    """Hand one outbox message to the SMS provider (enqueued after commit by ``sms_send``)."""
    return services.sms_deliver(message_id=message_id, now=timezone.now()).status


def send_pending_sms() -> int:
    """Periodic: enqueue again the live messages whose task was lost."""
    return services.sms_outbox_requeue(now=timezone.now())


def identity_sandbox_answer(payload: dict) -> str:
    """The sandbox identity provider's webhook call, made in the background like the real one:
    the signed body goes to the service the HTTP webhook uses. Replays change nothing."""
    from apps.verification import identity, identity_sandbox
    from apps.verification.errors import IdentityResultUnknown

    body, signature = identity_sandbox.sandbox_webhook_deliver(payload)
    try:
        check = identity.identity_webhook_receive(
            body=body, signature=signature, now=timezone.now()
        )
    except IdentityResultUnknown:  # an attempt replaced by newer photos: nothing to do
        return "ignored"
    return check.status


def delete_expired_evidence() -> int:
    """Periodic (hourly): identity photos and bank transactions past their retention."""
    from apps.verification import bank, identity

    now = timezone.now()
    return identity.identity_evidence_delete_expired(now=now) + bank.bank_evidence_delete_expired(
        now=now
    )
