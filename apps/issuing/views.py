"""The customer's Tranche card in the portal: the checklist and the request, the card with
its limit and purchases, its details on request, freezing, replacing, the funding bank card
through 3-D Secure, and (test mode only) a purchase through the sandbox network.

The funding card's number and CVC are only in the POST of its form: they go to the
processor's ``tokenise`` (the portal's ``card_tokenise``) and nowhere else. The Tranche
card's number and CVC are fetched from the issuer for one page (``card_details``, sent
with ``no-store``) or, in test mode, for a sandbox purchase (server side, never rendered);
never logged, never stored.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.common.dates import business_date
from apps.common.errors import DomainError
from apps.common.money import display_eur, to_cents
from apps.issuing import eligibility, issuer_sandbox, rules, selectors
from apps.issuing.forms import SandboxPurchaseForm
from apps.issuing.issuer import card_issuer
from apps.issuing.models import CardAuthorisation, CardDecision, VirtualCard
from apps.issuing.services import cards as card_services
from apps.issuing.services.funding import (
    FundingSetupDone,
    FundingSetupWaiting,
    funding_setup_complete,
    funding_setup_return_path,
    funding_setup_start,
)
from apps.payments.emails import date_display
from apps.payments.models import Card
from apps.payments.services.checkout import CardRefused
from apps.schedules.portal.session import customer_required
from apps.schedules.portal.views.card import CARD_FIELDS, CardForm, card_tokenise

logger = logging.getLogger(__name__)

A = CardAuthorisation.State
V = VirtualCard.State
# What the sandbox network itself declines with (before or instead of asking Tranche).
NETWORK_DECLINES = {
    "incorrect_card_details": gettext_lazy("The card details were not recognised."),
    "incorrect_cvc": gettext_lazy("The security code was wrong."),
    "card_closed": gettext_lazy("This card was replaced or closed."),
    "issuer_timeout": gettext_lazy(
        "The card network did not get Tranche's answer in time: the purchase is declined "
        "and nothing is owed."
    ),
}


def profile_url() -> str:
    return reverse("portal:profile")


def card_page() -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("issuing:card"), status=303)


def funding_label(card: Card | None) -> str:
    if card is None:
        return ""
    return f"{card.get_brand_display()} •••• {card.last4}"


def state_badge(card: VirtualCard) -> tuple[str, str]:
    if card.state == V.ACTIVE:
        return _("Active"), "ok"
    if card.state == V.FROZEN:
        return _("Frozen"), "bad"
    return card.get_state_display(), "muted"


def decline_message(code: str) -> str:
    if code in rules.DECLINE_MESSAGES:
        return str(rules.DECLINE_MESSAGES[code])
    if code in NETWORK_DECLINES:
        return str(NETWORK_DECLINES[code])
    return _("The purchase was declined.")


def purchase_row(row: CardAuthorisation) -> dict:
    if row.state == A.APPROVED:
        label, tone, note = _("Approved"), "ok", _("Paid in 3 instalments")
    elif row.state == A.DECLINED:
        label, tone, note = _("Declined"), "bad", decline_message(row.decline_code)
    elif row.state == A.REVERSED:
        label, tone, note = _("Cancelled"), "muted", _("Cancelled: nothing is owed.")
    else:
        label, tone, note = _("Being decided"), "muted", ""
    plan = row.payment if row.state == A.APPROVED and row.payment_id else None
    return {
        "date": date_display(business_date(row.requested_at or row.created_at)),
        "shop": row.merchant_name or _("Unknown shop"),
        "amount": display_eur(to_cents(row.amount)),
        "state": label,
        "tone": tone,
        "note": note,
        "plan_url": reverse("portal:plan", args=[plan.public_id]) if plan else "",
    }


def refusal_groups(decision: CardDecision) -> list[dict]:
    """The refusal's reasons in the groups the product names, each with what to do."""
    codes = set(decision.reasons)
    todo_conditions = []
    if codes & {eligibility.PHONE_NOT_VERIFIED, eligibility.PROFILE_INCOMPLETE}:
        todo_conditions.append((profile_url(), _("Complete my profile")))
    if codes & {eligibility.NO_FUNDING_CARD, eligibility.FUNDING_CARD_REFUSED}:
        todo_conditions.append((reverse("issuing:funding"), _("Add a bank card")))
    if codes & {eligibility.PLAN_LATE, eligibility.PLAN_IN_DEFAULT}:
        todo_conditions.append((reverse("portal:plans"), _("See my plans")))
    todo = {
        eligibility.CONDITIONS: todo_conditions,
        eligibility.THREE_DS: [
            (reverse("issuing:funding"), _("Add my bank card and confirm it with my bank"))
        ],
    }
    return [
        {**group, "actions": todo.get(group["group"], [])}
        for group in eligibility.reasons_shown(decision.reasons)
    ]


def _home_context(request: HttpRequest) -> dict:
    customer = request.customer
    now = timezone.now()
    card = selectors.customer_live_card(customer)
    context: dict = {"card": card, "test_mode": not customer.livemode}
    if card is None:
        checklist = selectors.card_checklist(customer, now=now)
        decision = selectors.customer_decision(customer, request.GET.get("decision", ""))
        context |= {
            "checklist": checklist,
            "funding": funding_label(checklist.setup.card) if checklist.setup else "",
            "profile_url": profile_url(),
            "refusal": refusal_groups(decision)
            if decision is not None and decision.outcome == CardDecision.Outcome.REFUSED
            else None,
        }
        return context
    label, tone = state_badge(card)
    purchases = [purchase_row(row) for row in selectors.card_purchases(customer)]
    context |= {
        "state": label,
        "tone": tone,
        "expiry": f"{card.exp_month:02d}/{card.exp_year % 100:02d}",
        "limit": display_eur(to_cents(card.limit)),
        "available": display_eur(selectors.card_available_cents(card)),
        "funding": funding_label(card.funding_card),
        "purchases": purchases,
        "sandbox_form": SandboxPurchaseForm() if not customer.livemode else None,
    }
    return context


@never_cache
@require_GET
@customer_required
def card_home(request: HttpRequest) -> HttpResponse:
    return render(request, "issuing/card.html", _home_context(request))


def _render_funding(request, form: CardForm, *, status: int = 200, errors=()) -> HttpResponse:
    setup = selectors.card_checklist(request.customer, now=timezone.now()).setup
    return render(
        request,
        "issuing/funding.html",
        {
            "form": form,
            "errors": list(errors),
            "current": funding_label(setup.card) if setup else "",
            "current_done": bool(setup and setup.status == setup.Status.AUTHENTICATED),
        },
        status=status,
    )


@never_cache
@sensitive_post_parameters(*CARD_FIELDS)
@require_http_methods(["GET", "POST"])
@customer_required
def funding_card(request: HttpRequest) -> HttpResponse:
    """The bank card that pays the Tranche card's instalments: typed here, tokenised by
    the processor, then off to 3-D Secure."""
    if request.method == "GET":
        return _render_funding(request, CardForm())
    form = CardForm(request.POST)
    if not form.is_valid():
        return _render_funding(request, form, status=400)
    details = card_tokenise(form, livemode=request.customer.livemode)
    if details is None:
        return _render_funding(request, form, status=400)
    try:
        setup, target = funding_setup_start(
            customer=request.customer, card=details, now=timezone.now()
        )
    except CardRefused as error:
        errors = [refusal.message for refusal in error.refusals]
        return _render_funding(request, CardForm(), errors=errors, status=error.http_status)
    except DomainError as error:
        return _render_funding(
            request, CardForm(), errors=[error.message], status=error.http_status
        )
    if target.startswith(f"{funding_setup_return_path(setup)}?"):
        # Frictionless: nothing to show at the bank.
        return _funding_finish(request, setup.public_id, reference=setup.three_ds_reference)
    return HttpResponseRedirect(target, status=303)


def _funding_finish(request, setup_id: str, *, reference: str) -> HttpResponse:
    try:
        setup = funding_setup_complete(
            setup_id=setup_id, customer=request.customer, reference=reference, now=timezone.now()
        )
    except (FundingSetupDone, FundingSetupWaiting) as error:
        messages.info(request, error.message)
        return card_page()
    except DomainError as error:
        if error.http_status == 404:
            raise Http404 from error
        messages.error(request, error.message)
        return HttpResponseRedirect(reverse("issuing:funding"), status=303)
    messages.success(
        request,
        _("Your bank card %(card)s is added: it will pay your Tranche card's instalments.")
        % {"card": funding_label(setup.card)},
    )
    return card_page()


@never_cache
@require_GET
@customer_required
def funding_three_ds_return(request: HttpRequest, setup_id: str) -> HttpResponse:
    """Back from the bank's page (``?threeds=<reference>``): the processor says how it went."""
    return _funding_finish(request, setup_id, reference=request.GET.get("threeds", ""))


@require_POST
@customer_required
def card_request(request: HttpRequest) -> HttpResponse:
    try:
        decision, card = card_services.card_request(customer=request.customer, now=timezone.now())
    except DomainError as error:
        messages.error(request, error.message)
        return card_page()
    if card is None:
        return HttpResponseRedirect(
            f"{reverse('issuing:card')}?decision={decision.public_id}", status=303
        )
    messages.success(
        request,
        _("Your Tranche card is ready: pay in 3 instalments wherever cards are accepted."),
    )
    return card_page()


def _own_live_card(request: HttpRequest) -> VirtualCard:
    """The signed-in customer's live card; 404 when there is none (or a form names another
    customer's card)."""
    card = selectors.customer_live_card(request.customer)
    wanted = request.POST.get("card", "")
    if card is None or (wanted and wanted != card.public_id):
        raise Http404
    return card


@never_cache
@require_POST
@customer_required
@sensitive_variables("secrets")
def card_details(request: HttpRequest) -> HttpResponse:
    """The card's number, expiry and CVC, on request, for this page only."""
    card = _own_live_card(request)
    try:
        secrets = card_services.card_reveal(card=card, now=timezone.now())
    except DomainError as error:
        messages.error(request, error.message)
        return card_page()
    response = render(
        request,
        "issuing/details.html",
        {
            "card": card,
            "number": secrets.number_groups,
            "expiry": f"{secrets.exp_month:02d}/{secrets.exp_year % 100:02d}",
            "cvc": secrets.cvc,
            "masked_note": _("Hidden. Show the details again from your card's page."),
        },
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _card_action(request: HttpRequest, action, done: str) -> HttpResponse:
    card = _own_live_card(request)
    try:
        action(card=card, now=timezone.now())
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, done)
    return card_page()


@require_POST
@customer_required
def card_freeze(request: HttpRequest) -> HttpResponse:
    return _card_action(
        request,
        card_services.card_freeze,
        _("Your card is frozen: purchases are declined until you unfreeze it."),
    )


@require_POST
@customer_required
def card_unfreeze(request: HttpRequest) -> HttpResponse:
    return _card_action(request, card_services.card_unfreeze, _("Your card is active again."))


@never_cache
@require_http_methods(["GET", "POST"])
@customer_required
def card_replace(request: HttpRequest) -> HttpResponse:
    """A new number: asked first (the current number stops working at once), then done."""
    card = selectors.customer_live_card(request.customer)
    if card is None:
        raise Http404
    if request.method == "GET" or request.POST.get("confirm") != "yes":
        return render(request, "issuing/replace.html", {"card": card})
    card = _own_live_card(request)
    try:
        new = card_services.card_replace(card=card, now=timezone.now())
    except DomainError as error:
        messages.error(request, error.message)
        return card_page()
    messages.success(
        request,
        _("Your new card •••• %(last4)s is ready; the old number no longer works.")
        % {"last4": new.last4},
    )
    return card_page()


@require_POST
@customer_required
@sensitive_variables("secrets")
def sandbox_purchase(request: HttpRequest) -> HttpResponse:
    """Test mode only: a purchase at a shop with the customer's card, through the sandbox
    network (which asks Tranche as a real network would). 404 in live mode."""
    if request.customer.livemode:
        raise Http404
    card = _own_live_card(request)
    form = SandboxPurchaseForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return card_page()
    data = form.cleaned_data
    try:
        secrets = card_issuer().card_reveal(token=card.issuer_token)
        outcome = issuer_sandbox.purchase(
            number=secrets.number,
            exp_month=secrets.exp_month,
            exp_year=secrets.exp_year,
            cvc=secrets.cvc,
            amount_cents=data["amount"],
            merchant_name=data["shop"],
            merchant_category=data["category"],
        )
    except DomainError as error:
        messages.error(request, error.message)
        return card_page()
    issuer_sandbox.deliver_due()
    row = CardAuthorisation.objects.filter(
        livemode=card.livemode, issuer_reference=outcome.reference
    ).first()
    if outcome.status == issuer_sandbox.APPROVED and row is not None and row.payment_id:
        plan_url = reverse("portal:plan", args=[row.payment.public_id])
        messages.success(
            request,
            format_html(
                '{} <a href="{}">{}</a>',
                _("Approved at %(shop)s: your 3x plan is ready.") % {"shop": data["shop"]},
                plan_url,
                _("See the plan"),
            ),
        )
    else:
        messages.error(
            request,
            _("Declined at %(shop)s: %(reason)s")
            % {"shop": data["shop"], "reason": decline_message(outcome.decline_code)},
        )
    return card_page()
