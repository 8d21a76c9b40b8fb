"""Signing in to the portal without a password: a 6-digit code sent to the customer's email
or verified mobile number, and a fresh signed link emailed when an old one has expired.

A code request always writes a ``SignInCode`` row, customer or not, and answers the same:
nobody learns from the portal who is a customer. Only a keyed hash of the code is stored
(the plain code too in test mode, where the page shows it). Wrong codes are counted on the
locked row and lock it after ``PORTAL_CODE_MAX_ATTEMPTS``; a destination gets at most
``PORTAL_CODES_PER_DESTINATION_PER_HOUR`` codes an hour and an address may ask for at most
``PORTAL_CODES_PER_IP_PER_HOUR``.

Signing up by phone (``signup.py``) uses the same rows (``purpose`` SIGN_UP), limits and
checks through ``code_start``, ``code_resend`` and ``code_verify``; so does confirming the
email a signed-in customer types in their profile (``purpose`` EMAIL, the row names the
customer who asked). An email another customer of the mode already has gets no code (the
row holds no usable code, the page answers the same) but, at most once an hour, a notice
telling its owner to sign in with it.
"""

from __future__ import annotations

import hmac
import logging
import math
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from apps.common.emails import email_queue
from apps.common.errors import DomainError
from apps.common.models import OutgoingEmail
from apps.payments import links
from apps.payments.emails import email_language
from apps.payments.models import Customer, Payment
from apps.schedules.models import SignInCode
from apps.verification.errors import InvalidPhone
from apps.verification.phones import phone_mask, phone_normalise
from apps.verification.services import (
    CODE_DIGITS,
    one_time_code_hash,
    one_time_code_new,
    sms_send,
)

logger = logging.getLogger(__name__)

# A new code for the same sign-in, at the earliest this long after the last one.
RESEND_AFTER = timedelta(seconds=30)
# The same code typed again this soon after it signed in (a double submit) signs in again.
DOUBLE_SUBMIT_WINDOW = timedelta(minutes=1)
MAX_IDENTIFIER_LENGTH = 254


# --- errors ---------------------------------------------------------------------------


class InvalidIdentifier(DomainError):
    code = "sign_in_identifier_invalid"
    http_status = 400
    default_message = _("Enter your email or your mobile number.")


class TooManyCodes(DomainError):
    """This email or number received the most codes an hour allows."""

    code = "sign_in_too_many_codes"
    http_status = 429
    default_message = _(
        "Too many codes were sent to this email or number. Please try again in an hour."
    )


class TooManyCodesFromAddress(DomainError):
    code = "sign_in_too_many_codes_from_address"
    http_status = 429
    default_message = _(
        "Too many codes were asked for from your connection. Please try again in an hour."
    )


class SignInNotFound(DomainError):
    code = "sign_in_not_found"
    http_status = 404
    default_message = _("This sign-in has ended. Please ask for a new code.")


class SignInCodeWrong(DomainError):
    """A wrong code; ``attempts_left`` more may be tried."""

    code = "sign_in_code_wrong"
    http_status = 422

    def __init__(self, *, attempts_left: int):
        super().__init__(
            ngettext(
                "This code is not right. You have %(count)d attempt left.",
                "This code is not right. You have %(count)d attempts left.",
                attempts_left,
            )
            % {"count": attempts_left},
            attempts_left=attempts_left,
        )
        self.attempts_left = attempts_left


class SignInLocked(DomainError):
    code = "sign_in_code_locked"
    http_status = 429
    default_message = _(
        "Too many wrong codes: this code can no longer be used. Please start again."
    )


class SignInCodeExpired(DomainError):
    code = "sign_in_code_expired"
    http_status = 410
    default_message = _("This code has expired. Please ask for a new one.")


class SignInCodeUsed(DomainError):
    code = "sign_in_code_used"
    http_status = 409
    default_message = _("This code was already used. Please ask for a new one.")


class SignInResendTooSoon(DomainError):
    code = "sign_in_resend_too_soon"
    http_status = 429

    def __init__(self, *, retry_after: int):
        super().__init__(
            ngettext(
                "Please wait %(count)d second before asking for a new code.",
                "Please wait %(count)d seconds before asking for a new code.",
                retry_after,
            )
            % {"count": retry_after},
            retry_after=retry_after,
        )
        self.retry_after = retry_after


# --- pure helpers ---------------------------------------------------------------------


def identifier_parse(identifier: str) -> tuple[str, str]:
    """(channel, destination) of what the customer typed: an email (lower-cased) or a
    mobile number (E.164, French by default). Raises ``InvalidIdentifier``."""
    text = (identifier or "").strip()
    if not text or len(text) > MAX_IDENTIFIER_LENGTH:
        raise InvalidIdentifier()
    if "@" in text:
        local, _at, domain = text.rpartition("@")
        if not local or "." not in domain or any(char.isspace() for char in text):
            raise InvalidIdentifier()
        return SignInCode.Channel.EMAIL, text.lower()
    try:
        return SignInCode.Channel.SMS, phone_normalise(text)
    except InvalidPhone:
        raise InvalidIdentifier() from None


def destination_mask(channel: str, destination: str) -> str:
    """What the logs and pages may show of a destination: ``c•••@example.com`` (the length
    of the name hidden too), ``+33 6 •• •• •• 78``."""
    if channel == SignInCode.Channel.SMS:
        return phone_mask(destination)
    local, _at, domain = destination.rpartition("@")
    return f"{local[:1]}•••@{domain}"


def _typed(code: str) -> str:
    return "".join(char for char in (code or "") if not char.isspace() and char != "-")


# --- sign-in by code ------------------------------------------------------------------


def sign_in_start(
    *,
    identifier: str,
    livemode: bool,
    language: str,
    now: datetime,
    ip_address: str | None = None,
) -> SignInCode:
    """Ask for a sign-in code for ``identifier`` (an email or a mobile number) in
    ``livemode``: the row is always written; the code goes (by email or SMS, in
    ``language``) only to a customer found by that email, or the one customer who verified
    that number. Raises ``InvalidIdentifier``, ``TooManyCodes`` or
    ``TooManyCodesFromAddress``."""
    channel, destination = identifier_parse(identifier)
    return code_start(
        channel=channel,
        destination=destination,
        livemode=livemode,
        language=language,
        now=now,
        ip_address=ip_address,
    )


def sign_in_resend(
    *, sign_in_id: str, language: str, now: datetime, ip_address: str | None = None
) -> SignInCode:
    """A new code to the same destination, as a new sign-in (the old code stops counting
    for the page). Raises ``SignInResendTooSoon`` within ``RESEND_AFTER`` of the last one,
    and the limits of ``sign_in_start``."""
    previous = sign_in_get(sign_in_id=sign_in_id)
    return code_resend(previous=previous, language=language, now=now, ip_address=ip_address)


def code_resend(
    *, previous: SignInCode, language: str, now: datetime, ip_address: str | None
) -> SignInCode:
    """A new code row like ``previous`` (same destination, mode and purpose). Raises
    ``SignInResendTooSoon`` within ``RESEND_AFTER`` of it, and the limits of
    ``code_start``."""
    next_allowed_at = previous.created_at + RESEND_AFTER
    if now < next_allowed_at:
        raise SignInResendTooSoon(
            retry_after=max(1, math.ceil((next_allowed_at - now).total_seconds()))
        )
    return code_start(
        channel=previous.channel,
        destination=previous.destination,
        livemode=previous.livemode,
        language=language,
        now=now,
        ip_address=ip_address,
        purpose=previous.purpose,
        requester=previous.customer if previous.purpose == SignInCode.Purpose.EMAIL else None,
    )


def code_start(
    *,
    channel: str,
    destination: str,
    livemode: bool,
    language: str,
    now: datetime,
    ip_address: str | None,
    purpose: str = SignInCode.Purpose.SIGN_IN,
    requester: Customer | None = None,
) -> SignInCode:
    """Write a code row for ``destination`` under the limits (shared by every purpose: a
    number gets at most so many codes an hour, whether to sign in or to sign up) and send
    the code: a sign-in code only to a known customer, a sign-up code to any number, an
    email check's code (``requester`` is the customer confirming the email) only to an
    email no other customer of the mode has (see ``_email_check_send``)."""
    if (purpose == SignInCode.Purpose.EMAIL) != (requester is not None):
        raise ValueError("an email check, and only it, names the customer who asks")
    language = email_language(language)
    code = one_time_code_new()
    hour_ago = now - timedelta(hours=1)
    with transaction.atomic():
        # Requests for one destination (and from one address) take turns: the limits hold
        # exactly under concurrent requests. Always destination first, then address.
        advisory_lock(f"signin:destination:{destination}")
        if ip_address:
            advisory_lock(f"signin:ip:{ip_address}")
        sent = SignInCode.objects.filter(destination=destination, created_at__gt=hour_ago)
        if sent.count() >= settings.PORTAL_CODES_PER_DESTINATION_PER_HOUR:
            raise TooManyCodes()
        if ip_address:
            asked = SignInCode.objects.filter(ip_address=ip_address, created_at__gt=hour_ago)
            if asked.count() >= settings.PORTAL_CODES_PER_IP_PER_HOUR:
                logger.warning(
                    "portal sign-in: address %s refused after %d code requests in an hour",
                    ip_address,
                    settings.PORTAL_CODES_PER_IP_PER_HOUR,
                )
                raise TooManyCodesFromAddress()
        if requester is not None:
            customer = requester
        else:
            customer = customer_find(channel=channel, destination=destination, livemode=livemode)
        row = SignInCode(
            customer=customer,
            livemode=livemode,
            purpose=purpose,
            channel=channel,
            destination=destination,
            test_code="" if livemode else code,
            ip_address=ip_address or None,
            created_at=now,
            expires_at=now + timedelta(minutes=settings.PORTAL_CODE_TTL_MINUTES),
        )
        if requester is not None and email_taken(
            email=destination, livemode=livemode, requester=requester
        ):
            # No code for an email another customer has: the row (counted by the limits)
            # holds none that could match, and the page says the same as for a free email.
            row.code_hash = ""
            # Its owner is told at most once an hour (the destination's lock is held).
            tried = SignInCode.objects.filter(
                purpose=SignInCode.Purpose.EMAIL,
                destination=destination,
                livemode=livemode,
                code_hash="",
                created_at__gt=hour_ago,
            ).values_list("public_id", flat=True)
            notified = OutgoingEmail.objects.filter(
                key__in=[_email_taken_key(public_id) for public_id in tried],
                created_at__gt=hour_ago,
            ).exists()
            row.save(force_insert=True)
            if not notified:
                _email_taken_notice(row=row, language=language, now=now)
            return row
        row.code_hash = one_time_code_hash(row.public_id, code)
        row.save(force_insert=True)
        if requester is not None:
            _email_check_send(row=row, code=code, language=language, now=now)
        elif customer is not None or purpose == SignInCode.Purpose.SIGN_UP:
            _code_send(row=row, customer=customer, code=code, language=language, now=now)
    return row


def email_taken(*, email: str, livemode: bool, requester: Customer) -> bool:
    """Whether a customer of ``livemode`` other than ``requester`` has ``email``."""
    return (
        Customer.objects.filter(livemode=livemode, email__iexact=email)
        .exclude(pk=requester.pk)
        .exists()
    )


def advisory_lock(name: str) -> None:
    """Take a transaction-scoped lock named ``name`` (released at commit or rollback)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [name])


def customer_find(*, channel: str, destination: str, livemode: bool) -> Customer | None:
    """The one customer this destination names in ``livemode``, or None (nobody, several
    people sharing a phone, or an erased profile)."""
    customers = Customer.objects.filter(livemode=livemode, erased_at__isnull=True)
    if channel == SignInCode.Channel.EMAIL:
        found = list(customers.filter(email__iexact=destination)[:2])
    else:
        found = list(customers.filter(phone=destination, phone_verified_at__isnull=False)[:2])
    return found[0] if len(found) == 1 else None


def _code_send(
    *, row: SignInCode, customer: Customer | None, code: str, language: str, now: datetime
) -> None:
    minutes = settings.PORTAL_CODE_TTL_MINUTES
    if row.channel == SignInCode.Channel.SMS:
        with translation.override(language):
            text = gettext(
                "Tranche: your code is %(code)s. It expires in %(minutes)d minutes. Never share it."
            ) % {"code": code, "minutes": minutes}
        sms_send(
            phone=row.destination,
            text=text,
            livemode=row.livemode,
            key=f"signin:{row.public_id}",
            now=now,
            secret=code,
        )
        return
    if customer is None:  # codes by email only ever go to a known customer
        raise ValueError("a sign-in code by email needs the customer it goes to")
    email_queue(
        key=f"signin:{row.public_id}",
        to=customer.email,
        subject=_("Your Tranche sign-in code"),
        template="emails/portal/sign_in_code",
        context={
            "code": code,
            "minutes": minutes,
            "customer_name": " ".join(
                part for part in (customer.first_name, customer.last_name) if part
            ),
            "livemode": row.livemode,
        },
        language=language,
        now=now,
    )


def _email_check_send(*, row: SignInCode, code: str, language: str, now: datetime) -> None:
    email_queue(
        key=f"email-check:{row.public_id}",
        to=row.destination,
        subject=_("Your code to confirm your email on Tranche"),
        template="emails/portal/email_check_code",
        context={
            "code": code,
            "minutes": settings.PORTAL_CODE_TTL_MINUTES,
            "livemode": row.livemode,
        },
        language=language,
        now=now,
    )


def _email_taken_key(public_id: str) -> str:
    return f"email-taken:{public_id}"


def _email_taken_notice(*, row: SignInCode, language: str, now: datetime) -> None:
    """Tell the owner of an email someone tried to add to their account how to sign in
    (the owner's own language is unknown here: the asker's is used)."""
    sign_in_url = reverse("portal:sign-in") + ("" if row.livemode else "?mode=test")
    email_queue(
        key=_email_taken_key(row.public_id),
        to=row.destination,
        subject=_("Someone tried to add your email to a Tranche account"),
        template="emails/portal/email_taken",
        context={
            "sign_in_url": f"{settings.PUBLIC_BASE_URL}{sign_in_url}",
            "livemode": row.livemode,
        },
        language=language,
        now=now,
    )


def sign_in_get(*, sign_in_id: str, purpose: str = SignInCode.Purpose.SIGN_IN) -> SignInCode:
    """The sign-in this browser started (its page shows where the code went); a sign-up's
    code row with ``purpose`` SIGN_UP. Raises ``SignInNotFound``."""
    rows = SignInCode.objects.filter(public_id=sign_in_id, purpose=purpose)
    row = rows.first() if sign_in_id else None
    if row is None:
        raise SignInNotFound()
    return row


def sign_in_verify(
    *, sign_in_id: str, code: str, now: datetime, ip_address: str | None = None
) -> Customer:
    """The customer a typed code signs in. Raises ``SignInCodeWrong`` (with the attempts
    left), ``SignInLocked`` after ``PORTAL_CODE_MAX_ATTEMPTS`` wrong codes (the right one is
    refused too from then on), ``SignInCodeExpired``, ``SignInCodeUsed`` or
    ``SignInNotFound``. A sign-in with no customer behind it refuses every code as wrong.
    The row is locked, so wrong codes sent at the same moment are all counted; the count is
    committed even when the code is refused."""
    row = code_verify(sign_in_id=sign_in_id, code=code, now=now, ip_address=ip_address)
    return row.customer


def code_verify(
    *,
    sign_in_id: str,
    code: str,
    now: datetime,
    ip_address: str | None = None,
    purpose: str = SignInCode.Purpose.SIGN_IN,
) -> SignInCode:
    """The code row a typed code verifies (see ``sign_in_verify`` for the refusals). A
    sign-up code is judged whoever the number belongs to."""
    typed = _typed(code)
    with transaction.atomic():
        row = (
            SignInCode.objects.select_for_update(of=("self",))
            .select_related("customer")
            .filter(public_id=sign_in_id, purpose=purpose)
            .first()
        )
        if row is None:
            raise SignInNotFound()
        # Raised after the block, so the attempt just counted is committed.
        refusal = _code_judge(row=row, typed=typed, now=now, ip_address=ip_address)
    if refusal is not None:
        raise refusal
    return row


def _code_matches(row: SignInCode, typed: str) -> bool:
    if len(typed) != CODE_DIGITS or not typed.isdigit():
        return False
    return hmac.compare_digest(one_time_code_hash(row.public_id, typed), row.code_hash)


def _code_judge(
    *, row: SignInCode, typed: str, now: datetime, ip_address: str | None
) -> DomainError | None:
    """Decide on one typed code for a locked row, saving what changes; the refusal to
    raise, or None when the code signs the customer in."""
    customer = row.customer
    known = row.purpose == SignInCode.Purpose.SIGN_UP or (
        customer is not None and customer.erased_at is None
    )
    matches = known and _code_matches(row, typed)
    if row.verified_at is not None:
        if matches and now - row.verified_at <= DOUBLE_SUBMIT_WINDOW:
            return None
        return SignInCodeUsed()
    max_attempts = settings.PORTAL_CODE_MAX_ATTEMPTS
    if row.locked_at is not None or row.attempts >= max_attempts:
        return SignInLocked()
    if now >= row.expires_at:
        return SignInCodeExpired()
    if matches:
        row.verified_at = now
        row.save(update_fields=["verified_at"])
        return None
    row.attempts += 1
    if row.attempts >= max_attempts:
        row.locked_at = now
        row.save(update_fields=["attempts", "locked_at"])
        # A likely brute force: operators (and alerting) must see which sign-in, which
        # destination (masked) and from where.
        logger.warning(
            "portal sign-in %s locked after %d wrong codes: %s %s, asked from %s, "
            "last code from %s",
            row.public_id,
            row.attempts,
            row.channel,
            destination_mask(row.channel, row.destination),
            row.ip_address or "unknown address",
            ip_address or "unknown address",
        )
        return SignInLocked()
    row.save(update_fields=["attempts"])
    return SignInCodeWrong(attempts_left=max_attempts - row.attempts)


# --- signed links ---------------------------------------------------------------------


def sign_in_link_open(*, token: str) -> tuple[Customer, str, str]:
    """The customer a portal link signs in, with the plan and the section it opens.
    Raises ``links.LinkExpired`` (a new link may be emailed) or ``links.LinkInvalid``
    (tampered, or naming no plan we can open any more)."""
    payment_id, section = links.portal_link_read(token)
    return _link_customer(payment_id), payment_id, section


def sign_in_legacy_link_open(*, payment_id: str, token: str) -> Customer:
    """The customer an old ``/plan/<id>?t=`` link signs in (see ``sign_in_link_open``)."""
    links.legacy_plan_link_read(payment_id, token)
    return _link_customer(payment_id)


def _link_customer(payment_id: str) -> Customer:
    payment = (
        Payment.objects.select_related("customer")
        .filter(public_id=payment_id, accepted_at__isnull=False)
        .first()
    )
    if payment is None or payment.customer.erased_at is not None:
        raise links.LinkInvalid()
    return payment.customer


# --- a new link for an expired one ----------------------------------------------------


def sign_in_link_send(*, payment_id: str, section: str, now: datetime) -> OutgoingEmail | None:
    """Email a fresh portal link to ``section`` of the plan ``payment_id`` (the payment an
    expired link named) to its customer's email on file; at most one a minute. None when
    there is nowhere to send it (the page says the same either way)."""
    payment = (
        Payment.objects.select_related("customer", "merchant")
        .filter(public_id=payment_id, accepted_at__isnull=False)
        .first()
    )
    if payment is None:
        return None
    customer = payment.customer
    if customer.erased_at is not None or not customer.email:
        return None
    return email_queue(
        key=f"portal-link:{payment.public_id}:{section or 'plan'}:{now:%Y%m%dT%H%M}",
        to=customer.email,
        subject=_("Your link to your Tranche payments"),
        template="emails/portal/new_link",
        context={
            "link": links.plan_url(payment.public_id, section=section),
            "merchant_name": payment.merchant.legal_name,
            "payment_id": payment.public_id,
            "customer_name": " ".join(
                part for part in (customer.first_name, customer.last_name) if part
            ),
            "days": settings.PORTAL_LINK_MAX_AGE_DAYS,
            "livemode": payment.livemode,
        },
        language=email_language(payment.locale),
        now=now,
    )
