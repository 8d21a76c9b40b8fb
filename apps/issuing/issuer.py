"""The card issuer-processor: who issues the Tranche cards and asks Tranche about every
purchase made with them.

Tranche calls it to issue, show, freeze, unfreeze and close cards (this interface, chosen by
``settings.CARD_ISSUER``); it calls Tranche with signed messages (``apps.issuing.webhooks``):
each purchase to decide, then reversals, clearings and refunds. The card's number and CVC
live at the issuer: ``card_reveal`` returns them for one page, never stored, never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from apps.common.errors import DomainError


@dataclass(frozen=True)
class IssuedCard:
    token: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class CardSecrets:
    """The card as the customer types it at a shop. Shown once, on request; its repr hides
    the number and CVC so that no log or error report ever carries them."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str

    def __repr__(self) -> str:
        return f"CardSecrets(number='…{self.number[-4:]}', cvc='***')"

    __str__ = __repr__

    @property
    def number_groups(self) -> str:
        return " ".join(self.number[i : i + 4] for i in range(0, len(self.number), 4))


class IssuerError(DomainError):
    code = "issuer_error"
    http_status = 502
    default_message = _("The card service did not answer. Please try again in a moment.")


class IssuerUnavailable(IssuerError):
    code = "issuer_unavailable"
    http_status = 503


class CardIssuer(Protocol):
    def card_issue(
        self, *, cardholder_name: str, livemode: bool, idempotency_key: str
    ) -> IssuedCard:
        """Issue a virtual card (the same key issues one card, however often repeated)."""

    def card_reveal(self, *, token: str) -> CardSecrets: ...

    def card_freeze(self, *, token: str) -> None:
        """Purchases are declined at the network until unfrozen (Tranche declines them too)."""

    def card_unfreeze(self, *, token: str) -> None: ...

    def card_close(self, *, token: str) -> None:
        """For good (a replaced card). Closing twice is fine; refunds still arrive."""


def card_issuer() -> CardIssuer:
    return import_string(settings.CARD_ISSUER)()
