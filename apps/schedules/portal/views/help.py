"""Help and the public pages: questions and answers, the contact form, how Tranche works,
the privacy policy and the terms. All open to anyone; a signed-in customer sees the portal's
navigation (and may name the plan a message is about)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods
from rest_framework.throttling import BaseThrottle

from apps.common.dates import business_date
from apps.common.money import display_eur, to_cents
from apps.payments.emails import date_display
from apps.payments.models import Payment
from apps.schedules.models import SupportRequest
from apps.schedules.portal.selectors import customer_plan, customer_plans
from apps.schedules.portal.session import portal_customer
from apps.schedules.services.data_rights import (
    ACCOUNTING_RETENTION_YEARS,
    DENY_LIST_RETENTION_YEARS,
)
from apps.schedules.services.support import support_request_create

# Messages one email address, and one IP address, may send in an hour (each sends an
# acknowledgement to the address typed: the limit keeps the form from mailing a stranger).
CONTACT_PER_EMAIL_PER_HOUR = 3
CONTACT_PER_IP_PER_HOUR = 10
SAME_MESSAGE_WINDOW = timedelta(minutes=10)
MESSAGE_MAX_CHARS = 4000


class ContactForm(forms.Form):
    SUBJECTS = [
        ("payment", _("A payment or a plan")),
        ("card", _("My card")),
        ("refund", _("A return or a refund")),
        ("data", _("My personal data")),
        ("other", _("Something else")),
    ]

    name = forms.CharField(label=_("Your name"), max_length=200)
    email = forms.EmailField(
        label=_("Your email address"),
        max_length=254,
        help_text=_("We answer you at this address."),
    )
    subject = forms.ChoiceField(label=_("What is it about?"), choices=SUBJECTS)
    plan = forms.ChoiceField(label=_("The purchase concerned"), required=False)
    message = forms.CharField(
        label=_("Your message"),
        max_length=MESSAGE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 6}),
    )
    # A field people never see (nor fill): bots fill every field.
    website = forms.CharField(label=_("Leave this field empty"), required=False, max_length=200)

    def __init__(self, *args, plans: list[Payment] = (), **kwargs):
        super().__init__(*args, **kwargs)
        if plans:
            self.fields["plan"].choices = [("", _("None in particular"))] + [
                (plan.public_id, _plan_label(plan)) for plan in plans
            ]
        else:
            del self.fields["plan"]


def _plan_label(plan: Payment) -> str:
    return (
        f"{plan.seller_name} – {display_eur(to_cents(plan.purchase_amount))} – "
        f"{date_display(plan.purchase_date)}"
    )


def _facts() -> dict[str, Any]:
    """The numbers the pages state, from the settings that enforce them."""
    retry_days = [str(day) for day in settings.DUNNING_RETRY_DAYS]
    if len(retry_days) > 1:
        retry_list = gettext("%(days)s and %(last)s") % {
            "days": ", ".join(retry_days[:-1]),
            "last": retry_days[-1],
        }
    else:
        retry_list = "".join(retry_days)
    return {
        "reminder_days": max(1, round(settings.REMINDER_LEAD_HOURS / 24)),
        "postpone_days": settings.POSTPONE_MAX_DAYS,
        "postponements": settings.POSTPONEMENTS_PER_INSTALMENT,
        "retry_days": retry_list,
        "last_retry_day": settings.DUNNING_RETRY_DAYS[-1] if settings.DUNNING_RETRY_DAYS else 0,
        "contact_from": settings.DUNNING_CONTACT_FROM_DAYS,
        "default_after": settings.DUNNING_DEFAULT_AFTER_DAYS,
        "late_fee": display_eur(settings.LATE_PAYMENT_FEE_CENTS)
        if settings.LATE_PAYMENT_FEE_CENTS
        else "",
        "support_email": settings.SUPPORT_EMAIL,
        "accounting_years": ACCOUNTING_RETENTION_YEARS,
        "deny_list_years": DENY_LIST_RETENTION_YEARS,
        "evidence_days": settings.VERIFICATION_EVIDENCE_RETENTION_DAYS,
        "session_minutes": settings.PORTAL_SESSION_IDLE_MINUTES,
        "code_minutes": settings.PORTAL_CODE_TTL_MINUTES,
    }


def _public(request, template: str, **context):
    request.customer = portal_customer(request)
    return render(request, template, {**_facts(), **context})


@require_GET
def help_page(request):
    return _public(request, "portal/help.html")


@require_GET
def how_it_works(request):
    return _public(request, "portal/how_it_works.html")


@require_GET
def privacy(request):
    return _public(request, "portal/privacy.html")


@require_GET
def terms(request):
    return _public(request, "portal/terms.html")


@require_http_methods(["GET", "POST"])
def contact(request):
    """A message to support: a ticket for operators, an acknowledgement to the sender."""
    customer = request.customer = portal_customer(request)
    plans = list(customer_plans(customer)) if customer else []
    if request.method == "POST":
        form = ContactForm(request.POST, plans=plans)
        if form.is_valid():
            if form.cleaned_data["website"]:
                return _thanks()  # a bot: it learns nothing, nothing is sent
            if _too_many(request, form.cleaned_data["email"]):
                form.add_error(
                    None,
                    _(
                        "You have sent us several messages in the last hour: we will answer "
                        "them. Please wait a little before sending another one."
                    ),
                )
            else:
                ticket = _send(form.cleaned_data, customer=customer)
                messages.success(
                    request,
                    gettext(
                        "Thank you, your message was sent (reference %(reference)s). We will "
                        "answer you by email within two working days."
                    )
                    % {"reference": ticket.public_id},
                )
                return _thanks()
    else:
        initial = {}
        if customer is not None:
            name = " ".join(part for part in (customer.first_name, customer.last_name) if part)
            initial = {"name": name, "email": customer.email}
        initial["plan"] = request.GET.get("plan", "")
        form = ContactForm(initial=initial, plans=plans)
    return render(
        request,
        "portal/contact.html",
        {
            **_facts(),
            "form": form,
            "sent": request.GET.get("sent") == "1",
            "help_url": reverse("portal:help"),
        },
        status=400 if form.errors else 200,
    )


def _thanks():
    return HttpResponseRedirect(f"{reverse('portal:contact')}?sent=1", status=303)


def _too_many(request, email: str) -> bool:
    """Over the hour's limit for this email address or this IP address (a fixed window
    per address in the cache; per email address in the database)."""
    since = timezone.now() - timedelta(hours=1)
    sent = SupportRequest.objects.filter(
        kind=SupportRequest.Kind.CONTACT, email__iexact=email, created_at__gte=since
    ).count()
    if sent >= CONTACT_PER_EMAIL_PER_HOUR:
        return True
    ip = BaseThrottle().get_ident(request)
    if not ip:
        return False
    key = f"portal:contact:{ip}:{business_date(timezone.now())}:{timezone.now().hour}"
    cache.add(key, 0, timeout=3600)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=3600)
        count = 1
    return count > CONTACT_PER_IP_PER_HOUR


def _send(data: dict[str, Any], *, customer) -> SupportRequest:
    now = timezone.now()
    subject = dict(ContactForm.SUBJECTS)[data["subject"]]
    message = f"{subject}\n\n{data['message'].strip()}"
    payment = customer_plan(customer, data["plan"]) if customer and data.get("plan") else None
    # The same message again (a double click, a reload) is the same request.
    same = (
        SupportRequest.objects.filter(
            kind=SupportRequest.Kind.CONTACT,
            email__iexact=data["email"],
            message=message,
            created_at__gte=now - SAME_MESSAGE_WINDOW,
        )
        .order_by("-created_at")
        .first()
    )
    if same is not None:
        return same
    return support_request_create(
        kind=SupportRequest.Kind.CONTACT,
        livemode=customer.livemode if customer else True,
        now=now,
        customer=customer,
        payment=payment,
        name=data["name"],
        email=data["email"],
        message=message,
    )
