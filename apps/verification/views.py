"""Developer pages of verification: the SMS outbox."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.verification import selectors


@never_cache
@require_GET
def sms_outbox(request):
    """The latest SMS, test and live, as the sandbox provider would have delivered them.

    Outside development only staff see it; to everybody else the page does not exist.
    """
    if not (settings.DEBUG or request.user.is_staff):
        raise Http404
    return render(
        request,
        "verification/sms_outbox.html",
        {"messages_sent": selectors.sms_messages_latest()},
    )
