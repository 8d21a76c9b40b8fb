"""The customer's page of a plan, opened from the schedule's emails by a signed link: the
schedule with each instalment's state, and the receipts to download. (The portal, with a
sign-in by code, pay early, postpone and change card, builds on it.)"""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from apps.common.money import display_eur, to_cents
from apps.merchants.access import merchant_required
from apps.payments import links
from apps.payments.emails import date_display
from apps.payments.models import Instalment, Payment
from apps.schedules.models import Receipt
from apps.schedules.receipts import ReceiptNotRendered, receipt_open


def _payment(request, payment_id: str) -> tuple[Payment, str]:
    token = request.GET.get("t", "")
    if not links.plan_token_valid(payment_id, token):
        raise Http404
    payment = (
        Payment.objects.select_related("merchant", "card").filter(public_id=payment_id).first()
    )
    if payment is None:
        raise Http404
    return payment, token


def plan(request, payment_id: str):
    payment, token = _payment(request, payment_id)
    instalments = list(payment.instalments.order_by("number"))
    receipts = {
        receipt.instalment_id: receipt
        for receipt in Receipt.objects.filter(payment=payment, rendered_at__isnull=False)
    }
    count = len(instalments)
    rows = [
        {
            "label": _("%(number)d of %(count)d") % {"number": row.number, "count": count},
            "date": date_display(row.due_date),
            "amount": display_eur(to_cents(row.total_amount)),
            "state": _("Cancelled (refund)")
            if row.cancelled_by_refund
            else row.get_state_display(),
            "late": row.state == Instalment.State.INCIDENT,
            "receipt": receipts.get(row.pk),
        }
        for row in instalments
    ]
    owed = sum(
        to_cents(row.total_amount) for row in instalments if row.state != Instalment.State.PAID
    )
    return render(
        request,
        "schedules/plan.html",
        {
            "payment": payment,
            "rows": rows,
            "owed": display_eur(owed) if owed else "",
            "token": token,
            "card": payment.card,
        },
    )


def receipt(request, payment_id: str, number: str):
    payment, _token = _payment(request, payment_id)
    return _receipt_response(payment, number)


@merchant_required
def dashboard_receipt(request, payment_id: str, number: str):
    """A receipt from the merchant's payment page: its own payments, in the current mode."""
    payment = Payment.objects.filter(
        merchant=request.merchant, livemode=request.livemode, public_id=payment_id
    ).first()
    if payment is None:
        raise Http404
    return _receipt_response(payment, number)


def _receipt_response(payment: Payment, number: str) -> HttpResponse:
    found = Receipt.objects.filter(payment=payment, number=number).first()
    if found is None:
        raise Http404
    try:
        pdf = receipt_open(found)
    except ReceiptNotRendered:
        raise Http404 from None
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{found.number}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response
