"""Reads of verification data for pages."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.verification.models import SmsMessage

OUTBOX_PAGE_SIZE = 100


def sms_messages_latest(*, limit: int = OUTBOX_PAGE_SIZE) -> QuerySet[SmsMessage]:
    return SmsMessage.objects.order_by("-created_at", "-pk")[:limit]
