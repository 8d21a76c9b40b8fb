"""The merchant dashboard's payouts pages: the list with the balances, one payout with what it
settles, and that statement as a CSV file. Every read is scoped to the signed-in merchant and
the selected mode: anyone else's payout is a 404."""

from __future__ import annotations

import csv
import io

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from apps.common.dates import business_date
from apps.common.errors import NotFound
from apps.common.money import format_eur
from apps.common.spreadsheets import safe_cell
from apps.ledger import selectors
from apps.merchants.access import merchant_required

# What each line of a payout is, in the merchant's words.
LINE_LABELS = {
    "payment_captured": gettext_lazy("Sale"),
    "merchant_fee": gettext_lazy("Tranche fee"),
    "refund_issued": gettext_lazy("Refund"),
    "payout_failed": gettext_lazy("Returned payout"),
    "reserve_held": gettext_lazy("Reserve held"),
    "reserve_released": gettext_lazy("Reserve released"),
    "reversal": gettext_lazy("Correction"),
}
DOWNLOAD_FORMATS = ("csv",)  # no payout PDF is rendered anywhere yet

# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).


def mask_iban(iban: str) -> str:
    """The last four characters of an IBAN, the rest hidden: '•••• 0189'."""
    return f"•••• {iban[-4:]}" if iban else ""


def line_label(kind: str) -> str:
    return str(LINE_LABELS.get(kind, kind.replace("_", " ").capitalize()))


def line_link(reference: str) -> str:
    """The dashboard page of what a line is about: its payment, or the returned payout."""
    if reference.startswith("payment_"):
        return reverse("dashboard:payment", args=[reference])
    if reference.startswith("payout_"):
        return reverse("ledger:payout", args=[reference])
    return ""


def _payout_or_404(request, payout_id: str):
    try:
        return selectors.payout_get(
            merchant_id=request.merchant.pk, livemode=request.livemode, public_id=payout_id
        )
    except NotFound as exc:
        raise Http404 from exc


@require_GET
@merchant_required
def payout_list(request):
    merchant = request.merchant
    page = selectors.payouts_page(
        merchant_id=merchant.pk, livemode=request.livemode, after=request.GET.get("after") or None
    )
    balance = selectors.merchant_balance(
        merchant_id=merchant.pk,
        livemode=request.livemode,
        settlement_delay_days=merchant.settlement_delay_days,
    )
    rows = [(payout, mask_iban(payout.iban)) for payout in page.payouts]
    return render(
        request,
        "ledger/payouts.html",
        {
            "balance": balance,
            "rows": rows,
            "next_after": page.next_after,
            "paged": bool(request.GET.get("after")),
            "settlement_delay_days": merchant.settlement_delay_days,
        },
    )


@require_GET
@merchant_required
def payout_detail(request, payout_id: str):
    payout = _payout_or_404(request, payout_id)
    lines = selectors.payout_lines(payout=payout)
    return render(
        request,
        "ledger/payout.html",
        {
            "payout": payout,
            "iban": mask_iban(payout.iban),
            "events": selectors.payout_events(payout=payout),
            "lines": [(line, line_label(line.kind), line_link(line.reference)) for line in lines],
            "total_cents": sum(line.cents for line in lines),
            "formats": DOWNLOAD_FORMATS,
        },
    )


@require_GET
@merchant_required
def payout_download(request, payout_id: str, file_format: str):
    payout = _payout_or_404(request, payout_id)
    if file_format not in DOWNLOAD_FORMATS:
        raise Http404
    lines = selectors.payout_lines(payout=payout)
    buffer = io.StringIO()
    buffer.write("\ufeff")  # the BOM: spreadsheets then read the file as UTF-8
    writer = csv.writer(buffer)
    writer.writerow(
        [_("Payout"), _("Date"), _("Type"), _("Reference"), _("Detail"), _("Amount (EUR)")]
    )
    for line in lines:
        writer.writerow(
            [
                safe_cell(cell)
                for cell in (
                    payout.public_id,
                    business_date(line.posted_at).isoformat(),
                    line_label(line.kind),
                    line.reference,
                    line.memo,
                    format_eur(line.cents),
                )
            ]
        )
    total = format_eur(sum(line.cents for line in lines))
    writer.writerow([safe_cell(payout.public_id), "", safe_cell(_("Total")), "", "", total])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{payout.public_id}.csv"'
    return response
