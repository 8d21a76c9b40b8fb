"""Data exports: the service that builds the CSV and XLSX files, and the dashboard pages."""

import csv
import io
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.core.files.storage import storages
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from apps.common.dates import debit_time
from apps.common.money import to_cents
from apps.merchants.access import MODE_SESSION_KEY
from apps.merchants.models import FeePlan, Membership
from apps.payments import exports
from apps.payments.exports import (
    ExportInvalid,
    export_build,
    export_request,
    export_retry,
    period_of,
    plan_label,
    queries,
    service,
)
from apps.payments.models import DataExport
from apps.payments.tasks import export_build_task, requeue_stale_exports
from apps.refunds.models import Refund
from apps.schedules.services.debits import debit_run
from apps.schedules.services.dunning import dunning_advance
from tests.factories import MembershipFactory
from tests.payments.builders import payment_create_for
from tests.refunds.builders import refunded
from tests.schedules.builders import LATER_DECLINED, accepted

pytestmark = pytest.mark.django_db

OCTOBER = datetime(2026, 10, 10, 10, 0, tzinfo=UTC)
MARCH = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a quarter whose usury rates are known
HOSTILE = '=HYPERLINK("http://evil.example","click")'


@pytest.fixture(autouse=True)
def _exports_in_tmp(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "exports": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "exports"), "allow_overwrite": True},
        },
    }


@pytest.fixture
def queued(monkeypatch):
    """What export_request queues (django-q2's cluster does not run in tests)."""
    calls = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kw: calls.append(args))
    return calls


def ask(shop, kind="payments", *, days=(date(2026, 10, 1), date(2026, 10, 31)), **kwargs):
    start, end = period_of(start_date=days[0], end_date=days[1])
    fields = {"livemode": False, "origin": DataExport.Origin.DASHBOARD, "now": timezone.now()}
    return export_request(
        merchant=shop.merchant, kind=kind, start=start, end=end, **{**fields, **kwargs}
    )


def built(export) -> DataExport:
    assert export_build(export.pk) == "done"
    return DataExport.objects.get(pk=export.pk)


def csv_rows(export) -> list[dict]:
    raw = storages["exports"].open(export.csv_file, "rb").read()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads the accents right
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


def xlsx_rows(export) -> list[dict]:
    sheet = load_workbook(storages["exports"].open(export.xlsx_file, "rb")).active
    header, *rows = sheet.iter_rows(values_only=True)
    return [dict(zip(header, row, strict=True)) for row in rows]


# --- pure functions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "days", "months", "label"),
    [
        (1, 0, 0, "1x"),
        (3, 0, 0, "3x"),
        (1, 30, 0, "pay later 30 d"),
        (1, 0, 1, "pay later 1 m"),
        (3, 15, 0, "3x + 15 d"),
    ],
)
def test_plan_labels(count, days, months, label):
    assert plan_label(installments_count=count, deferred_days=days, deferred_months=months) == label


def test_a_period_runs_from_the_first_midnight_to_the_end_of_the_last_day_in_paris():
    start, end = period_of(start_date=date(2026, 10, 1), end_date=date(2026, 10, 31))

    assert start.isoformat() == "2026-10-01T00:00:00+02:00"
    assert end.isoformat() == "2026-10-31T23:59:59.999999+01:00"  # after the DST change


# --- asking --------------------------------------------------------------------------------


def test_asking_records_a_pending_export_and_queues_its_build_after_commit(
    shop, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        export = ask(shop, custom_fields=["cart_id"])
        assert queued == []

    assert queued == [(exports.BUILD_TASK, export.pk)]
    assert export.status == DataExport.Status.PENDING
    assert export.public_id.startswith("export_")
    assert export.custom_fields == ["cart_id"]


@pytest.mark.parametrize(
    ("days", "field", "message"),
    [
        ((date(2026, 10, 31), date(2026, 10, 1)), "end", "ends before it starts"),
        ((date(2025, 1, 1), date(2026, 1, 31)), "end", "at most 366 days"),
    ],
)
def test_a_bad_period_is_refused(shop, queued, days, field, message):
    with pytest.raises(ExportInvalid) as caught:
        ask(shop, days=days)

    assert caught.value.field == field and message in caught.value.message
    assert not DataExport.objects.exists()


def test_an_unknown_kind_is_refused(shop):
    with pytest.raises(ExportInvalid):
        ask(shop, kind="everything")


def test_custom_fields_come_as_a_joined_string_or_a_list():
    assert exports.parse_custom_fields("cart_id, id_order,,cart_id") == ["cart_id", "id_order"]
    assert exports.parse_custom_fields(["a", "b"]) == ["a", "b"]
    with pytest.raises(ExportInvalid):
        exports.parse_custom_fields([1])


# --- building --------------------------------------------------------------------------------


def test_a_payments_export_lists_the_periods_payments_in_csv_and_xlsx(shop, queued):
    payment = accepted(shop, when=OCTOBER, custom_data={"cart_id": "42", "id_order": 7})
    accepted(shop, when=OCTOBER - timedelta(days=20))  # September: outside the period
    payment_create_for(shop, livemode=True, now=OCTOBER)  # live: another file

    export = built(ask(shop, custom_fields=["cart_id", "id_order", "missing"]))

    [line] = csv_rows(export)
    assert line["id"] == payment.public_id
    assert line["created"] == "2026-10-10T12:00:00+02:00"
    assert line["state"] == "in_progress"
    assert line["plan"] == "4x"
    assert (line["purchase_amount"], line["purchase_amount_cents"]) == ("400.00", "40000")
    assert line["merchant_fee_cents"] == str(int(payment.merchant_fee.amount * 100))
    assert line["customer_email"] == "camille.martin@example.com"
    assert line["customer_phone"] == "'+33612345678"  # a leading + is a formula to Excel
    assert line["order_references"] == "A-1001"
    assert line["accepted_at"] == "2026-10-10T12:00:00+02:00"
    assert line["custom_data.cart_id"] == "42"
    assert line["custom_data.id_order"] == "7"
    assert line["custom_data.missing"] == ""
    [cells] = xlsx_rows(export)
    assert cells["purchase_amount"] == 400 and cells["purchase_amount_cents"] == 40000
    assert cells["id"] == payment.public_id and cells["custom_data.cart_id"] == "42"
    assert (export.status, export.rows_total, export.rows_done) == ("done", 1, 1)
    assert export.completed_at is not None
    assert export.csv_file == f"{shop.merchant.public_id}/{export.public_id}.csv"


def test_an_empty_period_gives_files_with_only_headers(shop, queued):
    export = built(ask(shop))

    assert csv_rows(export) == []
    assert xlsx_rows(export) == []
    raw = storages["exports"].open(export.csv_file, "rb").read().decode("utf-8-sig")
    assert raw.splitlines()[0].startswith("id,created,state,origin,plan,purchase_amount,")
    assert (export.rows_total, export.rows_done) == (0, 0)


def test_a_hostile_customer_name_comes_out_quoted_in_csv_and_xlsx(shop, queued):
    accepted(shop, when=OCTOBER, customer={"first_name": "@x", "last_name": HOSTILE})

    export = built(ask(shop))

    [line] = csv_rows(export)
    [cells] = xlsx_rows(export)
    assert line["customer_last_name"] == "'" + HOSTILE
    assert line["customer_first_name"] == "'@x"
    assert cells["customer_last_name"] == "'" + HOSTILE
    sheet = load_workbook(storages["exports"].open(export.xlsx_file, "rb")).active
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)


def test_an_instalments_export_lists_instalments_due_in_the_period(shop, queued):
    payment = accepted(shop, when=datetime(2026, 9, 20, 10, 0, tzinfo=UTC))
    payment_create_for(shop, now=OCTOBER)  # never accepted: its plan is not a schedule

    export = built(ask(shop, kind="instalments"))

    lines = csv_rows(export)
    due = [i for i in payment.instalments.order_by("number") if i.due_date.month == 10]
    assert [line["instalment_id"] for line in lines] == [i.public_id for i in due]
    first = lines[0]
    assert first["payment_id"] == payment.public_id
    assert first["due_date"] == due[0].due_date.isoformat()
    assert first["state"] == "pending" and first["payment_state"] == "in_progress"
    assert int(first["total_amount_cents"]) == int(due[0].total_amount.amount * 100)


def test_the_task_run_twice_makes_one_file_and_one_done_export(shop, queued):
    accepted(shop, when=OCTOBER)
    export = ask(shop)

    first = export_build_task(export.pk)
    second = export_build_task(export.pk)

    assert (first, second) == ("done", "already done")
    folder = storages["exports"].path(shop.merchant.public_id)
    names = sorted(p.name for p in Path(folder).iterdir())
    assert names == [f"{export.public_id}.csv", f"{export.public_id}.xlsx"]
    assert DataExport.objects.filter(status="done").count() == 1


def test_a_build_in_progress_is_left_alone_and_a_silent_one_is_taken_over(shop, queued):
    accepted(shop, when=OCTOBER)
    export = ask(shop)
    DataExport.objects.filter(pk=export.pk).update(
        status="running", updated_at=timezone.now() - timedelta(minutes=2)
    )

    assert export_build(export.pk) == "busy"

    DataExport.objects.filter(pk=export.pk).update(
        updated_at=timezone.now() - timedelta(minutes=11)
    )
    assert export_build(export.pk) == "done"
    assert DataExport.objects.get(pk=export.pk).rows_done == 1


def test_builds_left_pending_or_silent_are_queued_again(shop, queued):
    fresh, pending, running, done = ask(shop), ask(shop), ask(shop), built(ask(shop))
    long_ago = timezone.now() - timedelta(minutes=11)
    DataExport.objects.filter(pk__in=[pending.pk, done.pk]).update(updated_at=long_ago)
    DataExport.objects.filter(pk=running.pk).update(status="running", updated_at=long_ago)

    assert requeue_stale_exports() == 2

    assert sorted(queued) == sorted(
        [(exports.BUILD_TASK, pending.pk), (exports.BUILD_TASK, running.pk)]
    )
    assert fresh.pk not in [export_id for _task, export_id in queued]


def test_a_worker_whose_build_was_taken_over_does_not_finish_it(shop, queued, monkeypatch):
    accepted(shop, when=OCTOBER)
    export = ask(shop)
    real_update = service._Fence.update

    def taken_over_midway(fence, **fields):
        if "status" in fields:  # another worker reclaimed it meanwhile
            DataExport.objects.filter(pk=fence.pk).update(updated_at=timezone.now())
        return real_update(fence, **fields)

    monkeypatch.setattr(service._Fence, "update", taken_over_midway)

    assert export_build(export.pk) == "lost"
    assert DataExport.objects.get(pk=export.pk).status == "running"


def test_progress_is_saved_as_rows_are_written(shop, queued, monkeypatch):
    for day in range(5):
        accepted(shop, when=OCTOBER + timedelta(days=day), installments_count=3)
    monkeypatch.setattr(service, "PROGRESS_EVERY", 2)
    seen = []
    real_update = service._Fence.update

    def spy(fence, **fields):
        real_update(fence, **fields)
        row = DataExport.objects.get(pk=fence.pk)
        seen.append((row.status, row.rows_done, row.rows_total))

    monkeypatch.setattr(service._Fence, "update", spy)

    built(ask(shop))

    assert seen[0] == ("running", 0, 5)
    assert ("running", 2, 5) in seen and ("running", 4, 5) in seen
    assert seen[-1] == ("done", 5, 5)


def test_an_error_marks_the_export_failed_and_it_can_be_tried_again(shop, queued, monkeypatch):
    accepted(shop, when=OCTOBER)
    export = ask(shop)

    def broken(raw, fields):
        raise ValueError("boom")

    monkeypatch.setattr(queries, "payment_row", broken)
    assert export_build(export.pk) == "failed"
    failed = DataExport.objects.get(pk=export.pk)
    assert failed.status == "failed" and "ValueError" in failed.error
    assert export_build(export.pk) == "failed"  # a replayed task does not retry by itself

    monkeypatch.undo()
    export_retry(export=failed, now=timezone.now())
    assert export_build(export.pk) == "done"
    assert DataExport.objects.get(pk=export.pk).error == ""


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_build_the_export_once(shop, monkeypatch):
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kw: None)
    accepted(shop, when=OCTOBER)
    export = ask(shop)
    barrier = threading.Barrier(2)
    outcomes = []

    def worker():
        try:
            barrier.wait()
            outcomes.append(export_build(export.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes)[-1] == "done"
    assert outcomes.count("done") == 1
    assert set(outcomes) <= {"done", "busy", "already done"}
    assert DataExport.objects.get(pk=export.pk).status == "done"


def test_a_refunds_export_lists_the_periods_refunds_with_their_allocation(shop, queued):
    payment = accepted(shop, when=OCTOBER, custom_data={"cart_id": "42"})
    partial = refunded(
        payment,
        amount=15_000,
        when=OCTOBER + timedelta(days=1),
        merchant_reference="RMA-7",
        comment="Damaged box",
    )
    full = refunded(
        payment, amount=None, when=OCTOBER + timedelta(days=2), origin=Refund.Origin.DASHBOARD
    )
    earlier = accepted(shop, when=OCTOBER - timedelta(days=30))
    refunded(earlier, amount=1_000, when=OCTOBER - timedelta(days=29))  # September

    export = built(ask(shop, kind="refunds", custom_fields=["cart_id"]))

    first, second = csv_rows(export)
    assert (first["refund_id"], second["refund_id"]) == (partial.public_id, full.public_id)
    assert first["payment_id"] == payment.public_id
    assert first["refunded_at"] == "2026-10-11T12:00:00+02:00"
    assert (first["state"], first["origin"]) == ("succeeded", "api")
    assert (first["merchant_reference"], first["comment"]) == ("RMA-7", "Damaged box")
    assert (first["amount"], first["amount_cents"]) == ("150.00", "15000")
    assert first["owed_cancelled_cents"] == "15000"  # from the last instalments
    assert first["back_to_card_cents"] == "0"
    assert first["custom_data.cart_id"] == "42"
    # What was left: 150 € still owed cancelled, the 100 € paid back to the card.
    assert (second["origin"], second["amount_cents"]) == ("dashboard", "25000")
    assert second["owed_cancelled_cents"] == "15000"
    assert second["back_to_card_cents"] == str(to_cents(full.back_to_card)) == "10000"
    assert (second["customer_fee_refunded_cents"], second["interest_refunded_cents"]) == ("0", "0")
    [cells, _full] = xlsx_rows(export)
    assert cells["amount"] == 150 and cells["amount_cents"] == 15000
    assert cells["refund_id"] == partial.public_id and cells["custom_data.cart_id"] == "42"
    assert (export.rows_total, export.rows_done) == (2, 2)


def test_a_complete_refund_exports_the_customer_fees_given_back(shop, queued):
    FeePlan.objects.filter(merchant=shop.merchant, kind="general", installments_count=4).update(
        customer_fee_variable=232
    )
    payment = accepted(shop, when=MARCH)
    assert to_cents(payment.customer_fee) == 928  # paid with the first instalment
    refunded(payment, amount=None, when=MARCH + timedelta(days=1))

    export = built(ask(shop, kind="refunds", days=(date(2026, 3, 1), date(2026, 3, 31))))

    [line] = csv_rows(export)
    assert (line["amount_cents"], line["owed_cancelled_cents"]) == ("40000", "30000")
    assert (line["customer_fee_refunded"], line["customer_fee_refunded_cents"]) == ("9.28", "928")
    assert line["interest_refunded_cents"] == "0"
    assert line["back_to_card_cents"] == str(10_000 + 928)


def test_a_complete_refund_exports_the_interest_given_back(shop, queued):
    payment = accepted(shop, when=MARCH, installments_count=10, amount=100_000)
    second = payment.instalments.get(number=2)
    with time_machine.travel(debit_time(second.due_date, hour=8), tick=False):
        debit_run(now=debit_time(second.due_date, hour=8))
    second.refresh_from_db()
    assert second.state == "paid" and to_cents(second.customer_interest) > 0
    paid = payment.instalments.filter(state="paid").order_by("number")
    refund = refunded(payment, amount=None, when=debit_time(second.due_date, hour=9))

    export = built(ask(shop, kind="refunds", days=(date(2026, 3, 1), date(2026, 5, 31))))

    [line] = csv_rows(export)
    interest = sum(to_cents(row.customer_interest) for row in paid)
    assert interest > 0 and to_cents(refund.interest_refunded) == interest
    assert line["interest_refunded_cents"] == str(interest)
    assert line["customer_fee_refunded_cents"] == "0"
    # Everything the card paid comes back: principal and interest of the paid instalments.
    assert line["back_to_card_cents"] == str(sum(to_cents(row.total_amount) for row in paid))


def test_a_refund_in_default_exports_the_written_off_part_as_cancelled(shop, queued):
    payment = accepted(shop, when=MARCH, card_number=LATER_DECLINED)
    start = debit_time(payment.instalments.get(number=2).due_date, hour=8)
    for day in range(18):  # the second instalment declined until the payment is in default
        at = start + timedelta(days=day, minutes=1)
        with time_machine.travel(at, tick=False):
            debit_run(now=at)
            dunning_advance(now=at)
    payment.refresh_from_db()
    assert payment.state == "default"
    refund = refunded(payment, amount=None, when=start + timedelta(days=20))
    assert to_cents(refund.written_off_cancelled) == 30_000

    export = built(ask(shop, kind="refunds", days=(date(2026, 3, 1), date(2026, 5, 31))))

    [line] = csv_rows(export)
    assert (line["owed_cancelled"], line["owed_cancelled_cents"]) == ("300.00", "30000")
    assert line["back_to_card_cents"] == "10000"


def test_a_hostile_refund_reference_and_comment_come_out_quoted(shop, queued):
    payment = accepted(shop, when=OCTOBER)
    refunded(
        payment,
        amount=1_000,
        when=OCTOBER + timedelta(days=1),
        merchant_reference="+33 1 23",
        comment=HOSTILE,
    )

    export = built(ask(shop, kind="refunds"))

    [line] = csv_rows(export)
    [cells] = xlsx_rows(export)
    assert line["merchant_reference"] == "'+33 1 23"
    assert line["comment"] == cells["comment"] == "'" + HOSTILE
    sheet = load_workbook(storages["exports"].open(export.xlsx_file, "rb")).active
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)


def test_a_refunds_export_leaves_out_other_merchants_and_the_other_mode(shop, other_shop, queued):
    refunded(accepted(other_shop, when=OCTOBER), amount=1_000, when=OCTOBER + timedelta(days=1))
    refunded(accepted(shop, when=OCTOBER), amount=1_000, when=OCTOBER + timedelta(days=1))

    live = built(ask(shop, kind="refunds", livemode=True))
    other = built(ask(other_shop, kind="refunds"))

    assert csv_rows(live) == []
    assert len(csv_rows(other)) == 1


def test_a_refunds_export_without_refunds_has_its_headers(shop, queued):
    accepted(shop, when=OCTOBER)

    export = built(ask(shop, kind="refunds"))

    raw = storages["exports"].open(export.csv_file, "rb").read().decode("utf-8-sig")
    assert raw.splitlines() == [
        "refund_id,payment_id,refunded_at,state,origin,merchant_reference,comment,"
        "amount,amount_cents,owed_cancelled,owed_cancelled_cents,back_to_card,"
        "back_to_card_cents,customer_fee_refunded,customer_fee_refunded_cents,"
        "interest_refunded,interest_refunded_cents"
    ]


def test_a_ledger_export_lists_the_merchants_own_account_lines(shop, queued):
    payment = accepted(shop, when=OCTOBER)
    fee = int(payment.merchant_fee.amount * 100)

    export = built(ask(shop, kind="ledger"))

    lines = csv_rows(export)
    assert [(line["recipe"], line["account"]) for line in lines] == [
        ("payment_captured", "merchant_balance")
    ]
    assert lines[0]["reference"] == payment.public_id
    assert lines[0]["credit_cents"] == str(40000 - fee) and lines[0]["debit_cents"] == "0"


# --- dashboard ------------------------------------------------------------------------------


@pytest.fixture
def staff_client(client, shop):
    member = MembershipFactory(merchant=shop.merchant, role=Membership.Role.STAFF).user
    client.force_login(member)
    return client


def page_url(export) -> str:
    return reverse("dashboard:export", kwargs={"export_id": export.public_id})


def test_the_exports_page_offers_the_last_30_days_and_says_when_there_is_none(staff_client):
    with time_machine.travel(OCTOBER, tick=False):
        response = staff_client.get(reverse("dashboard:exports"), HTTP_ACCEPT_LANGUAGE="en")

    body = response.content.decode()
    assert response.status_code == 200
    assert 'value="2026-09-11"' in body and 'value="2026-10-10"' in body
    assert 'name="csrfmiddlewaretoken"' in body
    assert "No exports yet" in body


def test_the_exports_page_renders_in_french(client, shop):
    client.force_login(shop.owner)

    response = client.get(reverse("dashboard:exports"))

    assert response.status_code == 200
    assert response.headers["Content-Language"] == "fr"


def test_staff_ask_for_an_export_and_download_its_files(staff_client, shop, queued):
    payment = accepted(shop, when=OCTOBER)

    response = staff_client.post(
        reverse("dashboard:exports"),
        {"kind": "payments", "start": "2026-10-01", "end": "2026-10-31"},
    )

    export = DataExport.objects.get()
    assert response.status_code == 302 and response.url == page_url(export)
    assert export.origin == "dashboard" and not export.livemode
    waiting = staff_client.get(page_url(export)).content.decode()
    assert "<progress" in waiting and "export-progress.js" in waiting
    assert 'http-equiv="refresh"' in waiting
    export_build(export.pk)
    done = staff_client.get(page_url(export)).content.decode()
    csv_url = reverse("dashboard:export-download", args=[export.public_id, "csv"])
    assert csv_url in done and "<progress" not in done
    download = staff_client.get(csv_url)
    assert download.status_code == 200
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    assert download["Content-Disposition"] == (
        'attachment; filename="tranche-payments-2026-10-01-2026-10-31.csv"'
    )
    assert payment.public_id in b"".join(download.streaming_content).decode("utf-8-sig")
    xlsx = staff_client.get(reverse("dashboard:export-download", args=[export.public_id, "xlsx"]))
    assert xlsx["Content-Type"] == exports.CONTENT_TYPES["xlsx"]
    listed = staff_client.get(reverse("dashboard:exports")).content.decode()
    assert csv_url in listed and 'class="badge done"' in listed


def test_the_progress_json_feeds_the_pages_script(staff_client, shop, queued):
    export = ask(shop)
    DataExport.objects.filter(pk=export.pk).update(status="running", rows_total=10, rows_done=4)

    data = staff_client.get(page_url(export), {"format": "json"}, HTTP_ACCEPT_LANGUAGE="en").json()

    assert data == {
        "id": export.public_id,
        "status": "running",
        "status_label": "Being built",
        "rows_done": 4,
        "rows_total": 10,
        "complete": False,
    }


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"kind": "payments", "start": "2026-10-31", "end": "2026-10-01"}, "comes before"),
        ({"kind": "payments", "start": "2024-01-01", "end": "2026-10-01"}, "at most 366 days"),
        ({"kind": "payments", "start": "junk", "end": "2026-10-01"}, "Enter a valid date"),
        ({"kind": "everything", "start": "2026-10-01", "end": "2026-10-02"}, "valid choice"),
    ],
)
def test_bad_dates_in_the_form_are_explained(staff_client, data, error, queued):
    response = staff_client.post(reverse("dashboard:exports"), data, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    assert error in response.content.decode()
    assert not DataExport.objects.exists()


def test_a_failed_export_shows_its_error_and_can_be_tried_again(
    staff_client, shop, queued, django_capture_on_commit_callbacks
):
    export = ask(shop)
    DataExport.objects.filter(pk=export.pk).update(status="failed", error="The file broke.")

    page = staff_client.get(page_url(export), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(page_url(export), {"action": "retry"})

    assert "The file broke." in page and 'value="retry"' in page
    assert response.status_code == 302
    assert DataExport.objects.get(pk=export.pk).status == "pending"
    assert queued == [(exports.BUILD_TASK, export.pk)]


def test_a_merchant_gets_404_for_another_merchants_export(client, shop, other_shop, queued):
    export = built(ask(other_shop))
    client.force_login(shop.owner)

    for url in (
        page_url(export),
        page_url(export) + "?format=json",
        reverse("dashboard:export-download", args=[export.public_id, "csv"]),
        reverse("dashboard:export-download", args=[export.public_id, "xlsx"]),
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(page_url(export), {"action": "retry"}).status_code == 404
    assert export.public_id not in client.get(reverse("dashboard:exports")).content.decode()


def test_a_test_export_is_not_shown_in_live_mode(client, shop, queued):
    export = built(ask(shop))
    client.force_login(shop.owner)
    session = client.session
    session[MODE_SESSION_KEY] = True
    session.save()

    assert client.get(page_url(export)).status_code == 404
    assert (
        client.get(reverse("dashboard:export-download", args=[export.public_id, "csv"])).status_code
        == 404
    )


def test_a_file_is_not_served_before_it_is_done_nor_in_an_unknown_format(
    staff_client, shop, queued
):
    export = ask(shop)

    assert (
        staff_client.get(
            reverse("dashboard:export-download", args=[export.public_id, "csv"])
        ).status_code
        == 404
    )
    built(export)
    assert (
        staff_client.get(
            reverse("dashboard:export-download", args=[export.public_id, "pdf"])
        ).status_code
        == 404
    )
