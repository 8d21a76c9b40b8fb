"""Receipts from the merchant's dashboard, and the plan links of emails sent before the
customer portal (``/plan/<id>?t=<token>``): a valid one signs the customer in to the portal's
page of the plan; an expired or tampered one opens the page to ask for a new link."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from apps.merchants.access import merchant_required
from apps.payments.models import Payment
from apps.schedules.models import Receipt
from apps.schedules.portal import signin
from apps.schedules.portal.views.auth import link_answer
from apps.schedules.receipts import ReceiptNotRendered, receipt_open


@never_cache
@require_http_methods(["GET", "POST"])
def plan(request, payment_id: str):
    token = request.GET.get("t", "")
    return link_answer(
        request,
        lambda: (
            signin.sign_in_legacy_link_open(payment_id=payment_id, token=token),
            payment_id,
            "",
        ),
    )


@never_cache
@require_http_methods(["GET", "POST"])
def receipt(request, payment_id: str, number: str):
    """An old page's receipt link: into the portal, at the plan's receipts."""
    token = request.GET.get("t", "")
    return link_answer(
        request,
        lambda: (
            signin.sign_in_legacy_link_open(payment_id=payment_id, token=token),
            payment_id,
            "receipts",
        ),
    )


@merchant_required
def dashboard_receipt(request, payment_id: str, number: str):
    """A receipt from the merchant's payment page: its own payments, in the current mode."""
    payment = Payment.objects.filter(
        merchant=request.merchant, livemode=request.livemode, public_id=payment_id
    ).first()
    if payment is None:
        raise Http404
    return receipt_response(payment, number)


def receipt_response(payment: Payment, number: str) -> HttpResponse:
    """The PDF of ``payment``'s receipt (or credit note) ``number``, as a download; 404 when
    it is not this payment's or not rendered yet. The caller decides who may see
    ``payment``."""
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
