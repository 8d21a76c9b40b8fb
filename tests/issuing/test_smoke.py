"""The card's core path end to end: card, purchase through the sandbox network, 3x plan."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from apps.issuing import issuer_sandbox
from apps.issuing.models import CardAuthorisation
from apps.payments.models import Payment
from tests.issuing.helpers import card_details, card_for

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_a_sandbox_purchase_becomes_a_3x_plan_with_its_first_third_paid():
    with time_machine.travel(NOW, tick=False):
        card = card_for(when=NOW)
        outcome = issuer_sandbox.purchase(
            **card_details(card), amount_cents=150_00, merchant_name="Fnac Paris"
        )
        assert outcome.status == "approved", outcome
        row = CardAuthorisation.objects.get(issuer_reference=outcome.reference)
        assert row.state == "approved"
        payment = row.payment
        assert payment.origin == Payment.Origin.CARD
        assert payment.state == "in_progress"
        assert payment.customer_id == card.customer_id
        amounts = [
            (i.number, i.state, i.purchase_amount.amount)
            for i in payment.instalments.order_by("number")
        ]
        assert [a[1] for a in amounts] == ["paid", "pending", "pending"]
        assert sum(a[2] for a in amounts) == 150
