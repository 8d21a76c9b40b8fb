"""The hosted checkout: the pages a customer pays on (a payment's ``url``).

One page, ``checkout``, shows whatever step the payment's checkout is at; its forms post back
to it with an ``action``. Every action is one call into services/checkout.py, which refuses
steps out of order under the payment's lock. The card number and CVC are only in the POST of
the first step: they go to the processor's ``tokenise`` and nowhere else (never rendered
back, never logged: ``sensitive_post_parameters`` hides them from error reports too).
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from apps.common.errors import DomainError
from apps.common.ids import is_well_formed, with_prefix
from apps.payments.checkout_forms import CodeForm, DetailsForm, PhoneChangeForm
from apps.payments.links import with_pid
from apps.payments.models import Charge, Checkout, Payment, PaymentState
from apps.payments.processor import InvalidCard, ProcessorError, card_processor
from apps.payments.services import checkout as service
from apps.payments.services.charges import (
    IN_DOUBT,
    charge_record,
    charge_status_ask,
    payment_payable_check,
)
from apps.verification.phones import phone_mask

Step = Checkout.Step
ACCEPTED = {
    PaymentState.IN_PROGRESS,
    PaymentState.PAID,
    PaymentState.LATE_DUNNING,
    PaymentState.LATE_CONTACT_CUSTOMER,
}


def _payment(payment_id: str) -> Payment:
    public_id = with_prefix("payment", payment_id)
    if not is_well_formed("payment", public_id):
        raise Http404
    payment = Payment.objects.select_related("merchant", "card").filter(public_id=public_id).first()
    if payment is None:
        raise Http404
    return payment


def _language(request, payment: Payment) -> str:
    chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
    supported = {code for code, _name in settings.LANGUAGES}
    if chosen in supported:
        return chosen
    locale = (payment.locale or "fr").replace("-", "_").split("_")[0].lower()
    return locale if locale in supported else settings.LANGUAGE_CODE


def _here(payment: Payment) -> str:
    return reverse("payments:checkout", args=[payment.public_id])


@never_cache
@sensitive_post_parameters("card_number", "card_cvc", "card_expiry")
@require_http_methods(["GET", "POST"])
def checkout(request, payment_id: str):
    payment = _payment(payment_id)
    with translation.override(_language(request, payment)):
        return _checkout(request, payment)


def _checkout(request, payment: Payment):
    now = timezone.now()
    if payment.state in ACCEPTED and payment.accepted_at is not None:
        return _render(request, payment, "payments/checkout_done.html")
    try:
        payment_payable_check(payment, now=now)
    except DomainError:
        return _render(request, payment, "payments/checkout_closed.html", status=410)
    checkout = service.checkout_open(payment=payment, now=now)
    if request.method == "POST":
        return _act(request, payment, checkout, now=now)
    if checkout.step == Step.DECISION:
        _settle_charge_in_doubt(payment, now=now)
        payment.refresh_from_db()
        if payment.accepted_at is not None:
            return redirect(_here(payment))
    return _show(request, payment, checkout)


def _settle_charge_in_doubt(payment: Payment, *, now) -> None:
    """A charge left in doubt by a timeout: ask the processor now rather than wait for the
    sweep, so the customer sees the outcome on reload."""
    charge = payment.charges.filter(status__in=IN_DOUBT).select_related("card").first()
    if charge is not None:
        result = charge_status_ask(charge=charge)  # an unknown key may still be in flight
        if result is not None:
            charge_record(charge_id=charge.pk, result=result, now=now)


def _act(request, payment: Payment, checkout: Checkout, *, now):
    action = request.POST.get("action", "")
    language = translation.get_language()
    try:
        if action == "details":
            form = DetailsForm(request.POST)
            if not form.is_valid():
                return _show(request, payment, checkout, details_form=form, status=400)
            return _submit_details(request, payment, form, language=language, now=now)
        if action == "verify_code":
            form = CodeForm(request.POST)
            if not form.is_valid():
                return _show(request, payment, checkout, code_form=form, status=400)
            service.checkout_phone_verify(
                payment_id=payment.pk, code=form.cleaned_data["code"], now=now
            )
            return_path = reverse("payments:checkout-3ds-return", args=[payment.public_id])
            target = service.checkout_three_ds_start(
                payment_id=payment.pk, return_path=return_path, now=now
            )
            return HttpResponseRedirect(target, status=303)
        if action == "resend_code":
            service.checkout_phone_resend(payment_id=payment.pk, now=now)
        elif action == "change_phone":
            form = PhoneChangeForm(request.POST)
            if not form.is_valid():
                return _show(request, payment, checkout, phone_form=form, status=400)
            service.checkout_phone_change(
                payment_id=payment.pk,
                phone=form.cleaned_data["phone"],
                language=language,
                now=now,
            )
        elif action == "three_ds":
            return_path = reverse("payments:checkout-3ds-return", args=[payment.public_id])
            target = service.checkout_three_ds_start(
                payment_id=payment.pk, return_path=return_path, now=now
            )
            return HttpResponseRedirect(target, status=303)
        elif action == "pay":
            service.checkout_pay(payment_id=payment.pk, now=now)
        elif action == "pay_in_full":
            return_path = reverse("payments:checkout-3ds-return", args=[payment.public_id])
            target = service.checkout_pay_in_full_start(
                payment_id=payment.pk, return_path=return_path, now=now
            )
            return HttpResponseRedirect(target, status=303)
        else:
            return _show(request, payment, checkout, status=400)
    except service.CardRefused as refused:
        return _show(
            request, payment, checkout, errors=[r.message for r in refused.refusals], status=402
        )
    except DomainError as error:
        checkout.refresh_from_db()
        return _show(request, payment, checkout, errors=[error.message], status=error.http_status)
    return HttpResponseRedirect(_here(payment), status=303)


def _submit_details(request, payment: Payment, form: DetailsForm, *, language: str, now):
    data = form.cleaned_data
    exp_month, exp_year = data["card_expiry"]
    try:
        # Outside any transaction: the processor is an outside party.
        card = card_processor().tokenise(
            number=data["card_number"],
            exp_month=exp_month,
            exp_year=exp_year,
            cvc=data["card_cvc"],
            livemode=payment.livemode,
        )
    except InvalidCard as error:
        form.add_error("card_number", error.message)
        checkout = Checkout.objects.get(payment=payment)
        return _show(request, payment, checkout, details_form=form, status=400)
    except ProcessorError as error:
        checkout = Checkout.objects.get(payment=payment)
        return _show(request, payment, checkout, details_form=form, errors=[error.message])
    details = service.CustomerDetails(
        first_name=data["first_name"],
        last_name=data["last_name"],
        email=data["email"],
        phone=data["phone"],
        birth_date=data["birth_date"],
        address={
            "line1": data["line1"],
            "postal_code": data["postal_code"],
            "city": data["city"],
            "country": data["country"],
        },
    )
    service.checkout_details_submit(
        payment_id=payment.pk, details=details, card=card, language=language, now=now
    )
    return HttpResponseRedirect(_here(payment), status=303)


@never_cache
@require_GET
def three_ds_return(request, payment_id: str):
    """The browser is back from 3-D Secure: decide, then charge what is due now."""
    payment = _payment(payment_id)
    now = timezone.now()
    with translation.override(_language(request, payment)):
        checkout = Checkout.objects.filter(payment=payment).first()
        if checkout is None or checkout.step != Step.THREE_DS:
            return redirect(_here(payment))  # a replayed return: show where things stand
        try:
            checkout = service.checkout_three_ds_complete(
                payment_id=payment.pk, reference=request.GET.get("threeds", ""), now=now
            )
            # The pay-in-full offer was decided already; anything else is decided now.
            if (
                checkout.pay_in_full
                or service.checkout_decide(payment_id=payment.pk, now=now).outcome == "yes"
            ):
                service.checkout_pay(payment_id=payment.pk, now=now)
        except DomainError as error:
            checkout.refresh_from_db()
            return _show(
                request, payment, checkout, errors=[error.message], status=error.http_status
            )
        return HttpResponseRedirect(_here(payment), status=303)


def _show(request, payment: Payment, checkout: Checkout, *, status: int = 200, **extra):
    step = checkout.step
    context = {"checkout": checkout, "errors": extra.get("errors", [])}
    if step in (Step.DETAILS, Step.CARD):
        context["form"] = extra.get("details_form") or DetailsForm(
            initial={
                "first_name": checkout.first_name,
                "last_name": checkout.last_name,
                "email": checkout.email,
                "phone": checkout.phone,
                "birth_date": checkout.birth_date,
                "line1": checkout.address.get("line1", ""),
                "postal_code": checkout.address.get("postal_code", ""),
                "city": checkout.address.get("city", ""),
                "country": checkout.address.get("country") or "FR",
            }
        )
        template = "payments/checkout_details.html"
    elif step == Step.PHONE:
        from apps.verification.services import phone_check_get

        check = phone_check_get(check_id=checkout.phone_check_id)
        context.update(
            code_form=extra.get("code_form") or CodeForm(),
            phone_form=extra.get("phone_form")
            or PhoneChangeForm(initial={"phone": checkout.phone}),
            masked_phone=phone_mask(checkout.phone),
            test_code=check.test_code if not payment.livemode else "",
        )
        template = "payments/checkout_phone.html"
    elif step == Step.THREE_DS:
        template = "payments/checkout_three_ds.html"
    elif step == Step.REFUSED:
        template = "payments/checkout_refused.html"
    else:  # DECISION: accepted but not yet charged, or a charge in doubt
        context["in_doubt"] = payment.charges.filter(status__in=IN_DOUBT).exists()
        template = "payments/checkout_decision.html"
    return _render(request, payment, template, status=status, **context)


def _render(request, payment: Payment, template: str, *, status: int = 200, **context):
    instalments = list(payment.instalments.order_by("number"))
    context.update(
        payment=payment,
        merchant=payment.merchant,
        instalments=instalments,
        first=instalments[0],
        total=sum((i.total_amount for i in instalments[1:]), start=instalments[0].total_amount),
        customer_cost=payment.customer_fee + payment.customer_interest,
        cancel_url=with_pid(payment.customer_cancel_url, payment.public_id),
        return_url=with_pid(payment.return_url, payment.public_id),
        redirect_seconds=settings.CHECKOUT_REDIRECT_SECONDS,
        test_mode=not payment.livemode,
        action_url=_here(payment),
        charge_failed=payment.charges.filter(status=Charge.Status.FAILED).exists(),
    )
    return render(request, template, context, status=status)
