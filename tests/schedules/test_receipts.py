"""Receipt PDFs: what they say in each language, where they are stored, and that a rerun
overwrites instead of duplicating."""

from __future__ import annotations

import copy
import importlib.util
import re
import threading
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection, connections
from fontTools.ttLib import TTFont

from apps.schedules import receipts
from apps.schedules.models import RECEIPT_NUMBER_SEQUENCE, Receipt
from apps.schedules.receipts import (
    ReceiptNotRendered,
    ReceiptStorageRenamed,
    receipt_document,
    receipt_file_name,
    receipt_open,
    receipt_pdf,
    receipt_render,
    receipts_unrendered,
)
from tests.conftest import make_shop
from tests.payments.builders import payment_create_for

NBSP = "\u00a0"
CREATED = datetime(2026, 10, 5, 12, 30, tzinfo=UTC)
FONTS = Path(receipts.__file__).resolve().parent / "fonts"


def receipt_data(**overrides) -> dict:
    """What the debit run records for instalment 2 of a 4x plan (66.67 EUR + 1.67 fees)."""
    data = {
        "language": "fr",
        "livemode": True,
        "number": "R2026-0000042",
        "merchant_name": "Maison Lumière",
        "order_references": ["A-1001"],
        "payment_id": "payment_11xYzAbC",
        "customer_name": "Camille Martin",
        "instalment_number": 2,
        "instalments_count": 4,
        "amount_cents": 6834,
        "principal_cents": 6667,
        "fee_cents": 167,
        "interest_cents": 0,
        "paid_at": "2026-10-05T12:30:00+00:00",  # 14:30 in Paris (summer time)
        "card": {"brand": "Visa", "last4": "4242"},
        "remaining": [
            {"number": 3, "due_date": "2026-11-05", "amount_cents": 6834},
            {"number": 4, "due_date": "2026-12-05", "amount_cents": 6833},
        ],
    }
    return data | overrides


def receipt_text(data: dict) -> str:
    """The text laid out on the receipt's pages, one line box per line."""
    document = receipt_document(data)
    lines = []
    for page in document.pages:
        for box in page._page_box.descendants(placeholders=True):
            if type(box).__name__ == "LineBox":
                lines.append(
                    "".join(child.text for child in box.descendants() if hasattr(child, "text"))
                )
    return "\n".join(lines)


def pdf_fonts(pdf: bytes) -> set[str]:
    """The fonts a PDF embeds (its object streams are compressed: inflate them)."""
    inflated = [pdf]
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        try:
            inflated.append(zlib.decompress(match.group(1)))
        except zlib.error:
            continue
    names = re.findall(rb"/BaseFont\s*/[A-Z]{6}\+([A-Za-z0-9-]+)", b"\n".join(inflated))
    return {name.decode() for name in names}


@pytest.fixture
def storage_dir(settings, tmp_path) -> Path:
    location = tmp_path / "receipts"
    settings.STORAGES = {
        **settings.STORAGES,
        "receipts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location), "allow_overwrite": True},
        },
    }
    return location


def stored_files(location: Path) -> list[str]:
    return sorted(str(path.relative_to(location)) for path in location.rglob("*") if path.is_file())


def next_number(year: int = 2026) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(%s)", [RECEIPT_NUMBER_SEQUENCE])
        (value,) = cursor.fetchone()
    return f"R{year}-{value:07d}"


def receipt_create(payment, *, created_at: datetime = CREATED, **data) -> Receipt:
    number = next_number()
    return Receipt.objects.create(
        number=number,
        livemode=payment.livemode,
        payment=payment,
        data=receipt_data(number=number, livemode=payment.livemode, **data),
        created_at=created_at,
    )


# --- the document ---------------------------------------------------------------------------


def test_a_receipt_is_one_a4_portrait_page_in_the_shipped_font_only():
    pdf = receipt_pdf(receipt_data())

    assert pdf.startswith(b"%PDF-")
    assert pdf_fonts(pdf) == {"Tranche-Receipt-Sans", "Tranche-Receipt-Sans-Bold"}
    (page,) = receipt_document(receipt_data()).pages
    assert (round(page.width * 25.4 / 96), round(page.height * 25.4 / 96)) == (210, 297)


def test_a_french_receipt_says_what_was_paid_for_what_and_what_is_left():
    text = receipt_text(receipt_data())

    assert "Reçu R2026-0000042" in text
    assert "Maison Lumière" in text
    assert "A-1001" in text
    assert "payment_11xYzAbC" in text
    assert "Camille Martin" in text
    assert "2 sur 4" in text
    assert f"68,34{NBSP}€" in text
    assert f"Achat 66,67{NBSP}€ · Frais 1,67{NBSP}€" in text
    assert "5 octobre 2026 à 14:30" in text
    assert "Visa •••• 4242" in text
    assert f"3 sur 4 – 5 novembre 2026 – 68,34{NBSP}€" in text
    assert f"4 sur 4 – 5 décembre 2026 – 68,33{NBSP}€" in text


def test_an_english_receipt_is_in_english():
    text = receipt_text(receipt_data(language="en"))

    assert "Receipt R2026-0000042" in text
    assert "Instalment: 2 of 4" in text
    assert "Amount paid · Purchase €66.67 · Fees €1.67" in text
    assert "€68.34" in text
    assert "Paid on: October 5, 2026 at 2:30 p.m." in text
    assert "Merchant: Maison Lumière" in text
    assert "3 of 4 – November 5, 2026 – €68.34" in text
    assert "Your schedule, receipts and card" in text
    assert "Reçu" not in text


def test_a_test_mode_receipt_says_so_and_a_live_one_does_not():
    test_mode = receipt_text(receipt_data(livemode=False, language="en"))
    live = receipt_text(receipt_data(livemode=True, language="en"))

    assert "Test mode: no money was moved." in test_mode
    assert "Test mode" not in live
    assert "Mode test" in receipt_text(receipt_data(livemode=False))


def test_a_fee_free_instalment_says_no_fees_and_zero_lines_are_left_out():
    free = receipt_text(receipt_data(language="en", amount_cents=6667, fee_cents=0))
    with_interest = receipt_text(
        receipt_data(language="en", amount_cents=6900, fee_cents=0, interest_cents=233)
    )

    assert "Amount paid · No fees" in free
    assert "Purchase" not in free
    assert "Amount paid · Purchase €66.67 · Interest €2.33" in with_interest
    assert "Fees" not in with_interest


def test_the_last_receipt_says_the_plan_is_fully_paid():
    text = receipt_text(receipt_data(language="en", instalment_number=4, remaining=[]))

    assert "Instalment: 4 of 4" in text
    assert "Your plan is fully paid." in text
    assert "Remaining instalments" not in text


def test_lines_without_a_value_are_left_out_and_each_order_reference_has_its_line():
    bare = receipt_text(
        receipt_data(language="en", customer_name="", card=None, order_references=[])
    )
    two_orders = receipt_text(receipt_data(language="en", order_references=["A-1", "B-2"]))

    assert "Customer" not in bare
    assert "Card" not in bare
    assert "Order reference" not in bare
    assert "Order reference: A-1\nOrder reference: B-2" in two_orders


def test_the_payment_time_is_shown_in_paris_even_across_the_new_year():
    text = receipt_text(receipt_data(language="en", paid_at="2026-12-31T23:30:00+00:00"))

    assert "Paid on: January 1, 2027 at 12:30 a.m." in text


def test_text_from_the_data_is_printed_as_text_never_as_markup():
    text = receipt_text(receipt_data(merchant_name="<b>Evil</b> & Co", customer_name="<i>x</i>"))

    assert "<b>Evil</b> & Co" in text
    assert "<i>x</i>" in text


def test_a_twelve_instalment_plan_with_a_long_merchant_name_still_fits_one_page():
    remaining = [
        {"number": n, "due_date": f"2027-{n - 2:02d}-05", "amount_cents": 123_456}
        for n in range(3, 13)
    ]
    data = receipt_data(
        instalments_count=12,
        remaining=remaining,
        merchant_name="Établissements Lumière " * 8,
        order_references=[f"CMD-{n}" for n in range(6)],
    )

    assert len(receipt_document(data).pages) == 1
    assert pdf_fonts(receipt_pdf(data)) <= {"Tranche-Receipt-Sans", "Tranche-Receipt-Sans-Bold"}


def test_the_shipped_font_covers_what_make_subset_asks_for_and_carries_its_licence():
    spec = importlib.util.spec_from_file_location("make_subset", FONTS / "make_subset.py")
    make_subset = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_subset)

    for _source, (name, _style) in make_subset.FACES.items():
        font = TTFont(FONTS / name)
        assert set(make_subset.CODEPOINTS) <= set(font.getBestCmap())
        assert font["name"].getDebugName(1) == "Tranche Receipt Sans"
    assert "Bitstream Vera Fonts Copyright" in (FONTS / "LICENSE").read_text()


# --- stored receipts ------------------------------------------------------------------------


def test_file_names_are_by_mode_and_paris_year():
    live = Receipt(
        number="R2027-0000001", livemode=True, created_at=datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    )
    test = Receipt(number="R2026-0000002", livemode=False, created_at=CREATED)

    assert receipt_file_name(live) == "live/2027/R2027-0000001.pdf"
    assert receipt_file_name(test) == "test/2026/R2026-0000002.pdf"
    with pytest.raises(ValueError):
        receipt_file_name(Receipt(number="../etc/passwd", livemode=True, created_at=CREATED))


@pytest.mark.django_db
def test_rendering_stores_the_pdf_and_records_its_name_and_time(storage_dir):
    receipt = receipt_create(payment_create_for(make_shop()))
    now = CREATED + timedelta(seconds=40)

    rendered = receipt_render(number=receipt.number, now=now)

    receipt.refresh_from_db()
    assert receipt.file_name == rendered.file_name == f"test/2026/{receipt.number}.pdf"
    assert receipt.rendered_at == rendered.rendered_at == now
    assert stored_files(storage_dir) == [receipt.file_name]
    pdf = receipt_open(receipt)
    assert pdf.startswith(b"%PDF-")
    assert pdf == (storage_dir / receipt.file_name).read_bytes() == receipt_pdf(receipt.data)


@pytest.mark.django_db
def test_rendering_again_overwrites_the_same_file_and_row(storage_dir):
    receipt = receipt_create(payment_create_for(make_shop()))
    first = CREATED + timedelta(seconds=40)
    receipt_render(number=receipt.number, now=first)
    Receipt.objects.filter(pk=receipt.pk).update(
        data=receipt_data(number=receipt.number, livemode=False, merchant_name="Renamed shop")
    )

    again = receipt_render(number=receipt.number, now=first + timedelta(hours=1))

    assert stored_files(storage_dir) == [receipt_file_name(receipt)]
    assert Receipt.objects.filter(payment=receipt.payment).count() == 1
    assert Receipt.objects.get(pk=receipt.pk).rendered_at == first + timedelta(hours=1)
    stored = (storage_dir / receipt_file_name(receipt)).read_bytes()
    assert receipt_open(again) == stored
    assert stored == receipt_pdf(Receipt.objects.get(pk=receipt.pk).data)
    assert stored != receipt_pdf(receipt.data)


@pytest.mark.django_db
def test_a_storage_that_would_keep_both_files_is_refused_and_left_with_one(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "receipts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "allow_overwrite": False},
        },
    }
    receipt = receipt_create(payment_create_for(make_shop()))
    receipt_render(number=receipt.number, now=CREATED)

    with pytest.raises(ReceiptStorageRenamed):
        receipt_render(number=receipt.number, now=CREATED + timedelta(minutes=1))

    assert stored_files(tmp_path) == [receipt_file_name(receipt)]
    assert Receipt.objects.get(pk=receipt.pk).rendered_at == CREATED


@pytest.mark.django_db
def test_an_unknown_number_is_not_found_and_an_unrendered_receipt_cannot_be_opened(storage_dir):
    receipt = receipt_create(payment_create_for(make_shop()))

    with pytest.raises(Receipt.DoesNotExist):
        receipt_render(number="R2026-9999999", now=CREATED)
    with pytest.raises(ReceiptNotRendered):
        receipt_open(receipt)
    assert stored_files(storage_dir) == []


@pytest.mark.django_db
def test_unrendered_receipts_are_listed_oldest_first_once_old_enough(storage_dir):
    payment = payment_create_for(make_shop())
    now = CREATED + timedelta(hours=1)
    newest = receipt_create(payment, created_at=now - timedelta(minutes=3))
    oldest = receipt_create(payment, created_at=now - timedelta(minutes=50))
    middle = receipt_create(payment, created_at=now - timedelta(minutes=20))
    rendered = receipt_create(payment, created_at=now - timedelta(minutes=40))
    receipt_create(payment, created_at=now - timedelta(seconds=30))  # its task may still run
    receipt_render(number=rendered.number, now=now - timedelta(minutes=39))

    found = receipts_unrendered(now=now, older_than=timedelta(minutes=2), limit=10)
    first_two = receipts_unrendered(now=now, older_than=timedelta(minutes=2), limit=2)

    assert found == [oldest.number, middle.number, newest.number]
    assert first_two == [oldest.number, middle.number]


@pytest.mark.django_db(transaction=True)
def test_two_workers_rendering_the_same_receipt_at_once_leave_one_whole_file(storage_dir):
    receipt = receipt_create(payment_create_for(make_shop()))
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def worker(at: datetime) -> None:
        try:
            start.wait()
            receipt_render(number=receipt.number, now=at)
        except BaseException as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=worker, args=(CREATED + timedelta(seconds=s),)) for s in (1, 2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert stored_files(storage_dir) == [receipt_file_name(receipt)]
    receipt.refresh_from_db()
    assert receipt.rendered_at in {CREATED + timedelta(seconds=1), CREATED + timedelta(seconds=2)}
    assert receipt_open(receipt) == receipt_pdf(receipt.data)


def test_rendering_the_same_data_again_gives_the_same_bytes_and_leaves_the_data_alone():
    data = receipt_data()
    before = copy.deepcopy(data)

    first, second = receipt_pdf(data), receipt_pdf(data)

    assert first == second
    assert data == before
