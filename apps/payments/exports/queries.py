"""The reads: one streamed query per kind (a single SELECT each, with joins and subqueries,
never a query per row), and the exports of a page or the API."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.apps import apps as django_apps
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import OuterRef, Q, QuerySet, Subquery

from apps.common.dates import business_date
from apps.common.errors import NotFound
from apps.common.ids import with_prefix
from apps.common.keyset import rows_after
from apps.ledger.models import Leg, Payout
from apps.payments.exports.base import MERCHANT_ACCOUNT_KINDS, PROGRESS_EVERY
from apps.payments.exports.columns import instalment_row, ledger_row, payment_row, refund_row
from apps.payments.models import DataExport, Instalment, Order, Payment


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
        "staff_member",
        "terminal_name",
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
    # Refunds build on payments, never the reverse (apps.payments does not import
    # apps.refunds): the model is taken from the app registry by name, when an export runs.
    refund_model = django_apps.get_model("refunds", "Refund")
    return refund_model.objects.filter(
        merchant_id=export.merchant_id,
        livemode=export.livemode,
        created_at__gte=export.start,
        created_at__lte=export.end,
    ).order_by("created_at", "id")


def _refunds_rows(qs: QuerySet) -> Iterable[tuple]:
    return qs.values_list(
        "public_id",
        "payment__public_id",
        "created_at",
        "state",
        "origin",
        "merchant_reference",
        "comment",
        "amount",
        "owed_cancelled",
        "written_off_cancelled",
        "to_card",
        "customer_fee_refunded",
        "interest_refunded",
        "payment__custom_data",
    )


def _ledger_query(export: DataExport) -> QuerySet:
    if export.payout_id:
        after, until = payout_window(export.payout)
        period = Q(posting__effective_at__lte=until)
        if after is not None:
            period &= Q(posting__effective_at__gt=after)
    else:
        period = Q(posting__effective_at__gte=export.start, posting__effective_at__lte=export.end)
    # The payment a posting's reference names, read in the same SELECT (one subquery per
    # column, each a unique-index lookup on the merchant's payments): no query per row.
    payment = Payment.objects.filter(
        merchant_id=export.merchant_id,
        livemode=export.livemode,
        public_id=OuterRef("posting__reference"),
    )
    return (
        Leg.objects.filter(
            period,
            account__merchant_id=export.merchant_id,
            account__livemode=export.livemode,
            account__kind__in=MERCHANT_ACCOUNT_KINDS,
        )
        .annotate(
            payment_origin=Subquery(payment.values("origin")[:1]),
            payment_terminal=Subquery(payment.values("terminal_name")[:1]),
            payment_staff_member=Subquery(payment.values("staff_member")[:1]),
        )
        .order_by("posting__effective_at", "posting_id", "id")
    )


def _ledger_rows(qs: QuerySet) -> Iterable[tuple]:
    return qs.values_list(
        "posting__effective_at",
        "posting_id",
        "posting__kind",
        "posting__reference",
        "posting__memo",
        "account__kind",
        "amount",
        "payment_origin",
        "payment_terminal",
        "payment_staff_member",
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
        fields = list(export.custom_fields or [])
        return Source(_refunds_query, _refunds_rows, lambda raw: refund_row(raw, fields))
    return Source(_ledger_query, _ledger_rows, ledger_row)


def export_rows(export: DataExport) -> tuple[int, Iterator[list]]:
    """The export's row count and its rows (typed cells), streamed in chunks."""
    source = _source(export)
    queryset = source.query(export)
    total = queryset.count()
    raw_rows = source.rows(queryset).iterator(chunk_size=PROGRESS_EVERY)
    return total, (source.row(raw) for raw in raw_rows)


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
