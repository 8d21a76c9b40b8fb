"""Errors of phone checks and SMS sending: stable codes, messages safe to show a customer."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.common.errors import DomainError, NotFound


class InvalidPhone(DomainError):
    code = "invalid_phone"
    http_status = 400
    default_message = _("This is not a valid mobile phone number.")


class PhoneCheckNotFound(NotFound):
    def __init__(self, check_id: str):
        super().__init__("phone_check", check_id)
        self.message = str(_("This verification code request does not exist."))
        self.args = (self.message,)


class WrongCode(DomainError):
    """A wrong code; the customer may try again ``attempts_left`` times."""

    code = "phone_code_wrong"
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


class TooManyAttempts(DomainError):
    """The check is locked after too many wrong codes: even the right code is refused now."""

    code = "phone_code_too_many_attempts"
    http_status = 429
    default_message = _(
        "Too many wrong codes: this code can no longer be used. Please start again."
    )


class CodeExpired(DomainError):
    code = "phone_code_expired"
    http_status = 410
    default_message = _("This code has expired. Please ask for a new one.")


class AlreadyVerified(DomainError):
    code = "phone_check_already_verified"
    http_status = 409
    default_message = _("This phone number is already verified.")


class ResendTooSoon(DomainError):
    """A new code was asked for too soon after the last one; ``retry_after`` is in seconds."""

    code = "phone_code_resend_too_soon"
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


class TooManySends(DomainError):
    code = "phone_code_too_many_sends"
    http_status = 429
    default_message = _("Too many codes were sent for this request. Please start again later.")


class TooManyChecks(DomainError):
    """Too many checks started for one phone number lately (protects the customer and our
    SMS bill from someone pumping codes to a number)."""

    code = "phone_too_many_checks"
    http_status = 429
    default_message = _(
        "Too many codes were sent to this phone number. Please try again in an hour."
    )


class SmsRejected(DomainError):
    """The SMS provider refused the message for good (bad number, blocked content...)."""

    code = "sms_rejected"
    http_status = 502
    default_message = _("The text message could not be sent to this number.")


class SmsProviderUnavailable(DomainError):
    """The SMS provider did not answer or failed; sending again later may work."""

    code = "sms_provider_unavailable"
    http_status = 503
    default_message = _("Text messages cannot be sent right now. Please try again shortly.")
