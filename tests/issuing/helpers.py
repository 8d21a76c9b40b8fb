"""Issuing test helpers: a signed-up customer, a funding card through 3-D Secure, a card,
and the issuer's messages (signed, as the issuer sends them)."""

from __future__ import annotations

import json
import secrets
from datetime import date, datetime

from django.utils import timezone

from apps.common.money import to_cents
from apps.issuing.issuer_sandbox import _cvc, _number
from apps.issuing.models import CardAuthorisation, FundingCardSetup, VirtualCard
from apps.issuing.services.cards import card_request
from apps.issuing.webhooks import receive, signature_for
from apps.payments.models import Card, Customer
from apps.payments.processor import card_processor

PROFILE = {
    "email": "lea.bernard@example.com",
    "first_name": "Léa",
    "last_name": "Bernard",
    "phone": "+33611223344",
    "birth_date": date(1990, 4, 12),
    "address": {
        "line1": "12 rue de la Paix",
        "postal_code": "75002",
        "city": "Paris",
        "country": "FR",
    },
}
GOOD_CARD = "4970100000000006"  # frictionless 3-D Secure, succeeds
DECLINING_CARD = "4970100000000345"  # checkout fine, merchant-initiated charges declined
TIMEOUT_CARD = "4000000000007775"


def signed_up(*, when: datetime, livemode: bool = False, **overrides) -> Customer:
    """A customer who signed up by phone and completed the profile."""
    fields = {**PROFILE, **overrides}
    return Customer.objects.create(
        livemode=livemode,
        email=fields["email"],
        first_name=fields["first_name"],
        last_name=fields["last_name"],
        phone=fields["phone"],
        phone_verified_at=when if fields["phone"] else None,
        birth_date=fields["birth_date"],
        address=fields["address"],
        created_at=when,
        updated_at=when,
    )


def funding_card(
    customer: Customer, *, when: datetime, number: str = GOOD_CARD, authenticated: bool = True
) -> Card:
    """A funding card tokenised by the sandbox processor, its 3-D Secure done (or not)."""
    details = card_processor().tokenise(
        number=number, exp_month=12, exp_year=when.year + 3, cvc="123", livemode=customer.livemode
    )
    card = Card.objects.create(
        customer=customer,
        livemode=customer.livemode,
        processor_token=details.token,
        bin=details.bin,
        last4=details.last4,
        brand=details.brand,
        funding=details.funding,
        product=details.product,
        issuer_country=details.issuer_country,
        exp_month=details.exp_month,
        exp_year=details.exp_year,
        fingerprint=details.fingerprint,
        three_ds_authenticated_at=when if authenticated else None,
        created_at=when,
    )
    FundingCardSetup.objects.create(
        customer=customer,
        livemode=customer.livemode,
        card=card,
        status=FundingCardSetup.Status.AUTHENTICATED
        if authenticated
        else FundingCardSetup.Status.STARTED,
        three_ds_reference="3ds_test",
        created_at=when,
        completed_at=when if authenticated else None,
    )
    return card


def card_for(*, when: datetime, number: str = GOOD_CARD, **overrides) -> VirtualCard:
    """A customer with an issued Tranche card (limit 300 €: no plan paid off yet)."""
    customer = signed_up(when=when, **overrides)
    funding_card(customer, when=when, number=number)
    decision, card = card_request(customer=customer, now=when)
    assert card is not None, decision.reasons
    return card


def card_details(card: VirtualCard) -> dict:
    """What the customer types at a shop (the sandbox issuer's derivation)."""
    return {
        "number": _number(card.issuer_token),
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
        "cvc": _cvc(card.issuer_token),
    }


def message(
    kind: str, data: dict, *, livemode: bool = False, message_id: str | None = None
) -> dict:
    return {
        "id": message_id or f"imsg_{secrets.token_hex(8)}",
        "type": kind,
        "created": int(timezone.now().timestamp()),
        "livemode": livemode,
        "data": data,
    }


def send(body: dict) -> tuple[int, dict]:
    """Deliver a message to Tranche as the issuer does (signed, now)."""
    raw = json.dumps(body).encode()
    return receive(raw, signature_for(raw, timestamp=int(timezone.now().timestamp())))


def purchase_request(
    card: VirtualCard,
    amount: int,
    *,
    reference: str | None = None,
    category: str = "5311",
    currency: str = "EUR",
    shop: str = "Galeries Lafayette",
    message_id: str | None = None,
) -> dict:
    return message(
        "authorization.request",
        {
            "authorization": reference or f"iauth_{secrets.token_hex(8)}",
            "card": card.issuer_token,
            "amount": amount,
            "currency": currency,
            "merchant": {"name": shop, "category": category, "country": "FR"},
        },
        livemode=card.livemode,
        message_id=message_id,
    )


def decide(card: VirtualCard, amount: int, **kwargs) -> tuple[int, dict, CardAuthorisation | None]:
    """Ask Tranche about a purchase as the issuer does: (status, answer, the row)."""
    body = purchase_request(card, amount, **kwargs)
    status, answer = send(body)
    row = CardAuthorisation.objects.filter(
        livemode=card.livemode, issuer_reference=body["data"]["authorization"]
    ).first()
    return status, answer, row


def reversal(card: VirtualCard, reference: str, amount: int, **kwargs) -> dict:
    return message(
        "authorization.reversal",
        {"authorization": reference, "card": card.issuer_token, "amount": amount},
        livemode=card.livemode,
        **kwargs,
    )


def clearing(card: VirtualCard, reference: str, amount: int, **kwargs) -> dict:
    return message(
        "transaction.cleared",
        {"authorization": reference, "amount": amount},
        livemode=card.livemode,
        **kwargs,
    )


def shop_refund(
    card: VirtualCard, reference: str, amount: int, *, refund: str | None = None, **kwargs
) -> dict:
    return message(
        "transaction.refund",
        {
            "authorization": reference,
            "refund": refund or f"irefund_{secrets.token_hex(8)}",
            "amount": amount,
        },
        livemode=card.livemode,
        **kwargs,
    )


def instalment_amounts(payment) -> list[tuple[str, int]]:
    """(state, purchase amount in cents) of each instalment, in order."""
    return [
        (row.state, to_cents(row.purchase_amount)) for row in payment.instalments.order_by("number")
    ]
