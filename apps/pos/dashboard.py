"""The dashboard's virtual terminal (a sale started from the browser, followed live) and
its terminals page (register, revoke).

Every page is scoped to ``request.merchant`` and ``request.livemode``: another merchant's
or the other mode's session or terminal is a 404. A merchant that may not sell in store
(outside France, not active) sees why instead of the forms.

Double submits: each form carries a one-time token issued into the Django session (the
last few per form, so several tabs work; a token this session did not issue is refused);
the POST claims it in the idempotency table (``apps.common.idempotency``, atomic in the
database, so two POSTs racing each other cannot both win) before acting, so a second POST
of the same form (a double click, a reload) starts no second session and registers no
second terminal: it is sent to what the first one made. A POST refused for its content
releases the claim: the corrected form may be sent with the same token.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.common.dates import BUSINESS_TZ, business_date
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
from apps.pos import selectors, services, states, tickets
from apps.pos.forms import TerminalRegisterForm, VirtualTerminalForm
from apps.pos.models import PosSession, Terminal

SESSIONS_PER_PAGE = 20
TOKENS_SESSION_KEY = "pos_form_tokens"
TOKENS_KEPT = 10  # per form: a few tabs open at once
STATUS_POLL_MILLISECONDS = 2000
TICKET_WIDTH = 48


# --- one-time form tokens ------------------------------------------------------------------


def _token_issue(request, purpose: str) -> str:
    """A new token for one form, remembered in the Django session."""
    tokens = request.session.get(TOKENS_SESSION_KEY, {})
    token = uuid.uuid4().hex
    tokens[purpose] = [*tokens.get(purpose, [])[-(TOKENS_KEPT - 1) :], token]
    request.session[TOKENS_SESSION_KEY] = tokens
    return token


def _token_known(request, purpose: str, token: str) -> bool:
    return token in request.session.get(TOKENS_SESSION_KEY, {}).get(purpose, [])


def _scope(request, purpose: str) -> str:
    return f"dashboard-{purpose}:{request.merchant.pk}:{request.user.pk}"


def _token_valid(raw: str) -> str | None:
    try:
        return uuid.UUID(raw or "").hex
    except ValueError:
        return None


# --- the virtual terminal -------------------------------------------------------------------


def _unavailable(merchant) -> str:
    """Why this merchant may not sell in store, or an empty string."""
    try:
        services.pos_check_available(merchant)
    except services.PosNotAvailable as error:
        return error.message
    return ""


def _today_start(now: datetime) -> datetime:
    return datetime.combine(business_date(now), time.min, tzinfo=BUSINESS_TZ)


def _latest_sessions(request, *, now: datetime):
    """Today's sessions of this merchant and mode, newest first, one page; the open ones
    are brought up to date first (their customer may have paid meanwhile)."""
    sessions = selectors.sessions_since(
        merchant=request.merchant, livemode=request.livemode, since=_today_start(now)
    )
    page = Paginator(sessions, SESSIONS_PER_PAGE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    synced = [
        services.session_sync(session_id=session.pk, now=now).version != session.version
        for session in rows
        if session.is_open
    ]
    if any(synced):  # read the page again, with the payments the changes brought
        rows = list(sessions.filter(pk__in=[session.pk for session in rows]))
    return page, rows


@never_cache
@require_http_methods(["GET", "POST"])
@merchant_required
def virtual_terminal(request):
    """Start a sale for a customer at the counter; below, today's sales."""
    now = timezone.now()
    unavailable = _unavailable(request.merchant)
    form = None
    if not unavailable:
        if request.method == "POST":
            form = VirtualTerminalForm(request.POST)
            answer = _sale_start(request, form, now=now)
            if answer is not None:
                return answer
        else:
            form = VirtualTerminalForm(initial={"token": _token_issue(request, "pos-sale")})
    page, rows = _latest_sessions(request, now=now)
    bounds = None if unavailable else services.pos_amount_bounds(request.merchant)
    return render(
        request,
        "pos/dashboard_terminal.html",
        {
            "unavailable": unavailable,
            "form": form,
            "bounds": (display_eur(bounds[0]), display_eur(bounds[1])) if bounds else None,
            "page": page,
            "rows": [_session_row(session) for session in rows],
            "tab": "terminal",
        },
    )


def _sale_start(request, form: VirtualTerminalForm, *, now: datetime):
    """Start the session the form describes, once per token: a redirect, or None to show
    the form again with its errors."""
    token = _token_valid(request.POST.get("token", ""))
    if token is None or not _token_known(request, "pos-sale", token):
        messages.error(request, _("This form has expired: check the sales below, then try again."))
        return redirect("pos:virtual-terminal")
    if not form.is_valid():
        return None
    sale = services.SaleRequest(
        amount_cents=form.cleaned_data["amount"],
        phone=form.cleaned_data["phone"],
        reference=form.cleaned_data["reference"],
    )
    try:
        claim = idempotency_claim(
            scope=_scope(request, "pos-sale"),
            key=token,
            fingerprint=request_fingerprint(
                "POST", request.path, {"amount": sale.amount_cents, "phone": sale.phone}
            ),
            now=now,
        )
    except IdempotentRequestInFlight:
        messages.info(request, _("This sale is being started: it appears below in a moment."))
        return redirect("pos:virtual-terminal")
    except IdempotencyKeyReused:
        messages.error(request, _("This form has expired: check the sales below, then try again."))
        return redirect("pos:virtual-terminal")
    if claim.record_id is None:
        messages.info(request, _("This sale was already started: here it is."))
        return redirect("pos:session", session_id=claim.replay_body)
    try:
        session, _created = services.session_start(
            merchant=request.merchant,
            livemode=request.livemode,
            sale=sale,
            now=now,
            terminal=None,
            staff_user=request.user,
        )
    except DomainError as error:
        idempotency_release(record_id=claim.record_id)  # nothing started: the form may retry
        _show_error(form, error)
        return None
    except Exception:
        idempotency_release(record_id=claim.record_id)
        raise
    idempotency_complete(record_id=claim.record_id, status=303, body=session.public_id, now=now)
    messages.success(
        request,
        _("The link was sent to the customer: they finish paying on their phone."),
    )
    return redirect("pos:session", session_id=session.public_id)


def _show_error(form: VirtualTerminalForm, error: DomainError) -> None:
    if isinstance(error, services.AmountOutOfBounds):
        form.add_error("amount", error.message)
    elif isinstance(error, services.InvalidCustomerPhone):
        form.add_error("phone", error.message)
    else:
        form.add_error(None, error.message)


def _session_row(session: PosSession) -> dict:
    return {
        "id": session.public_id,
        "url": reverse("pos:session", args=[session.public_id]),
        "created_at": session.created_at,
        "amount": display_eur(to_cents(session.amount)),
        "state": session.state,
        "state_label": session.get_state_display(),
        "terminal": session.terminal.name if session.terminal_id else _("Virtual terminal"),
        "staff": session.staff_name,
        "reference": session.reference,
        "plan": _plan_label(session),
    }


def _plan_label(session: PosSession) -> str:
    payment = session.payment
    if payment is None:
        return ""
    if payment.paid_in_full_fallback:
        return _("Paid in full")
    if payment.deferred_days or payment.deferred_months:
        if payment.deferred_months:
            return _("Pay in %(count)s months") % {"count": payment.deferred_months}
        return _("Pay in %(count)s days") % {"count": payment.deferred_days}
    return _("%(count)s instalments") % {"count": payment.installments_count}


# --- one session, live ------------------------------------------------------------------------


def _session_or_404(request, session_id: str, *, now: datetime) -> PosSession:
    try:
        return selectors.session_for(
            merchant=request.merchant, livemode=request.livemode, session_id=session_id, now=now
        )
    except NotFound as error:
        raise Http404 from error


def _steps(session: PosSession) -> list[dict]:
    """The progress list: link sent -> customer on their phone -> how it ended."""
    state = session.state
    final = session.is_final
    on_phone = session.opened_at is not None or session.payment_id is not None
    end_labels = {
        PosSession.State.PAID: _("Paid"),
        PosSession.State.REFUSED: _("Refused"),
        PosSession.State.CANCELLED: _("Cancelled"),
        PosSession.State.EXPIRED: _("Expired"),
    }
    return [
        {
            "label": _("Link sent to the customer by SMS"),
            "status": "done" if session.link_sent_at else "current",
            "at": session.link_sent_at,
        },
        {
            "label": _("Customer paying on their phone"),
            "status": "done"
            if on_phone and (final or state != PosSession.State.CUSTOMER_IN_PROGRESS)
            else ("current" if state == PosSession.State.CUSTOMER_IN_PROGRESS else "todo"),
            "at": session.opened_at,
        },
        {
            "label": end_labels.get(state, _("Paid")),
            "status": state if final else "todo",
            "at": session.finished_at,
        },
    ]


def _session_context(session: PosSession) -> dict:
    available = tickets.tickets_available(session)
    printed = []
    for kind in available:
        try:
            text = tickets.ticket_text(session, kind, width=TICKET_WIDTH)
        except tickets.TicketNotAvailable:
            continue
        printed.append(
            {
                "kind": kind,
                "text": text,
                "pdf_url": reverse("pos:session-ticket-pdf", args=[session.public_id, kind]),
            }
        )
    payment_url = ""
    if session.payment_id:
        payment_url = reverse("dashboard:payment", args=[session.payment.public_id])
    return {
        "session": session,
        "row": _session_row(session),
        "steps": _steps(session),
        "tickets": printed,
        "payment_url": payment_url,
        "cancellable": states.may_cancel(session.state),
        "customer_url": services.short_url(session) if session.is_open else "",
    }


@never_cache
@require_safe
@merchant_required
def session_detail(request, session_id: str):
    """One sale, followed live (static/js/pos-session.js polls ``session_status``)."""
    session = _session_or_404(request, session_id, now=timezone.now())
    context = _session_context(session)
    context.update(
        {
            "status_url": reverse("pos:session-status", args=[session.public_id]),
            "poll_ms": STATUS_POLL_MILLISECONDS,
            "tab": "terminal",
        }
    )
    return render(request, "pos/dashboard_session.html", context)


@never_cache
@require_safe
@merchant_required
def session_status(request, session_id: str):
    """The session's state as JSON for the page's poll, with the status block rendered
    again; ``If-None-Match`` equal to its ETag -> 304 (nothing changed)."""
    session = _session_or_404(request, session_id, now=timezone.now())
    if request.headers.get("If-None-Match") == session.etag:
        response = HttpResponse(status=304)
        response["ETag"] = session.etag
        return response
    context = _session_context(session)
    response = JsonResponse(
        {
            "id": session.public_id,
            "state": session.state,
            "state_label": session.get_state_display(),
            "version": session.version,
            "final": session.is_final,
            "cancellable": context["cancellable"],
            "tickets": [ticket["kind"] for ticket in context["tickets"]],
            "html": render_to_string("pos/dashboard_session_status.html", context, request),
        }
    )
    response["ETag"] = session.etag
    return response


@require_POST
@merchant_required
def session_cancel(request, session_id: str):
    """Cancel the sale (the page asked for a confirmation); cancelling twice is harmless."""
    now = timezone.now()
    session = _session_or_404(request, session_id, now=now)
    try:
        services.session_cancel(session_id=session.pk, now=now)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("The sale is cancelled: the customer's link no longer works."))
    return redirect("pos:session", session_id=session.public_id)


@require_safe
@merchant_required
def ticket_pdf(request, session_id: str, kind: str):
    """A ticket as a PDF for 80 mm paper (French; ``?lang=en`` for English)."""
    if kind not in tickets.TICKET_KINDS:
        raise Http404
    session = _session_or_404(request, session_id, now=timezone.now())
    language = "en" if request.GET.get("lang") == "en" else "fr"
    try:
        pdf = tickets.ticket_pdf(session, kind, language=language)
    except tickets.TicketNotAvailable as error:
        return HttpResponse(error.message, status=409, content_type="text/plain; charset=utf-8")
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{session.public_id}-{kind}.pdf"'
    return response


# --- terminals ------------------------------------------------------------------------------


def _terminals(request) -> list[Terminal]:
    return list(selectors.terminals(merchant=request.merchant, livemode=request.livemode))


@never_cache
@require_http_methods(["GET", "POST"])
@merchant_required
def terminal_list(request):
    """The registered terminals of this mode; owners and admins register one (its secret
    is shown once, on the answer to the POST) and revoke them."""
    unavailable = _unavailable(request.merchant)
    may_manage = request.membership.can_manage_keys
    form = issued = None
    status = 200
    if not unavailable and may_manage:
        if request.method == "POST":
            form = TerminalRegisterForm(request.POST)
            answer = _terminal_register(request, form)
            if isinstance(answer, services.IssuedTerminal):
                issued = answer
                form = TerminalRegisterForm(initial={"token": _token_issue(request, "terminal")})
            elif answer is not None:
                return answer
            else:
                status = 400
        else:
            form = TerminalRegisterForm(initial={"token": _token_issue(request, "terminal")})
    elif request.method == "POST":
        raise PermissionDenied
    simulator_url = ""
    if issued is not None:
        simulator_url = request.build_absolute_uri(
            reverse("pos:simulator") + f"#secret={issued.secret}"
        )
    return render(
        request,
        "pos/dashboard_terminals.html",
        {
            "unavailable": unavailable,
            "may_manage": may_manage,
            "form": form,
            "issued": issued,
            "simulator_url": simulator_url,
            "terminals": _terminals(request),
            "tab": "terminals",
        },
        status=status,
    )


def _terminal_register(request, form: TerminalRegisterForm):
    """The issued terminal, a redirect (a form sent twice), or None (errors on the form)."""
    now = timezone.now()
    token = _token_valid(request.POST.get("token", ""))
    if token is None or not _token_known(request, "terminal", token):
        messages.error(request, _("This form has expired: check the terminals below."))
        return redirect("pos:terminals")
    if not form.is_valid():
        return None
    try:
        claim = idempotency_claim(
            scope=_scope(request, "terminal"),
            key=token,
            fingerprint=request_fingerprint(
                "POST", request.path, {"name": form.cleaned_data["name"]}
            ),
            now=now,
        )
    except (IdempotentRequestInFlight, IdempotencyKeyReused):
        messages.error(request, _("This form has expired: check the terminals below."))
        return redirect("pos:terminals")
    if claim.record_id is None:
        messages.info(
            request,
            _("This terminal was already registered; its secret was shown once, on that page."),
        )
        return redirect("pos:terminals")
    try:
        issued = services.terminal_register(
            merchant=request.merchant,
            livemode=request.livemode,
            name=form.cleaned_data["name"],
            shop=form.cleaned_data["shop"],
            serial_number=form.cleaned_data["serial_number"],
            now=now,
            created_by=request.user,
        )
    except DomainError as error:
        idempotency_release(record_id=claim.record_id)
        form.add_error(None, error.message)
        return None
    except Exception:
        idempotency_release(record_id=claim.record_id)
        raise
    idempotency_complete(
        record_id=claim.record_id, status=200, body=issued.terminal.public_id, now=now
    )
    return issued


@require_POST
@merchant_required
def terminal_revoke(request, terminal_id: str):
    """Revoke a terminal (owners and admins; the page asked for a confirmation). Its open
    sale is cancelled; revoking twice is harmless."""
    try:
        terminal = selectors.terminal_for(
            merchant=request.merchant, livemode=request.livemode, terminal_id=terminal_id
        )
    except NotFound as error:
        raise Http404 from error
    if not request.membership.can_manage_keys:
        raise PermissionDenied
    services.terminal_revoke(terminal=terminal, now=timezone.now(), revoked_by=request.user)
    messages.success(
        request,
        _("Terminal %(name)s is revoked: its next call is refused.") % {"name": terminal.name},
    )
    return redirect("pos:terminals")
