"""Errors of bank-data checks: stable codes, messages safe to show a customer."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from apps.common.errors import DomainError, NotFound


class BankDataError(DomainError):
    code = "bank_data_error"
    http_status = 502


class BankDataUnavailable(BankDataError):
    """The aggregator did not answer in time, or failed (timeout, 5xx). The journey offers to
    try again (a new check) or to pay in full."""

    code = "bank_data_unavailable"
    http_status = 503
    default_message = _(
        "We cannot reach your bank right now. Please try again in a moment, or pay in full."
    )


class BankConnectionUnknown(BankDataError):
    """The aggregator knows no such connection (never made, or expired on its side)."""

    code = "bank_connection_unknown"
    http_status = 404
    default_message = _("This bank connection has expired. Please connect your bank again.")


class BankCheckNotFound(NotFound):
    def __init__(self, check_id: str):
        super().__init__("bank_check", check_id)
        self.message = str(_("This bank connection request does not exist."))
        self.args = (self.message,)


class BankConnectionPending(DomainError):
    """The customer has not finished connecting their bank yet."""

    code = "bank_connection_pending"
    http_status = 409
    default_message = _("Your bank has not confirmed the connection yet.")
