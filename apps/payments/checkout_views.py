"""The hosted checkout: the pages a customer pays on (a payment's ``url``)."""

from __future__ import annotations

from django.http import HttpResponse


def checkout(request, payment_id: str):
    return HttpResponse(status=503)  # being built (issue 5); replaced before landing
