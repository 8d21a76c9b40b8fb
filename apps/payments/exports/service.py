"""The exports service: ask (validate, create, queue the build after commit), retry, build
(the task: claim, stream, write, finish), and the reads of pages and the API."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, time, timedelta

from django.core.files import File
from django.core.files.storage import storages
from django.db import transaction
from django.utils import timezone

from apps.common.dates import BUSINESS_TZ, business_date
from apps.common.errors import DomainError, InvalidTransition, NotFound
from apps.ledger.models import Payout
from apps.payments.exports.base import (
    BUILD_TASK,
    BUILD_TIMEOUT_SECONDS,
    CUSTOM_FIELD_KINDS,
    FORMATS,
    MAX_CUSTOM_FIELD_LENGTH,
    MAX_CUSTOM_FIELDS,
    MAX_RANGE_DAYS,
    PROGRESS_EVERY,
    STALE_AFTER,
    STALE_SWEEP_LIMIT,
    ExportInvalid,
    ExportNotReady,
    ExportRefused,
)
from apps.payments.exports.columns import Layout, columns_for
from apps.payments.exports.queries import export_rows, payout_window
from apps.payments.exports.writers import CsvWriter, XlsxWriter
from apps.payments.models import DataExport

logger = logging.getLogger(__name__)

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
    fields = list(custom_fields) if kind in CUSTOM_FIELD_KINDS else []
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
