"""Data exports: a merchant's payments, instalments, refunds or ledger lines for a period,
as CSV and XLSX files built in the background (dashboard "Exports" and ``/v1/data-exports``).

Three layers, top to bottom:

- the service: ``export_request`` (validate, create the row, queue the build after commit),
  ``export_retry``, and ``export_build`` (the task's body: claim, stream, write, finish);
- the reads: ``export_get``, ``exports_recent``, ``exports_page`` and one query per kind,
  each a single streamed SELECT (joins and subqueries, never a query per row);
- pure formatting: ``safe_cell`` (CSV/XLSX injection), ``plan_label`` and the per-kind
  row builders, which turn a query's tuple into typed cells (``Column.type``), made final
  once by ``Layout.prepare`` and rendered by the CSV and XLSX writers.

The column specs (``COLUMNS``) are module-level, one per kind. Headers are stable English
snake_case names (files are read by programs as much as by people). Money goes out twice:
euros as text with two decimals ("123.45", computed from integer cents) and an integer
``..._cents`` column; in XLSX the euros are a number cell formatted ``0.00``.
"""

from apps.payments.exports.base import (
    API_TYPES,
    BUILD_TASK,
    CONTENT_TYPES,
    DEFAULT_PERIOD,
    FORMATS,
    MAX_CUSTOM_FIELD_LENGTH,
    MAX_CUSTOM_FIELDS,
    MAX_RANGE_DAYS,
    ExportInvalid,
    ExportNotReady,
    ExportRefused,
    ExportTooLarge,
)
from apps.payments.exports.columns import columns_for, plan_label
from apps.payments.exports.queries import (
    export_get,
    exports_page,
    exports_recent,
    payout_for_export,
    payout_window,
)
from apps.payments.exports.service import (
    download_name,
    export_build,
    export_open,
    export_request,
    export_retry,
    exports_requeue_stale,
    file_name,
    parse_custom_fields,
    period_of,
)

__all__ = [
    "API_TYPES",
    "BUILD_TASK",
    "CONTENT_TYPES",
    "DEFAULT_PERIOD",
    "FORMATS",
    "MAX_CUSTOM_FIELDS",
    "MAX_CUSTOM_FIELD_LENGTH",
    "MAX_RANGE_DAYS",
    "ExportInvalid",
    "ExportNotReady",
    "ExportRefused",
    "ExportTooLarge",
    "columns_for",
    "download_name",
    "export_build",
    "export_get",
    "export_open",
    "export_request",
    "export_retry",
    "exports_page",
    "exports_recent",
    "exports_requeue_stale",
    "file_name",
    "parse_custom_fields",
    "payout_for_export",
    "payout_window",
    "period_of",
    "plan_label",
]
