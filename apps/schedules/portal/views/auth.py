"""Signing in to the portal: by a one-time code (email or mobile number), or by a signed link
from one of our emails; signing out."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from rest_framework.throttling import BaseThrottle

from apps.common.errors import DomainError
from apps.payments import links
from apps.payments.models import Customer
from apps.schedules.portal import signin
from apps.schedules.portal.session import portal_customer, portal_sign_in, portal_sign_out

SIGN_IN_KEY = "portal_sign_in_id"
NEXT_KEY = "portal_sign_in_next"
TEST_MODE = "test"


class SignInForm(forms.Form):
    identifier = forms.CharField(
        label=_("Email or mobile number"), max_length=signin.MAX_IDENTIFIER_LENGTH
    )


class CodeForm(forms.Form):
    code = forms.CharField(label=_("Your 6-digit code"), max_length=12)


def client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR, or X-Forwarded-For behind TRUSTED_PROXIES proxies (as the API throttles).
    return BaseThrottle().get_ident(request) or None


def safe_next(request: HttpRequest, value: str | None) -> str:
    """``value`` if it is a page of this site (never another host: no open redirect)."""
    if value and url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return value
    return ""


@never_cache
@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    data = request.POST if request.method == "POST" else request.GET
    test_mode = data.get("mode") == TEST_MODE
    next_url = safe_next(request, data.get("next"))
    request.customer = portal_customer(request)
    if request.method == "GET" and request.customer is not None:
        return redirect(next_url or reverse("portal:plans"))
    form = SignInForm(request.POST if request.method == "POST" else None)
    error, status = "", 200
    if form.is_valid():
        try:
            row = signin.sign_in_start(
                identifier=form.cleaned_data["identifier"],
                livemode=not test_mode,
                language=get_language(),
                now=timezone.now(),
                ip_address=client_ip(request),
            )
        except DomainError as exc:
            error, status = exc.message, exc.http_status
        else:
            request.session[SIGN_IN_KEY] = row.public_id
            request.session[NEXT_KEY] = next_url
            return redirect("portal:sign-in-code")
    elif form.is_bound:
        status = 400
    return render(
        request,
        "portal/sign_in.html",
        {
            "form": form,
            "error": error,
            "next": next_url,
            "test_mode": test_mode,
            "mode": TEST_MODE if test_mode else "",
        },
        status=status,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def sign_in_code(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    request.customer = portal_customer(request)
    try:
        row = signin.sign_in_get(sign_in_id=request.session.get(SIGN_IN_KEY, ""))
    except signin.SignInNotFound:
        return redirect("portal:sign-in")
    form = CodeForm(request.POST if request.POST.get("action") == "verify" else None)
    error, status, finished = "", 200, False
    if request.method == "POST" and request.POST.get("action") == "resend":
        try:
            row = signin.sign_in_resend(
                sign_in_id=row.public_id,
                language=get_language(),
                now=now,
                ip_address=client_ip(request),
            )
        except DomainError as exc:
            error, status = exc.message, exc.http_status
        else:
            request.session[SIGN_IN_KEY] = row.public_id
            messages.info(request, _("We sent a new code."))
            return redirect("portal:sign-in-code")
    elif form.is_valid():
        try:
            customer = signin.sign_in_verify(
                sign_in_id=row.public_id,
                code=form.cleaned_data["code"],
                now=now,
                ip_address=client_ip(request),
            )
        except DomainError as exc:
            error, status = exc.message, exc.http_status
            finished = isinstance(
                exc, signin.SignInLocked | signin.SignInCodeExpired | signin.SignInCodeUsed
            )
        else:
            next_url = safe_next(request, request.session.get(NEXT_KEY))
            portal_sign_in(request, customer, now=now)
            request.session.pop(SIGN_IN_KEY, None)
            request.session.pop(NEXT_KEY, None)
            return redirect(next_url or reverse("portal:plans"))
    elif form.is_bound:
        status = 400
    resend_in = max(0, int((row.created_at + signin.RESEND_AFTER - now).total_seconds()) + 1)
    restart = reverse("portal:sign-in")
    if not row.livemode:
        restart += "?" + urlencode({"mode": TEST_MODE})
    return render(
        request,
        "portal/sign_in_code.html",
        {
            "form": form,
            "error": error,
            "finished": finished,
            "by_sms": row.channel == row.Channel.SMS,
            "destination": signin.destination_mask(row.channel, row.destination),
            "minutes": settings.PORTAL_CODE_TTL_MINUTES,
            "test_mode": not row.livemode,
            "test_code": row.test_code if not row.livemode else "",
            "resend_in": resend_in if row.created_at + signin.RESEND_AFTER > now else 0,
            "restart_url": restart,
        },
        status=status,
    )


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    portal_sign_out(request)
    messages.success(request, _("You are signed out."))
    return redirect("portal:sign-in")


@never_cache
@require_http_methods(["GET", "POST"])
def link(request: HttpRequest, token: str) -> HttpResponse:
    """A link from one of our emails: sign its plan's customer in and open the page."""
    return link_answer(request, lambda: signin.sign_in_link_open(token=token))


def link_answer(
    request: HttpRequest, link_open: Callable[[], tuple[Customer, str, str]]
) -> HttpResponse:
    """Open a signed link (``link_open`` reads it): a valid one signs in and redirects to
    its page; an expired one offers to email a new link (a POST sends it); anything else
    asks to sign in by code."""
    now = timezone.now()
    request.customer = portal_customer(request)
    try:
        customer, payment_id, section = link_open()
    except links.LinkExpired as expired:
        if request.method == "POST":
            signin.sign_in_link_send(
                payment_id=expired.payment_id, section=expired.section, now=now
            )
            return _link_page(request, state="sent", status=200)
        return _link_page(request, state="expired", status=410)
    except links.LinkInvalid:
        return _link_page(request, state="invalid", status=400)
    portal_sign_in(request, customer, now=now)
    return redirect(section_url(payment_id, section))


def section_url(payment_id: str, section: str) -> str:
    """The portal page a link's section opens."""
    if section == "card":
        return reverse("portal:card", args=[payment_id])
    if section == "pay":
        return reverse("portal:pay", args=[payment_id])
    plan = reverse("portal:plan", args=[payment_id])
    return f"{plan}#receipts" if section == "receipts" else plan


def _link_page(request: HttpRequest, *, state: str, status: int) -> HttpResponse:
    response = render(
        request,
        "portal/link_expired.html",
        {"state": state, "days": settings.PORTAL_LINK_MAX_AGE_DAYS},
        status=status,
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response
