"""Idempotency-Key handling for the merchant API's POST and PUT requests.

Same key + same request within the TTL -> the first response, replayed. Same key + a
different request -> 422. Same key while the first request still runs -> 409. 5xx responses
are not remembered, so a client may retry them with the same key; neither is a request whose
process died before answering (its claim is taken over after IDEMPOTENCY_ABANDONED_SECONDS).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction

from apps.common.bulk import rows_delete
from apps.common.errors import IdempotencyKeyReused, IdempotentRequestInFlight
from apps.common.models import IdempotencyRecord

MAX_KEY_LENGTH = 255


def request_fingerprint(method: str, path: str, data: object) -> str:
    """Identifies a request by method, full path and parsed body, so that the same JSON sent
    with other spacing or key order is the same request."""
    body = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@dataclass(frozen=True)
class Claim:
    """The outcome of `idempotency_claim`: either run the request, or replay a response."""

    record_id: int | None
    replay_status: int | None = None
    replay_body: str = ""


def idempotency_claim(*, scope: str, key: str, fingerprint: str, now: datetime) -> Claim:
    """Claim `key` for a request, or return the response to replay; raise on conflict."""
    expired_before = now - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    abandoned_before = now - timedelta(seconds=settings.IDEMPOTENCY_ABANDONED_SECONDS)
    for _ in range(2):  # a second pass if the other request's claim vanished meanwhile
        with transaction.atomic():
            IdempotencyRecord.objects.filter(
                scope=scope, key=key, created_at__lt=expired_before
            ).delete()
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        scope=scope, key=key, fingerprint=fingerprint, created_at=now
                    )
                return Claim(record_id=record.pk)
            except IntegrityError:
                record = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
        if record is None:
            continue
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReused()
        if record.status == IdempotencyRecord.Status.COMPLETED:
            return Claim(
                record_id=None,
                replay_status=record.response_status,
                replay_body=record.response_body,
            )
        if record.created_at < abandoned_before and _take_over(record, now=now):
            return Claim(record_id=record.pk)
        raise IdempotentRequestInFlight()
    raise IdempotentRequestInFlight()


def _take_over(record: IdempotencyRecord, *, now: datetime) -> bool:
    """Claim a record whose request never answered; only one taker wins."""
    return bool(
        IdempotencyRecord.objects.filter(
            pk=record.pk,
            status=IdempotencyRecord.Status.IN_PROGRESS,
            created_at=record.created_at,
        ).update(created_at=now)
    )


def idempotency_complete(*, record_id: int, status: int, body: str, now: datetime) -> None:
    """Remember the response; forget the key instead when the server failed (5xx)."""
    records = IdempotencyRecord.objects.filter(pk=record_id)
    if status >= 500:
        records.delete()
    else:
        records.update(
            status=IdempotencyRecord.Status.COMPLETED,
            response_status=status,
            response_body=body,
            completed_at=now,
        )


def idempotency_release(*, record_id: int) -> None:
    """Forget a claim whose response could not be recorded, so a retry may run."""
    IdempotencyRecord.objects.filter(pk=record_id).delete()


def idempotency_prune(*, now: datetime, batch_size: int = 5000) -> int:
    """Delete records older than the TTL, in batches; return how many went."""
    cutoff = now - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    return rows_delete(
        IdempotencyRecord.objects.filter(created_at__lt=cutoff), batch_size=batch_size
    )
