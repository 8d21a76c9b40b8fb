"""The sweep task: card refunds left open (an answer lost, a worker that died before calling)
are finished once, whatever the number of runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.common.money import to_cents
from apps.ledger.models import Posting
from apps.payments.models import SandboxCharge
from apps.payments.processor_sandbox import REFUND
from apps.refunds.models import CardRefund, Refund
from apps.refunds.services import RefundRequest, refund_open
from apps.refunds.tasks import send_pending_refunds
from tests.refunds.builders import refunded
from tests.schedules.builders import TIMEOUT, accepted

pytestmark = pytest.mark.django_db

BOUGHT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LATER = datetime(2026, 3, 5, 10, 0, tzinfo=UTC)


def run_at(moment: datetime) -> int:
    with time_machine.travel(moment, tick=False):
        return send_pending_refunds()


def money_back(refund: Refund) -> tuple[list[int], int]:
    """What the processor gave back (its own records) and the ledger's card refund postings."""
    keys = [part.idempotency_key for part in refund.card_refunds.all()]
    sandbox = SandboxCharge.objects.filter(kind=REFUND, idempotency_key__in=keys)
    postings = Posting.objects.filter(kind="refund_to_card", memo=refund.public_id).count()
    return sorted(row.amount_cents for row in sandbox), postings


def test_a_card_refund_whose_answer_was_lost_is_finished_by_the_task_once(shop):
    payment = accepted(shop, when=BOUGHT, card_number=TIMEOUT)
    refund = refunded(payment, amount=None, when=LATER)
    [part] = refund.card_refunds.all()
    assert (refund.state, part.status) == (Refund.State.PENDING, CardRefund.Status.UNKNOWN)
    assert money_back(refund) == ([10_000], 0)  # the money moved, the answer got lost

    finished = run_at(LATER + timedelta(minutes=5))
    again = run_at(LATER + timedelta(minutes=10))

    assert (finished, again) == (1, 0)
    refund.refresh_from_db()
    part.refresh_from_db()
    assert refund.state == Refund.State.SUCCEEDED
    assert refund.finished_at == LATER + timedelta(minutes=5)
    assert part.status == CardRefund.Status.SUCCEEDED and part.processor_reference
    assert part.attempts == 2
    assert money_back(refund) == ([10_000], 1)


def test_a_card_refund_never_sent_is_sent_by_the_task_once(shop):
    # The request died between deciding the refund and calling the processor.
    payment = accepted(shop, when=BOUGHT)
    with time_machine.travel(LATER, tick=False):
        refund = refund_open(
            payment_id=payment.pk, request=RefundRequest(), origin=Refund.Origin.API, now=LATER
        )
    [part] = refund.card_refunds.all()
    assert part.status == CardRefund.Status.PENDING
    assert money_back(refund) == ([], 0)

    assert run_at(LATER + timedelta(minutes=5)) == 1
    assert run_at(LATER + timedelta(minutes=5)) == 0

    refund.refresh_from_db()
    assert refund.state == Refund.State.SUCCEEDED
    assert money_back(refund) == ([to_cents(refund.back_to_card)], 1)


def test_a_card_refund_younger_than_a_minute_is_left_to_its_request(shop):
    payment = accepted(shop, when=BOUGHT, card_number=TIMEOUT)
    refund = refunded(payment, amount=None, when=LATER)

    assert run_at(LATER + timedelta(seconds=30)) == 0

    refund.refresh_from_db()
    assert refund.state == Refund.State.PENDING
    assert refund.card_refunds.get().status == CardRefund.Status.UNKNOWN
    assert money_back(refund) == ([10_000], 0)


def test_the_task_has_nothing_to_do_when_every_refund_is_finished(shop):
    refunded(accepted(shop, when=BOUGHT), amount=None, when=LATER)

    assert run_at(LATER + timedelta(minutes=5)) == 0
