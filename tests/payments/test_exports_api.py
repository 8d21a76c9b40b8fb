"""``/v1/data-exports`` (contract section 2, #23), with DRF's client and with Alma's official
Python client against a real server (contract 9.2, step 14)."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from alma_client import Client
from alma_client.entities import ExportFormat, ExportType
from alma_client.request import RequestError
from django.core.files.storage import storages
from django.utils import timezone
from openpyxl import load_workbook

from apps.ledger.services.payouts import payout_create, payout_run_open
from apps.merchants.models import Merchant
from apps.payments.exports import export_build
from apps.payments.models import DataExport
from tests.schedules.builders import accepted

pytestmark = pytest.mark.django_db

OCTOBER = datetime(2026, 10, 10, 10, 0, tzinfo=UTC)
START = int(datetime(2026, 10, 1, tzinfo=UTC).timestamp())
END = int(datetime(2026, 10, 31, 23, 59, tzinfo=UTC).timestamp())
FORMATS = ("csv", "xlsx", "pdf", "xml", "zip")
FILE_KEYS = [f"url_{k}" for k in FORMATS] + [f"{k}_url" for k in FORMATS]


@pytest.fixture(autouse=True)
def _exports_in_tmp(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "exports": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "exports"), "allow_overwrite": True},
        },
    }


@pytest.fixture(autouse=True)
def _no_queue(monkeypatch):
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kw: None)


def create(shop, body, *, live=False):
    return shop.client(live=live).post("/v1/data-exports", body, format="json")


def build(export_id: str) -> None:
    assert export_build(DataExport.objects.get(public_id=export_id).pk) == "done"


def test_creating_an_export_answers_it_pending_with_both_url_spellings(shop):
    response = create(
        shop, {"type": "payments", "start": START, "end": END, "custom_fields": "cart_id,x"}
    )

    body = response.json()
    assert response.status_code == 200
    assert body["id"].startswith("export_")
    assert body["type"] == "payments" and body["complete"] is False
    assert (body["start"], body["end"]) == (START, END)
    assert body["merchant"] == shop.merchant.public_id
    assert body["custom_fields"] == ["cart_id", "x"]
    assert body["include_child_accounts"] is False
    assert isinstance(body["created"], int) and isinstance(body["updated"], int)
    assert all(key in body and body[key] is None for key in FILE_KEYS)
    export = DataExport.objects.get(public_id=body["id"])
    assert (export.kind, export.api_type, export.origin) == ("payments", "payments", "api")


def test_a_complete_export_gives_its_files_at_both_urls(shop):
    payment = accepted(shop, when=OCTOBER, custom_data={"cart_id": "42"})
    export_id = create(
        shop, {"type": "payments", "start": START, "end": END, "custom_fields": ["cart_id"]}
    ).json()["id"]
    build(export_id)

    body = shop.client().get(f"/v1/data-exports/{export_id}").json()
    csv_file = shop.client().get(f"/v1/data-exports/{export_id}", {"format": "csv"})
    xlsx_file = shop.client().get(f"/v1/data-exports/{export_id}?format=xlsx")

    assert body["complete"] is True and body["status"] == "done"
    assert (
        body["url_csv"]
        == body["csv_url"]
        == f"http://testserver/v1/data-exports/{export_id}?format=csv"
    )
    assert body["url_xlsx"] == body["xlsx_url"]
    assert body["url_xlsx"].endswith("?format=xlsx")
    assert body["url_pdf"] is None and body["zip_url"] is None
    assert body["rows_total"] == body["rows_done"] == 1
    assert csv_file.status_code == 200 and csv_file["Content-Type"] == "text/csv; charset=utf-8"
    [line] = csv.DictReader(io.StringIO(b"".join(csv_file.streaming_content).decode("utf-8-sig")))
    assert line["id"] == payment.public_id and line["custom_data.cart_id"] == "42"
    sheet = load_workbook(io.BytesIO(b"".join(xlsx_file.streaming_content))).active
    assert sheet.cell(row=2, column=1).value == payment.public_id


def test_a_file_asked_for_too_early_is_a_409_and_an_unknown_format_a_400(shop):
    export_id = create(shop, {"type": "payments", "start": START, "end": END}).json()["id"]

    early = shop.client().get(f"/v1/data-exports/{export_id}?format=csv")
    unknown = shop.client().get(f"/v1/data-exports/{export_id}?format=pdf")

    assert early.status_code == 409
    assert early.json()["error_code"] == "export_not_ready"
    assert "not complete" in early.json()["message"]
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["field"] == "format"


def test_the_list_pages_newest_first_five_by_default(shop):
    ids = [
        create(shop, {"type": "payments", "start": START, "end": END}).json()["id"]
        for _ in range(6)
    ]

    first = shop.client().get("/v1/data-exports").json()
    second = (
        shop.client().get("/v1/data-exports", {"starting_after": first["data"][-1]["id"]}).json()
    )
    unknown = shop.client().get("/v1/data-exports", {"starting_after": "export_nope"}).json()
    small = shop.client().get("/v1/data-exports", {"limit": "2"}).json()

    assert [e["id"] for e in first["data"]] == ids[::-1][:5] and first["has_more"] is True
    assert [e["id"] for e in second["data"]] == ids[:1] and second["has_more"] is False
    assert unknown == {"data": [], "has_more": False}
    assert len(small["data"]) == 2


def test_an_id_without_its_prefix_is_accepted(shop):
    export_id = create(shop, {"type": "payments", "start": START, "end": END}).json()["id"]

    response = shop.client().get(f"/v1/data-exports/{export_id.removeprefix('export_')}")

    assert response.status_code == 200 and response.json()["id"] == export_id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "payments", "start": "yesterday", "end": END}, "start"),
        ({"type": "payments", "start": -5, "end": END}, "start"),
        ({"type": "payments", "start": 1.5, "end": END}, "start"),
        ({"type": "payments", "end": 10**12}, "end"),
        ({"type": "everything"}, "type"),
        ({}, "type"),
        ({"type": "payments", "custom_fields": [1, 2]}, "custom_fields"),
        ({"type": "payments", "custom_fields": ",".join(["k"] * 21)}, "custom_fields"),
        ({"type": "payments", "custom_fields": "x" * 101}, "custom_fields"),
    ],
)
def test_malformed_bodies_are_400s_naming_the_field(shop, body, field):
    response = create(shop, body)

    data = response.json()
    assert response.status_code == 400
    assert data["error_code"] == "validation_error" and data["message"]
    assert data["errors"][0]["field"] == field
    assert not DataExport.objects.exists()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"type": "payments", "start": END, "end": START}, "end", "ends before it starts"),
        ({"type": "payments", "start": START - 400 * 86400, "end": END}, "end", "366 days"),
        ({"type": "payments", "start": 4_000_000_000}, "end", "ends before it starts"),
        ({"type": "accounting_for_payout"}, "payout", "needs a payout"),
        ({"type": "payments", "payout": "payout_x"}, "payout", "goes with"),
    ],
)
def test_exports_that_cannot_be_made_as_asked_are_refused_naming_the_field(
    shop, body, field, message
):
    response = create(shop, body)

    data = response.json()
    assert response.status_code == 403
    assert data["error_code"] == "export_refused" and message in data["message"]
    assert data["errors"][0]["field"] == field
    assert not DataExport.objects.exists()


def test_an_unknown_payout_is_a_404(shop, other_shop):
    response = create(shop, {"type": "accounting_for_payout", "payout": "payout_nope"})

    assert response.status_code == 404
    assert response.json()["object_type"] == "payout"


def test_without_dates_the_export_covers_the_last_30_days(shop):
    body = create(shop, {"type": "accounting"}).json()

    assert body["type"] == "accounting"
    assert body["end"] - body["start"] == 30 * 86400
    assert abs(body["end"] - int(timezone.now().timestamp())) < 60
    assert DataExport.objects.get().kind == "ledger"


def pay_out(shop, when):
    with time_machine.travel(when, tick=False):
        run = payout_run_open(run_date=when.date(), livemode=False, now=when)
        return payout_create(run=run, merchant=shop.merchant, now=when)


def test_an_accounting_export_for_a_payout_lists_the_lines_since_the_previous_payout(shop):
    Merchant.objects.filter(pk=shop.merchant.pk).update(
        payout_iban="FR7630006000011234567890189", settlement_delay_days=0
    )
    accepted(shop, when=OCTOBER)
    pay_out(shop, OCTOBER + timedelta(days=1))
    second_sale = accepted(shop, when=OCTOBER + timedelta(days=2))
    payout = pay_out(shop, OCTOBER + timedelta(days=3))

    body = create(shop, {"type": "accounting_for_payout", "payout": payout.public_id}).json()
    build(body["id"])
    csv_file = shop.client().get(f"/v1/data-exports/{body['id']}?format=csv")

    assert body["payout"] == payout.public_id
    assert body["start"] == int((OCTOBER + timedelta(days=1)).timestamp())
    assert body["end"] == int(payout.created_at.timestamp())
    text = b"".join(csv_file.streaming_content).decode("utf-8-sig")
    lines = list(csv.DictReader(io.StringIO(text)))
    assert [(line["recipe"], line["reference"], line["account"]) for line in lines] == [
        ("payment_captured", second_sale.public_id, "merchant_balance"),
        ("payout_sent", payout.public_id, "merchant_balance"),
        ("payout_sent", payout.public_id, "payouts_in_transit"),
    ]
    assert csv_file["Content-Disposition"].endswith(
        f'tranche-accounting-for-payout-{payout.public_id}.csv"'
    )


def test_another_merchants_export_or_the_other_modes_is_a_404(shop, other_shop):
    export_id = create(other_shop, {"type": "payments", "start": START, "end": END}).json()["id"]
    build(export_id)
    mine = create(shop, {"type": "payments", "start": START, "end": END}).json()["id"]

    foreign = shop.client().get(f"/v1/data-exports/{export_id}")
    foreign_file = shop.client().get(f"/v1/data-exports/{export_id}?format=csv")
    live = shop.client(live=True).get(f"/v1/data-exports/{mine}")
    listed = shop.client(live=True).get("/v1/data-exports").json()

    assert foreign.status_code == foreign_file.status_code == live.status_code == 404
    assert foreign.json()["object_type"] == "export"
    assert listed == {"data": [], "has_more": False}


def test_a_bad_key_is_a_401(anonymous):
    assert anonymous.get("/v1/data-exports").status_code == 401


def test_the_schema_documents_the_exports(client):
    schema = client.get("/v1/schema")

    text = schema.content.decode()
    assert schema.status_code == 200
    assert "data_exports_create" in text and "data_exports_fetch" in text


# --- Alma's official client against a live server --------------------------------------


@pytest.fixture
def alma(live_server, shop):
    return Client.with_api_key(shop.test_key, api_root=live_server.url)


def test_the_official_client_creates_fetches_lists_and_downloads_an_export(alma, shop):
    payment = accepted(shop, when=OCTOBER, custom_data={"cart_id": "42"})

    created = alma.exports.create(
        ExportType.PAYMENTS,
        start=datetime(2026, 10, 1, tzinfo=UTC),
        end=datetime(2026, 10, 31, tzinfo=UTC),
        custom_fields=["cart_id"],
    )
    with pytest.raises(RequestError) as early:
        alma.exports.get_file(created.id, ExportFormat.CSV)
    build(created.id)
    fetched = alma.exports.fetch(created.id)
    page = alma.exports.fetch_all()
    content = alma.exports.get_file(created.id, ExportFormat.CSV).read().decode("utf-8-sig")
    xlsx = alma.exports.get_file(created.id, ExportFormat.XLSX)

    assert early.value.response.status_code == 409
    assert created.complete is False and created.type == "payments"
    assert fetched.complete is True and fetched.url_csv and fetched.csv_url
    assert [e.id for e in page] == [created.id]
    assert payment.public_id in content and "custom_data.cart_id" in content
    assert load_workbook(xlsx).active.cell(row=2, column=1).value == payment.public_id
    with pytest.raises(RequestError) as missing:
        alma.exports.fetch("export_unknown")
    assert missing.value.response.status_code == 404
    stored = storages["exports"].listdir(shop.merchant.public_id)[1]
    assert sorted(stored) == [f"{created.id}.csv", f"{created.id}.xlsx"]


def test_a_failed_export_or_a_lost_file_answers_clearly(shop, client):
    failed = create(shop, {"type": "payments", "start": START, "end": END}).json()["id"]
    DataExport.objects.filter(public_id=failed).update(status="failed", error="x")
    lost = create(shop, {"type": "payments", "start": START, "end": END}).json()["id"]
    build(lost)
    storages["exports"].delete(DataExport.objects.get(public_id=lost).csv_file)

    failed_file = shop.client().get(f"/v1/data-exports/{failed}?format=csv")
    lost_file = shop.client().get(f"/v1/data-exports/{lost}?format=csv")
    client.force_login(shop.owner)
    lost_page = client.get(f"/dashboard/exports/{lost}/csv/")

    assert failed_file.status_code == 409 and "failed" in failed_file.json()["message"]
    assert lost_file.status_code == 404 and lost_file.json()["object_type"] == "export file"
    assert lost_page.status_code == 404
