"""Verification use cases: SMS through the outbox, and phone checks by one-time code.

Nothing here knows what a check protects: callers pass a ``purpose`` and a ``subject``.
"""

from __future__ import annotations

import hmac
import logging
import math
import secrets
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import translation
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext

from apps.common.ids import with_prefix
from apps.common.signing import UnsealError, seal, unseal
from apps.verification.errors import (
    AlreadyVerified,
    CodeExpired,
    PhoneCheckNotFound,
    ResendTooSoon,
    SmsProviderUnavailable,
    SmsRejected,
    TooManyAttempts,
    TooManyChecks,
    TooManyChecksFromAddress,
    TooManySends,
    WrongCode,
)
from apps.verification.models import (
    PHONE_CHECK_ID_PREFIX,
    PhoneCheck,
    SmsMessage,
    new_phone_check_id,
)
from apps.verification.phones import phone_mask, phone_normalise
from apps.verification.sms import sms_gateway

logger = logging.getLogger(__name__)

CODE_DIGITS = 6
# Sends of one check, the first one included.
MAX_SENDS_PER_CHECK = 5
# Checks started for one number within an hour, so nobody can flood a phone with codes.
MAX_CHECKS_PER_PHONE_PER_HOUR = 10
# Tries of one live SMS against the provider before it is given up as failed.
SMS_MAX_ATTEMPTS = 5
# A message claimed this long ago without a result belongs to a worker that died.
SMS_CLAIM_STALE_AFTER = timedelta(minutes=10)
# A queued message this old has lost its task (broker restarted): the sweep enqueues it again.
SMS_QUEUED_GRACE = timedelta(minutes=1)
SEND_TASK = "apps.verification.tasks.send_sms"
CODE_MASK = "••••••"


# --- SMS outbox -----------------------------------------------------------------------


def sms_send(
    *, phone: str, text: str, livemode: bool, key: str, now: datetime, secret: str = ""
) -> SmsMessage:
    """Record one SMS in the outbox; a live one is handed to the provider after commit.

    ``key`` names the message: the same key again returns the first row and sends nothing
    new. A test-mode message is never given to a provider (status ``not_sent_test_mode``).
    ``secret`` is the part of ``text`` (a one-time code) that a live message must not keep
    in the clear: the stored text shows it masked, the full text is kept sealed until sent.
    """
    if not key:
        raise ValueError("an SMS needs a key naming it")
    phone = phone_normalise(phone)
    shown, sealed = text, ""
    if livemode and secret:
        shown, sealed = text.replace(secret, CODE_MASK), seal(text)
    with transaction.atomic():
        message, created = SmsMessage.objects.get_or_create(
            key=key,
            defaults={
                "phone": phone,
                "text": shown,
                "sealed_text": sealed,
                "livemode": livemode,
                "status": (
                    SmsMessage.Status.QUEUED if livemode else SmsMessage.Status.NOT_SENT_TEST_MODE
                ),
                "created_at": now,
            },
        )
        if created and livemode:
            # robust: a broker that is down must not fail the caller's committed work; the
            # sweep (sms_outbox_requeue) finds the queued row later.
            transaction.on_commit(partial(_send_enqueue, message.pk), robust=True)
    return message


def _send_enqueue(message_id: int) -> None:
    from django_q.tasks import async_task

    async_task(SEND_TASK, message_id, task_name=f"sms:{message_id}")


def sms_deliver(*, message_id: int, now: datetime) -> SmsMessage:
    """Hand one queued live message to the provider: claim it (committed), call the provider
    outside any transaction, record the outcome. Safe to run twice and at the same time: a
    message already sent, failed, test-mode or claimed by another worker is returned as is.

    A provider outage puts the message back to queued and raises ``SmsProviderUnavailable``
    (so the task runner tries again later); after ``SMS_MAX_ATTEMPTS`` it is failed.
    """
    with transaction.atomic():
        message = (
            SmsMessage.objects.select_for_update(skip_locked=True).filter(pk=message_id).first()
        )
        if message is None:  # another worker is claiming it right now, or it does not exist
            return SmsMessage.objects.get(pk=message_id)
        if not _claimable(message, now):
            return message
        message.status = SmsMessage.Status.SENDING
        message.claimed_at = now
        message.attempts += 1
        message.save(update_fields=["status", "claimed_at", "attempts"])

    retry_error: SmsProviderUnavailable | None = None
    try:
        text = unseal(message.sealed_text) if message.sealed_text else message.text
        reference = sms_gateway().send(phone=message.phone, text=text, key=message.key)
    except (SmsRejected, UnsealError) as exc:
        logger.warning("SMS %s not sent: %s", message.key, _error_text(exc))
        outcome = {
            "status": SmsMessage.Status.FAILED,
            "sealed_text": "",
            "error": _error_text(exc),
        }
    except Exception as exc:
        if not isinstance(exc, SmsProviderUnavailable):
            logger.exception("SMS %s: the gateway failed unexpectedly", message.key)
            exc = SmsProviderUnavailable(detail=f"{type(exc).__name__}: {exc}")
        else:
            logger.warning("SMS %s: provider unavailable: %s", message.key, exc.extra)
        gave_up = message.attempts >= SMS_MAX_ATTEMPTS
        outcome = {
            "status": SmsMessage.Status.FAILED if gave_up else SmsMessage.Status.QUEUED,
            "error": _error_text(exc),
        }
        if gave_up:
            outcome["sealed_text"] = ""
        retry_error = None if gave_up else exc
    else:
        outcome = {
            "status": SmsMessage.Status.SENT,
            "sent_at": now,
            "provider_reference": reference[:100],
            "sealed_text": "",
            "error": "",
        }
    # Only this claim's result is written: a worker that took over a stale claim wins.
    SmsMessage.objects.filter(
        pk=message.pk, status=SmsMessage.Status.SENDING, attempts=message.attempts
    ).update(**outcome)
    message.refresh_from_db()
    if retry_error is not None:
        raise retry_error
    return message


def sms_outbox_requeue(*, now: datetime, limit: int = 100) -> int:
    """Enqueue again the live messages whose task was lost: queued for a while, or claimed by
    a worker that never came back. Returns how many were enqueued; running it twice only
    enqueues tasks that find nothing to do."""
    lost = Q(status=SmsMessage.Status.QUEUED, created_at__lte=now - SMS_QUEUED_GRACE) | Q(
        status=SmsMessage.Status.SENDING, claimed_at__lte=now - SMS_CLAIM_STALE_AFTER
    )
    stale = list(
        SmsMessage.objects.filter(lost, livemode=True)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    for message_id in stale:
        _send_enqueue(message_id)
    return len(stale)


def _claimable(message: SmsMessage, now: datetime) -> bool:
    if not message.livemode:
        return False
    if message.status == SmsMessage.Status.QUEUED:
        return True
    return (
        message.status == SmsMessage.Status.SENDING
        and message.claimed_at is not None
        and message.claimed_at <= now - SMS_CLAIM_STALE_AFTER
    )


def _error_text(exc: Exception) -> str:
    detail = getattr(exc, "extra", {}).get("detail") or str(exc)
    return f"{getattr(exc, 'code', type(exc).__name__)}: {detail}"[:300]


# --- phone checks ---------------------------------------------------------------------


def phone_check_start(
    *,
    phone: str,
    livemode: bool,
    purpose: str,
    subject: str,
    language: str,
    now: datetime,
    ip_address: str | None = None,
) -> PhoneCheck:
    """Send a fresh 6-digit code to ``phone`` (any usual spelling; stored as E.164) and return
    the check that will verify it. The code is valid ``PHONE_CODE_TTL_MINUTES``; the SMS is
    written in ``language`` (the site's default if it is not one we speak). ``ip_address`` is
    where the request came from (None when not from a browser); it is kept on the check.

    Raises ``InvalidPhone``, ``TooManyChecks`` when the number received too many codes in the
    last hour, or ``TooManyChecksFromAddress`` when ``ip_address`` started
    ``PHONE_CHECKS_PER_IP_PER_HOUR`` checks in the last hour (whatever the numbers).
    """
    phone = phone_normalise(phone)
    language = _supported_language(language)
    public_id = new_phone_check_id()
    code = _code_new()
    with transaction.atomic():
        recent = PhoneCheck.objects.filter(
            phone=phone, livemode=livemode, created_at__gt=now - timedelta(hours=1)
        ).count()
        if recent >= MAX_CHECKS_PER_PHONE_PER_HOUR:
            raise TooManyChecks()
        if ip_address and _checks_from_address(ip_address, now) >= (
            settings.PHONE_CHECKS_PER_IP_PER_HOUR
        ):
            logger.warning(
                "phone checks: address %s refused after %d checks in an hour",
                ip_address,
                settings.PHONE_CHECKS_PER_IP_PER_HOUR,
            )
            raise TooManyChecksFromAddress()
        check = PhoneCheck.objects.create(
            public_id=public_id,
            phone=phone,
            livemode=livemode,
            purpose=purpose,
            subject=subject,
            language=language,
            ip_address=ip_address or None,
            code_hash=_code_hash(public_id=public_id, code=code),
            test_code="" if livemode else code,
            created_at=now,
            expires_at=now + _code_ttl(),
            sends=1,
            last_sent_at=now,
        )
        _code_send(check=check, code=code, now=now)
    return check


def phone_check_resend(*, check_id: str, now: datetime) -> PhoneCheck:
    """Send a new code for a check: the old code stops working, the wrong attempts already
    made still count, and the new code is valid ``PHONE_CODE_TTL_MINUTES`` from now.

    Raises ``ResendTooSoon`` within ``PHONE_CODE_RESEND_SECONDS`` of the last send,
    ``TooManySends`` after ``MAX_SENDS_PER_CHECK`` sends, ``TooManyAttempts`` for a locked
    check and ``AlreadyVerified`` for a verified one.
    """
    with transaction.atomic():
        check = _check_locked(check_id)
        if check.verified_at is not None:
            raise AlreadyVerified()
        if check.locked_at is not None:
            raise TooManyAttempts()
        if check.sends >= MAX_SENDS_PER_CHECK:
            raise TooManySends()
        next_allowed_at = check.last_sent_at + timedelta(seconds=settings.PHONE_CODE_RESEND_SECONDS)
        if now < next_allowed_at:
            raise ResendTooSoon(
                retry_after=max(1, math.ceil((next_allowed_at - now).total_seconds()))
            )
        code = _code_new()
        check.code_hash = _code_hash(public_id=check.public_id, code=code)
        check.test_code = "" if check.livemode else code
        check.expires_at = now + _code_ttl()
        check.sends += 1
        check.last_sent_at = now
        check.save(update_fields=["code_hash", "test_code", "expires_at", "sends", "last_sent_at"])
        _code_send(check=check, code=code, now=now)
    return check


def phone_check_verify(
    *, check_id: str, code: str, now: datetime, ip_address: str | None = None
) -> PhoneCheck:
    """Check the code the customer typed; returns the verified check.

    Raises ``WrongCode`` (with the attempts left), ``TooManyAttempts`` once
    ``PHONE_CODE_MAX_ATTEMPTS`` wrong codes were given (the last wrong one included: from then
    on even the right code is refused), ``CodeExpired`` past the code's lifetime. Verifying
    a verified check again with its code returns it. The row is locked, so wrong guesses sent
    at the same moment are all counted. ``ip_address`` (where this code came from) only goes
    to the warning logged when the check gets locked.
    """
    typed = "".join(char for char in (code or "") if not char.isspace() and char != "-")
    with transaction.atomic():
        check = _check_locked(check_id)
        # Raised after the block, so the attempt just counted is committed, not rolled back.
        refusal = _code_judge(check=check, typed=typed, now=now, ip_address=ip_address)
    if refusal is not None:
        raise refusal
    return check


def phone_check_get(*, check_id: str) -> PhoneCheck:
    """The check with this public id (given with or without its ``phonecheck_`` prefix)."""
    try:
        return PhoneCheck.objects.get(public_id=with_prefix(PHONE_CHECK_ID_PREFIX, check_id))
    except PhoneCheck.DoesNotExist as exc:
        raise PhoneCheckNotFound(check_id) from exc


def _code_judge(
    *, check: PhoneCheck, typed: str, now: datetime, ip_address: str | None = None
) -> Exception | None:
    """Decide on one typed code for a locked row, saving what changes; the refusal to raise,
    or None when the check is verified."""
    matches = _code_matches(check=check, typed=typed)
    if check.verified_at is not None:
        return None if matches else AlreadyVerified()
    max_attempts = settings.PHONE_CODE_MAX_ATTEMPTS
    if check.locked_at is not None or check.attempts >= max_attempts:
        return TooManyAttempts()
    if now >= check.expires_at:
        return CodeExpired()
    if matches:
        check.verified_at = now
        check.save(update_fields=["verified_at"])
        return None
    check.attempts += 1
    if check.attempts >= max_attempts:
        check.locked_at = now
        check.save(update_fields=["attempts", "locked_at"])
        # A likely brute force: operators (and alerting) must see which check, which number
        # (masked) and from where.
        logger.warning(
            "phone check %s locked after %d wrong codes: phone %s, started from %s, "
            "last code from %s",
            check.public_id,
            check.attempts,
            phone_mask(check.phone),
            check.ip_address or "unknown address",
            ip_address or "unknown address",
        )
        return TooManyAttempts()
    check.save(update_fields=["attempts"])
    return WrongCode(attempts_left=max_attempts - check.attempts)


def _checks_from_address(ip_address: str, now: datetime) -> int:
    return PhoneCheck.objects.filter(
        ip_address=ip_address, created_at__gt=now - timedelta(hours=1)
    ).count()


def _check_locked(check_id: str) -> PhoneCheck:
    try:
        return PhoneCheck.objects.select_for_update().get(
            public_id=with_prefix(PHONE_CHECK_ID_PREFIX, check_id)
        )
    except PhoneCheck.DoesNotExist as exc:
        raise PhoneCheckNotFound(check_id) from exc


def one_time_code_new() -> str:
    """A fresh 6-digit one-time code (for other apps' sign-ins: the portal)."""
    return _code_new()


def one_time_code_hash(scope: str, code: str) -> str:
    """The keyed hash of ``code`` for ``scope`` (the public id of the row that keeps it):
    what to store instead of the code, and to compare a typed code with."""
    return _code_hash(public_id=scope, code=code)


def _code_new() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def _code_hash(*, public_id: str, code: str) -> str:
    # Keyed by SECRET_KEY and the check: a copy of the table alone does not give the codes
    # away, and a hash is worth nothing for another check.
    return salted_hmac(
        f"apps.verification.phone_code:{public_id}", code, algorithm="sha256"
    ).hexdigest()


def _code_matches(*, check: PhoneCheck, typed: str) -> bool:
    if len(typed) != CODE_DIGITS or not typed.isdigit():
        return False
    return hmac.compare_digest(_code_hash(public_id=check.public_id, code=typed), check.code_hash)


def _code_ttl() -> timedelta:
    return timedelta(minutes=settings.PHONE_CODE_TTL_MINUTES)


def _code_send(*, check: PhoneCheck, code: str, now: datetime) -> SmsMessage:
    with translation.override(check.language):
        text = gettext(
            "Tranche: your code is %(code)s. It expires in %(minutes)d minutes. Never share it."
        ) % {"code": code, "minutes": settings.PHONE_CODE_TTL_MINUTES}
    return sms_send(
        phone=check.phone,
        text=text,
        livemode=check.livemode,
        key=f"phonecheck:{check.public_id}:send:{check.sends}",
        now=now,
        secret=code,
    )


def _supported_language(language: str) -> str:
    try:
        return translation.get_supported_language_variant(language or "")
    except LookupError:
        return settings.LANGUAGE_CODE
