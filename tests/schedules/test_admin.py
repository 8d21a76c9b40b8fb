"""The operators' page of payments in default: closing a collection, after a confirmation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from apps.payments.models import Instalment, Payment, PaymentEvent
from tests.schedules.builders import accepted

pytestmark = pytest.mark.django_db

BOUGHT = datetime(2026, 1, 10, 15, 0, tzinfo=UTC)
CHANGELIST = "admin:schedules_defaultedpayment_changelist"


def in_default(shop) -> Payment:
    payment = accepted(shop, when=BOUGHT)
    Payment.objects.filter(pk=payment.pk).update(state="default")
    payment.instalments.exclude(number=1).update(state="claimed", next_debit_at=None)
    return payment


def test_the_page_lists_only_payments_in_default(shop, admin_client):
    defaulted = in_default(shop)
    running = accepted(shop, when=BOUGHT)

    page = admin_client.get(reverse(CHANGELIST))

    assert page.status_code == 200
    assert defaulted.public_id in page.text
    assert running.public_id not in page.text


def test_closing_asks_first_then_covers_the_claimed_instalments(shop, admin_client):
    payment = in_default(shop)
    chosen = {"action": "close_collection", ACTION_CHECKBOX_NAME: [payment.pk]}

    asked = admin_client.post(reverse(CHANGELIST), chosen)

    assert asked.status_code == 200
    assert "cannot be undone" in asked.text or "irréversible" in asked.text
    assert Payment.objects.get(pk=payment.pk).state == "default"

    done = admin_client.post(
        reverse(CHANGELIST), {**chosen, "confirmed": "yes", "note": "Recovered by the agency"}
    )

    assert done.status_code == 302
    assert Payment.objects.get(pk=payment.pk).state == "collection_done"
    states = sorted(Instalment.objects.filter(payment=payment).values_list("state", flat=True))
    assert states == ["covered", "covered", "covered", "paid"]
    event = PaymentEvent.objects.get(payment=payment, kind="collection_done")
    assert event.detail == {"covered": 3, "note": "Recovered by the agency"}
