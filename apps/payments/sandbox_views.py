"""The sandbox processor's pages (its 3-D Secure ACS), served only with the sandbox."""

from __future__ import annotations

from django.http import HttpResponse


def acs(request, reference: str):
    return HttpResponse(status=503)  # being built (issue 5); replaced before landing
