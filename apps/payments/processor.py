"""The card processor, as Tranche uses it: one small interface, chosen by a setting.

``settings.CARD_PROCESSOR`` names the implementation; ``apps.payments.processor_sandbox``
is the default in development and tests and behaves like a real processor (outcomes chosen
by test card numbers, see the README). A real adapter implements the same methods.

Rules every caller follows:
- every call that moves money carries an idempotency key derived from the row it is for
  (``payment:<id>:first:attempt:<n>``, ``instalment:<id>:attempt:<n>``, ``refund:<id>``); the
  same key twice moves money once and returns the first result;
- no call is made inside an open database transaction;
- a ``ProcessorUnavailable`` (timeout, 5xx) leaves the outcome unknown: ask
  ``charge_status(idempotency_key)`` before trying again;
- a card the customer replaced is ``detach``-ed: its token can never be charged again (a
  charge on it is declined ``token_detached``), while the charges made on it can still be
  refunded.

The card number and CVC go into ``tokenise`` and nowhere else: what comes back (and what
Tranche may store) is a token, the BIN, the last 4 digits, brand, funding, product, issuing
country and expiry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from apps.common.errors import DomainError


@dataclass(frozen=True)
class CardDetails:
    """What the processor tells about a card: all Tranche ever keeps of it."""

    token: str
    bin: str
    last4: str
    brand: str  # cb, visa, mastercard, maestro, amex, other
    funding: str  # credit, debit, prepaid
    product: str  # "", "electron", "maestro", "virtual", ...
    issuer_country: str  # ISO 3166-1 alpha-2
    exp_month: int
    exp_year: int
    # The processor's stable fingerprint of the number: the same card gives the same one.
    fingerprint: str = ""


@dataclass(frozen=True)
class BinInfo:
    bin: str
    brand: str
    funding: str
    product: str
    issuer_country: str


@dataclass(frozen=True)
class ThreeDSStart:
    """A 3-D Secure authentication: ``frictionless`` needs nothing more from the customer;
    ``challenge`` sends the browser to ``challenge_url`` (the issuer's ACS), which comes
    back to the return URL given when it started."""

    reference: str
    status: str  # authenticated, challenge, failed
    challenge_url: str = ""


@dataclass(frozen=True)
class ChargeRequest:
    """One merchant-initiated charge of a saved card (an instalment's debit)."""

    token: str
    amount_cents: int
    idempotency_key: str
    livemode: bool


@dataclass(frozen=True)
class ChargeResult:
    """The outcome of a charge or refund the processor decided."""

    reference: str
    idempotency_key: str
    status: str  # succeeded, declined
    amount_cents: int
    decline_code: str = ""  # do_not_honor, insufficient_funds, expired_card, ...

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


class ProcessorError(DomainError):
    code = "processor_error"
    http_status = 402


class InvalidCard(ProcessorError):
    """The processor refused to tokenise: bad number, past expiry, bad CVC."""

    code = "invalid_card"
    default_message = "The card details are not valid."


class ProcessorUnavailable(ProcessorError):
    """The processor did not answer in time, or failed: the outcome is unknown."""

    code = "processor_unavailable"
    http_status = 503
    default_message = "The card processor did not answer; the outcome is being checked."


class UnknownCharge(ProcessorError):
    """No charge was ever made with this idempotency key."""

    code = "unknown_charge"
    http_status = 404


class CardProcessor(Protocol):
    def tokenise(
        self, *, number: str, exp_month: int, exp_year: int, cvc: str, livemode: bool
    ) -> CardDetails: ...

    def bin_lookup(self, *, bin: str) -> BinInfo | None: ...

    def three_ds_start(
        self, *, token: str, amount_cents: int, return_url: str, livemode: bool
    ) -> ThreeDSStart: ...

    def three_ds_result(self, *, reference: str) -> str:
        """authenticated, challenge (still waiting) or failed."""

    def charge(
        self,
        *,
        token: str,
        amount_cents: int,
        idempotency_key: str,
        livemode: bool,
        three_ds_reference: str = "",
        merchant_initiated: bool = False,
    ) -> ChargeResult:
        """Authorise and capture. Customer-initiated charges carry the 3-D Secure reference;
        later automatic debits are merchant-initiated with the saved token."""

    def charge_many(self, requests: Sequence[ChargeRequest]) -> list[ChargeResult | None]:
        """Merchant-initiated charges in one exchange (a processor's batch endpoint, or
        concurrent calls for one that has none), answered in the requests' order. An answer
        that got lost is None: ask by key. A refusal of one request (an unknown token) is a
        declined result with no charge behind it."""

    def refund(
        self, *, charge_reference: str, amount_cents: int, idempotency_key: str, livemode: bool
    ) -> ChargeResult: ...

    def charge_status(self, *, idempotency_key: str) -> ChargeResult:
        """What became of the call made with this key; ``UnknownCharge`` if none was made."""

    def detach(self, *, token: str, livemode: bool) -> None:
        """Forget the saved card behind ``token``: no charge (customer- or
        merchant-initiated) is ever accepted on it again; they are declined with the code
        ``token_detached``. Refunds of charges already made on it still work. Detaching a
        token twice is fine (nothing more happens); an unknown token raises a
        ``ProcessorError``."""


def card_processor() -> CardProcessor:
    return import_string(settings.CARD_PROCESSOR)()
