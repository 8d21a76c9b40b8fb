"""Postponing an instalment (up to POSTPONE_MAX_DAYS days, the rule in
``apps.payments.postponement``) and asking support for a longer delay.

Postponing takes two steps: the customer picks a date (checked, nothing changed), then
confirms it on a summary; the confirmation is the one POST that moves the date, and the
same confirmation again (a double click) changes nothing more.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from apps.common.errors import DomainError
from apps.common.money import display_eur, to_cents
from apps.payments.emails import date_display
from apps.payments.postponement import CARD_EXPIRY, NEXT_INSTALMENT, Refusal, Window
from apps.schedules.portal.selectors import customer_plan, plan_instalment
from apps.schedules.portal.session import customer_required
from apps.schedules.services.postponing import (
    instalment_postpone,
    longer_delay_request,
    longer_delay_window,
    postpone_date_check,
    postpone_windows,
)

# Refusals after which support may still help (a longer delay), and those after which the
# customer should change their card first.
ASK_SUPPORT = frozenset(
    {"already_postponed", "too_late", "next_instalment_too_close", "card_expires"}
)
CHANGE_CARD = frozenset({"card_expires"})


class PostponeForm(forms.Form):
    date = forms.DateField(
        label=_("New date"),
        input_formats=["%Y-%m-%d"],
        error_messages={
            "required": _("Pick a date."),
            "invalid": _("Enter a date, e.g. 2026-12-05."),
        },
    )


class LongerDelayForm(forms.Form):
    date = forms.DateField(
        label=_("The date you would like"),
        input_formats=["%Y-%m-%d"],
        error_messages={
            "required": _("Pick a date."),
            "invalid": _("Enter a date, e.g. 2026-12-05."),
        },
    )
    message = forms.CharField(
        label=_("Why do you need more time? (optional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 5}),
    )


def _schedule(rows, current) -> list[dict]:
    count = len(rows)
    return [
        {
            "number": row.number,
            "label": gettext("%(number)d of %(count)d") % {"number": row.number, "count": count},
            "date": date_display(row.due_date),
            "amount": display_eur(to_cents(row.total_amount)),
            "state": row.state,
            "current": row.pk == current.pk,
            "postponed_from": date_display(row.postponed_from) if row.postponed_from else "",
        }
        for row in rows
    ]


def _instalment_context(payment, instalment) -> dict:
    rows = list(payment.instalments.order_by("number"))
    return {
        "payment": payment,
        "instalment": instalment,
        "label": gettext("%(number)d of %(count)d")
        % {"number": instalment.number, "count": len(rows)},
        "amount": display_eur(to_cents(instalment.total_amount)),
        "due_date": date_display(instalment.due_date),
        "schedule": _schedule(rows, instalment),
    }


def _window_context(window: Window | Refusal) -> dict:
    if isinstance(window, Refusal):
        return {
            "refusal": window.message,
            "ask_support": window.code in ASK_SUPPORT,
            "change_card": window.code in CHANGE_CARD,
        }
    limit = ""
    if window.limited_by == NEXT_INSTALMENT:
        limit = gettext("The next instalment is due the day after: dates never cross.")
    elif window.limited_by == CARD_EXPIRY:
        limit = gettext("Your card expires after this date.")
    return {
        "window": window,
        "first": date_display(window.first),
        "last": date_display(window.last),
        "limit": limit,
    }


@customer_required
@require_http_methods(["GET", "POST"])
def postpone(request, payment_id: str, number: int):
    now = timezone.now()
    payment = customer_plan(request.customer, payment_id)
    instalment = plan_instalment(payment, number)
    context = _instalment_context(payment, instalment)
    form = PostponeForm(request.POST or None)
    errors: list[str] = []
    if request.method == "POST" and form.is_valid():
        new_date = form.cleaned_data["date"]
        try:
            if request.POST.get("confirm") == "yes":
                moved = instalment_postpone(
                    payment_id=payment.pk,
                    number=instalment.number,
                    new_date=new_date,
                    now=now,
                    customer_id=request.customer.pk,
                )
                messages.success(
                    request,
                    gettext("Instalment %(number)d moved to %(date)s.")
                    % {"number": moved.number, "date": date_display(moved.due_date)},
                )
                return redirect("portal:plan", payment_id=payment.public_id)
            postpone_date_check(payment=payment, instalment=instalment, new_date=new_date, now=now)
        except DomainError as error:
            errors.append(error.message)
        else:
            return render(
                request,
                "portal/postpone.html",
                context
                | {
                    "confirming": True,
                    "new_date": new_date,
                    "new_date_display": date_display(new_date),
                },
            )
    window = postpone_windows(payment=payment, now=now)[instalment.number]
    if isinstance(window, Window) and not form.is_bound:
        form = PostponeForm(initial={"date": window.last.isoformat()})
    status = 400 if errors or form.errors else 200
    return render(
        request,
        "portal/postpone.html",
        context | _window_context(window) | {"form": form, "errors": errors},
        status=status,
    )


@customer_required
@require_http_methods(["GET", "POST"])
def longer_delay(request, payment_id: str, number: int):
    now = timezone.now()
    payment = customer_plan(request.customer, payment_id)
    instalment = plan_instalment(payment, number)
    form = LongerDelayForm(request.POST or None)
    errors: list[str] = []
    if request.method == "POST" and form.is_valid():
        try:
            longer_delay_request(
                customer=request.customer,
                payment=payment,
                number=instalment.number,
                requested_date=form.cleaned_data["date"],
                message=form.cleaned_data["message"],
                now=now,
            )
        except DomainError as error:
            errors.append(error.message)
        else:
            messages.success(
                request,
                gettext("We received your request. We answer within 2 working days, by email."),
            )
            return redirect("portal:plan", payment_id=payment.public_id)
    window = longer_delay_window(payment=payment, instalment=instalment, now=now)
    status = 400 if errors or form.errors else 200
    return render(
        request,
        "portal/longer_delay.html",
        _instalment_context(payment, instalment)
        | {
            "form": form,
            "errors": errors,
            "window": window,
            "max_days": settings.POSTPONE_MAX_DAYS,
            "first": date_display(window.first) if window else "",
            "last": date_display(window.last) if window else "",
        },
        status=status,
    )
