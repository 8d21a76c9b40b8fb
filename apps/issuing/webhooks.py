"""The issuer's messages to Tranche: signed, kept, answered once.

Each message is a JSON object ``{"id", "type", "created", "livemode", "data"}`` posted to
``/issuing/webhooks`` with the header ``Tranche-Issuer-Signature: t=<unix time>,v1=<hex>``,
the HMAC-SHA256 of ``"<t>.<body>"`` with ``settings.ISSUING_WEBHOOK_SECRET`` (older than
``SIGNATURE_TOLERANCE`` is refused: a captured message cannot be replayed later).

Types and answers:

- ``authorization.request`` ``{authorization, card, amount, currency, merchant: {name,
  category, country}}`` -> 200 ``{"approved": bool, "decline_code", "authorization"}``;
- ``authorization.reversal`` ``{authorization, card, amount}`` -> 200;
- ``transaction.cleared`` ``{authorization, amount}`` -> 200, or 409 while the purchase is
  still being decided (the issuer retries);
- ``transaction.refund`` ``{refund, authorization, amount}`` -> 200, or 409 likewise.

A message Tranche cannot apply (a refund above what is left, of a purchase that was not
approved) is still received: 200 ``{"received": true, "refused": <code>, "message"}``, kept
like any answer and logged for the operators (a 4xx would make the issuer retry forever).

A message id seen before gets its first answer (kept in ``IssuerMessage``); an invalid
signature is 401, a malformed message 400.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.common.errors import DomainError
from apps.common.money import to_cents
from apps.issuing.models import IssuerMessage
from apps.issuing.services import authorisations as auth
from apps.refunds.allocation import RefundWaitForDebit

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Tranche-Issuer-Signature"
SIGNATURE_TOLERANCE = timedelta(minutes=5)
REQUEST = "authorization.request"
REVERSAL = "authorization.reversal"
CLEARED = "transaction.cleared"
REFUND = "transaction.refund"
KINDS = (REQUEST, REVERSAL, CLEARED, REFUND)
MAX_BODY_BYTES = 64 * 1024


class BadMessage(Exception):
    pass


def signature_for(body: bytes, *, timestamp: int, secret: str | None = None) -> str:
    secret = secret if secret is not None else settings.ISSUING_WEBHOOK_SECRET
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def signature_valid(body: bytes, header: str, *, now: datetime) -> bool:
    parts = dict(item.split("=", 1) for item in (header or "").split(",") if "=" in item)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now.timestamp() - timestamp) > SIGNATURE_TOLERANCE.total_seconds():
        return False
    expected = signature_for(body, timestamp=timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def receive(body: bytes, signature: str, *, now: datetime | None = None) -> tuple[int, dict]:
    """Check, keep and answer one message: (HTTP status, JSON answer)."""
    now = now or timezone.now()
    if len(body) > MAX_BODY_BYTES or not signature_valid(body, signature, now=now):
        return 401, {"error": "invalid_signature"}
    try:
        message = _parse(body)
    except BadMessage as error:
        return 400, {"error": "invalid_message", "message": str(error)}
    stored = _keep(message, now=now)
    if stored.answered_at is not None:
        return stored.status_code, stored.response
    try:
        status, answer, authorisation = _dispatch(message, now=now)
    except (auth.NotDecidedYet, RefundWaitForDebit):
        return 409, {"error": "not_decided_yet", "retry": True}
    except DomainError as error:
        # A message Tranche cannot apply (a refund above what is left, of a purchase that
        # made no plan): received (2xx, or the issuer would retry it forever), kept with
        # what Tranche refused, and logged for the operators.
        logger.error("Issuer message %s refused: %s (%s)", message["id"], error.code, error)
        status, answer, authorisation = (
            200,
            {"received": True, "refused": error.code, "message": str(error.message)},
            None,
        )
    IssuerMessage.objects.filter(pk=stored.pk, answered_at__isnull=True).update(
        status_code=status,
        response=answer,
        answered_at=timezone.now(),
        authorisation=authorisation,
    )
    return status, answer


def _parse(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body)
    except ValueError as error:
        raise BadMessage("The body is not JSON.") from error
    if not isinstance(message, dict) or not isinstance(message.get("data"), dict):
        raise BadMessage("A message is an object with a data object.")
    if message.get("type") not in KINDS:
        raise BadMessage(f"Unknown type {message.get('type')!r}.")
    if not isinstance(message.get("id"), str) or not 0 < len(message["id"]) <= 64:
        raise BadMessage("The id must be a string of 1 to 64 characters.")
    if not isinstance(message.get("livemode"), bool):
        raise BadMessage("livemode must be a boolean.")
    data = message["data"]
    reference = data.get("authorization")
    if not isinstance(reference, str) or not 0 < len(reference) <= 64:
        raise BadMessage("data.authorization must be a string of 1 to 64 characters.")
    amount = data.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise BadMessage("data.amount must be a whole number of cents.")
    if message["type"] in (REQUEST, REVERSAL) and not isinstance(data.get("card"), str):
        raise BadMessage("data.card must be the card's token.")
    if message["type"] == REFUND and not isinstance(data.get("refund"), str):
        raise BadMessage("data.refund must be the refund's reference.")
    if message["type"] == REQUEST and not (
        isinstance(data.get("currency"), str) and len(data["currency"]) == 3
    ):
        raise BadMessage("data.currency must be an ISO 4217 code (EUR).")
    if message["type"] == REQUEST and not isinstance(data.get("merchant"), dict):
        raise BadMessage("data.merchant must be an object.")
    return message


def _keep(message: dict, *, now: datetime) -> IssuerMessage:
    try:
        with transaction.atomic():
            return IssuerMessage.objects.create(
                message_id=message["id"],
                livemode=message["livemode"],
                kind=message["type"],
                body=message,
                received_at=now,
            )
    except IntegrityError:
        return IssuerMessage.objects.get(message_id=message["id"])


def _dispatch(message: dict, *, now: datetime):
    data = message["data"]
    livemode = message["livemode"]
    kind = message["type"]
    if kind == REQUEST:
        merchant = data["merchant"]
        row = auth.authorisation_request(
            request=auth.PurchaseRequest(
                reference=data["authorization"],
                card_token=data["card"],
                amount_cents=data["amount"],
                currency=data["currency"],
                merchant_name=str(merchant.get("name") or ""),
                merchant_category=str(merchant.get("category") or ""),
                merchant_country=str(merchant.get("country") or ""),
                livemode=livemode,
            ),
            now=now,
        )
        approved = row.state == row.State.APPROVED
        answer = {
            "approved": approved,
            "decline_code": None if approved else (row.decline_code or "declined"),
            "authorization": row.issuer_reference,
            "amount": to_cents(row.amount),
        }
        return 200, answer, row
    if kind == REVERSAL:
        row = auth.authorisation_reverse(
            livemode=livemode,
            reference=data["authorization"],
            card_token=data["card"],
            amount_cents=data["amount"],
            now=now,
        )
        return 200, {"received": True, "state": row.state}, row
    if kind == CLEARED:
        row = auth.authorisation_clear(
            livemode=livemode, reference=data["authorization"], amount_cents=data["amount"], now=now
        )
        return 200, {"received": True, "state": row.state}, row
    refund = auth.authorisation_refund(
        livemode=livemode,
        reference=data["authorization"],
        refund_reference=data["refund"],
        amount_cents=data["amount"],
        now=now,
    )
    return 200, {"received": True, "refund": refund.public_id if refund else None}, None


@csrf_exempt
@require_POST
def issuer_webhook(request: HttpRequest) -> JsonResponse:
    status, answer = receive(request.body, request.headers.get(SIGNATURE_HEADER, ""))
    return JsonResponse(answer, status=status)
