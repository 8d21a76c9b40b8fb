"""Changing the card of one's plans, and the return from 3-D Secure (for a new card, or for
paying early: ``pay.py`` starts those).

The card number and CVC are only in the POST of the card form: they go to the processor's
``tokenise`` and nowhere else (never rendered back, never logged:
``sensitive_post_parameters`` hides them from error reports too).
"""

from __future__ import annotations

import re

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from apps.common.errors import DomainError
from apps.common.money import display_eur
from apps.payments import card_rules
from apps.payments.emails import date_display
from apps.payments.models import Card, Customer, Payment
from apps.payments.processor import CardDetails, InvalidCard, ProcessorError, card_processor
from apps.schedules.models import CardSetup
from apps.schedules.portal.selectors import OPEN_STATES, customer_plan
from apps.schedules.portal.session import customer_required
from apps.schedules.services.cards import (
    CardSetupDone,
    CardSetupInProgress,
    card_plans_to_switch,
    card_setup_complete,
    card_setup_return_path,
    card_setup_start,
)
from apps.schedules.services.early import EarlyPaymentInDoubt

EXPIRY = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*$")
CARD_FIELDS = ("card_number", "card_cvc", "card_expiry")


class CardForm(forms.Form):
    """A card's number, expiry and security code, checked for shape only (the processor
    tokenises it; the card rules come after). Never rendered back with its values."""

    card_number = forms.CharField(label=gettext_lazy("Card number"), max_length=30, strip=True)
    card_expiry = forms.CharField(label=gettext_lazy("Expiry (MM/YY)"), max_length=7)
    card_cvc = forms.CharField(label=gettext_lazy("Security code (CVC)"), max_length=4)

    def clean_card_number(self) -> str:
        number = card_rules.normalise_number(self.cleaned_data["card_number"])
        refusal = card_rules.number_refusal(number)
        if refusal is not None:
            raise forms.ValidationError(refusal.message, code=refusal.code)
        return number

    def clean_card_expiry(self) -> tuple[int, int]:
        match = EXPIRY.match(self.cleaned_data["card_expiry"])
        if not match or not 1 <= int(match.group(1)) <= 12:
            raise forms.ValidationError(
                gettext_lazy("Enter the expiry date as MM/YY."), code="invalid"
            )
        year = int(match.group(2))
        return int(match.group(1)), year + 2000 if year < 100 else year

    def clean_card_cvc(self) -> str:
        cvc = self.cleaned_data["card_cvc"].strip()
        if not re.fullmatch(r"\d{3,4}", cvc):
            raise forms.ValidationError(
                gettext_lazy("The security code is the 3 digits on the back of the card."),
                code="invalid",
            )
        return cvc


def card_tokenise(form: CardForm, *, livemode: bool) -> CardDetails | None:
    """The processor's token for a valid form's card (outside any transaction), or None with
    the processor's refusal added to the form."""
    exp_month, exp_year = form.cleaned_data["card_expiry"]
    try:
        return card_processor().tokenise(
            number=form.cleaned_data["card_number"],
            exp_month=exp_month,
            exp_year=exp_year,
            cvc=form.cleaned_data["card_cvc"],
            livemode=livemode,
        )
    except InvalidCard as error:
        field = f"card_{error.extra.get('field', '')}"
        form.add_error(field if field in form.fields else None, error.message)
    except ProcessorError as error:
        form.add_error(None, error.message)
    return None


def card_label(card: Card | None) -> str:
    if card is None:
        return ""
    return f"{card.get_brand_display()} •••• {card.last4}"


def card_expiry(card: Card) -> str:
    return f"{card.exp_month:02d}/{card.exp_year}"


def card_valid_until(card: Card) -> str:
    """The last day the card can be used, spelled out."""
    return date_display(
        card_rules.card_valid_through(exp_month=card.exp_month, exp_year=card.exp_year)
    )


def plan_path(payment: Payment) -> str:
    return reverse("portal:plan", args=[payment.public_id])


def _switched(customer: Customer, payment: Payment) -> list[dict]:
    return [
        {
            "merchant": plan.seller_name,
            "payment_id": plan.public_id,
            "this": plan.pk == payment.pk,
        }
        for plan in card_plans_to_switch(customer=customer, payment=payment)
    ]


def _render_card(request, payment: Payment, *, form: CardForm, status: int = 200, errors=()):
    customer = request.customer
    old = payment.card
    return render(
        request,
        "portal/card.html",
        {
            "payment": payment,
            "merchant": payment.seller_name,
            "open": payment.state in OPEN_STATES,
            "old_card": card_label(old),
            "old_expiry": card_expiry(old) if old else "",
            "old_expires_on": card_valid_until(old) if old else "",
            "plans": _switched(customer, payment) if payment.state in OPEN_STATES else [],
            "form": form,
            "errors": list(errors),
            "plan_url": plan_path(payment),
        },
        status=status,
    )


@never_cache
@sensitive_post_parameters(*CARD_FIELDS)
@require_http_methods(["GET", "POST"])
@customer_required
def change_card(request, payment_id: str):
    """The form for a new card: the plans it will be used for, the card it replaces; off to
    3-D Secure when sent."""
    payment = customer_plan(request.customer, payment_id)
    if request.method == "GET":
        return _render_card(request, payment, form=CardForm())
    if payment.state not in OPEN_STATES:  # the page explains there is nothing to change
        return _render_card(request, payment, form=CardForm(), status=409)
    form = CardForm(request.POST)
    if not form.is_valid():
        return _render_card(request, payment, form=form, status=400)
    details = card_tokenise(form, livemode=payment.livemode)
    if details is None:
        return _render_card(request, payment, form=form, status=400)
    try:
        setup, target = card_setup_start(
            customer=request.customer,
            payment_id=payment.pk,
            card=details,
            purpose=CardSetup.Purpose.REPLACE,
            now=timezone.now(),
        )
    except DomainError as error:
        return _render_card(
            request, payment, form=CardForm(), errors=[error.message], status=error.http_status
        )
    if frictionless(setup, target):
        return setup_finish(request, payment, setup, reference=setup.three_ds_reference)
    return HttpResponseRedirect(target, status=303)


def frictionless(setup: CardSetup, target: str) -> bool:
    """Whether 3-D Secure sent the browser straight back (nothing to show at the bank)."""
    return target.startswith(f"{card_setup_return_path(setup)}?")


def setup_finish(request, payment: Payment, setup: CardSetup, *, reference: str):
    """Finish a card setup back from 3-D Secure and send the browser to the plan with what
    happened (back to the card form when a new card failed)."""
    try:
        setup = card_setup_complete(
            setup_id=setup.pk, customer=request.customer, reference=reference, now=timezone.now()
        )
    except (CardSetupDone, CardSetupInProgress) as error:
        messages.info(request, error.message)
        return HttpResponseRedirect(plan_path(payment), status=303)
    except EarlyPaymentInDoubt as error:
        messages.warning(request, error.message)
        return HttpResponseRedirect(plan_path(payment), status=303)
    except DomainError as error:
        messages.error(request, error.message)
        if setup.purpose == CardSetup.Purpose.REPLACE:
            return HttpResponseRedirect(
                reverse("portal:card", args=[payment.public_id]), status=303
            )
        return HttpResponseRedirect(plan_path(payment), status=303)
    if setup.purpose == CardSetup.Purpose.REPLACE:
        messages.success(
            request,
            _("Your card %(card)s is saved: your next instalments will be debited from it.")
            % {"card": card_label(setup.card)},
        )
    else:
        messages.success(request, paid_message(setup.amount_cents))
    return HttpResponseRedirect(plan_path(payment), status=303)


def paid_message(amount_cents: int) -> str:
    return _("Payment of %(amount)s received; your receipt is on its way.") % {
        "amount": display_eur(amount_cents)
    }


@never_cache
@require_GET
@customer_required
def three_ds_return(request, setup_id: str):
    """The browser is back from 3-D Secure (``?threeds=<reference>``): finish the card change
    or the early payment, then show the plan with what happened."""
    setup = (
        CardSetup.objects.select_related("card", "payment")
        .filter(public_id=setup_id, customer=request.customer)
        .first()
    )
    if setup is None:
        raise Http404
    payment = customer_plan(request.customer, setup.payment.public_id)
    return setup_finish(request, payment, setup, reference=request.GET.get("threeds", ""))
