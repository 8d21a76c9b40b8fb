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

from __future__ import annotations

import csv
import io
import json
import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.core.files import File
from django.core.files.storage import storages
from django.db import transaction
from django.db.models import OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from apps.common.dates import BUSINESS_TZ, business_date
from apps.common.errors import DomainError, InvalidTransition, NotFound
from apps.common.ids import with_prefix
from apps.common.keyset import rows_after
from apps.common.money import CENTS_PER_UNIT, decimal_to_cents, format_eur
from apps.common.spreadsheets import safe_cell
from apps.ledger.models import AccountKind, Leg, Payout, Posting
from apps.payments.models import DataExport, Instalment, Order, Payment

logger = logging.getLogger(__name__)

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
REFUND_KIND = "refund_issued"  # apps.ledger.recipes.refund_issued
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


# --- pure formatting ------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    header: str
    type: str  # text, int, money (cents), datetime, date


def _money_columns(name: str) -> list[Column]:
    return [Column(name, "money"), Column(f"{name}_cents", "int")]


COLUMNS: dict[str, list[Column]] = {
    DataExport.Kind.PAYMENTS: [
        Column("id", "text"),
        Column("created", "datetime"),
        Column("state", "text"),
        Column("origin", "text"),
        Column("plan", "text"),
        *_money_columns("purchase_amount"),
        *_money_columns("customer_fee"),
        *_money_columns("customer_interest"),
        *_money_columns("merchant_fee"),
        Column("customer_first_name", "text"),
        Column("customer_last_name", "text"),
        Column("customer_email", "text"),
        Column("customer_phone", "text"),
        Column("order_references", "text"),
        Column("accepted_at", "datetime"),
    ],
    DataExport.Kind.INSTALMENTS: [
        Column("payment_id", "text"),
        Column("instalment_id", "text"),
        Column("number", "int"),
        Column("due_date", "date"),
        *_money_columns("total_amount"),
        *_money_columns("purchase_amount"),
        *_money_columns("customer_fee"),
        *_money_columns("customer_interest"),
        Column("state", "text"),
        Column("paid_at", "datetime"),
        Column("payment_state", "text"),
    ],
    DataExport.Kind.REFUNDS: [
        Column("refund_id", "text"),
        Column("payment_id", "text"),
        Column("refunded_at", "datetime"),
        *_money_columns("amount"),
        *_money_columns("customer_fee_refunded"),
        *_money_columns("interest_refunded"),
        Column("processor_reference", "text"),
        Column("posting_id", "int"),
    ],
    DataExport.Kind.LEDGER: [
        Column("date", "datetime"),
        Column("posting_id", "int"),
        Column("recipe", "text"),
        Column("reference", "text"),
        Column("memo", "text"),
        Column("account", "text"),
        *_money_columns("debit"),
        *_money_columns("credit"),
    ],
}


def columns_for(kind: str, custom_fields: Sequence[str] = ()) -> list[Column]:
    """The kind's columns; a payments export adds one ``custom_data.<key>`` per field."""
    columns = list(COLUMNS[kind])
    if kind == DataExport.Kind.PAYMENTS:
        columns += [Column(f"custom_data.{key}", "text") for key in custom_fields]
    return columns


def plan_label(*, installments_count: int, deferred_days: int, deferred_months: int) -> str:
    """A plan as merchants name it: "3x", "pay later 30 d", "pay later 1 m", "3x + 30 d"."""
    delay = ""
    if deferred_days:
        delay = f"{deferred_days} d"
    elif deferred_months:
        delay = f"{deferred_months} m"
    if not delay:
        return f"{installments_count}x"
    if installments_count == 1:
        return f"pay later {delay}"
    return f"{installments_count}x + {delay}"


def _cents(amount: Decimal | None) -> int:
    return 0 if amount is None else decimal_to_cents(amount)


def _custom_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def payment_row(raw: tuple, custom_fields: Sequence[str]) -> list:
    """One payments line from ``_payments_query``'s tuple."""
    (
        public_id,
        created_at,
        state,
        origin,
        count,
        days,
        months,
        purchase,
        customer_fee,
        interest,
        merchant_fee,
        customer_data,
        references,
        accepted_at,
        custom_data,
    ) = raw
    customer = customer_data or {}
    custom = custom_data or {}
    return [
        public_id,
        created_at,
        state,
        origin,
        plan_label(installments_count=count, deferred_days=days, deferred_months=months),
        *_twice(_cents(purchase)),
        *_twice(_cents(customer_fee)),
        *_twice(_cents(interest)),
        *_twice(_cents(merchant_fee)),
        str(customer.get("first_name") or ""),
        str(customer.get("last_name") or ""),
        str(customer.get("email") or ""),
        str(customer.get("phone") or ""),
        " | ".join(ref for ref in (references or []) if ref),
        accepted_at,
        *[_custom_value(custom.get(key)) for key in custom_fields],
    ]


def instalment_row(raw: tuple) -> list:
    """One instalments line from ``_instalments_query``'s tuple."""
    (payment_id, public_id, number, due_date, purchase, fee, interest, state, paid_at, pstate) = raw
    principal, fee, interest = _cents(purchase), _cents(fee), _cents(interest)
    return [
        payment_id,
        public_id,
        number,
        due_date,
        *_twice(principal + fee + interest),
        *_twice(principal),
        *_twice(fee),
        *_twice(interest),
        state,
        paid_at,
        pstate,
    ]


def refund_row(raw: tuple) -> list:
    """One refunds line from ``_refunds_query``'s tuple (a ``refund_issued`` posting)."""
    (posting_id, refund_id, payment_id, effective_at, processor_ref, refunded, fee, interest) = raw
    return [
        refund_id,
        payment_id,
        effective_at,
        *_twice(_cents(refunded)),
        *_twice(_cents(fee)),
        *_twice(_cents(interest)),
        processor_ref,
        posting_id,
    ]


def ledger_row(raw: tuple) -> list:
    """One ledger line (a leg) from ``_ledger_query``'s tuple; debits are positive legs."""
    (effective_at, posting_id, recipe, reference, memo, account_kind, amount) = raw
    cents = _cents(amount)
    return [
        effective_at,
        posting_id,
        recipe,
        reference,
        memo,
        account_kind,
        *_twice(max(cents, 0)),
        *_twice(max(-cents, 0)),
    ]


def _twice(cents: int) -> tuple[int, int]:
    """The two cells of an amount: euros (rendered from cents) and cents."""
    return cents, cents


class Layout:
    """Where each type of cell sits in a kind's rows, so that a row is rendered with a few
    loops over positions instead of a type test per cell (100,000 rows of 20 cells)."""

    def __init__(self, columns: list[Column]):
        self.columns = columns
        self.text = [i for i, c in enumerate(columns) if c.type == "text"]
        self.datetime = [i for i, c in enumerate(columns) if c.type == "datetime"]
        self.date = [i for i, c in enumerate(columns) if c.type == "date"]
        self.money = [i for i, c in enumerate(columns) if c.type == "money"]
        self.numbers = frozenset(i for i, c in enumerate(columns) if c.type in ("int", "money"))

    def prepare(self, row: list) -> list:
        """A typed row (from a row builder) with its text final, in place: times and dates
        as ISO 8601 text (times in Europe/Paris with their offset), free text made safe.
        Numbers stay numbers (money in cents) for each writer to render."""
        for i in self.datetime:
            value = row[i]
            if value is not None:
                row[i] = value.astimezone(BUSINESS_TZ).isoformat()
        for i in self.date:
            value = row[i]
            if value is not None:
                row[i] = value.isoformat()
        for i in self.text:
            value = row[i]
            if value is None:
                continue
            if not isinstance(value, str):
                value = str(value)
            row[i] = safe_cell(value)
        return row


# --- writers ----------------------------------------------------------------------------------


class CsvWriter:
    """UTF-8 with a BOM (Excel reads accents right), comma-separated, CRLF lines; euros as
    text with two decimals ("123.45"), cents as integers, nothing as an empty cell."""

    suffix = "csv"

    def __init__(self, layout: Layout, handle):
        self.money = layout.money
        self.handle = handle
        self.text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        self.text.write(BOM)
        self.writer = csv.writer(self.text)
        self.writer.writerow([safe_cell(c.header) for c in layout.columns])

    def write(self, row: list) -> None:
        line = list(row)
        for i in self.money:
            if line[i] is not None:
                line[i] = format_eur(line[i])
        self.writer.writerow(line)

    def finish(self) -> None:
        self.text.flush()
        self.text.detach()  # the handle stays open for the storage to read
        self.handle.seek(0)


class XlsxWriter:
    """One sheet, written row by row (``constant_memory``): numbers as numbers, euros as
    numbers formatted 0.00 (from Decimal, exact), times and dates as ISO text, text as
    strings (never a formula: ``write_string``, after ``safe_cell``)."""

    suffix = "xlsx"

    def __init__(self, layout: Layout, handle):
        import xlsxwriter

        self.money = frozenset(layout.money)
        self.numbers = layout.numbers
        self.handle = handle
        self.book = xlsxwriter.Workbook(handle, {"constant_memory": True})
        self.sheet = self.book.add_worksheet("export")
        self.euros = self.book.add_format({"num_format": "0.00"})
        bold = self.book.add_format({"bold": True})
        for index, column in enumerate(layout.columns):
            self.sheet.write_string(0, index, safe_cell(column.header), bold)
        # The undecorated writers: the public ones only add A1-notation parsing, which is
        # 40 % of the time spent per cell here.
        self.write_string = getattr(self.sheet, "_write_string", self.sheet.write_string)
        self.write_number = getattr(self.sheet, "_write_number", self.sheet.write_number)
        self.row = 1

    def write(self, row: list) -> None:
        number, string, line = self.write_number, self.write_string, self.row
        if line >= XLSX_MAX_ROWS:
            raise ExportTooLarge()
        for index, value in enumerate(row):
            if value is None or value == "":
                continue
            if index in self.numbers:
                if index in self.money:
                    number(line, index, Decimal(value) / CENTS_PER_UNIT, self.euros)
                else:
                    number(line, index, value, None)
            else:
                string(line, index, value, None)
        self.row += 1

    def finish(self) -> None:
        self.book.close()
        self.handle.seek(0)


# --- reads -----------------------------------------------------------------------------------


def export_get(*, merchant, livemode: bool, export_id: str) -> DataExport:
    """One of the merchant's exports in this mode (id with or without its prefix)."""
    export = (
        DataExport.objects.filter(
            merchant=merchant, livemode=livemode, public_id=with_prefix("export", export_id)
        )
        .select_related("payout", "merchant")
        .first()
    )
    if export is None:
        raise NotFound("export", export_id)
    return export


def exports_recent(*, merchant, livemode: bool, limit: int = 50) -> list[DataExport]:
    """The merchant's latest exports in this mode, newest first."""
    return list(
        DataExport.objects.filter(merchant=merchant, livemode=livemode)
        .select_related("payout")
        .order_by("-created_at", "-id")[:limit]
    )


@dataclass(frozen=True)
class ExportPage:
    items: list[DataExport]
    has_more: bool


def exports_page(
    *, merchant, livemode: bool, limit: int, starting_after: str | None = None
) -> ExportPage:
    """A page of exports, newest first by (created_at, id); an unknown cursor (or another
    merchant's, or the other mode's) gives an empty last page."""
    exports = DataExport.objects.filter(merchant=merchant, livemode=livemode)
    if starting_after:
        cursor = (
            exports.filter(public_id=with_prefix("export", starting_after))
            .only("id", "created_at")
            .first()
        )
        if cursor is None:
            return ExportPage(items=[], has_more=False)
        exports = rows_after(
            exports, field="created_at", value=cursor.created_at, pk=cursor.id, descending=True
        )
    rows = list(
        exports.select_related("payout", "merchant").order_by("-created_at", "-id")[: limit + 1]
    )
    return ExportPage(items=rows[:limit], has_more=len(rows) > limit)


def payout_for_export(*, merchant, livemode: bool, payout_id: str) -> Payout:
    payout = Payout.objects.filter(
        merchant=merchant, livemode=livemode, public_id=with_prefix("payout", payout_id)
    ).first()
    if payout is None:
        raise NotFound("payout", payout_id)
    return payout


def payout_window(payout: Payout) -> tuple[datetime | None, datetime]:
    """What a payout settles, by time: the merchant's ledger lines after its previous payout
    (in the same mode) up to this payout's creation, both payout postings included at their
    ends. The ledger does not tie legs to payouts, so time is the link."""
    previous = (
        Payout.objects.filter(
            merchant_id=payout.merchant_id,
            livemode=payout.livemode,
            created_at__lt=payout.created_at,
        )
        .order_by("-created_at", "-id")
        .values_list("created_at", flat=True)
        .first()
    )
    return previous, payout.created_at


def _payments_query(export: DataExport) -> QuerySet:
    references = ArraySubquery(
        Order.objects.filter(payment=OuterRef("pk"), detached_at__isnull=True)
        .order_by("created_at", "id")
        .values("merchant_reference")
    )
    return (
        Payment.objects.filter(
            merchant_id=export.merchant_id,
            livemode=export.livemode,
            created_at__gte=export.start,
            created_at__lte=export.end,
        )
        .order_by("created_at", "id")
        .annotate(order_references=references)
    )


def _payments_rows(qs: QuerySet) -> Iterable[tuple]:
    return qs.values_list(
        "public_id",
        "created_at",
        "state",
        "origin",
        "installments_count",
        "deferred_days",
        "deferred_months",
        "purchase_amount",
        "customer_fee",
        "customer_interest",
        "merchant_fee",
        "customer_data",
        "order_references",
        "accepted_at",
        "custom_data",
    )


def _instalments_query(export: DataExport) -> QuerySet:
    return Instalment.objects.filter(
        payment__merchant_id=export.merchant_id,
        payment__livemode=export.livemode,
        payment__accepted_at__isnull=False,
        due_date__gte=business_date(export.start),
        due_date__lte=business_date(export.end),
    ).order_by("due_date", "payment_id", "number")


def _instalments_rows(qs: QuerySet) -> Iterable[tuple]:
    return qs.values_list(
        "payment__public_id",
        "public_id",
        "number",
        "due_date",
        "purchase_amount",
        "customer_fee",
        "customer_interest",
        "state",
        "paid_at",
        "payment__state",
    )


def _refunds_query(export: DataExport) -> QuerySet:
    return Posting.objects.filter(
        merchant_id=export.merchant_id,
        livemode=export.livemode,
        kind=REFUND_KIND,
        effective_at__gte=export.start,
        effective_at__lte=export.end,
    ).order_by("effective_at", "id")


def _refunds_rows(qs: QuerySet) -> Iterable[tuple]:
    def leg_sum(kind: str) -> Sum:
        return Sum("legs__amount", filter=Q(legs__account__kind=kind))

    return qs.annotate(
        refunded=leg_sum(AccountKind.MERCHANT_BALANCE),
        fee=leg_sum(AccountKind.CUSTOMER_FEE_REVENUE),
        interest=leg_sum(AccountKind.INTEREST_REVENUE),
    ).values_list(
        "id",
        "memo",
        "reference",
        "effective_at",
        "processor_reference",
        "refunded",
        "fee",
        "interest",
    )


def _ledger_query(export: DataExport) -> QuerySet:
    if export.payout_id:
        after, until = payout_window(export.payout)
        period = Q(posting__effective_at__lte=until)
        if after is not None:
            period &= Q(posting__effective_at__gt=after)
    else:
        period = Q(posting__effective_at__gte=export.start, posting__effective_at__lte=export.end)
    return Leg.objects.filter(
        period,
        account__merchant_id=export.merchant_id,
        account__livemode=export.livemode,
        account__kind__in=MERCHANT_ACCOUNT_KINDS,
    ).order_by("posting__effective_at", "posting_id", "id")


def _ledger_rows(qs: QuerySet) -> Iterable[tuple]:
    return qs.values_list(
        "posting__effective_at",
        "posting_id",
        "posting__kind",
        "posting__reference",
        "posting__memo",
        "account__kind",
        "amount",
    )


@dataclass(frozen=True)
class Source:
    """What a kind reads: its queryset (counted first), its tuples, and its row builder."""

    query: Callable[[DataExport], QuerySet]
    rows: Callable[[QuerySet], Iterable[tuple]]
    row: Callable[[tuple], list]


def _source(export: DataExport) -> Source:
    if export.kind == DataExport.Kind.PAYMENTS:
        fields = list(export.custom_fields or [])
        return Source(_payments_query, _payments_rows, lambda raw: payment_row(raw, fields))
    if export.kind == DataExport.Kind.INSTALMENTS:
        return Source(_instalments_query, _instalments_rows, instalment_row)
    if export.kind == DataExport.Kind.REFUNDS:
        return Source(_refunds_query, _refunds_rows, refund_row)
    return Source(_ledger_query, _ledger_rows, ledger_row)


def export_rows(export: DataExport) -> tuple[int, Iterator[list]]:
    """The export's row count and its rows (typed cells), streamed in chunks."""
    source = _source(export)
    queryset = source.query(export)
    total = queryset.count()
    raw_rows = source.rows(queryset).iterator(chunk_size=PROGRESS_EVERY)
    return total, (source.row(raw) for raw in raw_rows)


# --- the service --------------------------------------------------------------------------


def parse_custom_fields(value: str | Iterable[str] | None) -> list[str]:
    """Custom-data keys as the API sends them: "a,b" or ["a", "b"]; blanks and repeats go."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    keys: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ExportInvalid(
                "custom_fields", "Custom fields must be text.", error_code="invalid_type"
            )
        key = item.strip()
        if not key or key in keys:
            continue
        if len(key) > MAX_CUSTOM_FIELD_LENGTH:
            raise ExportInvalid(
                "custom_fields",
                f"A custom field name has at most {MAX_CUSTOM_FIELD_LENGTH} characters.",
                error_code="too_long",
            )
        keys.append(key)
    if len(keys) > MAX_CUSTOM_FIELDS:
        raise ExportInvalid(
            "custom_fields", f"At most {MAX_CUSTOM_FIELDS} custom fields.", error_code="too_long"
        )
    return keys


def _enqueue_build(export_id: int) -> None:
    from django_q.tasks import async_task

    async_task(
        BUILD_TASK, export_id, task_name=f"export:{export_id}", timeout=BUILD_TIMEOUT_SECONDS
    )


def exports_requeue_stale(*, now: datetime) -> int:
    """Queue again the builds that should be moving and are not: still pending, or running
    but silent, for 10 minutes (a lost task, a worker that died). The build takes them over.
    """
    stale = DataExport.objects.filter(
        status__in=[DataExport.Status.PENDING, DataExport.Status.RUNNING],
        updated_at__lt=now - STALE_AFTER,
    ).order_by("updated_at")
    ids = list(stale.values_list("pk", flat=True)[:STALE_SWEEP_LIMIT])
    for export_id in ids:
        _enqueue_build(export_id)
    return len(ids)


def export_request(
    *,
    merchant,
    livemode: bool,
    kind: str,
    start: datetime | None,
    end: datetime | None,
    origin: str,
    created_by=None,
    api_type: str = "",
    payout: Payout | None = None,
    custom_fields: Sequence[str] = (),
    include_child_accounts: bool = False,
    now: datetime,
) -> DataExport:
    """Ask for an export: checked, recorded as pending, and built by a task queued after
    commit. A period runs from ``start`` to ``end`` inclusive, at most 366 days; a payout's
    export takes its period from the payout (its start and end say so once built)."""
    if kind not in DataExport.Kind.values:
        raise ExportRefused("type", f"Unknown export type {kind!r}.")
    if payout is not None:
        if payout.merchant_id != merchant.pk or payout.livemode != livemode:
            raise ExportRefused("payout", f"No payout with id {payout.public_id!r}.")
        if kind != DataExport.Kind.LEDGER:
            raise ExportRefused(
                "payout",
                "A payout goes with an accounting export.",
                error_code="incompatible_parameters",
            )
        start, end = payout_window(payout)
    else:
        if start is None:
            raise ExportRefused(
                "start", "Give the first day of the period.", error_code="missing_field"
            )
        if end is None:
            raise ExportRefused(
                "end", "Give the last day of the period.", error_code="missing_field"
            )
        if start > end:
            raise ExportRefused("end", "The period ends before it starts.")
        if end - start > timedelta(days=MAX_RANGE_DAYS):
            raise ExportRefused(
                "end", f"A period is at most {MAX_RANGE_DAYS} days: split the export."
            )
    fields = list(custom_fields) if kind == DataExport.Kind.PAYMENTS else []
    with transaction.atomic():
        export = DataExport.objects.create(
            merchant=merchant,
            livemode=livemode,
            kind=kind,
            api_type=api_type,
            start=start,
            end=end,
            payout=payout,
            custom_fields=fields,
            include_child_accounts=include_child_accounts,
            origin=origin,
            created_by=created_by,
            created_at=now,
            updated_at=now,
        )
        transaction.on_commit(lambda: _enqueue_build(export.pk), robust=True)
    return export


def export_retry(*, export: DataExport, now: datetime) -> DataExport:
    """Build a failed export again: back to pending, queued after commit."""
    with transaction.atomic():
        locked = DataExport.objects.select_for_update().get(pk=export.pk)
        if locked.status != DataExport.Status.FAILED:
            raise InvalidTransition("data export", locked.status, DataExport.Status.PENDING)
        locked.status = DataExport.Status.PENDING
        locked.error = ""
        locked.rows_done = 0
        locked.rows_total = None
        locked.updated_at = now
        locked.save(update_fields=["status", "error", "rows_done", "rows_total", "updated_at"])
        transaction.on_commit(lambda: _enqueue_build(locked.pk), robust=True)
    return locked


class ClaimLost(Exception):
    """Another worker took the build over (this one was silent too long)."""


def _claim(export_id: int, now: datetime) -> tuple[str, DataExport | None]:
    with transaction.atomic():
        export = (
            DataExport.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("payout", "merchant")
            .filter(pk=export_id)
            .first()
        )
        if export is None:
            exists = DataExport.objects.filter(pk=export_id).exists()
            return ("busy" if exists else "missing"), None
        if export.status == DataExport.Status.DONE:
            return "already done", None
        if export.status == DataExport.Status.FAILED:
            return "failed", None
        if export.status == DataExport.Status.RUNNING and export.updated_at > now - STALE_AFTER:
            return "busy", None
        export.status = DataExport.Status.RUNNING
        export.rows_done = 0
        export.error = ""
        export.updated_at = now
        export.save(update_fields=["status", "rows_done", "error", "updated_at"])
    return "claimed", export


class _Fence:
    """Writes to a claimed export only while the claim is ours: each update compares the
    ``updated_at`` this worker last wrote (a takeover writes another)."""

    def __init__(self, export: DataExport, clock: Callable[[], datetime]):
        self.pk = export.pk
        self.mark = export.updated_at
        self.clock = clock

    def update(self, **fields) -> None:
        stamp = max(self.clock(), self.mark + timedelta(microseconds=1))
        changed = DataExport.objects.filter(
            pk=self.pk, status=DataExport.Status.RUNNING, updated_at=self.mark
        ).update(updated_at=stamp, **fields)
        if not changed:
            raise ClaimLost()
        self.mark = stamp


def file_name(export: DataExport, file_format: str) -> str:
    """Its name in the exports storage: ``<merchant id>/<export id>.<format>``."""
    return f"{export.merchant.public_id}/{export.public_id}.{file_format}"


def _store(name: str, handle) -> str:
    storage = storages["exports"]
    if storage.exists(name):
        storage.delete(name)  # a rerun replaces the file under the same name
    return storage.save(name, File(handle, name=name))


def export_build(export_id: int, *, clock: Callable[[], datetime] = timezone.now) -> str:
    """Build an export's CSV and XLSX files (the task's body): safe to run twice and at once.

    The row is claimed (pending -> running, or a running build silent for 10 minutes taken
    over); a done or failed export, or one another worker is building, is left alone. Rows
    are streamed, progress is saved every 2,000 rows in its own short UPDATE, the files are
    written to the ``exports`` storage, then the export is done. An error marks it failed.
    Returns what happened: claimed builds say "done", "failed" or "lost".
    """
    outcome, export = _claim(export_id, clock())
    if export is None:
        return outcome
    fence = _Fence(export, clock)
    try:
        layout = Layout(columns_for(export.kind, export.custom_fields or []))
        total, rows = export_rows(export)
        fence.update(rows_total=total)
        with tempfile.TemporaryFile() as csv_handle, tempfile.TemporaryFile() as xlsx_handle:
            writers = [CsvWriter(layout, csv_handle), XlsxWriter(layout, xlsx_handle)]
            done = 0
            for row in rows:
                layout.prepare(row)
                for writer in writers:
                    writer.write(row)
                done += 1
                if done % PROGRESS_EVERY == 0:
                    fence.update(rows_done=done)
            names = {}
            for writer in writers:
                writer.finish()
                fence.update(rows_done=done)  # still ours before writing over the files
                names[writer.suffix] = _store(file_name(export, writer.suffix), writer.handle)
        fence.update(
            status=DataExport.Status.DONE,
            rows_done=done,
            rows_total=done,
            csv_file=names["csv"],
            xlsx_file=names["xlsx"],
            completed_at=clock(),
        )
    except ClaimLost:
        logger.warning("Export %s was taken over by another worker", export.public_id)
        return "lost"
    except Exception as exc:
        logger.exception("Export %s could not be built", export.public_id)
        try:
            if isinstance(exc, DomainError):
                error = exc.message
            else:
                error = f"The file could not be built ({type(exc).__name__})."
            fence.update(status=DataExport.Status.FAILED, error=error[:300])
        except ClaimLost:
            return "lost"
        return "failed"
    return "done"


def export_open(*, export: DataExport, file_format: str):
    """An open binary file of a done export, from the exports storage."""
    if file_format not in FORMATS:
        raise ExportInvalid("format", "The format is csv or xlsx.")
    if export.status == DataExport.Status.FAILED:
        raise ExportNotReady("This export failed: ask for a new one.")
    if export.status != DataExport.Status.DONE:
        raise ExportNotReady()
    name = export.csv_file if file_format == "csv" else export.xlsx_file
    try:
        return storages["exports"].open(name, "rb")
    except FileNotFoundError as exc:  # removed from the storage since
        logger.error("The %s file of export %s is missing", file_format, export.public_id)
        raise NotFound("export file", export.public_id) from exc


def download_name(export: DataExport, file_format: str) -> str:
    """A readable file name: ``tranche-payments-2026-10-01-2026-10-31.csv``."""
    kind = export.api_type or export.kind
    parts = ["tranche", kind.replace("_", "-")]
    if export.payout_id:
        parts.append(export.payout.public_id)
    else:
        parts += [_day(export.start), _day(export.end)]
    return "-".join(p for p in parts if p) + f".{file_format}"


def _day(moment: datetime | None) -> str:
    return business_date(moment).isoformat() if moment else ""


def period_of(*, start_date: date, end_date: date) -> tuple[datetime, datetime]:
    """Business days (Europe/Paris) -> the instants from the first day's midnight to the
    last day's last microsecond."""
    return (
        datetime.combine(start_date, time.min, tzinfo=BUSINESS_TZ),
        datetime.combine(end_date, time.max, tzinfo=BUSINESS_TZ),
    )
