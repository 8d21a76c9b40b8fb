"""Reads of the common kernel for pages: the email outbox."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.common.models import OutgoingEmail

OUTBOX_PAGE_SIZE = 100


def outgoing_emails_latest(*, limit: int = OUTBOX_PAGE_SIZE) -> QuerySet[OutgoingEmail]:
    """The latest messages, newest first, without their bodies (the list does not show them)."""
    return OutgoingEmail.objects.defer("context", "text", "html").order_by("-created_at", "-pk")[
        :limit
    ]


def outgoing_email_get(*, email_id: int) -> OutgoingEmail:
    """One message; raises ``OutgoingEmail.DoesNotExist``."""
    return OutgoingEmail.objects.get(pk=email_id)
