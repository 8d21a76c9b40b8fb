"""django-q2 entry points of the refunds: thin, idempotent, safe to run twice or at once."""

from __future__ import annotations

from django.utils import timezone

from apps.refunds.services import refunds_send_pending


def send_pending_refunds() -> int:
    """Every 5 minutes: card refunds still open after a minute (an answer lost, a worker that
    died before calling) are made again with their own keys. Returns how many refunds were
    finished."""
    return refunds_send_pending(now=timezone.now())
