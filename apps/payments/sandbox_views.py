"""The sandbox processor's pages (its 3-D Secure ACS), served only with the sandbox.

The ACS stands for the card issuer's bank: it belongs to the outside party, so it talks to
the sandbox's own records, never to Tranche's payments.
"""

from __future__ import annotations

from django.conf import settings
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
)
from django.shortcuts import render
from django.utils import timezone
from django.utils.module_loading import import_string
from django.views.decorators.http import require_http_methods

from apps.common.money import to_money
from apps.payments.processor_sandbox import (
    SandboxProcessor,
    UnknownAuthentication,
    three_ds_complete,
    three_ds_get,
    three_ds_return_url,
    three_ds_status,
)

DECISIONS = {"approve": True, "deny": False}


def _sandbox_in_use() -> bool:
    processor = import_string(settings.CARD_PROCESSOR)
    return isinstance(processor, type) and issubclass(processor, SandboxProcessor)


@require_http_methods(["GET", "POST"])
def acs(request: HttpRequest, reference: str) -> HttpResponse:
    """GET: the sandbox bank's challenge page. POST ``decision=approve|deny``: the first
    answer counts; the browser goes back (303) to the return URL with ``threeds=<reference>``."""
    if not _sandbox_in_use():
        raise Http404
    try:
        authentication = three_ds_get(reference=reference)
    except UnknownAuthentication:
        raise Http404 from None
    if request.method == "POST":
        if request.POST.get("decision") not in DECISIONS:
            return HttpResponseBadRequest("decision must be approve or deny")
        authentication = three_ds_complete(
            reference=reference,
            approved=DECISIONS[request.POST["decision"]],
            now=timezone.now(),
        )
        if not authentication.return_url:
            return HttpResponseBadRequest("this authentication has no return URL")
        response = HttpResponseRedirect(three_ds_return_url(authentication))
        response.status_code = 303  # the browser follows with a GET
        return response
    return render(
        request,
        "payments/sandbox_acs.html",
        {
            "authentication": authentication,
            "amount": to_money(authentication.amount_cents).amount,
            "status": three_ds_status(authentication),
            "return_url": three_ds_return_url(authentication) if authentication.return_url else "",
        },
    )
