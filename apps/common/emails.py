"""The email outbox: decide in the transaction, send after commit, never twice on a rerun.

``email_queue`` records a message as an ``OutgoingEmail`` row in the caller's transaction,
keyed by what the message is about (``payment:<id>:confirmation:customer``): the same
decision taken twice records one row. The row holds what to render (template, a JSON
context, language) and the subject; the sender renders it, so the transaction that decides
pays no template rendering (the debit run records a thousand a second, ``emails_queue_many``
in one statement). After commit the task ``send_email`` (``send_emails`` for a batch) sends
it; a periodic sweep (``emails_send_unsent``) sends what a lost task left behind.

A message may wait for files (``attachments``: a receipt being rendered): it is not queued
for sending at commit (``send=False``); whoever produces the file sends it, and until the
file exists a send reports ``waiting`` without counting an attempt.

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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.storage import storages
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils import translation

from apps.common.models import OutgoingEmail

logger = logging.getLogger(__name__)

SEND_TASK = "apps.common.tasks.send_email"
SEND_MANY_TASK = "apps.common.tasks.send_emails"
# The sweep leaves younger rows to the task queued at commit.
SWEEP_AFTER = timedelta(minutes=2)
MAX_SEND_ATTEMPTS = 10
ERROR_CHARS = 300


@dataclass(frozen=True)
class Attachment:
    """A file an email carries, read from a storage when the email is sent."""

    storage: str  # an alias of settings.STORAGES
    name: str  # the file's name in that storage
    filename: str  # the name the customer sees
    mimetype: str = "application/pdf"

    def as_json(self) -> dict[str, str]:
        return {
            "storage": self.storage,
            "name": self.name,
            "filename": self.filename,
            "mimetype": self.mimetype,
        }


@dataclass(frozen=True)
class EmailSpec:
    """One message to record: ``context`` must be JSON (strings, numbers, lists, dicts),
    formatted already where the format depends on the language; ``subject`` may be a lazy
    translation (evaluated in ``language``)."""

    key: str
    to: str
    subject: Any
    template: str
    context: Mapping[str, Any]
    language: str
    attachments: tuple[Attachment, ...] = field(default=())


def _enqueue_send(email_id: int) -> None:
    from django_q.tasks import async_task

    async_task(SEND_TASK, email_id)


def _enqueue_send_many(email_ids: list[int]) -> None:
    from django_q.tasks import async_task

    async_task(SEND_MANY_TASK, email_ids)


def email_render(*, template: str, context: Mapping[str, Any], language: str) -> tuple[str, str]:
    """``<template>.txt`` and, when it exists, ``<template>.html``, rendered in ``language``."""
    with translation.override(language):
        text = render_to_string(f"{template}.txt", dict(context))
        try:
            html = render_to_string(f"{template}.html", dict(context))
        except TemplateDoesNotExist:
            html = ""
    return text, html


def email_content(email: OutgoingEmail) -> tuple[str, str]:
    """The message's text and HTML: as sent, or rendered now if not sent yet."""
    if email.text:
        return email.text, email.html
    return email_render(template=email.template, context=email.context, language=email.language)


def _subject(spec: EmailSpec) -> str:
    with translation.override(spec.language):
        return " ".join(str(spec.subject).split())[:300]  # no line breaks in a header


def _row(spec: EmailSpec, now: datetime) -> OutgoingEmail:
    if not spec.template:
        raise ValueError("an email needs a template")
    return OutgoingEmail(
        key=spec.key,
        to=spec.to,
        subject=_subject(spec),
        template=spec.template,
        context=dict(spec.context),
        language=spec.language,
        attachments=[attachment.as_json() for attachment in spec.attachments],
        created_at=now,
    )


def email_queue(
    *,
    key: str,
    to: str,
    subject: Any,
    template: str,
    context: Mapping[str, Any],
    language: str,
    now: datetime,
    attachments: tuple[Attachment, ...] = (),
    send: bool = True,
) -> OutgoingEmail:
    """Record the message named ``key`` and (unless ``send`` is False) send it after commit;
    the existing row if ``key`` was already queued (nothing is recorded or sent again)."""
    existing = OutgoingEmail.objects.filter(key=key).first()
    if existing is not None:
        return existing
    spec = EmailSpec(
        key=key,
        to=to,
        subject=subject,
        template=template,
        context=context,
        language=language,
        attachments=attachments,
    )
    try:
        with transaction.atomic():
            email = _row(spec, now)
            email.save(force_insert=True)
            if send:
                transaction.on_commit(lambda: _enqueue_send(email.pk), robust=True)
    except IntegrityError:  # the same key queued at the same moment elsewhere
        return OutgoingEmail.objects.get(key=key)
    return email


def emails_queue_many(specs: list[EmailSpec], *, now: datetime, send: bool = True) -> list[int]:
    """Record many messages in one statement (keys already queued are left as they are);
    returns the ids of the rows written now, sent after commit by one task."""
    if not specs:
        return []
    rows = [_row(spec, now) for spec in specs]
    created = OutgoingEmail.objects.bulk_create(rows, ignore_conflicts=True)
    # With ignore_conflicts PostgreSQL returns no ids: read back the ones written now.
    ids = list(
        OutgoingEmail.objects.filter(
            key__in=[row.key for row in created], created_at=now
        ).values_list("pk", flat=True)
    )
    if ids and send:
        transaction.on_commit(lambda: _enqueue_send_many(ids), robust=True)
    return ids


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
    ``sent``, ``already_sent``, ``busy`` (another worker has it), ``gone``, ``waiting`` (an
    attachment is not there yet; no attempt counted) or ``failed``."""
    if not _try_lock(email_id):
        return "busy"
    try:
        email = OutgoingEmail.objects.filter(pk=email_id).first()
        if email is None:
            return "gone"
        if email.sent_at is not None:
            return "already_sent"
        files = _attachments_read(email)
        if files is None:
            return "waiting"
        with transaction.atomic():
            OutgoingEmail.objects.filter(pk=email_id).update(attempts=F("attempts") + 1)
        email.attempts += 1
        text, html = email_content(email)
        message = EmailMultiAlternatives(
            subject=email.subject,
            body=text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[email.to],
        )
        if html:
            message.attach_alternative(html, "text/html")
        for filename, content, mimetype in files:
            message.attach(filename, content, mimetype)
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
            sent_at=now, last_error="", text=text, html=html
        )
        return "sent"
    finally:
        _unlock(email_id)


def _attachments_read(email: OutgoingEmail) -> list[tuple[str, bytes, str]] | None:
    """The files the message carries; None while one of them does not exist yet."""
    files = []
    for attachment in email.attachments:
        storage = storages[attachment["storage"]]
        if not storage.exists(attachment["name"]):
            return None
        with storage.open(attachment["name"], "rb") as handle:
            files.append((attachment["filename"], handle.read(), attachment["mimetype"]))
    return files


def emails_send(*, email_ids: list[int], now: datetime) -> dict[str, int]:
    """Send several queued messages; how many ended each way (``sent``, ``busy``...)."""
    outcomes: dict[str, int] = {}
    for email_id in email_ids:
        outcome = email_send(email_id=email_id, now=now)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


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
