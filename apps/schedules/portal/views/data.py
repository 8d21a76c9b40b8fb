"""The customer's data rights: a copy of their data (JSON and PDF), a correction, the
deletion of their data, and their credit decisions with a way to contest them."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods

from apps.common.dates import business_date
from apps.common.errors import DomainError
from apps.common.money import display_eur, to_cents
from apps.payments.decision import BLOCK, reason_text
from apps.payments.emails import date_display
from apps.payments.links import explanation_url
from apps.payments.models import Payment
from apps.schedules.portal.data_export import customer_data, customer_data_pdf
from apps.schedules.portal.session import customer_required, portal_sign_out
from apps.schedules.services import data_rights as rights
from apps.schedules.services.data_rights import (
    ACCOUNTING_RETENTION_YEARS,
    DENY_LIST_RETENTION_YEARS,
    AlreadyErased,
    DeletionNotPossible,
    PaymentNotFound,
)

MESSAGE_WIDGET = forms.Textarea(attrs={"rows": 5})


class CorrectionForm(forms.Form):
    message = forms.CharField(
        label=_("What should we correct?"),
        help_text=_("Say which information is wrong and what it should be."),
        max_length=rights.MESSAGE_MAX_CHARS,
        widget=MESSAGE_WIDGET,
    )


class DeletionForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("I understand that this cannot be undone."),
        error_messages={"required": _("Please tick the box to confirm.")},
    )


class DeletionToSupportForm(forms.Form):
    message = forms.CharField(
        label=_("Anything you want our team to know (optional)"),
        required=False,
        max_length=rights.MESSAGE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class ContestForm(forms.Form):
    payment = forms.CharField(max_length=64)
    message = forms.CharField(
        label=_("Your point of view (optional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


def _retention() -> dict[str, int]:
    return {
        "accounting_years": ACCOUNTING_RETENTION_YEARS,
        "deny_list_years": DENY_LIST_RETENTION_YEARS,
    }


@customer_required
@require_GET
def data_rights(request):
    """My data: download a copy, ask for a correction or the deletion, see the decisions."""
    return render(request, "portal/data.html", {**_retention()})


def _download(content: bytes, *, content_type: str, extension: str, now) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    name = f"tranche-data-{business_date(now).isoformat()}.{extension}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private, no-store"
    return response


@customer_required
@require_GET
def export_json(request):
    now = timezone.now()
    data = customer_data(request.customer, now=now)
    content = json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)
    return _download(
        content.encode(), content_type="application/json; charset=utf-8", extension="json", now=now
    )


@customer_required
@require_GET
def export_pdf(request):
    now = timezone.now()
    pdf = customer_data_pdf(request.customer, now=now)
    return _download(pdf, content_type="application/pdf", extension="pdf", now=now)


@customer_required
@require_http_methods(["GET", "POST"])
def correction(request):
    """A form for what to correct; it becomes a ticket for support."""
    form = CorrectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            ticket = rights.correction_request(
                customer=request.customer,
                message=form.cleaned_data["message"],
                now=timezone.now(),
            )
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            messages.success(
                request,
                gettext(
                    "Thank you: your request was sent to our team (reference %(reference)s). "
                    "We will answer you by email within two working days."
                )
                % {"reference": ticket.public_id},
            )
            return HttpResponseRedirect(reverse("portal:data"), status=303)
    status = 400 if form.errors else 200
    return render(request, "portal/correction.html", {"form": form}, status=status)


@customer_required
@require_http_methods(["GET", "POST"])
def deletion(request):
    """Deleting my data: a confirmation first ("this cannot be undone"), then it is done
    (and the session ends), or explained when a plan is still open."""
    now = timezone.now()
    context: dict[str, Any] = {"state": "confirm", **_retention()}
    form = DeletionForm()
    support_form = DeletionToSupportForm()
    if request.method == "POST" and request.POST.get("action") == "support":
        support_form = DeletionToSupportForm(request.POST)
        if support_form.is_valid():
            try:
                ticket = rights.deletion_request(
                    customer=request.customer,
                    now=now,
                    message=support_form.cleaned_data["message"],
                    send_anyway=True,
                )
            except AlreadyErased:  # a second tab, a double click
                return _deleted(request, context)
            if ticket.status == ticket.Status.DONE:  # nothing was open any more: done
                return _deleted(request, context)
            messages.success(
                request,
                gettext(
                    "Your request was sent to our team (reference %(reference)s). "
                    "We will answer you by email within two working days."
                )
                % {"reference": ticket.public_id},
            )
            return HttpResponseRedirect(reverse("portal:data"), status=303)
        context.update(_refusal(rights.deletion_blockers(request.customer, now=now)))
    elif request.method == "POST":
        form = DeletionForm(request.POST)
        if form.is_valid():
            try:
                rights.deletion_request(customer=request.customer, now=now)
            except DeletionNotPossible as refused:
                context.update(_refusal(refused.blockers))
            except AlreadyErased:
                return _deleted(request, context)
            else:
                return _deleted(request, context)
    context.update(form=form, support_form=support_form)
    status = 400 if form.errors or support_form.errors else 200
    return render(request, "portal/deletion.html", context, status=status)


def _deleted(request, context: dict[str, Any]):
    portal_sign_out(request)
    request.customer = None
    context["state"] = "done"
    return render(request, "portal/deletion.html", context)


def _refusal(blockers: rights.DeletionBlockers) -> dict[str, Any]:
    today = business_date(timezone.now())
    last_due = blockers.last_due_date
    return {
        "state": "refused",
        "open_plans": [_plan_line(payment) for payment in blockers.open_plans],
        "waiting": [_plan_line(payment) for payment in blockers.waiting],
        "last_due": date_display(last_due) if last_due and last_due >= today else "",
        "in_default": any(payment.state == "default" for payment in blockers.open_plans),
        "waiting_until": date_display(business_date(blockers.waiting_until))
        if blockers.waiting_until
        else "",
    }


def _plan_line(payment: Payment) -> dict[str, str]:
    return {
        "id": payment.public_id,
        "merchant": payment.seller_name,
        "amount": display_eur(to_cents(payment.purchase_amount)),
        "state": str(payment.get_state_display()),
    }


@customer_required
@require_http_methods(["GET", "POST"])
def decisions(request):
    """The credit decisions on the customer's payments, their reasons, the explanation page,
    and a way to ask a person to review one (GDPR art. 22)."""
    errors: list[str] = []
    contest_errors: dict[str, Any] = {}
    if request.method == "POST":
        payment_id = request.POST.get("payment", "")
        form = ContestForm(request.POST, auto_id=_contest_id(payment_id))
        if form.is_valid():
            try:
                rights.contest_decision(
                    customer=request.customer,
                    payment_id=form.cleaned_data["payment"],
                    message=form.cleaned_data["message"],
                    now=timezone.now(),
                )
            except PaymentNotFound as missing:
                raise Http404 from missing
            except DomainError as error:
                errors.append(error.message)
            else:
                messages.success(
                    request,
                    gettext(
                        "A person will review this decision. We will answer you by email "
                        "within two working days."
                    ),
                )
                return HttpResponseRedirect(reverse("portal:decisions"), status=303)
        elif "payment" in form.errors:
            raise Http404  # no payment named: a tampered form
        else:
            contest_errors = {payment_id: form}
    rows = [
        _decision_row(payment, contest_errors.get(payment.public_id))
        for payment in rights.customer_decisions(request.customer)
    ]
    status = 400 if errors or contest_errors else 200
    return render(request, "portal/decisions.html", {"rows": rows, "errors": errors}, status=status)


def _decision_row(payment: Payment, form: ContestForm | None) -> dict[str, Any]:
    decisions_made = list(payment.decisions.all())
    automated = [row for row in decisions_made if row.made_by != "operator"]
    by_person = [row for row in decisions_made if row.made_by == "operator"]
    latest = automated[-1] if automated else None
    review = next((row for row in reversed(payment.reviews.all()) if row.kind == "contested"), None)
    against, favour = [], []
    for reason in latest.reasons if latest else []:
        points = int(reason.get("points", 0))
        text = reason_text(reason.get("code", ""), reason.get("message", ""))
        if not text:
            continue
        if points < 0 or reason.get("category") == BLOCK:
            against.append(text)
        elif points > 0:
            favour.append(text)
    return {
        "id": payment.public_id,
        "merchant": payment.seller_name,
        "amount": display_eur(to_cents(payment.purchase_amount)),
        "started": date_display(business_date(payment.created_at)),
        "decision": latest,
        "outcome": str(latest.get_outcome_display()) if latest else "",
        "decided_at": _when(latest.created_at) if latest else "",
        "against": against,
        "favour": favour,
        "by_person": [
            {"outcome": str(row.get_outcome_display()), "at": _when(row.created_at)}
            for row in by_person
        ],
        "review": review,
        "review_at": _when(review.created_at) if review else "",
        "explanation_url": explanation_url(payment.public_id) if latest else "",
        "form": form or _contest_form(payment.public_id),
    }


def _contest_form(payment_id: str) -> ContestForm:
    return ContestForm(initial={"payment": payment_id}, auto_id=_contest_id(payment_id))


def _contest_id(payment_id: str) -> str:
    # One form per payment on the page: ids of their own.
    return f"id_%s_{payment_id}"


def _when(moment) -> str:
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")
