"""Merchant notifications (IPN): ``GET <ipn_callback_url>?pid=<payment id>``, signed, retried.

What the merchant's plugin expects (api-contract.md §7): no body, the header
``X-Alma-Signature: hex(HMAC-SHA256(key=<the merchant's secret API key of the payment's
mode>, msg=<payment id>))``; any 2xx means received. Tranche stores its merchants' keys
hashed, so it signs with the sealed copy kept for that purpose (``APIKey.secret_encrypted``,
newest usable key of the mode). A key made before sealed copies existed cannot sign: the
attempt is recorded as failed with the error ``NO_SIGNING_KEY`` and retried on the normal
schedule, so the IPN goes out once the merchant rotates its key.

Life of a notification (one per payment and event, ``accepted`` / ``paid`` (every
instalment paid) / ``refunded`` / ``default``):
- ``notification_schedule`` records it in the transaction that decides it, due at once, and
  queues the first attempt after commit; the periodic sweep ``notifications_deliver_due``
  picks up what a lost task or a retry leaves due.
- Each attempt claims the row in a short transaction (``SKIP LOCKED``, pending and due),
  counts the attempt and moves ``next_attempt_at`` to when the next one is due, commits, and
  only then calls the merchant, outside any transaction. So two workers never call for the
  same attempt, and a worker that dies mid-call leaves the row due again on schedule (the
  last attempt leaves it due after LAST_ATTEMPT_LEASE, for one recovery attempt).
- After the call an attempt row records status, latency, the first 500 characters of the
  answer and the error. 2xx: ``delivered``. Otherwise the next attempt comes after
  ``IPN_RETRY_DELAYS[n-1]`` (n = attempt number), and after the last: ``failed``. A URL the
  outgoing guard refuses (apps.common.outgoing) fails at once: retrying cannot help.
- Before any attempt after the first, a notification that has gone stale is ``dropped``
  instead (``notification_is_stale``).
- ``notification_resend`` (a merchant or operator's replay) makes it due again now.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.common.errors import DomainError
from apps.common.outgoing import OutgoingResponse, OutgoingUrlRefused, outgoing_get
from apps.merchants.selectors import api_key_signing_secret
from apps.payments.links import with_pid
from apps.payments.models import (
    Notification,
    NotificationAttempt,
    Payment,
    PaymentEvent,
    PaymentState,
)
from apps.payments.services.transitions import payment_event_record

if TYPE_CHECKING:
    from apps.merchants.models import Merchant

logger = logging.getLogger(__name__)

DELIVER_TASK = "apps.payments.notifications.notification_deliver"
SIGNATURE_HEADER = "X-Alma-Signature"
USER_AGENT = "Tranche-IPN/1.0"
NO_SIGNING_KEY = "no signing key: rotate your API key"
# After the last attempt is claimed, how long before a crashed worker's attempt is retried.
LAST_ATTEMPT_LEASE = timedelta(minutes=10)
# The sweep stops starting calls after this long, well within the task timeout (60 s).
SWEEP_BUDGET_SECONDS = 40
SNIPPET_CHARS = 500
ERROR_CHARS = 200

S = PaymentState
# A notification is stale once its payment has reached a state in which the message would
# mislead the merchant's plugin, which re-reads the payment on receipt: an "accepted" IPN
# for a payment since stopped (cancelled, fully refunded) or in default would make the
# plugin flag a state error instead of marking the order paid; a "default" IPN for a payment
# since paid in full is news nobody needs. Later events have their own notification.
STALE_WHEN: dict[str, frozenset[str]] = {
    "accepted": frozenset({S.STOPPED, S.DEFAULT, S.COLLECTION_DONE}),
    "paid": frozenset(),
    "default": frozenset({S.PAID}),
}


class NotificationStale(DomainError):
    code = "notification_stale"
    http_status = 409
    default_message = (
        "This notification no longer matches the payment's state; it will not be sent again."
    )


def notification_is_stale(*, event: str, state_at_event: str, current_state: str) -> bool:
    """Whether a notification about ``event`` (decided in ``state_at_event``) should no
    longer be sent now that the payment is in ``current_state`` (see STALE_WHEN)."""
    if current_state == state_at_event:
        return False
    return current_state in STALE_WHEN.get(event, frozenset())


def ipn_signature(*, secret: str, payment_public_id: str) -> str:
    """What plugins compute: ``hash_hmac('sha256', pid, api_key)``, lowercase hex."""
    return hmac.new(secret.encode(), payment_public_id.encode(), hashlib.sha256).hexdigest()


def retry_delay(attempt_number: int) -> timedelta | None:
    """The wait after attempt ``attempt_number`` fails, or None if it was the last."""
    delays = settings.IPN_RETRY_DELAYS
    if attempt_number > len(delays):
        return None
    return timedelta(seconds=delays[attempt_number - 1])


def _enqueue(notification_id: int) -> None:
    from django_q.tasks import async_task

    async_task(DELIVER_TASK, notification_id)


# --- deciding -----------------------------------------------------------------------------


def notification_schedule(*, payment: Payment, event: str, now: datetime) -> Notification | None:
    """Decide to notify the merchant of ``event``; call it inside the transaction that made
    the event happen. The first attempt is queued after commit.

    The URL is the payment's ``ipn_callback_url``, else the merchant's default one, with
    ``pid`` added. Without either there is nothing to call: None, and the payment's history
    says so. Deciding twice returns the notification decided first.
    """
    existing = Notification.objects.filter(payment=payment, event=event).first()
    if existing is not None:
        return existing
    base_url = payment.ipn_callback_url or payment.merchant.ipn_callback_url
    if not base_url:
        already = payment.events.filter(kind="notification_skipped", detail__event=event)
        if not already.exists():
            payment_event_record(
                payment,
                kind="notification_skipped",
                now=now,
                detail={"event": event, "reason": "no ipn_callback_url"},
            )
        return None
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                payment=payment,
                event=event,
                state_at_event=payment.state,
                url=with_pid(base_url, payment.public_id),
                next_attempt_at=now,
                created_at=now,
            )
            transaction.on_commit(lambda: _enqueue(notification.pk), robust=True)
    except IntegrityError:  # decided at the same moment by another transaction
        return Notification.objects.get(payment=payment, event=event)
    return notification


def notifications_schedule_many(
    payments: list[Payment], *, event: str, now: datetime
) -> list[PaymentEvent]:
    """``notification_schedule`` for many payments the caller has locked, in one insert (the
    debit run's batch). Returns the ``notification_skipped`` events of payments without an
    IPN URL, unsaved, for the caller's own bulk insert."""
    skipped, rows = [], []
    for payment in payments:
        base_url = payment.ipn_callback_url or payment.merchant.ipn_callback_url
        if not base_url:
            skipped.append(
                PaymentEvent(
                    payment_id=payment.pk,
                    kind="notification_skipped",
                    detail={"event": event, "reason": "no ipn_callback_url"},
                    created_at=now,
                )
            )
            continue
        rows.append(
            Notification(
                payment_id=payment.pk,
                event=event,
                state_at_event=payment.state,
                url=with_pid(base_url, payment.public_id),
                next_attempt_at=now,
                created_at=now,
            )
        )
    if rows:
        Notification.objects.bulk_create(rows, ignore_conflicts=True)
        ids = list(
            Notification.objects.filter(
                payment_id__in=[row.payment_id for row in rows], event=event, created_at=now
            ).values_list("pk", flat=True)
        )
        transaction.on_commit(lambda: [_enqueue(pk) for pk in ids], robust=True)
    return skipped


def notification_resend(*, notification: Notification, now: datetime) -> Notification:
    """Replay a notification (merchant or operator): one more attempt, due now, whatever its
    status; retries follow if it fails and attempts remain. Refuses a stale notification
    (NotificationStale), which its plugin would take for a state error."""
    with transaction.atomic():
        locked = (
            Notification.objects.select_for_update(of=("self",))
            .select_related("payment")
            .get(pk=notification.pk)
        )
        if notification_is_stale(
            event=locked.event,
            state_at_event=locked.state_at_event,
            current_state=locked.payment.state,
        ):
            raise NotificationStale()
        locked.status = Notification.Status.PENDING
        locked.next_attempt_at = now
        locked.finished_at = None
        locked.save(update_fields=["status", "next_attempt_at", "finished_at"])
        payment_event_record(
            locked.payment,
            kind="notification_resent",
            now=now,
            detail={"event": locked.event, "notification": locked.pk},
        )
        transaction.on_commit(lambda: _enqueue(locked.pk), robust=True)
    return locked


# --- delivering ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claim:
    notification_id: int
    number: int
    url: str
    payment_public_id: str
    livemode: bool
    merchant: Merchant


def _claim(*, notification_id: int, now: datetime) -> _Claim | str:
    """Take the next attempt of a due notification, or say why not (``not_due``, ``dropped``)."""
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("payment__merchant")
            .filter(
                pk=notification_id,
                status=Notification.Status.PENDING,
                next_attempt_at__lte=now,
            )
            .first()
        )
        if notification is None:
            return "not_due"  # delivered, given up, being tried, or not due yet
        payment = notification.payment
        number = notification.attempts + 1
        if number > 1 and notification_is_stale(
            event=notification.event,
            state_at_event=notification.state_at_event,
            current_state=payment.state,
        ):
            notification.status = Notification.Status.DROPPED
            notification.next_attempt_at = None
            notification.finished_at = now
            notification.save(update_fields=["status", "next_attempt_at", "finished_at"])
            payment_event_record(
                payment,
                kind="notification_dropped",
                now=now,
                detail={"event": notification.event, "state": payment.state},
            )
            return "dropped"
        notification.attempts = number
        # Set before the call: a worker that dies during it leaves the row due on schedule.
        notification.next_attempt_at = now + (retry_delay(number) or LAST_ATTEMPT_LEASE)
        notification.save(update_fields=["attempts", "next_attempt_at"])
    return _Claim(
        notification_id=notification.pk,
        number=number,
        url=notification.url,
        payment_public_id=payment.public_id,
        livemode=payment.livemode,
        merchant=payment.merchant,
    )


def _call(claim: _Claim, *, now: datetime) -> tuple[OutgoingResponse, bool]:
    """The merchant's answer, and whether the URL was refused (no retry can help)."""
    secret = api_key_signing_secret(merchant=claim.merchant, livemode=claim.livemode, now=now)
    if secret is None:
        return OutgoingResponse(status=None, latency_ms=0, snippet="", error=NO_SIGNING_KEY), False
    headers = {
        SIGNATURE_HEADER: ipn_signature(secret=secret, payment_public_id=claim.payment_public_id),
        "User-Agent": USER_AGENT,
        "Accept": "application/json, */*;q=0.5",
    }
    try:
        response = outgoing_get(
            claim.url,
            headers=headers,
            livemode=claim.livemode,
            timeout=settings.IPN_TIMEOUT_SECONDS,
        )
    except OutgoingUrlRefused as error:
        return OutgoingResponse(status=None, latency_ms=0, snippet="", error=error.message), True
    return response, False


def _record(claim: _Claim, response: OutgoingResponse, *, refused: bool, now: datetime) -> str:
    finished_at = now + timedelta(milliseconds=response.latency_ms)
    with transaction.atomic():
        notification = Notification.objects.select_for_update().get(pk=claim.notification_id)
        NotificationAttempt.objects.create(
            notification=notification,
            number=claim.number,
            status_code=response.status,
            latency_ms=response.latency_ms,
            response_snippet=response.snippet[:SNIPPET_CHARS],
            error=response.error[:ERROR_CHARS],
            created_at=now,
        )
        if response.ok:
            if notification.status == Notification.Status.PENDING:
                notification.status = Notification.Status.DELIVERED
                notification.next_attempt_at = None
                notification.finished_at = finished_at
                notification.save(update_fields=["status", "next_attempt_at", "finished_at"])
            return "delivered"
        # A newer attempt (a replay) or status owns the row now: leave it to that one.
        if (
            notification.status != Notification.Status.PENDING
            or notification.attempts != claim.number
        ):
            return "superseded"
        if refused or retry_delay(claim.number) is None:
            notification.status = Notification.Status.FAILED
            notification.next_attempt_at = None
            notification.finished_at = finished_at
            notification.save(update_fields=["status", "next_attempt_at", "finished_at"])
            return "failed"
        return "retry_scheduled"


def notification_attempt(*, notification_id: int, now: datetime) -> str:
    """Make the next attempt of a notification if it is due at ``now``; safe to run twice and
    at the same time. Returns ``delivered``, ``retry_scheduled``, ``failed``, ``dropped``,
    ``not_due`` or ``superseded``."""
    claim = _claim(notification_id=notification_id, now=now)
    if isinstance(claim, str):
        return claim
    response, refused = _call(claim, now=now)
    outcome = _record(claim, response, refused=refused, now=now)
    if outcome != "delivered":
        logger.warning(
            "IPN %s attempt %s: %s (status %s, %s)",
            claim.notification_id,
            claim.number,
            outcome,
            response.status,
            response.error or "non-2xx answer",
        )
    return outcome


def notification_deliver(notification_id: int) -> str:
    """django-q2 task queued after commit: the notification's attempt, if due now."""
    return notification_attempt(notification_id=notification_id, now=timezone.now())


def notifications_deliver_due(*, now: datetime, limit: int = 100) -> int:
    """The periodic sweep: attempt up to ``limit`` notifications due at ``now`` (retries, and
    first attempts whose task was lost), oldest due first; returns how many it attempted or
    dropped. Each call is stamped ``now`` plus the time the sweep has run so far; the sweep
    stops starting calls after SWEEP_BUDGET_SECONDS and leaves the rest to the next run."""
    due = (
        Notification.objects.filter(status=Notification.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    started = time.monotonic()
    handled = 0
    for notification_id in list(due):
        elapsed = time.monotonic() - started
        if elapsed > SWEEP_BUDGET_SECONDS:
            break
        outcome = notification_attempt(
            notification_id=notification_id, now=now + timedelta(seconds=elapsed)
        )
        handled += outcome != "not_due"
    return handled
