"""What every part of the exports shares: limits, formats, errors."""

from __future__ import annotations

from datetime import timedelta

from apps.common.errors import DomainError
from apps.ledger.models import AccountKind
from apps.payments.models import DataExport

BUILD_TASK = "apps.payments.tasks.export_build_task"
MAX_RANGE_DAYS = 366
DEFAULT_PERIOD = timedelta(days=30)  # what the API exports without start/end, and the form
PROGRESS_EVERY = 2000  # rows between two progress updates (and the streaming chunk size)
STALE_AFTER = timedelta(minutes=10)  # a running build silent this long is taken over
# A build's own time limit in the task queue (the cluster's is sized for debit runs): a
# year of a large merchant is a million rows, some ten minutes. The broker redelivering it
# meanwhile is harmless: the copy finds the export running and leaves it.
BUILD_TIMEOUT_SECONDS = 30 * 60
STALE_SWEEP_LIMIT = 100
MAX_CUSTOM_FIELDS = 20
MAX_CUSTOM_FIELD_LENGTH = 100
FORMATS = ("csv", "xlsx")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# The API's export types -> what is built. The contract's three, plus the dashboard's kinds.
API_TYPES = {
    "payments": DataExport.Kind.PAYMENTS,
    "accounting": DataExport.Kind.LEDGER,
    "accounting_for_payout": DataExport.Kind.LEDGER,
    "instalments": DataExport.Kind.INSTALMENTS,
    "refunds": DataExport.Kind.REFUNDS,
    "ledger": DataExport.Kind.LEDGER,
}
# The ledger accounts that are the merchant's own (what it is owed, held back, or on its
# way to its bank). Revenue, clearing and receivable accounts are kept per merchant too,
# but they are Tranche's books, not the merchant's.
MERCHANT_ACCOUNT_KINDS = (
    AccountKind.MERCHANT_BALANCE,
    AccountKind.MERCHANT_RESERVE,
    AccountKind.PAYOUTS_IN_TRANSIT,
)
# The kinds whose lines are a payment's (a payment, or a refund of one): they can carry the
# payment's custom data, one ``custom_data.<key>`` column per field asked for.
CUSTOM_FIELD_KINDS = (DataExport.Kind.PAYMENTS, DataExport.Kind.REFUNDS)
# Cells starting with these are read as formulas by spreadsheets (OWASP "CSV injection").
BOM = "\ufeff"
XLSX_MAX_ROWS = 1_048_576  # a sheet's rows, the header's included


class ExportInvalid(DomainError):
    """A malformed request for an export (custom fields, file format); 400."""

    code = "validation_error"
    http_status = 400

    def __init__(self, field: str, message: str, *, error_code: str = "invalid_value"):
        super().__init__(
            message, errors=[{"field": field, "error_code": error_code, "message": message}]
        )
        self.field = field


class ExportRefused(ExportInvalid):
    """A well-formed request for an export that cannot be made as asked (a reversed or too
    long period, a payout missing or with another type). 403, as the API answers a payment
    the merchant cannot create: 400 is kept for malformed requests."""

    code = "export_refused"
    http_status = 403


class ExportTooLarge(DomainError):
    code = "export_too_large"
    default_message = "Too many rows for one spreadsheet: export a shorter period."


class ExportNotReady(DomainError):
    code = "export_not_ready"
    http_status = 409
    default_message = "This export is not complete yet: fetch it again in a moment."
