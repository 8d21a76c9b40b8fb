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


class TooManyChecksFromAddress(DomainError):
    """Too many phone checks started from one network address lately (someone scripting
    the checkout to send codes to many numbers)."""

    code = "phone_too_many_checks_from_address"
    http_status = 429
    default_message = _(
        "Too many verification codes were requested from your connection. "
        "Please try again in an hour."
    )


# --- identity-document checks ----------------------------------------------------------


class UploadRefused(DomainError):
    """A photo we will not take: wrong type, too big, too small, damaged or hostile.
    ``field`` names the form field it came in (``document`` or ``selfie``)."""

    code = "upload_refused"
    http_status = 400
    default_message = _("This file cannot be used. Please send a JPEG or PNG photo.")

    def __init__(self, message: str | None = None, *, field: str = ""):
        super().__init__(message, field=field)
        self.field = field


class IdentityCheckNotFound(NotFound):
    def __init__(self, check_id: str):
        super().__init__("identity_check", check_id)
        self.message = str(_("This identity check does not exist."))
        self.args = (self.message,)


class IdentityCheckDecided(DomainError):
    """The check is approved or rejected: nothing can be sent for it any more."""

    code = "identity_check_decided"
    http_status = 409
    default_message = _("This identity check is already decided.")


class IdentityCheckInProgress(DomainError):
    """Photos were sent and the provider has not answered yet."""

    code = "identity_check_in_progress"
    http_status = 409
    default_message = _("Your photos are being checked. Please wait for the answer.")


class TooManyIdentitySubmissions(DomainError):
    code = "identity_too_many_submissions"
    http_status = 429
    default_message = _("Too many attempts: no more photos can be sent for this check.")


class IdentityFileGone(DomainError):
    """The photo was deleted at the end of the retention period, or never sent."""

    code = "identity_file_gone"
    http_status = 404
    default_message = _("This photo is not available (never sent, or deleted).")


class IdentityProviderUnavailable(DomainError):
    """The identity provider did not answer in time, or failed: sending again may work."""

    code = "identity_provider_unavailable"
    http_status = 503
    default_message = _(
        "The identity check service is not answering right now. Please try again in a moment."
    )


class IdentityWebhookRefused(DomainError):
    """A call on the provider's webhook that is not signed by the provider, or unreadable."""

    code = "identity_webhook_refused"
    http_status = 400
    default_message = "The signature or the body of this notification is not valid."


class IdentityResultUnknown(DomainError):
    """A provider result for a submission we do not know (or one replaced by newer photos)."""

    code = "identity_result_unknown"
    http_status = 404
    default_message = "No identity check waits for this provider reference."
