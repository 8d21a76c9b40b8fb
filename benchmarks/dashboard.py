"""Dashboard figures for `make bench`, in process: the payment list's first page, a deep page
and a search by email, each as the whole Django response, beside the bare SELECT of the same
rows; and an export of 100,000 payments (CSV + XLSX) beside a COPY of the same rows.

Run alone with ``python -m benchmarks --dashboard-only``, or from benchmarks/__main__.py
(``run`` measures, ``figure_lines`` formats the summary lines).

The data: the debit benchmark's merchant (benchmarks/debits.py) and its payments in test
mode, reused when it holds at least 1,000,000 (counted); otherwise its own generate_series
loader tops them up first (``debits.load_backlog``). Payments whose ``customer_data`` has no
email get their customer's email (one per customer), 100,000 per transaction, then ANALYZE;
ANALYZE too when the search indexes' expressions have no statistics yet (a migration made
them: without statistics the planner guesses how many payments match an email, and walks
the date index instead of the email index).
A dashboard user of its own (``USER_EMAIL``, staff of that merchant) is made once.

What is timed, per page (50 runs after 5 warm-ups, the page and its baseline alternately):

- the page: ``django.test.Client.get(reverse("dashboard:payments") + query)`` in this process,
  logged in with ``force_login``: the middleware, ``merchant_required``, the filter form,
  ``selectors.dashboard_payments_page`` and the template, the whole response; checked after
  each run (untimed): status 200 and the 25 payment links of the page, in order, are the
  baseline's first 25 rows;
- the baseline: the bare SELECT of the same rows (``payments_payment`` only: the same WHERE,
  ORDER BY and LIMIT 26 as the selector, the cursor's values already known) through the same
  Django connection's cursor, rows fetched.

The pages: the first one (newest first), the one after the payment at position 500,000 in
that order (``?after=<its public id>``), and ``?q=<an email>`` (the email with the fewest
payments). The three selector queries are shown once with EXPLAIN (ANALYZE, BUFFERS).

The export: ``exports.export_request`` (kind payments, a period holding exactly 100,000 of
the merchant's payments: from the oldest, up to the created_at of the 100,000th, moved
where created_at ties would make it more) then ``exports.export_build``, timed (the queued
build task is dropped: this process builds it); checked: done, ``rows_total`` 100,000, both
files in the exports storage, the CSV 100,001 lines. Baseline: ``COPY (SELECT <the same
columns> ...) TO STDOUT WITH CSV`` of the same rows through psycopg, median of 3. The
export's files and row are deleted afterwards.
"""

from __future__ import annotations

import logging
import math
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from benchmarks import debits

MERCHANT = debits.MERCHANT
LIVEMODE = debits.LIVEMODE
MIN_PAYMENTS = 1_000_000
USER_EMAIL = "benchmark-dashboard@tranche.localhost"
RUNS = 50
WARMUPS = 5
PAGE_ROWS = 25  # the list's page size (apps.payments.dashboard.payments.PAGE_SIZE)
DEEP_POSITION = 500_000
PAGE_TARGET_MS = 50.0
EXPORT_ROWS = 100_000
EXPORT_TARGET_S = 60.0
EXPORT_BASELINE_RUNS = 3
UPDATE_BATCH = 100_000
SEARCH_INDEXES = ("payment_customer_email_idx", "payment_customer_name_idx")

Say = Callable[[str], None]


# --- figures ------------------------------------------------------------------------------------


def p95(values: list[float]) -> float:
    """Nearest rank: the 48th of 50."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass
class PageFigure:
    name: str
    what: str
    view_ms: list[float] = field(default_factory=list)
    bare_ms: list[float] = field(default_factory=list)

    @property
    def value(self) -> float | None:
        return p95(self.view_ms) if self.view_ms else None

    @property
    def baseline(self) -> float | None:
        return p95(self.bare_ms) if self.bare_ms else None

    @property
    def ok(self) -> bool:
        return self.value is not None and self.value <= PAGE_TARGET_MS


@dataclass
class ExportFigure:
    rows: int
    start: datetime
    end: datetime
    build_s: float | None = None
    copy_s: list[float] = field(default_factory=list)
    csv_bytes: int = 0
    xlsx_bytes: int = 0

    @property
    def baseline(self) -> float | None:
        return statistics.median(self.copy_s) if self.copy_s else None

    @property
    def ok(self) -> bool:
        return self.build_s is not None and self.build_s <= EXPORT_TARGET_S


@dataclass
class DashboardFigures:
    payments: int
    pages: list[PageFigure]
    export: ExportFigure

    @property
    def verdicts(self) -> dict[str, bool]:
        return {
            **{page.name: page.ok for page in self.pages},
            "dashboard_export": self.export.ok,
        }


def figure_lines(figures: DashboardFigures) -> list[str]:
    """The summary lines, formatted by benchmarks.__main__.figure_line."""
    from benchmarks.__main__ import figure_line

    lines = []
    for page in figures.pages:
        ratio = [page.value / page.baseline] if page.value and page.baseline else []
        lines.append(
            figure_line(
                page.name,
                page.value,
                page.baseline,
                ratio,
                f"({page.what}, {figures.payments:,} payments, whole response in process; p95 "
                f"of {len(page.view_ms)}, p50 {statistics.median(page.view_ms or [0]):.2f} ms; "
                f"baseline: the bare SELECT of the same rows, p95, p50 "
                f"{statistics.median(page.bare_ms or [0]):.2f} ms; target value <= "
                f"{PAGE_TARGET_MS:.0f} ms)  {'PASS' if page.ok else 'FAIL'}",
                unit="ms",
            )
        )
    export = figures.export
    ratio = [export.build_s / export.baseline] if export.build_s and export.baseline else []
    lines.append(
        figure_line(
            f"dashboard_export_{debits._short(export.rows)}_payments_s",
            export.build_s,
            export.baseline,
            ratio,
            f"(export_build, CSV {export.csv_bytes / 1e6:.1f} MB + XLSX "
            f"{export.xlsx_bytes / 1e6:.1f} MB, {export.rows:,} payments; baseline COPY of the "
            f"same rows and columns TO STDOUT WITH CSV, median of {len(export.copy_s)}; target "
            f"value <= {EXPORT_TARGET_S:.0f} s)  {'PASS' if export.ok else 'FAIL'}",
            unit="s",
        )
    )
    return lines


# --- the data ---------------------------------------------------------------------------------


def _merchant():
    from apps.merchants.models import Merchant

    name, email = MERCHANT
    return Merchant.objects.filter(legal_name=name, contact_email=email).order_by("pk").first()


def payment_count(merchant_id: int) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM payments_payment WHERE merchant_id = %s AND livemode = %s",
            [merchant_id, LIVEMODE],
        )
        return cursor.fetchone()[0]


def ensure_payments(say: Say):
    """The merchant with at least MIN_PAYMENTS payments in this mode, each with its
    customer's email in ``customer_data``; (merchant, count)."""
    merchant = _merchant()
    count = payment_count(merchant.pk) if merchant else 0
    if count >= MIN_PAYMENTS:
        say(
            f"  {count:,} payments of {MERCHANT[0]!r} (test mode) loaded by the debit "
            "benchmark: reused"
        )
    else:
        say(
            f"  {count:,} payments of {MERCHANT[0]!r}: loading {MIN_PAYMENTS - count:,} more "
            "with the debit benchmark's loader (generate_series, 100,000 per transaction)"
        )
        shop = debits.shop(say)
        debits.load_backlog(shop, MIN_PAYMENTS - count, say)
        merchant = _merchant()
        count = payment_count(merchant.pk)
        _analyze()
    if _fill_emails(say, merchant.pk) or not _search_indexes_analyzed():
        say("  ANALYZE (the search indexes' expressions had no statistics yet)")
        _analyze()
    return merchant, count


def _search_indexes_analyzed() -> bool:
    """Whether the planner has statistics for the email and name indexes' expressions
    (made by ANALYZE after the index: without them it guesses the matches' count)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(DISTINCT tablename) FROM pg_stats WHERE tablename = ANY(%s)",
            [list(SEARCH_INDEXES)],
        )
        return cursor.fetchone()[0] == len(SEARCH_INDEXES)


def _analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("payments_payment", "payments_instalment", "payments_order"):
            cursor.execute(f"ANALYZE {table}")


def _fill_emails(say: Say, merchant_id: int) -> int:
    """Payments whose customer_data has no email get their customer's (one per customer),
    in batches of ids, one transaction each; how many were updated."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(id), max(id), count(*) FROM payments_payment WHERE merchant_id = %s "
            "AND livemode = %s AND coalesce(customer_data->>'email', '') = ''",
            [merchant_id, LIVEMODE],
        )
        low, high, missing = cursor.fetchone()
    if not missing:
        return 0
    say(f"  {missing:,} payments without an email in customer_data: setting their customer's")
    updated = 0
    start = low
    while start <= high:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                """
                UPDATE payments_payment p
                   SET customer_data = p.customer_data || jsonb_build_object(
                           'first_name', c.first_name, 'last_name', c.last_name,
                           'email', lower(c.email), 'phone', c.phone)
                  FROM payments_customer c
                 WHERE c.id = p.customer_id AND p.merchant_id = %s AND p.livemode = %s
                   AND coalesce(p.customer_data->>'email', '') = ''
                   AND p.id IN (SELECT id FROM payments_payment
                                 WHERE merchant_id = %s AND livemode = %s AND id >= %s
                                   AND coalesce(customer_data->>'email', '') = ''
                                 ORDER BY id LIMIT %s)
                RETURNING p.id
                """,
                [merchant_id, LIVEMODE, merchant_id, LIVEMODE, start, UPDATE_BATCH],
            )
            ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            break
        updated += len(ids)
        start = max(ids) + 1
        say(f"    {updated:,} of {missing:,}")
    return updated


def dashboard_user(merchant):
    """A staff member of the merchant (made once), whose oldest membership is this one."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from apps.merchants.models import Membership
    from apps.merchants.services import membership_add

    user, created = get_user_model().objects.get_or_create(
        username=USER_EMAIL, defaults={"email": USER_EMAIL}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    first = Membership.objects.filter(user=user).order_by("created_at", "pk").first()
    if first is None or first.merchant_id != merchant.pk:
        if first is not None:
            raise SystemExit(f"{USER_EMAIL} belongs to another merchant first: {first}")
        membership_add(merchant=merchant, user=user, role=Membership.Role.STAFF, now=timezone.now())
    return user


# --- the pages ------------------------------------------------------------------------------------

_COLUMNS = "p.*"
_ORDER = "ORDER BY p.created_at DESC, p.id DESC LIMIT %s"
_BARE_FIRST = f"SELECT {_COLUMNS} FROM payments_payment p WHERE p.merchant_id = %s AND p.livemode = %s {_ORDER}"  # noqa: E501, S608
_BARE_DEEP = (
    f"SELECT {_COLUMNS} FROM payments_payment p WHERE p.merchant_id = %s AND p.livemode = %s "  # noqa: S608
    f"AND (p.created_at, p.id) < (%s, %s) {_ORDER}"
)
_BARE_SEARCH = (
    f"SELECT {_COLUMNS} FROM payments_payment p WHERE p.merchant_id = %s AND p.livemode = %s "  # noqa: S608
    f"AND lower(p.customer_data->>'email') = %s {_ORDER}"
)


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    query: dict[str, str]  # the page's GET parameters
    sql: str  # the baseline
    params: list
    filters: object  # selectors.PaymentFilters, for EXPLAIN
    after: str | None = None


def cases(merchant_id: int, say: Say) -> list[Case]:
    from django.db import connection

    from apps.payments.selectors import PaymentFilters

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT public_id, created_at, id FROM payments_payment "
            "WHERE merchant_id = %s AND livemode = %s ORDER BY created_at DESC, id DESC "
            "OFFSET %s LIMIT 1",
            [merchant_id, LIVEMODE, DEEP_POSITION - 1],
        )
        deep_id, deep_at, deep_pk = cursor.fetchone()
        cursor.execute(
            "SELECT lower(customer_data->>'email') AS email, count(*) FROM payments_payment "
            "WHERE merchant_id = %s AND livemode = %s AND customer_data->>'email' <> '' "
            "GROUP BY 1 ORDER BY 2, 1 LIMIT 1",
            [merchant_id, LIVEMODE],
        )
        email, email_count = cursor.fetchone()
    say(
        f"  deep page: after {deep_id} (position {DEEP_POSITION:,} newest first, created "
        f"{deep_at.isoformat()}); search: {email} ({email_count:,} payments, the fewest of "
        "any email)"
    )
    scope = [merchant_id, LIVEMODE]
    limit = PAGE_ROWS + 1
    return [
        Case(
            "dashboard_list_first_page_p95_ms",
            "first page",
            {},
            _BARE_FIRST,
            [*scope, limit],
            PaymentFilters(),
        ),
        Case(
            "dashboard_list_deep_page_p95_ms",
            f"page after position {DEEP_POSITION:,}",
            {"after": deep_id},
            _BARE_DEEP,
            [*scope, deep_at, deep_pk, limit],
            PaymentFilters(),
            after=deep_id,
        ),
        Case(
            "dashboard_search_email_p95_ms",
            f"search by email, {email_count:,} matches",
            {"q": email},
            _BARE_SEARCH,
            [*scope, email, limit],
            PaymentFilters(search=email),
        ),
    ]


def bare_select(case: Case) -> tuple[float, list[str]]:
    """The baseline, timed: (ms, the public ids of the rows)."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(case.sql, case.params)
        rows = cursor.fetchall()
        elapsed = time.perf_counter() - started
        index = [column.name for column in cursor.description].index("public_id")
    return 1000 * elapsed, [row[index] for row in rows]


def page_ids(html: str, prefix: str) -> list[str]:
    """The payment links of the list, in order (one per row)."""
    return re.findall(rf'href="{re.escape(prefix)}(payment_[^"/]+)/"', html)


def measure_page(say: Say, client, url: str, case: Case) -> PageFigure:
    from django.urls import reverse

    prefix = reverse("dashboard:payment", args=["X"]).removesuffix("X/")
    figure = PageFigure(case.name, case.what)

    def view() -> tuple[float, int, str]:
        started = time.perf_counter()
        response = client.get(url, case.query)
        elapsed = time.perf_counter() - started
        return 1000 * elapsed, response.status_code, response.content.decode()

    for number in range(-WARMUPS + 1, RUNS + 1):
        # alternate which goes first, so neither always finds the other's caches
        order = ("view", "bare") if number % 2 else ("bare", "view")
        for which in order:
            if which == "bare":
                ms, expected = bare_select(case)
                if number > 0:
                    figure.bare_ms.append(ms)
            else:
                ms, status, html = view()
                if number > 0:
                    figure.view_ms.append(ms)
        if status != 200:
            raise SystemExit(f"GET {url} {case.query} answered {status}: {html[:500]!r}")
        shown = page_ids(html, prefix)
        wanted = min(PAGE_ROWS, len(expected))
        if wanted != PAGE_ROWS and case.filters.search == "":
            raise SystemExit(f"the bare SELECT of {case.what} found {len(expected)} rows")
        if shown != expected[:wanted]:
            raise SystemExit(
                f"GET {url} {case.query} showed {len(shown)} payments {shown[:3]}..., "
                f"expected the bare SELECT's {wanted} {expected[:3]}..."
            )
    say(
        f"  {case.what:<32} page p50 {statistics.median(figure.view_ms):7.2f} ms  p95 "
        f"{figure.value:7.2f} ms  max {max(figure.view_ms):7.2f} ms   bare SELECT p50 "
        f"{statistics.median(figure.bare_ms):6.2f} ms  p95 {figure.baseline:6.2f} ms  "
        f"({RUNS} runs after {WARMUPS} warm-ups; {PAGE_ROWS} rows checked each run)"
    )
    return figure


_INDEX = re.compile(
    r"(Index Only Scan|Index Scan|Bitmap Index Scan)(?: Backward)? (?:using|on) (\w+)"
)


def explain(say: Say, merchant, case: Case) -> None:
    """The selector's page query under EXPLAIN (ANALYZE, BUFFERS): one summary line."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.payments import selectors

    with CaptureQueriesContext(connection) as captured:
        selectors.dashboard_payments_page(
            merchant=merchant,
            livemode=LIVEMODE,
            filters=case.filters,
            after=case.after,
            limit=PAGE_ROWS,
        )
    pages = [q["sql"] for q in captured.captured_queries if f"LIMIT {PAGE_ROWS + 1}" in q["sql"]]
    if len(pages) != 1:
        say(f"  EXPLAIN {case.what}: {len(pages)} page queries found, not 1")
        return
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + pages[0])
        plan = [row[0] for row in cursor.fetchall()]
    text = "\n".join(plan)
    planning = re.search(r"Planning Time: ([\d.]+) ms", text)
    execution = re.search(r"Execution Time: ([\d.]+) ms", text)
    indexes = sorted({f"{name} ({kind})" for kind, name in _INDEX.findall(text)})
    removed = sum(int(n) for n in re.findall(r"Rows Removed by Filter: (\d+)", text))
    buffers = re.search(r"Buffers: (.*)", text)
    say(
        f"  EXPLAIN {case.what}: planning {planning.group(1) if planning else '?'} ms, "
        f"execution {execution.group(1) if execution else '?'} ms; "
        f"{', '.join(indexes) or 'no index'}; rows removed by filter {removed:,}; "
        f"buffers {buffers.group(1) if buffers else '?'}"
    )


# --- the export -----------------------------------------------------------------------------------


def export_period(merchant_id: int) -> tuple[datetime, datetime]:
    """From the oldest payment, a period [start, end] (both inclusive, as exports read it)
    holding exactly EXPORT_ROWS payments: end is the created_at of the EXPORT_ROWS-th oldest;
    where created_at ties around it would make the count another, the window moves on
    (both ends on distinct created_at values) to the first that holds exactly that many."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT created_at, count(*) FROM payments_payment "
            "WHERE merchant_id = %s AND livemode = %s GROUP BY 1 ORDER BY 1",
            [merchant_id, LIVEMODE],
        )
        stamps = cursor.fetchall()
    total, first = 0, 0
    for last, (_at, count) in enumerate(stamps):
        total += count
        while total > EXPORT_ROWS:
            total -= stamps[first][1]
            first += 1
        if total == EXPORT_ROWS:
            return stamps[first][0], stamps[last][0]
    raise SystemExit(f"no period holds exactly {EXPORT_ROWS:,} of the merchant's payments")


_COPY = """
COPY (
    SELECT p.public_id, p.created_at, p.state, p.origin, p.installments_count, p.deferred_days,
           p.deferred_months, p.purchase_amount, p.customer_fee, p.customer_interest,
           p.merchant_fee, p.customer_data,
           ARRAY(SELECT o.merchant_reference FROM payments_order o
                  WHERE o.payment_id = p.id AND o.detached_at IS NULL
                  ORDER BY o.created_at, o.id),
           p.accepted_at, p.custom_data
      FROM payments_payment p
     WHERE p.merchant_id = %s AND p.livemode = %s AND p.created_at >= %s AND p.created_at <= %s
     ORDER BY p.created_at, p.id
) TO STDOUT WITH CSV
"""


def timed_copy(merchant_id: int, start: datetime, end: datetime) -> float:
    """The baseline: the same rows and columns as CSV through psycopg's COPY, to a file."""
    from django.db import connection

    connection.ensure_connection()
    lines = 0
    with tempfile.TemporaryFile() as handle:
        started = time.perf_counter()
        with connection.connection.cursor() as cursor:
            with cursor.copy(_COPY, [merchant_id, LIVEMODE, start, end]) as copy:
                for chunk in copy:
                    handle.write(chunk)
            elapsed = time.perf_counter() - started
        handle.seek(0)
        lines = sum(1 for _line in handle)
    if lines != EXPORT_ROWS:
        raise SystemExit(f"COPY wrote {lines:,} lines, expected {EXPORT_ROWS:,}")
    return elapsed


def drop_queued_build(export_id: int) -> None:
    """export_request queued the build for a cluster; this process builds it instead."""
    from django_q.models import OrmQ

    from apps.payments import exports

    dropped = [
        queued.pk
        for queued in OrmQ.objects.all().only("id", "payload")
        if queued.task.get("func") == exports.BUILD_TASK
        and tuple(queued.task.get("args") or ())[:1] == (export_id,)
    ]
    OrmQ.objects.filter(pk__in=dropped).delete()


def measure_export(say: Say, merchant, user) -> ExportFigure:
    from django.core.files.storage import storages
    from django.utils import timezone

    from apps.payments import exports
    from apps.payments.models import DataExport

    start, end = export_period(merchant.pk)
    figure = ExportFigure(rows=EXPORT_ROWS, start=start, end=end)
    say(
        f"export: payments created {start.isoformat()} to {end.isoformat()} (inclusive): "
        f"{EXPORT_ROWS:,} payments"
    )
    figure.copy_s.append(timed_copy(merchant.pk, start, end))
    export = exports.export_request(
        merchant=merchant,
        livemode=LIVEMODE,
        kind=DataExport.Kind.PAYMENTS,
        start=start,
        end=end,
        origin=DataExport.Origin.DASHBOARD,
        created_by=user,
        now=timezone.now(),
    )
    drop_queued_build(export.pk)
    storage = storages["exports"]
    try:
        started = time.perf_counter()
        outcome = exports.export_build(export.pk)
        figure.build_s = time.perf_counter() - started
        export.refresh_from_db()
        if outcome != "done" or export.status != DataExport.Status.DONE:
            raise SystemExit(f"export_build said {outcome!r}: {export.status} {export.error}")
        if export.rows_total != EXPORT_ROWS or export.rows_done != EXPORT_ROWS:
            raise SystemExit(
                f"the export counted {export.rows_total} rows ({export.rows_done} done), "
                f"expected {EXPORT_ROWS:,}"
            )
        for name in (export.csv_file, export.xlsx_file):
            if not name or not storage.exists(name):
                raise SystemExit(f"the export's file {name!r} is not in the exports storage")
        with storage.open(export.csv_file, "rb") as handle:
            lines = sum(1 for _line in handle)
        if lines != EXPORT_ROWS + 1:
            raise SystemExit(f"the CSV has {lines:,} lines, expected {EXPORT_ROWS + 1:,}")
        figure.csv_bytes = storage.size(export.csv_file)
        figure.xlsx_bytes = storage.size(export.xlsx_file)
        say(
            f"  export_build: {figure.build_s:.2f} s, done, {export.rows_total:,} rows, CSV "
            f"{lines:,} lines ({figure.csv_bytes:,} bytes), XLSX {figure.xlsx_bytes:,} bytes"
        )
    finally:
        export.refresh_from_db()
        for name in (export.csv_file, export.xlsx_file):
            if name and storage.exists(name):
                storage.delete(name)
        export.delete()
    for _ in range(EXPORT_BASELINE_RUNS - 1):
        figure.copy_s.append(timed_copy(merchant.pk, start, end))
    say("  COPY ... TO STDOUT WITH CSV: " + ", ".join(f"{s:.2f} s" for s in figure.copy_s))
    return figure


# --- the run --------------------------------------------------------------------------------------


def run(say: Say) -> DashboardFigures:
    from django.test import Client
    from django.urls import reverse

    from apps.merchants.access import MODE_SESSION_KEY

    say(
        f"dashboard in process: the payment list's pages through django.test.Client (whole "
        f"response), {RUNS} runs after {WARMUPS} warm-ups, p95, vs the bare SELECT of the same "
        f"rows; an export of {EXPORT_ROWS:,} payments vs COPY"
    )
    logging.getLogger("django-q").setLevel(logging.WARNING)  # not a line per queued task
    merchant, count = ensure_payments(say)
    user = dashboard_user(merchant)
    client = Client()
    client.force_login(user)
    if LIVEMODE:
        session = client.session
        session[MODE_SESSION_KEY] = True
        session.save()
    url = reverse("dashboard:payments")
    pages = cases(merchant.pk, say)
    for case in pages:
        explain(say, merchant, case)
    figures = [measure_page(say, client, url, case) for case in pages]
    export = measure_export(say, merchant, user)
    from django.db import connection

    connection.close()
    return DashboardFigures(payments=count, pages=figures, export=export)
