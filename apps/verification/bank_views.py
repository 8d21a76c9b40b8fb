"""The sandbox aggregator's pages (its "bank login"), served only with the sandbox.

The page stands for the customer's bank and the aggregator: it belongs to the outside party,
so it talks to the sandbox's own records, never to Tranche's bank checks.
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
from django.utils.module_loading import import_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from apps.verification.bank_errors import BankConnectionUnknown
from apps.verification.bank_provider import PENDING
from apps.verification.bank_sandbox import (
    PROFILES,
    SandboxBankDataProvider,
    connection_answer,
    connection_get,
    connection_return_url,
)


def _sandbox_in_use() -> bool:
    provider = import_string(settings.BANK_DATA_PROVIDER)
    return isinstance(provider, type) and issubclass(provider, SandboxBankDataProvider)


@never_cache
@require_http_methods(["GET", "POST"])
def sandbox_bank(request: HttpRequest, reference: str) -> HttpResponse:
    """GET: the sandbox bank's page, one button per test account. POST ``profile=<name>``
    connects that account, ``cancel`` refuses; the first answer counts and the browser goes
    back (303) to the return URL with ``bankcheck=<reference>``."""
    if not _sandbox_in_use():
        raise Http404
    record = connection_get(reference=reference)
    if record is None:
        raise Http404
    if request.method == "POST":
        if "cancel" in request.POST:
            profile = None
        elif request.POST.get("profile") in PROFILES:
            profile = request.POST["profile"]
        else:
            return HttpResponseBadRequest("profile must be a test profile, or cancel")
        try:
            record = connection_answer(reference=reference, profile=profile)
        except BankConnectionUnknown:
            raise Http404 from None
        response = HttpResponseRedirect(connection_return_url(record))
        response.status_code = 303  # the browser follows with a GET
        return response
    return render(
        request,
        "verification/sandbox_bank.html",
        {
            "profiles": PROFILES.values(),
            "pending": record["status"] == PENDING,
            "status": record["status"],
            "return_url": connection_return_url(record),
        },
    )
