"""The sandbox card issuer: an outside party that lives in our process.

It issues virtual cards (``SandboxIssuedCard``: token, last 4, expiry; the number and CVC
are derived from the token with a keyed hash each time they are shown, never stored), and
plays the card network: ``purchase`` checks the card's details as a shop's terminal sends
them, asks Tranche over its webhook (``apps.issuing.webhooks``) with a deadline, and keeps
its own record of the answer. Like a real network:

- no answer within ``settings.ISSUING_AUTHORISATION_TIMEOUT_MS`` declines the purchase at the
  network (``issuer_timeout``) and sends Tranche a reversal; a purchase whose cents are
  ``TIMEOUT_CENTS`` (12,13 €, 250,13 €...) gets Tranche's answer too late, every time;
- reversals, clearings and refunds are advices kept in ``SandboxIssuerOutbox`` and retried
  with backoff until Tranche answers 2xx (``deliver_due``, the ``sandbox-issuer-deliveries``
  job); an approved purchase is cleared at its amount by the next delivery;
- messages go to ``settings.ISSUING_SANDBOX_WEBHOOK_URL`` over HTTP when it is set, else
  straight into this process's webhook handler (same signature, same checks).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.common.dates import business_date
from apps.issuing.issuer import CardSecrets, IssuedCard, IssuerError
from apps.issuing.models import (
    SandboxIssuedCard,
    SandboxIssuerAuthorisation,
    SandboxIssuerOutbox,
)
from apps.payments.card_rules import luhn_valid, normalise_number

logger = logging.getLogger(__name__)

BIN = "53550900"  # Mastercard, France, virtual: the sandbox programme's range
NUMBER_LENGTH = 16
VALID_YEARS = 3
TIMEOUT_CENTS = 13
DELIVERY_BACKOFF = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10))
APPROVED = "approved"
DECLINED = "declined"
TIMED_OUT = "timed_out"


def _digits(token: str, purpose: str, count: int) -> str:
    mac = hmac.new(
        settings.SECRET_KEY.encode(), f"sandbox-issuer:{purpose}:{token}".encode(), hashlib.sha256
    )
    return str(int(mac.hexdigest(), 16))[-count:].rjust(count, "0")


def _luhn_digit(partial: str) -> str:
    for digit in "0123456789":
        if luhn_valid(partial + digit):
            return digit
    raise AssertionError("a Luhn check digit always exists")


def _number(token: str) -> str:
    partial = BIN + _digits(token, "number", NUMBER_LENGTH - len(BIN) - 1)
    return partial + _luhn_digit(partial)


def _fingerprint(number: str) -> str:
    return hmac.new(
        settings.SECRET_KEY.encode(), f"sandbox-issuer:fp:{number}".encode(), hashlib.sha256
    ).hexdigest()


def _cvc(token: str) -> str:
    return _digits(token, "cvc", 3)


class SandboxIssuer:
    """The ``CardIssuer`` of development and tests."""

    def card_issue(
        self, *, cardholder_name: str, livemode: bool, idempotency_key: str
    ) -> IssuedCard:
        existing = SandboxIssuedCard.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            today = business_date(timezone.now())
            while existing is None:
                token = f"ic_{'live' if livemode else 'test'}_{secrets.token_hex(12)}"
                number = _number(token)
                try:
                    with transaction.atomic():
                        existing = SandboxIssuedCard.objects.create(
                            token=token,
                            idempotency_key=idempotency_key,
                            livemode=livemode,
                            cardholder_name=cardholder_name[:200],
                            last4=number[-4:],
                            exp_month=today.month,
                            exp_year=today.year + VALID_YEARS,
                            number_fingerprint=_fingerprint(number),
                            created_at=timezone.now(),
                        )
                except IntegrityError:
                    existing = SandboxIssuedCard.objects.filter(
                        idempotency_key=idempotency_key
                    ).first()  # the same request, concurrently; else a number collision
        return IssuedCard(
            token=existing.token,
            last4=existing.last4,
            exp_month=existing.exp_month,
            exp_year=existing.exp_year,
        )

    def _card(self, token: str) -> SandboxIssuedCard:
        card = SandboxIssuedCard.objects.filter(token=token).first()
        if card is None:
            raise IssuerError(f"No such card: {token}")
        return card

    def card_reveal(self, *, token: str) -> CardSecrets:
        card = self._card(token)
        if card.state == "closed":
            raise IssuerError("This card is closed.")
        return CardSecrets(
            number=_number(token), exp_month=card.exp_month, exp_year=card.exp_year, cvc=_cvc(token)
        )

    def _set_state(self, token: str, state: str) -> None:
        card = self._card(token)
        if card.state != "closed":
            SandboxIssuedCard.objects.filter(pk=card.pk).update(state=state)

    def card_freeze(self, *, token: str) -> None:
        self._set_state(token, "frozen")

    def card_unfreeze(self, *, token: str) -> None:
        self._set_state(token, "active")

    def card_close(self, *, token: str) -> None:
        self._set_state(token, "closed")


# --- the network side: purchases, reversals, clearings, refunds ---------------------------


@dataclass(frozen=True)
class PurchaseOutcome:
    reference: str
    status: str  # approved, declined, timed_out
    decline_code: str


def purchase(
    *,
    number: str,
    exp_month: int,
    exp_year: int,
    cvc: str,
    amount_cents: int,
    merchant_name: str,
    merchant_category: str = "5311",
    merchant_country: str = "FR",
) -> PurchaseOutcome:
    """A shop's terminal sends a purchase made with the card's details: the network checks
    them, asks Tranche, and answers the shop."""
    number = normalise_number(number)
    card = SandboxIssuedCard.objects.filter(number_fingerprint=_fingerprint(number)).first()
    reference = f"iauth_{secrets.token_hex(12)}"
    if card is None or (card.exp_month, card.exp_year) != (exp_month, exp_year):
        return PurchaseOutcome(reference, DECLINED, "incorrect_card_details")
    if not hmac.compare_digest(_cvc(card.token), cvc or ""):
        return PurchaseOutcome(reference, DECLINED, "incorrect_cvc")
    if card.state == "closed":
        return PurchaseOutcome(reference, DECLINED, "card_closed")
    now = timezone.now()
    row = SandboxIssuerAuthorisation.objects.create(
        reference=reference,
        card=card,
        amount_cents=amount_cents,
        merchant_name=merchant_name[:200],
        merchant_category=merchant_category[:4],
        merchant_country=merchant_country[:2],
        status="pending",
        created_at=now,
    )
    message = _message(
        "authorization.request",
        card.livemode,
        {
            "authorization": reference,
            "card": card.token,
            "amount": amount_cents,
            "currency": "EUR",
            "merchant": {
                "name": merchant_name,
                "category": merchant_category,
                "country": merchant_country,
            },
        },
    )
    deadline = settings.ISSUING_AUTHORISATION_TIMEOUT_MS / 1000
    started = time.monotonic()
    try:
        status, answer = _send(message, timeout=deadline)
    except (TimeoutError, OSError) as error:
        logger.info("sandbox issuer: Tranche did not answer %s (%s)", reference, error)
        status, answer = 0, {}
    late = time.monotonic() - started > deadline or amount_cents % 100 == TIMEOUT_CENTS
    if late or status != 200:
        row.status = TIMED_OUT
        row.decline_code = "issuer_timeout"
        row.reversed_at = timezone.now()
        row.save(update_fields=["status", "decline_code", "reversed_at"])
        _queue(
            "authorization.reversal",
            card.livemode,
            {"authorization": reference, "card": card.token, "amount": amount_cents},
        )
        deliver_due(limit=10)
        return PurchaseOutcome(reference, TIMED_OUT, "issuer_timeout")
    if answer.get("approved") is True:
        row.status = APPROVED
        row.save(update_fields=["status"])
        _queue(
            "transaction.cleared",
            card.livemode,
            {"authorization": reference, "amount": amount_cents},
        )
        return PurchaseOutcome(reference, APPROVED, "")
    row.status = DECLINED
    row.decline_code = str(answer.get("decline_code") or "declined")[:40]
    row.save(update_fields=["status", "decline_code"])
    return PurchaseOutcome(reference, DECLINED, row.decline_code)


def refund(*, reference: str, amount_cents: int) -> str:
    """The shop refunds (part of) an approved purchase; returns the refund's reference."""
    with transaction.atomic():
        row = SandboxIssuerAuthorisation.objects.select_for_update().get(reference=reference)
        if row.status != APPROVED:
            raise IssuerError("Only an approved purchase can be refunded.")
        if amount_cents <= 0 or row.refunded_cents + amount_cents > row.amount_cents:
            raise IssuerError("The refund is above what is left of the purchase.")
        row.refunded_cents += amount_cents
        row.save(update_fields=["refunded_cents"])
        refund_reference = f"irefund_{secrets.token_hex(12)}"
        _queue(
            "transaction.refund",
            row.card.livemode,
            {"authorization": reference, "refund": refund_reference, "amount": amount_cents},
        )
    deliver_due(limit=10)
    return refund_reference


def reverse(*, reference: str) -> None:
    """The shop cancels an approved purchase before it is cleared."""
    with transaction.atomic():
        row = SandboxIssuerAuthorisation.objects.select_for_update().get(reference=reference)
        if row.status != APPROVED or row.cleared_at is not None or row.reversed_at is not None:
            raise IssuerError("Only an approved purchase not yet cleared can be reversed.")
        row.reversed_at = timezone.now()
        row.save(update_fields=["reversed_at"])
        SandboxIssuerOutbox.objects.filter(
            kind="transaction.cleared",
            delivered_at__isnull=True,
            body__data__authorization=reference,
        ).delete()
        _queue(
            "authorization.reversal",
            row.card.livemode,
            {"authorization": reference, "card": row.card.token, "amount": row.amount_cents},
        )
    deliver_due(limit=10)


def _message(kind: str, livemode: bool, data: dict) -> dict:
    return {
        "id": f"imsg_{secrets.token_hex(12)}",
        "type": kind,
        "created": int(time.time()),
        "livemode": livemode,
        "data": data,
    }


def _queue(kind: str, livemode: bool, data: dict) -> SandboxIssuerOutbox:
    message = _message(kind, livemode, data)
    now = timezone.now()
    return SandboxIssuerOutbox.objects.create(
        message_id=message["id"],
        livemode=livemode,
        kind=kind,
        body=message,
        due_at=now,
        created_at=now,
    )


def _send(message: dict, *, timeout: float) -> tuple[int, dict]:
    from apps.issuing.webhooks import SIGNATURE_HEADER, receive, signature_for

    body = json.dumps(message, separators=(",", ":")).encode()
    signature = signature_for(body, timestamp=int(time.time()))
    url = settings.ISSUING_SANDBOX_WEBHOOK_URL
    if not url:
        return receive(body, signature)
    request = urllib.request.Request(  # noqa: S310 (a configured http(s) URL)
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, {}


def deliver_due(*, limit: int = 100) -> int:
    """Deliver the advices that are due, oldest first; retried with backoff until 2xx."""
    now = timezone.now()
    delivered = 0
    ids = list(
        SandboxIssuerOutbox.objects.filter(delivered_at__isnull=True, due_at__lte=now)
        .order_by("due_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in ids:
        with transaction.atomic():
            row = (
                SandboxIssuerOutbox.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, delivered_at__isnull=True)
                .first()
            )
            if row is None:
                continue
            # Claimed: pushed back first, so a concurrent run leaves it alone meanwhile.
            step = DELIVERY_BACKOFF[min(row.attempts, len(DELIVERY_BACKOFF) - 1)]
            row.attempts += 1
            row.due_at = now + step
            row.save(update_fields=["attempts", "due_at"])
        try:
            status, _answer = _send(
                row.body, timeout=settings.ISSUING_AUTHORISATION_TIMEOUT_MS / 1000
            )
            error = "" if 200 <= status < 300 else f"HTTP {status}"
        except (TimeoutError, OSError) as failure:
            error = str(failure)[:200]
        if error:
            SandboxIssuerOutbox.objects.filter(pk=row.pk).update(last_error=error)
            continue
        SandboxIssuerOutbox.objects.filter(pk=row.pk).update(
            delivered_at=timezone.now(), last_error=""
        )
        if row.kind == "transaction.cleared":
            SandboxIssuerAuthorisation.objects.filter(
                reference=row.body["data"]["authorization"]
            ).update(cleared_at=timezone.now())
        delivered += 1
    return delivered
