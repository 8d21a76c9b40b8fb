"""In-store payments reconcile like online ones: the dashboard's list and page, the
payments export and the ledger export (a payout's) name their terminal and staff member."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest
from django.core.files.storage import storages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from apps.payments.exports import export_build, export_request, period_of, queries
from apps.payments.models import DataExport, Payment
from apps.pos import services
from tests.payments.builders import payment_create_for
from tests.pos.helpers import started, terminal_for
from tests.schedules.builders import accepted

pytestmark = pytest.mark.django_db

OCTOBER = datetime(2026, 10, 10, 10, 0, tzinfo=UTC)
with translation.override("fr"):  # stored in the merchants' language, whoever's page made it
    VIRTUAL = gettext("Virtual terminal")


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
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kwargs: None)


def in_store_payment(shop, *, terminal=None, staff_name="Léa") -> Payment:
    """A payment made from an in-store session: the customer chose 3x."""
    session = started(shop, terminal=terminal, staff_name=staff_name)
    return services.session_choose_plan(session_id=session.pk, key="3_0_0", now=timezone.now())


def _export(shop, kind: str, days: tuple[date, date]) -> DataExport:
    start, end = period_of(start_date=days[0], end_date=days[1])
    export = export_request(
        merchant=shop.merchant,
        kind=kind,
        start=start,
        end=end,
        livemode=False,
        origin=DataExport.Origin.DASHBOARD,
        now=timezone.now(),
    )
    assert export_build(export.pk) == "done"
    return DataExport.objects.get(pk=export.pk)


def _rows(export: DataExport) -> list[dict]:
    raw = storages["exports"].open(export.csv_file, "rb").read()
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


# --- the dashboard ---------------------------------------------------------------------------


def test_an_in_store_payment_carries_its_terminal_and_staff_member(shop):
    terminal, _ = terminal_for(shop, name="Caisse 1")

    from_terminal = in_store_payment(shop, terminal=terminal, staff_name="Marc")
    from_dashboard = in_store_payment(shop, staff_name="Léa")

    assert from_terminal.origin == Payment.Origin.POS_DEVICE
    assert (from_terminal.terminal_name, from_terminal.staff_member) == ("Caisse 1", "Marc")
    assert from_dashboard.terminal_name == VIRTUAL
    assert from_dashboard.staff_member == "Léa"


def test_the_list_shows_the_channel_terminal_and_staff_and_filters_in_store(client, shop):
    pos = in_store_payment(shop)
    online = payment_create_for(shop)
    client.force_login(shop.owner)
    url = reverse("dashboard:payments")

    everything = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    in_store = client.get(url, {"origin": "pos"}).content.decode()
    on_line = client.get(url, {"origin": "online"}).content.decode()

    assert "In store (terminal)" in everything
    assert f"{VIRTUAL} · Léa" in everything
    assert pos.public_id in in_store and online.public_id not in in_store
    assert online.public_id in on_line and pos.public_id not in on_line


def test_the_list_reads_the_terminals_in_one_query_per_page(client, shop):
    for _ in range(3):
        in_store_payment(shop)
    client.force_login(shop.owner)
    url = reverse("dashboard:payments")
    client.get(url)  # warm the session and caches

    with CaptureQueriesContext(connection) as three:
        client.get(url)
    in_store_payment(shop)
    with CaptureQueriesContext(connection) as four:
        client.get(url)

    assert len(four) == len(three)


def test_the_payment_page_shows_the_terminal_the_staff_member_and_the_sale(client, shop):
    terminal, _ = terminal_for(shop, name="Caisse 7")
    payment = in_store_payment(shop, terminal=terminal, staff_name="Marc")
    client.force_login(shop.owner)

    html = client.get(
        reverse("dashboard:payment", args=[payment.public_id]), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()

    assert 'data-testid="payment-terminal">Caisse 7<' in html
    assert 'data-testid="payment-staff">Marc<' in html
    assert reverse("pos:session", args=[payment.pos_session.public_id]) in html


def test_an_online_payment_page_shows_no_terminal(client, shop):
    payment = payment_create_for(shop)
    client.force_login(shop.owner)

    html = client.get(reverse("dashboard:payment", args=[payment.public_id])).content.decode()

    assert 'data-testid="payment-terminal"' not in html
    assert 'data-testid="payment-staff"' not in html


# --- exports ---------------------------------------------------------------------------------


def test_the_payments_export_names_the_terminal_and_staff_member(shop):
    pos = in_store_payment(shop, staff_name="Léa")
    online = payment_create_for(shop)
    today = timezone.localdate()

    lines = {line["id"]: line for line in _rows(_export(shop, "payments", (today, today)))}

    assert list(lines[pos.public_id])[-2:] == ["staff_member", "terminal"]
    assert lines[pos.public_id]["origin"] == "pos_device"
    assert lines[pos.public_id]["staff_member"] == "Léa"
    assert lines[pos.public_id]["terminal"] == VIRTUAL
    assert lines[online.public_id]["staff_member"] == lines[online.public_id]["terminal"] == ""


def test_the_ledger_export_names_the_payments_origin_terminal_and_staff(shop):
    pos = accepted(shop, when=OCTOBER, origin="pos_device", installments_count=3)
    Payment.objects.filter(pk=pos.pk).update(terminal_name="Caisse 1", staff_member="Marc")
    online = accepted(shop, when=OCTOBER, installments_count=3)

    lines = _rows(_export(shop, "ledger", (date(2026, 10, 1), date(2026, 10, 31))))

    by_reference = {line["reference"]: line for line in lines}
    assert list(lines[0])[-3:] == ["origin", "terminal", "staff_member"]
    assert (
        by_reference[pos.public_id]["origin"],
        by_reference[pos.public_id]["terminal"],
        by_reference[pos.public_id]["staff_member"],
    ) == ("pos_device", "Caisse 1", "Marc")
    assert by_reference[online.public_id]["origin"] == "online"
    assert by_reference[online.public_id]["terminal"] == ""


def test_the_ledger_export_reads_its_payments_in_the_same_query(shop):
    for _ in range(3):
        accepted(shop, when=OCTOBER, origin="pos_device", installments_count=3)
    start, end = period_of(start_date=date(2026, 10, 1), end_date=date(2026, 10, 31))
    export = DataExport(
        merchant=shop.merchant, livemode=False, kind=DataExport.Kind.LEDGER, start=start, end=end
    )

    with CaptureQueriesContext(connection) as captured:
        rows = list(queries._ledger_rows(queries._ledger_query(export)))

    assert len(rows) == 3
    assert len(captured) == 1
    assert all(row[-3] == "pos_device" for row in rows)


def test_remote_sales_made_before_staff_member_get_it_from_custom_data(shop):
    """Migration payments.0011 copies custom_data["created_by"] of older remote sales."""
    import importlib

    migration = importlib.import_module("apps.payments.migrations.0011_remote_sales_staff_member")
    older = payment_create_for(shop, origin="pos_sms")
    online = payment_create_for(shop)
    Payment.objects.filter(pk__in=[older.pk, online.pk]).update(
        custom_data={"created_by": "lea@shop.example"}
    )

    with connection.cursor() as cursor:
        cursor.execute(migration.FORWARD)

    older.refresh_from_db()
    online.refresh_from_db()
    assert older.staff_member == "lea@shop.example"
    assert online.staff_member == ""  # not a remote sale: left alone
