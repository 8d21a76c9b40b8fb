"""The customer's Tranche card in the portal (placeholders until the pages land)."""

from __future__ import annotations

from django.http import HttpResponse


def _todo(request, *args, **kwargs) -> HttpResponse:
    return HttpResponse("Not built yet", status=501)


card_home = funding_card = funding_three_ds_return = card_request = card_details = _todo
card_freeze = card_unfreeze = card_replace = sandbox_purchase = _todo
