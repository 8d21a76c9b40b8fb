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
from rest_framework.throttling import BaseThrottle

from apps.common.errors import DomainError
from apps.common.ids import is_well_formed, random_base62, with_prefix
from apps.payments.checkout_forms import (
    BankConsentForm,
    CodeForm,
    DetailsForm,
    IdentityPhotosForm,
    PhoneChangeForm,
    ReviewRequestForm,
)
from apps.payments.decision import main_reasons
from apps.payments.links import explanation_token_valid, with_pid
from apps.payments.models import Charge, Checkout, Payment, PaymentState
from apps.payments.processor import InvalidCard, ProcessorError, card_processor
from apps.payments.services import checkout as service
from apps.payments.services import reviews
from apps.payments.services.charges import (
    IN_DOUBT,
    charge_record,
    charge_status_ask,
    payment_payable_check,
)
from apps.verification.errors import UploadRefused
from apps.verification.identity import identity_check_get
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


DEVICE_COOKIE = "tranche_device"


def _device_id(request) -> str:
    """The browser's random id (a first-party cookie), for the decision's velocity checks."""
    value = request.COOKIES.get(DEVICE_COOKIE, "")
    if not (value.isascii() and value.isalnum() and len(value) == 32):
        value = request.META.setdefault("tranche.new_device", random_base62(32))
    return value


def _client_ip(request) -> str | None:
    # REMOTE_ADDR, or X-Forwarded-For behind TRUSTED_PROXIES proxies (as the API throttles).
    return BaseThrottle().get_ident(request) or None


def _with_device(request, response):
    new = request.META.get("tranche.new_device")
    if new:
        response.set_cookie(
            DEVICE_COOKIE,
            new,
            max_age=365 * 24 * 3600,
            secure=request.is_secure(),
            httponly=True,
            samesite="Lax",
        )
    return response


@never_cache
@sensitive_post_parameters("card_number", "card_cvc", "card_expiry")
@require_http_methods(["GET", "POST"])
def checkout(request, payment_id: str):
    payment = _payment(payment_id)
    _device_id(request)
    with translation.override(_language(request, payment)):
        return _with_device(request, _checkout(request, payment))


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
        if _undecided(payment, checkout):  # a decision cut short (a crash, a closed tab)
            return _decide_then_pay(request, payment, now=now)
    if checkout.step == Step.IDENTITY:
        try:
            if service.checkout_identity_refresh(payment_id=payment.pk, now=now):
                return _decide_then_pay(request, payment, now=now, made_by="verification")
        except DomainError as error:
            checkout.refresh_from_db()
            return _show(request, payment, checkout, errors=[error.message])
        checkout.refresh_from_db()
    return _show(request, payment, checkout)


def _undecided(payment: Payment, checkout: Checkout) -> bool:
    """At the decision step without a yes for the current card: still to be decided."""
    if checkout.pay_in_full or payment.charges.filter(status__in=IN_DOUBT).exists():
        return False
    return not service.yes_for_current_card(payment, checkout)


def _decide_then_pay(request, payment: Payment, *, now, made_by: str = "checkout"):
    """Decide (again) and, on a yes, charge what is due now; then show where things stand."""
    try:
        decision = service.checkout_decide(payment_id=payment.pk, now=now, made_by=made_by)
        if decision.outcome == "yes":
            service.checkout_pay(payment_id=payment.pk, now=now)
        elif decision.asks and decision.asks[0] == "phone":
            service.checkout_phone_send(payment_id=payment.pk, now=now)
    except DomainError as error:
        checkout = Checkout.objects.get(payment=payment)
        payment.refresh_from_db()
        return _show(request, payment, checkout, errors=[error.message], status=error.http_status)
    return HttpResponseRedirect(_here(payment), status=303)


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
            return _decide_then_pay(request, payment, now=now, made_by="verification")
        if action == "identity_submit":
            form = IdentityPhotosForm(request.POST, request.FILES)
            if not form.is_valid():
                return _show(request, payment, checkout, identity_form=form, status=400)
            service.checkout_identity_submit(
                payment_id=payment.pk,
                document=form.cleaned_data["document"],
                selfie=form.cleaned_data["selfie"],
                now=now,
            )
        elif action == "identity_start":
            service.checkout_identity_start(payment_id=payment.pk, now=now)
        elif action == "bank_start":
            form = BankConsentForm(request.POST)
            if not form.is_valid():
                return _show(request, payment, checkout, bank_form=form, status=400)
            return_path = reverse("payments:checkout-bank-return", args=[payment.public_id])
            target = service.checkout_bank_start(
                payment_id=payment.pk, return_path=return_path, now=now
            )
            return HttpResponseRedirect(target, status=303)
        elif action == "resend_code":
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
            return _three_ds(payment, now=now)
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
    except UploadRefused as refused:
        form = IdentityPhotosForm(request.POST)
        form.add_error(refused.field if refused.field in form.fields else None, refused.message)
        return _show(request, payment, checkout, identity_form=form, status=400)
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
        payment_id=payment.pk,
        details=details,
        card=card,
        language=language,
        now=now,
        device_id=_device_id(request),
        ip_address=_client_ip(request),
    )
    return _three_ds(payment, now=now)


def _three_ds(payment: Payment, *, now):
    """Start 3-D Secure: off to the bank's page, or straight back when frictionless."""
    return_path = reverse("payments:checkout-3ds-return", args=[payment.public_id])
    target = service.checkout_three_ds_start(
        payment_id=payment.pk, return_path=return_path, now=now
    )
    return HttpResponseRedirect(target, status=303)


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
            # The pay-in-full offer needs no decision, nor does a yes given by an operator.
            if checkout.pay_in_full or service.approved_by_operator(payment, checkout):
                service.checkout_pay(payment_id=payment.pk, now=now)
                return HttpResponseRedirect(_here(payment), status=303)
        except DomainError as error:
            checkout.refresh_from_db()
            return _show(
                request, payment, checkout, errors=[error.message], status=error.http_status
            )
        return _decide_then_pay(request, payment, now=now)


@never_cache
@require_GET
def bank_return(request, payment_id: str):
    """The browser is back from the bank-data aggregator: analyse, then decide again."""
    payment = _payment(payment_id)
    now = timezone.now()
    with translation.override(_language(request, payment)):
        checkout = Checkout.objects.filter(payment=payment).first()
        if checkout is None or checkout.step != Step.BANK:
            return redirect(_here(payment))
        try:
            analysed = service.checkout_bank_complete(
                payment_id=payment.pk, reference=request.GET.get("bankcheck", ""), now=now
            )
        except DomainError as error:
            checkout.refresh_from_db()
            return _show(
                request, payment, checkout, errors=[error.message], status=error.http_status
            )
        if not analysed:
            return HttpResponseRedirect(_here(payment), status=303)
        return _decide_then_pay(request, payment, now=now, made_by="verification")


@never_cache
@require_http_methods(["GET", "POST"])
def explanation(request, payment_id: str):
    """Why the decision was what it was, in plain words, and the customer's right to ask a
    person to look at it again (GDPR art. 22)."""
    payment = _payment(payment_id)
    now = timezone.now()
    with translation.override(_language(request, payment)):
        decision = payment.decisions.exclude(made_by="operator").order_by("-created_at").first()
        if decision is None:
            raise Http404
        if not _is_the_customer(request, payment):
            return _render(
                request, payment, "payments/checkout_explanation_private.html", status=403
            )
        review = payment.reviews.filter(kind="contested").order_by("-created_at").first()
        form = ReviewRequestForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            review = reviews.review_request(
                payment=payment, message=form.cleaned_data["message"], now=now
            )
            return HttpResponseRedirect(request.get_full_path(), status=303)
        return _render(
            request,
            payment,
            "payments/checkout_explanation.html",
            status=400 if form.errors else 200,
            decision=decision,
            reasons=main_reasons(decision.reasons),
            review=review,
            review_form=form,
            back_url=_here(payment),
        )


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

        check = (
            phone_check_get(check_id=checkout.phone_check_id) if checkout.phone_check_id else None
        )
        context.update(
            code_form=extra.get("code_form") or CodeForm(),
            phone_form=extra.get("phone_form")
            or PhoneChangeForm(initial={"phone": checkout.phone}),
            masked_phone=phone_mask(checkout.phone).replace(" ", "\u00a0"),  # one line
            test_code=check.test_code if check and not payment.livemode else "",
            code_sent=check is not None,
        )
        template = "payments/checkout_phone.html"
    elif step == Step.THREE_DS:
        template = "payments/checkout_three_ds.html"
    elif step == Step.REFUSED:
        template = "payments/checkout_refused.html"
        context["explanation_url"] = reverse(
            "payments:checkout-explanation", args=[payment.public_id]
        )
    elif step in (Step.MORE_INFO, Step.IDENTITY, Step.BANK):
        template = _more_info(request, payment, checkout, context, extra)
    else:  # DECISION: accepted but not yet charged, or a charge in doubt
        context["in_doubt"] = payment.charges.filter(status__in=IN_DOUBT).exists()
        template = "payments/checkout_decision.html"
    return _render(request, payment, template, status=status, **context)


def _is_the_customer(request, payment: Payment) -> bool:
    """The browser that gave the details (its device cookie), or a signed link from our
    emails: the reasons of a decision are the customer's, not the merchant's to read."""
    token = request.GET.get("t", "")
    if token and explanation_token_valid(payment.public_id, token):
        return True
    device = request.COOKIES.get(DEVICE_COOKIE, "")
    checkout = Checkout.objects.filter(payment=payment).only("device_id").first()
    return bool(device) and checkout is not None and checkout.device_id == device


def _more_info(request, payment: Payment, checkout: Checkout, context: dict, extra: dict) -> str:
    """The maybe journey's pages: why we ask, what is collected, and the next question."""
    decision = payment.decisions.order_by("-created_at", "-id").first()
    asks = [ask for ask in (decision.asks if decision else []) if ask != "phone"]
    mine = decision is not None and _is_the_customer(request, payment)
    context.update(
        reasons=main_reasons(decision.reasons) if mine else [],
        ask=asks[0] if asks else "",
        retention_days=settings.VERIFICATION_EVIDENCE_RETENTION_DAYS,
        bank_form=extra.get("bank_form") or BankConsentForm(),
    )
    if checkout.step == Step.IDENTITY:
        check = identity_check_get(check_id=checkout.identity_check_id)
        context.update(
            identity_check=check,
            identity_form=extra.get("identity_form") or IdentityPhotosForm(),
        )
        return "payments/checkout_identity.html"
    if checkout.step == Step.BANK:
        return "payments/checkout_bank.html"
    return "payments/checkout_more_info.html"


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
