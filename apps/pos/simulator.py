"""The simulated terminal (development and tests): a page that behaves like a payment
terminal and drives the terminal API over HTTP from the browser, with the terminal's own
secret, exactly as a device would (static/js/pos-simulator.js).

Who may open it: in development (DEBUG) anybody; otherwise a logged-in dashboard user (a
member of a merchant) or a Tranche staff user; to everybody else it does not exist (404),
like /dev/outbox. The page itself carries no data and no credential: everything it shows
comes from the API, authorised by the terminal secret typed in (or passed in the URL
fragment, which never reaches the server). Opening it to dashboard users lets a merchant
try the terminal they just registered ("Open in the simulated terminal") in live mode too.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.merchants import selectors as merchant_selectors


def _may_open(request) -> bool:
    if settings.DEBUG:
        return True
    user = request.user
    if not user.is_authenticated:
        return False
    return user.is_staff or merchant_selectors.membership_for_user(user) is not None


@never_cache
@require_GET
def simulator(request):
    """The simulated terminal's single page (its screens are switched by the script)."""
    if not _may_open(request):
        raise Http404
    return render(
        request,
        "pos/simulator.html",
        {"poll_wait_seconds": settings.POS_LONG_POLL_MAX_SECONDS, "strings": _strings()},
    )


def _strings() -> dict[str, str]:
    """The few lines the script writes itself (the rest is in the template)."""
    return {
        "network": _("No connection to Tranche. Retrying..."),
        "amount_invalid": _("Type an amount in euros, e.g. 300 or 300,00."),
        "phone_missing": _("Type the customer's mobile number."),
        "secret_missing": _("Type the terminal secret (tk_test_... or tk_live_...)."),
        "unexpected": _("Unexpected answer from Tranche (HTTP %(status)s)."),
        "starting": _("Sending the link..."),
        "cancelling": _("Cancelling..."),
        "connected": _("Terminal %(name)s, %(mode)s mode"),
    }
