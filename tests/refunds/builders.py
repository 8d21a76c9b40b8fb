"""Refunds for the tests, made through the real service (the merchant's action)."""

from __future__ import annotations

from datetime import datetime

import time_machine

from apps.refunds.models import Refund
from apps.refunds.services import RefundRequest, refund_issue


def refunded(
    payment, *, amount: int | None, when: datetime, origin: str = Refund.Origin.API, **fields
) -> Refund:
    with time_machine.travel(when, tick=False):
        return refund_issue(
            payment=payment,
            request=RefundRequest(amount=amount, **fields),
            origin=origin,
            now=when,
        )


def accepted_pay_later(shop, *, when: datetime, amount: int = 30_000, deferred_days: int = 30):
    """A pay-later payment accepted at checkout: its card checked, nothing charged yet."""
    from django.db import transaction

    from apps.payments.models import Payment, PaymentState
    from apps.payments.services.acceptance import payment_accept
    from apps.payments.services.transitions import payment_lock, payment_transition
    from tests.payments.builders import payment_create_for
    from tests.schedules.builders import SUCCESS, card_at_checkout

    with time_machine.travel(when, tick=False):
        payment = payment_create_for(
            shop, purchase_amount=amount, installments_count=1, deferred_days=deferred_days
        )
        card_at_checkout(payment, number=SUCCESS, when=when)
        with transaction.atomic():
            locked = payment_lock(payment_id=payment.pk)
            payment_transition(locked, PaymentState.SCORED_YES, now=when)
            payment_accept(payment=locked, charge=None, now=when)
    return Payment.objects.get(pk=payment.pk)
