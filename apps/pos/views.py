"""The customer's page behind the SMS's short link (``/p/<code>``), on their phone.

The customer chooses a plan among the merchant's in-store plans; the payment is then created
and the customer goes on through the hosted checkout, the same as online (details, card, SMS
code, 3-D Secure, decision, extra verification). Every call into the domain is one service
of apps.pos.services; the session is brought up to date (``session_sync``) before it is shown.

Language: the checkout's rule (the language cookie, else French: the shop is in France), so
both pages speak the same language; ``?lang=en`` sets that cookie and comes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from apps.common.errors import DomainError
from apps.common.money import display_eur, to_cents
from apps.payments.eligibility import Eligibility
from apps.payments.models import Payment
from apps.pos import services
from apps.pos.models import PosSession

State = PosSession.State
TEMPLATES = {
    State.CANCELLED: "pos/customer_cancelled.html",
    State.EXPIRED: "pos/customer_expired.html",
}


@dataclass(frozen=True)
class ScheduleLine:
    due_date: date
    amount: int  # cents, what is charged that day
    today: bool


@dataclass(frozen=True)
class PlanChoice:
    """One plan as the customer sees it (amounts in cents, APR in basis points)."""

    key: str
    title: str
    headline: str
    schedule: tuple[ScheduleLine, ...]
    customer_fee: int
    customer_interest: int
    total_cost: int
    total: int
    annual_interest_rate: int
    deferred: bool


def _language(request) -> str:
    """The hosted checkout's rule (its ``_language``, without a payment yet): the language
    cookie when it names a supported language, else French."""
    chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
    supported = {code for code, _name in settings.LANGUAGES}
    return chosen if chosen in supported else settings.LANGUAGE_CODE


def _plan_title(answer: Eligibility) -> str:
    query = answer.query
    if query.deferred_days:
        return ngettext("Pay in %(days)d day", "Pay in %(days)d days", query.deferred_days) % {
            "days": query.deferred_days
        }
    if query.deferred_months:
        return ngettext(
            "Pay in %(months)d month", "Pay in %(months)d months", query.deferred_months
        ) % {"months": query.deferred_months}
    return _("%(count)dx") % {"count": query.installments_count}


def _plan_headline(answer: Eligibility) -> str:
    """ "3 instalments of 100,00 €", or the first one and the others when they differ."""
    plan = answer.plan
    amounts = [instalment.total_amount for instalment in plan.instalments]
    if len(amounts) == 1:
        return _("%(amount)s on %(date)s") % {
            "amount": display_eur(amounts[0]),
            "date": _date(plan.instalments[0].due_date),
        }
    if len(set(amounts)) == 1:
        return _("%(count)d instalments of %(amount)s") % {
            "count": len(amounts),
            "amount": display_eur(amounts[0]),
        }
    if len(set(amounts[1:])) == 1:
        return ngettext(
            "%(first)s today, then %(count)d instalment of %(amount)s",
            "%(first)s today, then %(count)d instalments of %(amount)s",
            len(amounts) - 1,
        ) % {
            "first": display_eur(amounts[0]),
            "count": len(amounts) - 1,
            "amount": display_eur(amounts[1]),
        }
    return ngettext("%(count)d instalment", "%(count)d instalments", len(amounts)) % {
        "count": len(amounts)
    }


def _date(value: date) -> str:
    return date_format(value, "j F Y")


def _choice(answer: Eligibility) -> PlanChoice:
    plan = answer.plan
    deferred = bool(answer.query.deferred_days or answer.query.deferred_months)
    return PlanChoice(
        key=services.plan_key(answer),
        title=_plan_title(answer),
        headline=_plan_headline(answer),
        schedule=tuple(
            ScheduleLine(
                due_date=instalment.due_date,
                amount=instalment.total_amount,
                today=instalment.due_date == plan.purchase_date,
            )
            for instalment in plan.instalments
        ),
        customer_fee=plan.customer_fee,
        customer_interest=plan.customer_interest,
        total_cost=plan.customer_total_cost_amount,
        total=plan.total_amount,
        annual_interest_rate=answer.annual_interest_rate,
        deferred=deferred,
    )


def _checkout_redirect(payment: Payment) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("payments:checkout", args=[payment.public_id]), status=303)


def _render(request, session: PosSession, template: str, *, status: int = 200, **context):
    context.update(
        session=session,
        merchant=session.merchant,
        amount=to_cents(session.amount),
        test_mode=not session.livemode,
        action_url=reverse("pos:customer", args=[session.link_code]),
    )
    response = render(request, template, context, status=status)
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _not_found(request):
    response = render(request, "pos/customer_not_found.html", {}, status=404)
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def customer(request, code: str):
    """The page the SMS links to: choose a plan, then on to the hosted checkout."""
    language = request.GET.get("lang", "")
    if language in {supported for supported, _name in settings.LANGUAGES}:
        # The checkout reads the cookie: set it, so the whole journey speaks this language.
        response = HttpResponseRedirect(request.path, status=303)
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            language,
            max_age=settings.LANGUAGE_COOKIE_AGE,
            samesite="Lax",
            secure=request.is_secure(),
        )
        return response
    with translation.override(_language(request)):
        found = services.session_for_link(code)
        if found is None:
            return _not_found(request)
        now = timezone.now()
        session = services.session_sync(session_id=found.pk, now=now)
        if session.opened_at is None and session.is_open:
            session = services.session_opened(session_id=session.pk, now=now)
        if request.method == "POST" and session.is_open and session.payment_id is None:
            return _choose(request, session, now=now)
        return _show(request, session, now=now)


def _show(request, session: PosSession, *, now, status: int = 200, errors=()):
    if session.state in TEMPLATES:
        return _render(
            request,
            session,
            TEMPLATES[session.state],
            status=409 if errors else 410,
            errors=list(errors),
        )
    if session.payment_id is not None:
        # Paid, refused (the checkout offers to pay in full) or on its way: the checkout
        # shows where the payment stands.
        return _checkout_redirect(session.payment)
    plans = services.session_plans(
        merchant=session.merchant, amount_cents=to_cents(session.amount), now=now
    )
    choices = [_choice(answer) for answer in plans if answer.plan is not None]
    keys = [choice.key for choice in choices]
    selected = request.POST.get("plan", "") if request.method == "POST" else ""
    if selected not in keys:  # 3x first: what most customers in a shop ask for
        selected = "3_0_0" if "3_0_0" in keys else (keys[0] if keys else "")
    return _render(
        request,
        session,
        "pos/customer_plans.html",
        status=status,
        choices=choices,
        selected=selected,
        errors=list(errors),
    )


def _choose(request, session: PosSession, *, now):
    try:
        payment = services.session_choose_plan(
            session_id=session.pk, key=request.POST.get("plan", "")[:20], now=now
        )
    except DomainError as error:
        message = error.message
        if isinstance(error, services.PlanNotOffered):
            message = _(
                "This plan is not offered for this purchase: choose one of the plans below."
            )
        session = services.session_sync(session_id=session.pk, now=now)
        return _show(request, session, now=now, status=error.http_status, errors=[message])
    return _checkout_redirect(payment)
