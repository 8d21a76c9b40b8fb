"""Receipt PDFs: a pure render of ``Receipt.data`` through a template, stored by number.

The debit run (and the portal's early payments) create ``Receipt`` rows, numbered and with
everything the receipt says in ``data``; a task keyed by the number calls
:func:`receipt_render`, which renders the PDF and stores it under a name derived from the
number, so a rerun overwrites the same file and never makes a second one.
:func:`receipts_unrendered` finds the receipts whose task was lost.

Speed (``benchmarks/receipts.py``; target: median <= 30 ms per receipt in one process):

- the template uses only a small font shipped in ``fonts/`` (DejaVu Sans cut down to
  Latin-1, the euro sign and typographic punctuation by ``fonts/make_subset.py``), so
  WeasyPrint never looks up a system font and cuts each PDF's subset from a 30 KB font
  rather than a 760 KB one;
- the font configuration, the parsed stylesheet and the URL fetcher are built once per
  process (the first receipt of a process also pays WeasyPrint's import, about 2 s);
- the page is a handful of blocks: WeasyPrint spends about a millisecond on each box and
  each line on this machine, which is most of what is left (layout and drawing in Python).
  Measured and rejected: embedding the font whole (``full_fonts``: slower, compressing
  60 KB costs more than HarfBuzz's subsetting), an uncompressed PDF (twice the size for
  about a millisecond), a table or tab stops for the details (a table costs 3 to 5 times
  more; WeasyPrint draws tabs about 2 % wider than it lays them out, so columns come out
  jagged).

The same data always gives the same bytes.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import tempfile
import threading
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.template.loader import render_to_string
from django.utils import formats, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.common.dates import BUSINESS_TZ, business_date
from apps.common.errors import DomainError
from apps.common.money import display_eur
from apps.schedules.models import Receipt

TEMPLATE = "schedules/receipt.html"
CREDIT_NOTE_TEMPLATE = "schedules/credit_note.html"
HERE = Path(__file__).resolve().parent
STYLESHEET = HERE / "receipt.css"
STORAGE_ALIAS = "receipts"
NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,39}")  # also a safe file name

# Pango, HarfBuzz and fontconfig objects behind the shared FontConfiguration are not made
# for concurrent use: threads take turns (processes, the usual case, each have their own).
_render_lock = threading.RLock()


class ReceiptNotRendered(DomainError):
    code = "receipt_not_rendered"
    http_status = 409
    default_message = _("This receipt is not ready yet. Please try again in a few minutes.")


class ReceiptStorageRenamed(DomainError):
    """The receipts storage saved under another name instead of overwriting."""

    code = "receipt_storage_renamed"
    http_status = 500
    default_message = (
        "The receipts storage must overwrite files (allow_overwrite / file_overwrite)."
    )


# --- the document -------------------------------------------------------------------------


@functools.cache
def _weasyprint() -> tuple[Any, Any, Any]:
    """The font configuration (with the shipped font), the parsed stylesheet and a URL
    fetcher, built once per process: loading fonts, parsing CSS and building a fetcher
    (a urllib opener) are a large share of a render otherwise. The fetcher reads local
    files only: a receipt never fetches anything from the network."""
    from weasyprint import CSS
    from weasyprint.text.fonts import FontConfiguration
    from weasyprint.urls import URLFetcher

    font_config = FontConfiguration()
    fetcher = URLFetcher(allowed_protocols={"file"})
    stylesheet = CSS(filename=str(STYLESHEET), font_config=font_config, url_fetcher=fetcher)
    return font_config, stylesheet, fetcher


# Let the font configuration go before the interpreter tears its modules down (its
# finaliser needs them).
atexit.register(_weasyprint.cache_clear)


def _line(label: str, value: str) -> str:
    return gettext("%(label)s: %(value)s") % {"label": label, "value": value}


def instalments_label(numbers: list[int], count: int) -> str:
    """Instalments named in the active language: "2 of 4", "2 to 4 of 4" (a run of
    numbers), "2, 4 of 4" (others)."""
    numbers = sorted(numbers)
    if len(numbers) == 1:
        return gettext("%(number)d of %(count)d") % {"number": numbers[0], "count": count}
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        return gettext("%(first)d to %(last)d of %(count)d") % {
            "first": numbers[0],
            "last": numbers[-1],
            "count": count,
        }
    return gettext("%(numbers)s of %(count)d") % {
        "numbers": ", ".join(str(number) for number in numbers),
        "count": count,
    }


def receipt_context(data: dict[str, Any]) -> dict[str, Any]:
    """What the template shows, formatted in the active language (amounts, dates, labels)."""
    count = data["instalments_count"]

    def of_count(number: int) -> str:
        return gettext("%(number)d of %(count)d") % {"number": number, "count": count}

    breakdown = []
    if data["fee_cents"] or data["interest_cents"]:  # else the template says "No fees"
        for label, cents in (
            (gettext("Purchase"), data["principal_cents"]),
            (gettext("Fees"), data["fee_cents"]),
            (gettext("Interest"), data["interest_cents"]),
        ):
            if cents:
                breakdown.append(f"{label} {display_eur(cents)}")
    paid_at = datetime.fromisoformat(data["paid_at"]).astimezone(BUSINESS_TZ)
    paid_on = gettext("%(date)s at %(time)s") % {
        "date": formats.date_format(paid_at, "DATE_FORMAT"),
        "time": formats.time_format(paid_at, "TIME_FORMAT"),
    }
    details = [_line(gettext("Merchant"), data["merchant_name"])]
    details += [
        gettext("Order reference: %(reference)s") % {"reference": reference}
        for reference in data["order_references"]
    ]
    if data["customer_name"]:
        details.append(_line(gettext("Customer"), data["customer_name"]))
    # Receipts of an early payment (the portal) name every instalment the charge paid.
    numbers = data.get("instalment_numbers") or [data["instalment_number"]]
    if data.get("early"):
        label = (
            gettext("Instalments paid early")
            if len(numbers) > 1
            else gettext("Instalment paid early")
        )
    else:
        label = gettext("Instalments") if len(numbers) > 1 else gettext("Instalment")
    details += [
        gettext("Payment reference: %(reference)s") % {"reference": data["payment_id"]},
        _line(label, instalments_label(numbers, count)),
        _line(gettext("Paid on"), paid_on),
    ]
    if card := data.get("card"):
        details.append(_line(gettext("Card"), f"{card['brand']} •••• {card['last4']}"))
    return {
        "language": translation.get_language(),
        "title": gettext("Receipt %(number)s") % {"number": data["number"]},
        "livemode": data["livemode"],
        "amount": display_eur(data["amount_cents"]),
        "breakdown": breakdown,
        "details": details,
        "remaining": [
            {
                "label": of_count(row["number"]),
                "date": formats.date_format(date.fromisoformat(row["due_date"]), "DATE_FORMAT"),
                "amount": display_eur(row["amount_cents"]),
            }
            for row in data["remaining"]
        ],
        # The plan's page opens from a signed link in every email about the payment (the
        # portal's sign-in by code will add a second way).
        "space": _line(
            gettext("Your schedule, receipts and card"),
            gettext("open the link in our emails about this payment"),
        ),
    }


def _card(card: dict[str, str]) -> str:
    return f"{card['brand']} •••• {card['last4']}"


def credit_note_context(data: dict[str, Any]) -> dict[str, Any]:
    """What the credit note template shows (a refund: how much, where it went, what is left
    to pay), formatted in the active language."""
    count = data["instalments_count"]
    refunded_at = datetime.fromisoformat(data["refunded_at"]).astimezone(BUSINESS_TZ)
    details = [_line(gettext("Merchant"), data["merchant_name"])]
    details += [
        gettext("Order reference: %(reference)s") % {"reference": reference}
        for reference in data["order_references"]
    ]
    if data["customer_name"]:
        details.append(_line(gettext("Customer"), data["customer_name"]))
    details += [
        gettext("Payment reference: %(reference)s") % {"reference": data["payment_id"]},
        gettext("Refund reference: %(reference)s") % {"reference": data["refund_id"]},
    ]
    if data.get("merchant_reference"):
        details.append(_line(gettext("Merchant's refund reference"), data["merchant_reference"]))
    details.append(_line(gettext("Refunded on"), formats.date_format(refunded_at, "DATE_FORMAT")))
    cards = " / ".join(_card(card) for card in data["cards"])
    allocation = []
    if data["cancelled_cents"]:
        allocation.append(
            _line(
                gettext("Cancelled from what you still owed"), display_eur(data["cancelled_cents"])
            )
        )
    if data["to_card_cents"]:
        label = (
            gettext("Back to your card %(card)s") % {"card": cards}
            if cards
            else gettext("Back to your card")
        )
        allocation.append(_line(label, display_eur(data["to_card_cents"])))
    if data["fees_back_cents"]:
        allocation.append(
            _line(
                gettext("Customer fees and interest given back to your card"),
                display_eur(data["fees_back_cents"]),
            )
        )
    return {
        "language": translation.get_language(),
        "title": gettext("Credit note %(number)s") % {"number": data["number"]},
        "livemode": data["livemode"],
        "amount": display_eur(data["amount_cents"]),
        "full": data["full"],
        "rest": data["full"] and bool(data.get("refunded_before_cents")),
        "allocation": allocation,
        "details": details,
        "remaining": [
            {
                "label": gettext("%(number)d of %(count)d")
                % {"number": row["number"], "count": count},
                "date": formats.date_format(date.fromisoformat(row["due_date"]), "DATE_FORMAT"),
                "amount": display_eur(row["amount_cents"]),
            }
            for row in data["remaining"]
        ],
        "space": _line(
            gettext("Your schedule, receipts and card"),
            gettext("open the link in our emails about this payment"),
        ),
    }


def receipt_html(data: dict[str, Any]) -> str:
    """The receipt's (or credit note's) HTML in the data's language."""
    with translation.override(data["language"]):
        if data.get("kind") == Receipt.Kind.CREDIT_NOTE:
            return render_to_string(CREDIT_NOTE_TEMPLATE, credit_note_context(data))
        return render_to_string(TEMPLATE, receipt_context(data))


def receipt_document(data: dict[str, Any]):
    """The laid-out receipt (a ``weasyprint.Document``: pages and boxes, before the PDF)."""
    from weasyprint import HTML

    font_config, stylesheet, fetcher = _weasyprint()
    html = HTML(string=receipt_html(data), base_url=str(HERE), url_fetcher=fetcher)
    with _render_lock:
        return html.render(stylesheets=[stylesheet], font_config=font_config)


def receipt_pdf(data: dict[str, Any]) -> bytes:
    """The receipt (or credit note) as a PDF: one A4 page (for a plan of up to a dozen
    instalments)."""
    with _render_lock:
        return receipt_document(data).write_pdf()


# --- stored receipts ----------------------------------------------------------------------


def receipt_file_name(receipt: Receipt) -> str:
    """Where a receipt's PDF lives in the receipts storage: ``live/2026/R2026-0000042.pdf``
    (``test/...`` in test mode), the year being the Paris year it was created in."""
    if not NUMBER.fullmatch(receipt.number):
        raise ValueError(f"receipt number {receipt.number!r} cannot name a file")
    mode = "live" if receipt.livemode else "test"
    return f"{mode}/{business_date(receipt.created_at).year}/{receipt.number}.pdf"


def _storage() -> Storage:
    return storages[STORAGE_ALIAS]


def _save(storage: Storage, name: str, pdf: bytes) -> str:
    """Save ``pdf`` under ``name``, replacing what is there. On local disk the PDF is
    written beside its final name and moved over it (a rename): a concurrent render or a
    reader never sees half a file. Other storages upload it whole."""
    try:
        target = Path(storage.path(name))
    except NotImplementedError:  # object storage: one PUT replaces the object
        return storage.save(name, ContentFile(pdf))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False
    ) as part:
        part.write(pdf)
    try:
        with open(part.name, "rb") as handle:
            moved = File(handle)
            moved.temporary_file_path = lambda: part.name  # Django moves it into place
            return storage.save(name, moved)
    finally:
        if os.path.exists(part.name):
            os.unlink(part.name)


def receipt_render(*, number: str, now: datetime) -> Receipt:
    """Render receipt ``number`` to PDF, store it, and record its file name and ``now`` as
    ``rendered_at``. Safe to run again, and at the same time: the same name is overwritten,
    never another file or row. Holds no transaction while rendering or storing (the
    storage may be a remote service). Raises ``Receipt.DoesNotExist`` for an unknown
    number, ``ReceiptStorageRenamed`` if the storage refuses to overwrite."""
    receipt = Receipt.objects.get(number=number)
    name = receipt_file_name(receipt)
    pdf = receipt_pdf(receipt.data)
    storage = _storage()
    saved = _save(storage, name, pdf)
    if saved != name:
        storage.delete(saved)
        raise ReceiptStorageRenamed()
    Receipt.objects.filter(pk=receipt.pk).update(file_name=name, rendered_at=now)
    receipt.file_name = name
    receipt.rendered_at = now
    return receipt


def receipts_unrendered(*, now: datetime, older_than: timedelta, limit: int) -> list[str]:
    """Numbers of the receipts created before ``now - older_than`` and still not rendered
    (their task was lost), oldest first, at most ``limit``. Served by the partial index
    ``receipt_unrendered_idx``."""
    return list(
        Receipt.objects.filter(rendered_at__isnull=True, created_at__lt=now - older_than)
        .order_by("created_at", "pk")
        .values_list("number", flat=True)[:limit]
    )


def receipt_open(receipt: Receipt) -> bytes:
    """The stored PDF of a rendered receipt (for downloads and email attachments). Raises
    ``ReceiptNotRendered`` when it has not been rendered yet."""
    if not receipt.file_name:
        raise ReceiptNotRendered()
    with _storage().open(receipt.file_name, "rb") as handle:
        return handle.read()
