"""Paying instalments early: ``?number=N`` (one instalment; ``?instalment=N`` also works) or
``?all=1`` (everything left).

The page shows what will be paid and the total, the saved card or another card, and a
confirmation button. The form carries a one-time token, claimed (``apps.common.idempotency``)
before anything else, so a double click or a replayed POST pays once; the service also
refuses while a charge on those instalments is in flight. A payment made by the customer
needs 3-D Secure, with the saved card too: the POST starts it (``services/cards.py``) and
the return from the bank (``card.three_ds_return``) makes the payment.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from apps.common.errors import DomainError, IdempotencyKeyReused, IdempotentRequestInFlight
from apps.common.idempotency import (
    idempotency_claim,
    idempotency_complete,
    idempotency_release,
    request_fingerprint,
)
from apps.common.money import display_eur, to_cents
from apps.payments.emails import date_display
from apps.payments.models import Instalment, Payment
from apps.schedules.models import CardSetup
from apps.schedules.portal.selectors import customer_plan
from apps.schedules.portal.session import customer_required
from apps.schedules.portal.views.card import (
    CARD_FIELDS,
    CardForm,
    card_expiry,
    card_label,
    card_tokenise,
    frictionless,
    paid_message,
    plan_path,
)
from apps.schedules.services.cards import card_setup_complete, card_setup_start
from apps.schedules.services.early import (
    ALL,
    AmountChanged,
    EarlyPaymentInDoubt,
    EarlyPreview,
    Numbers,
    early_payment_preview,
)

SAVED = "saved"
NEW = "new"
# A token spent (a payment was attempted, or a confirmation failed unexpectedly): its
# replays are sent to the plan. Any other answer remembered is where the first click went.
USED = "used"


def _numbers(query) -> Numbers | None:
    """``?all=1`` or ``?number=N`` (``?instalment=N`` too); None when neither is well
    formed."""
    if query.get("all") == "1":
        return ALL
    number = query.get("number") or query.get("instalment") or ""
    if number.isascii() and number.isdigit() and 0 < int(number) <= 12:
        return [int(number)]
    return None


def _saved_card(payment: Payment):
    card = payment.card
    return card if card is not None and card.detached_at is None else None


def _render(
    request,
    payment: Payment,
    preview: EarlyPreview | None,
    *,
    form: CardForm | None = None,
    choice: str = SAVED,
    errors=(),
    status: int = 200,
):
    saved = _saved_card(payment)
    count = payment.installments_count
    rows = []
    if preview is not None:
        for row in preview.instalments:
            rows.append(
                {
                    "label": _("%(number)d of %(count)d") % {"number": row.number, "count": count},
                    "date": date_display(row.due_date),
                    "amount": display_eur(to_cents(row.total_amount)),
                    "late": row.state == Instalment.State.INCIDENT,
                }
            )
    return render(
        request,
        "portal/pay.html",
        {
            "payment": payment,
            "merchant": payment.seller_name,
            "preview": preview,
            "rows": rows,
            "several": preview is not None and len(preview.instalments) > 1,
            "total": display_eur(preview.amount_cents) if preview else "",
            "amount_cents": preview.amount_cents if preview else 0,
            "saved_card": card_label(saved),
            "saved_expiry": card_expiry(saved) if saved else "",
            "choice": choice if saved else NEW,
            "form": form or CardForm(),
            "token": uuid.uuid4().hex,
            "errors": list(errors),
            "plan_url": plan_path(payment),
        },
        status=status,
    )


@never_cache
@sensitive_post_parameters(*CARD_FIELDS)
@require_http_methods(["GET", "POST"])
@customer_required
def pay_early(request, payment_id: str):
    """What paying early would charge, the card to pay with, and the confirmation."""
    payment = customer_plan(request.customer, payment_id)
    numbers = _numbers(request.GET)
    if numbers is None:
        return HttpResponseRedirect(plan_path(payment), status=303)
    if request.method == "POST":
        return _confirm(request, payment, numbers)
    try:
        preview = early_payment_preview(customer=request.customer, payment=payment, numbers=numbers)
    except DomainError as error:
        return _render(request, payment, None, errors=[error.message], status=error.http_status)
    return _render(request, payment, preview)


def _invalid(request, payment: Payment, numbers: Numbers, *, status: int):
    return _render(
        request,
        payment,
        _preview_or_none(request, payment, numbers),
        errors=[_("This confirmation is not valid: please confirm again.")],
        status=status,
    )


def _confirm(request, payment: Payment, numbers: Numbers):
    """Pay what the page showed, once per token (claimed first: a replay gets the first
    answer, whatever changed since): off to 3-D Secure, or paid at once when the bank asks
    for nothing more."""
    try:
        token = uuid.UUID(request.POST.get("token", "")).hex
    except ValueError:
        return _invalid(request, payment, numbers, status=400)
    choice = request.POST.get("card", SAVED)
    if choice not in (SAVED, NEW) or (choice == SAVED and _saved_card(payment) is None):
        choice = NEW
    now = timezone.now()
    fields = {"numbers": numbers, "card": choice, "amount": request.POST.get("amount", "")}
    try:
        claim = idempotency_claim(
            scope=f"portal-pay:{request.customer.pk}",
            key=token,
            fingerprint=request_fingerprint("POST", request.get_full_path(), fields),
            now=now,
        )
    except IdempotentRequestInFlight:
        messages.info(request, _("This payment is being processed: your plan shows it shortly."))
        return HttpResponseRedirect(plan_path(payment), status=303)
    except IdempotencyKeyReused:
        return _invalid(request, payment, numbers, status=409)
    if claim.record_id is None:
        if claim.replay_body and claim.replay_body != USED:
            # The first click went to the bank's page: so does this one.
            return HttpResponseRedirect(claim.replay_body, status=303)
        messages.info(request, _("This payment was already confirmed: it is made once."))
        return HttpResponseRedirect(plan_path(payment), status=303)
    try:
        started = _prepare_and_start(request, payment, numbers, choice=choice, now=now)
    except Exception:
        idempotency_complete(record_id=claim.record_id, status=409, body=USED, now=now)
        raise
    if isinstance(started, HttpResponse):  # refused before anything was charged
        idempotency_release(record_id=claim.record_id)
        return started
    setup, target = started
    if not frictionless(setup, target):
        idempotency_complete(record_id=claim.record_id, status=303, body=target, now=now)
        return HttpResponseRedirect(target, status=303)
    # Nothing to do at the bank: pay now, in this request.
    try:
        card_setup_complete(
            setup_id=setup.pk,
            customer=request.customer,
            reference=setup.three_ds_reference,
            now=now,
        )
    except EarlyPaymentInDoubt as error:
        messages.warning(request, error.message)
        return HttpResponseRedirect(plan_path(payment), status=303)
    except DomainError as error:
        # Declined (or refused when opened): the plan is as it was; another card may do.
        preview = _preview_or_none(request, payment, numbers)
        return _render(
            request,
            payment,
            preview,
            choice=choice,
            errors=[error.message],
            status=error.http_status,
        )
    finally:
        idempotency_complete(record_id=claim.record_id, status=303, body=USED, now=now)
    messages.success(request, paid_message(setup.amount_cents))
    return HttpResponseRedirect(plan_path(payment), status=303)


def _preview_or_none(request, payment: Payment, numbers: Numbers) -> EarlyPreview | None:
    try:
        return early_payment_preview(customer=request.customer, payment=payment, numbers=numbers)
    except DomainError:
        return None


def _prepare_and_start(
    request, payment: Payment, numbers: Numbers, *, choice: str, now
) -> tuple[CardSetup, str] | HttpResponse:
    """Check what is asked against the plan as it is now and start 3-D Secure on the card
    chosen: the setup and where the browser goes, or the page saying why not."""
    try:
        preview = early_payment_preview(customer=request.customer, payment=payment, numbers=numbers)
    except DomainError as error:
        return _render(request, payment, None, errors=[error.message], status=error.http_status)
    form = CardForm(request.POST) if choice == NEW else None
    if form is not None and not form.is_valid():
        return _render(request, payment, preview, form=form, choice=choice, status=400)
    if request.POST.get("amount") != str(preview.amount_cents):
        error = AmountChanged()
        return _render(request, payment, preview, errors=[error.message], status=409)
    details = None
    if form is not None:
        details = card_tokenise(form, livemode=payment.livemode)
        if details is None:  # the processor refused the card (the form says why)
            return _render(request, payment, preview, form=form, choice=choice, status=400)
    try:
        return card_setup_start(
            customer=request.customer,
            payment_id=payment.pk,
            card=details,
            purpose=CardSetup.Purpose.PAY_EARLY,
            numbers=numbers,
            now=now,
        )
    except DomainError as error:
        return _render(
            request,
            payment,
            preview,
            choice=choice,
            errors=[error.message],
            status=error.http_status,
        )
