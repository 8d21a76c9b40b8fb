"""The email outbox: decide in the transaction, send after commit, never twice on a rerun.

``email_queue`` renders a message and records it as an ``OutgoingEmail`` row in the caller's
transaction, keyed by what the message is about (``payment:<id>:confirmation:customer``): the
same decision taken twice records one row. After commit, the task ``send_email`` sends it; a
periodic sweep (``emails_send_unsent``) sends what a lost task left behind.

Sending holds a PostgreSQL session advisory lock on the row (taken and released outside any
transaction, so no transaction stays open during the SMTP call): a second worker on the same
row skips it, and the lock vanishes with the connection if the worker dies. Delivery is at
least once: a worker that dies after the mail server accepted the message and before it
marked the row sent leaves it unsent, and the sweep sends it again (once more at most per such
crash). Failed sends are retried by the sweep up to MAX_SEND_ATTEMPTS times. (Session locks
need a real session per worker: a transaction-pooling proxy in front of PostgreSQL would
break them.)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, connection, transaction
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils import translation

from apps.common.models import OutgoingEmail

logger = logging.getLogger(__name__)

SEND_TASK = "apps.common.tasks.send_email"
# The sweep leaves younger rows to the task queued at commit.
SWEEP_AFTER = timedelta(minutes=2)
MAX_SEND_ATTEMPTS = 10
ERROR_CHARS = 300


def _enqueue_send(email_id: int) -> None:
    from django_q.tasks import async_task

    async_task(SEND_TASK, email_id)


def email_render(*, template: str, context: Mapping[str, Any], language: str) -> tuple[str, str]:
    """``<template>.txt`` and, when it exists, ``<template>.html``, rendered in ``language``."""
    with translation.override(language):
        text = render_to_string(f"{template}.txt", dict(context))
        try:
            html = render_to_string(f"{template}.html", dict(context))
        except TemplateDoesNotExist:
            html = ""
    return text, html


def email_queue(
    *,
    key: str,
    to: str,
    subject: str,
    template: str,
    context: Mapping[str, Any],
    language: str,
    now: datetime,
) -> OutgoingEmail:
    """Record the message named ``key`` and send it after commit; the existing row if ``key``
    was already queued (nothing is rendered, recorded or sent again).

    ``subject`` may be a lazy translation: it is evaluated in ``language``.
    """
    existing = OutgoingEmail.objects.filter(key=key).first()
    if existing is not None:
        return existing
    text, html = email_render(template=template, context=context, language=language)
    with translation.override(language):
        subject_text = " ".join(str(subject).split())  # no line breaks in a header
    try:
        with transaction.atomic():
            email = OutgoingEmail.objects.create(
                key=key, to=to, subject=subject_text, text=text, html=html, created_at=now
            )
            transaction.on_commit(lambda: _enqueue_send(email.pk), robust=True)
    except IntegrityError:  # the same key queued at the same moment elsewhere
        return OutgoingEmail.objects.get(key=key)
    return email


def _lock_key(email_id: int) -> str:
    return f"outgoing_email:{email_id}"


def _try_lock(email_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [_lock_key(email_id)]
        )
        return bool(cursor.fetchone()[0])


def _unlock(email_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [_lock_key(email_id)])


def email_send(*, email_id: int, now: datetime) -> str:
    """Send one queued message unless it was sent or is being sent; returns what happened:
    ``sent``, ``already_sent``, ``busy`` (another worker has it), ``gone`` or ``failed``."""
    if not _try_lock(email_id):
        return "busy"
    try:
        with transaction.atomic():
            email = (
                OutgoingEmail.objects.select_for_update()
                .filter(pk=email_id)
                .only("pk", "sent_at", "attempts")
                .first()
            )
            if email is None:
                return "gone"
            if email.sent_at is not None:
                return "already_sent"
            email.attempts += 1
            email.save(update_fields=["attempts"])
        email = OutgoingEmail.objects.get(pk=email_id)
        message = EmailMultiAlternatives(
            subject=email.subject,
            body=email.text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[email.to],
        )
        if email.html:
            message.attach_alternative(email.html, "text/html")
        try:
            message.send()
        except Exception as error:  # any mail backend's failure: kept for the sweep to retry
            log = logger.error if email.attempts >= MAX_SEND_ATTEMPTS else logger.warning
            log("email %s not sent (attempt %s): %s", email.key, email.attempts, error)
            OutgoingEmail.objects.filter(pk=email_id).update(
                last_error=f"{type(error).__name__}: {error}"[:ERROR_CHARS]
            )
            return "failed"
        OutgoingEmail.objects.filter(pk=email_id, sent_at__isnull=True).update(
            sent_at=now, last_error=""
        )
        return "sent"
    finally:
        _unlock(email_id)


def emails_send_unsent(*, now: datetime, limit: int = 100) -> int:
    """Send messages queued more than SWEEP_AFTER ago and still unsent (their task was lost,
    or the send failed); returns how many were sent."""
    ids = list(
        OutgoingEmail.objects.filter(
            sent_at__isnull=True,
            created_at__lte=now - SWEEP_AFTER,
            attempts__lt=MAX_SEND_ATTEMPTS,
        )
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(email_send(email_id=email_id, now=now) == "sent" for email_id in ids)
