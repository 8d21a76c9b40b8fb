"""Accepted payments for the schedules' tests, made through the real services: the payment
created as the API does, the card tokenised and its first instalment charged by the sandbox
processor (3-D Secure frictionless), then ``payment_accept`` (ledger, emails, next debits)."""

from __future__ import annotations

from datetime import datetime

import time_machine
from django.db import transaction

from apps.common.money import to_cents
from apps.payments.models import Card, Charge, Checkout, Payment, PaymentState
from apps.payments.processor_sandbox import SandboxProcessor
from apps.payments.services.acceptance import payment_accept
from apps.payments.services.checkout import checkout_open
from apps.payments.services.transitions import payment_lock, payment_transition
from tests.payments.builders import payment_create_for

SUCCESS = "4970100000000006"
LATER_DECLINED = "4970100000000345"  # paid at checkout, automatic debits declined
TIMEOUT = "4000000000007775"  # every call times out after the money moved


def card_at_checkout(payment: Payment, *, number: str, when: datetime) -> Card:
    """A card the sandbox tokenised, saved for the payment's customer and given at its
    checkout (opened now)."""
    details = SandboxProcessor().tokenise(
        number=number, exp_month=12, exp_year=2035, cvc="123", livemode=payment.livemode
    )
    card = Card.objects.create(
        customer=payment.customer,
        livemode=payment.livemode,
        processor_token=details.token,
        bin=details.bin,
        last4=details.last4,
        brand=details.brand,
        funding=details.funding,
        issuer_country=details.issuer_country,
        exp_month=details.exp_month,
        exp_year=details.exp_year,
        fingerprint=details.fingerprint,
        created_at=when,
    )
    checkout = checkout_open(payment=payment, now=when)
    Checkout.objects.filter(pk=checkout.pk).update(
        card=card, email=payment.customer.email, first_name="Camille", last_name="Martin"
    )
    return card


def accepted(
    shop,
    *,
    when: datetime,
    card_number: str = SUCCESS,
    installments_count: int = 4,
    amount: int = 40_000,
    **fields,
) -> Payment:
    processor = SandboxProcessor()
    with time_machine.travel(when, tick=False):
        payment = payment_create_for(
            shop, purchase_amount=amount, installments_count=installments_count, **fields
        )
        card = card_at_checkout(payment, number=card_number, when=when)
        first = payment.instalments.get(number=1)
        cents = to_cents(first.total_amount)
        three_ds = processor.three_ds_start(
            token=card.processor_token, amount_cents=cents, return_url="", livemode=False
        )
        key = f"instalment:{first.public_id}:attempt:1"
        try:
            result = processor.charge(
                token=card.processor_token,
                amount_cents=cents,
                idempotency_key=key,
                livemode=payment.livemode,
                three_ds_reference=three_ds.reference,
            )
            reference = result.reference
        except Exception:  # the timeout card: the charge went through, ask for it
            reference = processor.charge_status(idempotency_key=key).reference
        charge = Charge.objects.create(
            payment=payment,
            instalment=first,
            card=card,
            kind=Charge.Kind.FIRST_INSTALMENT,
            idempotency_key=key,
            amount=first.total_amount,
            status=Charge.Status.SUCCEEDED,
            processor_reference=reference,
            created_at=when,
            finished_at=when,
        )
        with transaction.atomic():
            locked = payment_lock(payment_id=payment.pk)
            payment_transition(locked, PaymentState.SCORED_YES, now=when)
            payment_accept(payment=locked, charge=charge, now=when)
    return Payment.objects.get(pk=payment.pk)
