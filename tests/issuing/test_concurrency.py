"""The issuer's messages at the same time, each thread on its own connection: one plan per
purchase, the limit never exceeded, one refund per refund, the sweep once per purchase."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from apps.common.money import to_cents
from apps.issuing import rules
from apps.issuing.models import CardAuthorisation, VirtualCard
from apps.issuing.services import authorisations as auth
from apps.payments.models import Charge, Instalment, Payment, SandboxCharge
from apps.refunds.models import Refund
from tests.issuing.helpers import (
    card_for,
    purchase_request,
    reversal,
    send,
    shop_refund,
)
from tests.support import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)
THREADS = 8


@pytest.fixture
def card() -> VirtualCard:
    return card_for(when=timezone.now())


def test_one_message_sent_by_8_threads_makes_one_plan_and_one_answer(card):
    body = purchase_request(card, 90_00)

    answers = run_in_threads(lambda i: send(body), THREADS)

    assert {status for status, _ in answers} == {200}
    assert all(answer == answers[0][1] for _, answer in answers)
    assert answers[0][1]["approved"] is True
    assert Payment.objects.filter(origin=Payment.Origin.CARD).count() == 1
    assert SandboxCharge.objects.filter(kind="charge").count() == 1


def test_one_purchase_under_8_message_ids_at_once_makes_one_plan(card):
    bodies = [purchase_request(card, 90_00, reference="iauth_storm") for _ in range(THREADS)]

    answers = run_in_threads(lambda i: send(bodies[i]), THREADS)

    assert {answer["approved"] for _, answer in answers} == {True}
    row = CardAuthorisation.objects.get(issuer_reference="iauth_storm")
    assert row.state == CardAuthorisation.State.APPROVED
    assert Payment.objects.filter(origin=Payment.Origin.CARD).count() == 1
    assert Charge.objects.count() == 1


def test_one_unknown_card_purchase_at_once_is_declined_once(card):
    card.issuer_token = "ic_test_nobody"
    bodies = [purchase_request(card, 90_00, reference="iauth_ghost") for _ in range(THREADS)]

    answers = run_in_threads(lambda i: send(bodies[i]), THREADS)

    assert {(status, answer["decline_code"]) for status, answer in answers} == {
        (200, rules.CARD_UNKNOWN)
    }
    assert CardAuthorisation.objects.count() == 1


def test_purchases_at_once_near_the_limit_never_exceed_it(card):
    # 150 € each on a 300 € limit: an approved plan owes 100 €, one being decided 150 €.
    bodies = [purchase_request(card, 150_00) for _ in range(THREADS)]

    answers = run_in_threads(lambda i: send(bodies[i]), THREADS)

    codes = sorted(answer["decline_code"] or "approved" for _, answer in answers)
    assert codes == ["approved"] * 2 + [rules.OVER_LIMIT] * (THREADS - 2)
    owed = Instalment.objects.filter(
        payment__customer=card.customer, state=Instalment.State.PENDING
    ).aggregate(total=Sum("purchase_amount"))["total"]
    assert owed * 100 <= to_cents(card.limit)


def test_the_same_shop_refund_at_once_refunds_once(card):
    _, answer = send(purchase_request(card, 120_00, reference="iauth_refund"))
    assert answer["approved"] is True
    bodies = [
        shop_refund(card, "iauth_refund", 40_00, refund="irefund_once") for _ in range(THREADS)
    ]

    answers = run_in_threads(lambda i: send(bodies[i]), THREADS)

    assert {status for status, _ in answers} == {200}
    assert len({answer["refund"] for _, answer in answers}) == 1
    row = CardAuthorisation.objects.get(issuer_reference="iauth_refund")
    assert to_cents(row.refunded_amount) == 40_00
    assert to_cents(row.payment.amount_refunded) == 40_00
    assert Refund.objects.count() == 1


def test_reversals_at_once_refund_the_plan_once(card):
    _, answer = send(purchase_request(card, 120_00, reference="iauth_cancel"))
    assert answer["approved"] is True
    bodies = [reversal(card, "iauth_cancel", 120_00) for _ in range(THREADS)]

    answers = run_in_threads(lambda i: send(bodies[i]), THREADS)

    assert {status for status, _ in answers} == {200}
    row = CardAuthorisation.objects.get(issuer_reference="iauth_cancel")
    assert row.state == CardAuthorisation.State.REVERSED
    assert Refund.objects.count() == 1
    assert SandboxCharge.objects.filter(kind="refund").count() == 1


def test_the_pending_sweep_run_by_4_workers_at_once_settles_each_purchase_once(card):
    now = timezone.now()
    rows = []
    for number in range(3):
        request = auth.PurchaseRequest(
            reference=f"iauth_dead_{number}",
            card_token=card.issuer_token,
            amount_cents=30_00,
            currency="EUR",
            merchant_name="Darty",
            merchant_category="5732",
            merchant_country="FR",
            livemode=False,
        )
        row, charge = auth._open(request, now=now)
        if number:  # the first died before its charge, the others after
            auth._charge_execute(charge)
        rows.append(row)
    later = now + auth.PENDING_GRACE + timedelta(seconds=1)

    settled = run_in_threads(lambda i: auth.authorisations_settle_pending(now=later), 4)
    settled_again = auth.authorisations_settle_pending(now=later)

    assert settled_again == 0
    assert sum(settled) >= 3
    states = [CardAuthorisation.objects.get(pk=row.pk).state for row in rows]
    assert states == ["declined", "approved", "approved"]
    assert SandboxCharge.objects.filter(kind="charge").count() == 2
    assert Charge.objects.filter(status=Charge.Status.SUCCEEDED).count() == 2
