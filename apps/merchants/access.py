"""Who may see which dashboard page, and in which mode (test or live).

Every dashboard view is wrapped in ``merchant_required``: it sets ``request.membership``,
``request.merchant`` and ``request.livemode`` (the mode switch, kept in the session), so a
view scopes every read with ``merchant=request.merchant, livemode=request.livemode`` and
never takes a merchant or a mode from the URL. ``manager_required`` also asks for the owner
or admin role (keys, settings, staff).
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.merchants import selectors

MODE_SESSION_KEY = "dashboard_livemode"


def livemode_of(request) -> bool:
    """The mode the dashboard shows: test until the user switches to live."""
    return bool(request.session.get(MODE_SESSION_KEY, False))


def merchant_required(view):
    """Log-in required, and the user must belong to a merchant."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        request.membership = selectors.membership_for_user(request.user)
        if request.membership is None:
            return render(request, "merchants/no_merchant.html", status=403)
        request.merchant = request.membership.merchant
        request.livemode = livemode_of(request)
        return view(request, *args, **kwargs)

    return wrapper


def manager_required(view):
    """``merchant_required``, and the owner or admin role."""

    @merchant_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.membership.can_manage_keys:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


@require_POST
@merchant_required
def mode_switch(request):
    """Show test or live data from now on (POST ``mode`` = test | live), back where it was."""
    request.session[MODE_SESSION_KEY] = request.POST.get("mode") == "live"
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "dashboard:home"
    return redirect(target)
