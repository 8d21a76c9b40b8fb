"""Who is signed in to the portal: one customer per browser session, in one mode.

The session keeps the customer's id, when they signed in and when they last came; it ends
after ``PORTAL_SESSION_IDLE_MINUTES`` without a request and ``PORTAL_SESSION_MAX_HOURS``
after signing in, whichever comes first. Signing in rotates the session key (no fixation)
and leaves a merchant's dashboard login in the same browser alone.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from apps.payments.models import Customer

CUSTOMER_KEY = "portal_customer"
SIGNED_IN_AT_KEY = "portal_signed_in_at"
SEEN_AT_KEY = "portal_seen_at"


def portal_sign_in(request: HttpRequest, customer: Customer, *, now: datetime) -> None:
    """Sign ``customer`` in on this browser (a verified code, or a valid link)."""
    if request.session.get(CUSTOMER_KEY) != customer.pk:
        request.session.cycle_key()
    request.session[CUSTOMER_KEY] = customer.pk
    request.session[SIGNED_IN_AT_KEY] = now.isoformat()
    request.session[SEEN_AT_KEY] = now.isoformat()


def portal_sign_out(request: HttpRequest) -> None:
    for key in (CUSTOMER_KEY, SIGNED_IN_AT_KEY, SEEN_AT_KEY):
        request.session.pop(key, None)
    request.session.cycle_key()


def portal_customer(request: HttpRequest, *, now: datetime | None = None) -> Customer | None:
    """The signed-in customer, or None (never signed in, expired, or erased since); a
    request within the limits keeps the session alive."""
    now = now or timezone.now()
    customer_id = request.session.get(CUSTOMER_KEY)
    if customer_id is None:
        return None
    try:
        signed_in_at = datetime.fromisoformat(request.session[SIGNED_IN_AT_KEY])
        seen_at = datetime.fromisoformat(request.session[SEEN_AT_KEY])
    except (KeyError, TypeError, ValueError):
        portal_sign_out(request)
        return None
    idle = timedelta(minutes=settings.PORTAL_SESSION_IDLE_MINUTES)
    longest = timedelta(hours=settings.PORTAL_SESSION_MAX_HOURS)
    if now - seen_at > idle or now - signed_in_at > longest:
        portal_sign_out(request)
        return None
    customer = Customer.objects.filter(pk=customer_id, erased_at__isnull=True).first()
    if customer is None:
        portal_sign_out(request)
        return None
    request.session[SEEN_AT_KEY] = now.isoformat()
    return customer


def customer_required(view):
    """A portal page: ``request.customer`` is the signed-in customer; anyone else is sent
    to sign in, and comes back here after."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        customer = portal_customer(request)
        if customer is None:
            query = urlencode({"next": request.get_full_path()})
            return redirect(f"{reverse('portal:sign-in')}?{query}")
        request.customer = customer
        response = view(request, *args, **kwargs)
        response.headers.setdefault("Cache-Control", "private, no-store")
        return response

    return wrapper
