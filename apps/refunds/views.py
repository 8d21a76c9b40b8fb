"""The dashboard's refunds: the preview of a refund (GET) and its confirmation (POST).

The payment page's forms ask for a preview (``full=1``, or an ``amount`` in euros, with the
merchant's reference and comment); the preview page shows where the money goes and carries a
one-time token in its confirmation form. The confirmation claims the token
(``apps.common.idempotency``) before refunding, so a double click or a replayed POST refunds
once: the second one is sent back to the payment page with a message.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from apps.common.errors import (
    DomainError,
    IdempotencyKeyReused,
    IdempotentRequestInFlight,
    NotFound,
)
from apps.common.idempotency import (
    idempotency_claim,
    idempotency_complete,
    idempotency_release,
    request_fingerprint,
)
from apps.common.money import display_eur, to_cents
from apps.merchants.access import merchant_required
from apps.payments.models import Payment
from apps.payments.selectors import dashboard_payment
from apps.refunds.allocation import RefundAmountInvalid
from apps.refunds.forms import RefundForm
from apps.refunds.models import Refund
from apps.refunds.services import (
    Preview,
    RefundRequest,
    refund_issue,
    refund_preview,
    refundable_check,
)

# A token spent by a confirmation that failed unexpectedly (maybe after the refund was
# opened): it is never used again, whatever happened.
USED = "used"


def _payment_or_404(request, payment_id: str) -> Payment:
    try:
        return dashboard_payment(
            merchant=request.merchant, livemode=request.livemode, payment_id=payment_id
        )
    except NotFound as exc:
        raise Http404 from exc


def _back(payment: Payment):
    return redirect(reverse("dashboard:payment", args=[payment.public_id]) + "#refunds")


def _not_refundable(payment: Payment) -> str | None:
    """Why nothing can be refunded on ``payment`` now, or None."""
    try:
        refundable_check(payment)
    except DomainError as error:
        return error.message
    if to_cents(payment.refundable_amount) <= 0:
        return _("This payment is completely refunded.")
    return None


@require_http_methods(["GET", "POST"])
@merchant_required
def refund(request, payment_id: str):
    """GET: the preview of the refund the query asks for; POST: its confirmation."""
    payment = _payment_or_404(request, payment_id)
    if request.method == "POST":
        return _confirm(request, payment)
    reason = _not_refundable(payment)
    if reason:
        messages.error(request, reason)
        return _back(payment)
    form = RefundForm(request.GET or None, maximum=to_cents(payment.refundable_amount))
    preview = None
    if form.is_valid():
        try:
            preview = refund_preview(payment=payment, amount=form.cleaned_data["amount"])
        except RefundAmountInvalid as error:
            form.add_error("amount", error.message)
        except DomainError as error:
            form.add_error(None, error.message)
    return render(request, "refunds/preview.html", _preview_context(payment, form, preview))


def _preview_context(payment: Payment, form: RefundForm, preview: Preview | None) -> dict:
    context = {
        "payment": payment,
        "form": form,
        "full": bool(form.is_bound and form.data.get("full") in ("1", "True", "true", "on")),
        "preview": None,
    }
    if preview is None:
        return context
    allocation = preview.allocation
    before = {row.number: row for row in payment.instalments.all()}
    cuts = []
    for cut in allocation.cuts:
        row = before[cut.number]
        cuts.append(
            {
                "number": cut.number,
                "due_date": row.due_date,
                "principal": cut.principal,
                "fees": cut.fee + cut.interest,
                "cancelled": cut.cancelled,
                "written_off": cut.written_off,
            }
        )
    schedule = []
    for after in preview.instalments:
        row = before[after.number]
        schedule.append(
            {
                "number": after.number,
                "due_date": after.due_date,
                "before": to_cents(row.purchase_amount),
                "before_fees": to_cents(row.customer_fee + row.customer_interest),
                "after": to_cents(after.purchase_amount),
                "after_fees": to_cents(after.customer_fee + after.customer_interest),
                "changed": after.purchase_amount != row.purchase_amount,
                "cancelled": after.cancelled_by_refund,
                "state": after.state,
                "state_label": after.get_state_display(),
            }
        )
    context["preview"] = {
        "allocation": allocation,
        "full": allocation.full,
        "cancelled": allocation.owed_cancelled + allocation.written_off_cancelled,
        "cuts": cuts,
        "schedule": schedule,
        "left_after": to_cents(payment.refundable_amount) - allocation.amount,
        "hidden": form.request_data(amount=allocation.amount),
        "token": uuid.uuid4().hex,
    }
    return context


def _confirm(request, payment: Payment):
    """Refund what the preview showed, once per token."""
    try:
        token = uuid.UUID(request.POST.get("token", "")).hex
    except ValueError:
        messages.error(request, _("This confirmation is not valid: preview the refund again."))
        return _back(payment)
    fields = {
        name: request.POST.get(name, "")
        for name in ("full", "amount", "merchant_reference", "comment")
    }
    now = timezone.now()
    try:
        claim = idempotency_claim(
            scope=f"dashboard-refund:{request.merchant.pk}",
            key=token,
            fingerprint=request_fingerprint("POST", request.path, fields),
            now=now,
        )
    except IdempotentRequestInFlight:
        messages.info(request, _("This refund is being made: the list below shows it shortly."))
        return _back(payment)
    except IdempotencyKeyReused:
        messages.error(request, _("This confirmation is not valid: preview the refund again."))
        return _back(payment)
    if claim.record_id is None:
        if claim.replay_body == USED:
            messages.error(
                request,
                _("This confirmation was already used: check the refunds below first."),
            )
        else:
            messages.info(request, _("This refund was already confirmed: it was made once."))
        return _back(payment)
    try:
        made = _refund(request, payment, now=now)
    except Exception:
        # The refund may have been opened before the failure: the token is spent for good.
        idempotency_complete(record_id=claim.record_id, status=409, body=USED, now=now)
        raise
    if made is None:
        # Nothing was refunded (bad input, a domain error): the token may be used again.
        idempotency_release(record_id=claim.record_id)
    else:
        idempotency_complete(record_id=claim.record_id, status=303, body=made, now=now)
    return _back(payment)


def _refund(request, payment: Payment, *, now) -> str | None:
    """Refund and say so: the refund's id, or None when nothing was refunded (an error
    message says why)."""
    reason = _not_refundable(payment)
    if reason:
        messages.error(request, reason)
        return None
    form = RefundForm(request.POST, maximum=to_cents(payment.refundable_amount))
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return None
    data = form.cleaned_data
    try:
        refund = refund_issue(
            payment=payment,
            request=RefundRequest(
                amount=data["amount"],
                merchant_reference=data["merchant_reference"],
                comment=data["comment"],
            ),
            origin=Refund.Origin.DASHBOARD,
            requested_by=request.user,
            now=now,
        )
    except DomainError as error:
        messages.error(request, error.message)
        return None
    _say_done(request, refund)
    return refund.public_id


def _say_done(request, refund: Refund) -> None:
    amount = display_eur(to_cents(refund.amount))
    if refund.state == Refund.State.SUCCEEDED:
        messages.success(request, _("Refund of %(amount)s made.") % {"amount": amount})
    elif refund.state == Refund.State.PENDING:
        messages.success(
            request,
            _("Refund of %(amount)s made: %(card)s is on its way back to the customer's card.")
            % {"amount": amount, "card": display_eur(to_cents(refund.back_to_card))},
        )
    else:
        messages.warning(
            request,
            _(
                "Refund of %(amount)s recorded, but the customer's card refused %(card)s: "
                "our team will pay the customer back another way."
            )
            % {"amount": amount, "card": display_eur(to_cents(refund.back_to_card))},
        )
