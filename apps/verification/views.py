"""Developer pages of verification: the SMS outbox moved to the one outbox page."""

from __future__ import annotations

from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET


@require_GET
def sms_outbox(request):
    """The old address of the SMS list: the SMS are now listed with the emails (that page
    keeps the access rule: DEBUG or staff, else 404)."""
    return redirect(reverse("common:dev-outbox") + "#sms")
