"""Refunds made at the same time by many workers, each on its own database connection:
together they never refund more than the purchase amount, the ledger says what the refunds
say, the card gets each refund once, and a refund racing the debit run never cancels an
instalment the run charges."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db.models import Sum
from rest_framework.test import APIClient

from apps.common.money import decimal_to_cents, to_cents
from apps.ledger.audit import ledger_audit
from apps.ledger.models import AccountKind, Leg
from apps.ledger.selectors import merchant_account
from apps.payments.models import Charge, Instalment, Payment, SandboxCharge
from apps.payments.processor_sandbox import REFUND
from apps.refunds.allocation import RefundAmountInvalid, RefundWaitForDebit
from apps.refunds.models import CardRefund, Refund
from apps.refunds.services import RefundRequest, refund_issue
from apps.schedules.services.debits import debit_run
from tests.schedules.builders import accepted
from tests.support import run_in_threads as threads_run

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 20
BOUGHT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LATER = datetime(2026, 3, 5, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _receipts_in_tmp(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "receipts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "allow_overwrite": True},
        },
    }


def run_in_threads(work: Callable[[int], object], count: int = THREADS) -> list[object]:
    return threads_run(work, count, expected=(RefundAmountInvalid, RefundWaitForDebit))


def refund_now(payment_id: int, amount: int | None, now: datetime = LATER) -> Refund:
    return refund_issue(
        payment=Payment.objects.get(pk=payment_id),
        request=RefundRequest(amount=amount),
        origin=Refund.Origin.API,
        now=now,
    )


def merchant_balance_debited_by_refunds(payment: Payment) -> int:
    account = merchant_account(
        merchant_id=payment.merchant_id, kind=AccountKind.MERCHANT_BALANCE, livemode=False
    )
    total = Leg.objects.filter(
        account=account,
        posting__kind="refund_issued",
        posting__reference=payment.public_id,
    ).aggregate(total=Sum("amount"))["total"]
    return decimal_to_cents(total or 0)


def assert_each_card_refund_made_once(payment: Payment) -> None:
    parts = list(CardRefund.objects.filter(refund__payment=payment))
    for part in parts:
        [made] = SandboxCharge.objects.filter(idempotency_key=part.idempotency_key)
        assert made.kind == REFUND and made.status == "succeeded"
        assert made.amount_cents == to_cents(part.amount)
        assert part.status == CardRefund.Status.SUCCEEDED
        assert made.charge_reference == part.charge.processor_reference
    assert SandboxCharge.objects.filter(kind=REFUND).count() == len(parts)


def test_twenty_partial_refunds_at_once_never_refund_more_than_the_purchase(shop):
    payment = accepted(shop, when=BOUGHT, installments_count=4, amount=40_000)
    # 68,500 cents asked in all for a 40,000 purchase: some must be refused.
    amounts = [2_000 + 150 * i for i in range(THREADS)]

    results = run_in_threads(lambda i: refund_now(payment.pk, amounts[i]))

    made = [r for r in results if isinstance(r, Refund)]
    refused = [(amounts[i], r) for i, r in enumerate(results) if not isinstance(r, Refund)]
    assert made and refused
    total = sum(to_cents(r.amount) for r in made)
    assert total <= 40_000
    left = 40_000 - total
    for amount, error in refused:
        assert isinstance(error, RefundAmountInvalid)
        maximum = error.extra["maximum"]
        assert left <= maximum < amount  # refused for what was left then, never less
    assert sorted(to_cents(r.amount) for r in made) == sorted(
        amounts[i] for i, r in enumerate(results) if isinstance(r, Refund)
    )
    payment.refresh_from_db()
    stored = Refund.objects.filter(payment=payment)
    assert stored.count() == len(made)
    assert sum(to_cents(r.amount) for r in stored) == total
    assert to_cents(payment.amount_refunded) == total
    assert merchant_balance_debited_by_refunds(payment) == total
    # What was cancelled and what went back to the card add up to the refunds.
    cancelled = sum(to_cents(r.owed_cancelled) for r in stored)
    to_card = sum(to_cents(r.to_card) for r in stored)
    assert cancelled + to_card == total
    assert cancelled == 30_000  # every refused amount is under 4,850: more than 35,150 made
    remaining = payment.instalments.order_by("number")
    assert sum(to_cents(row.purchase_amount) for row in remaining) == 40_000 - cancelled
    assert all(to_cents(row.purchase_amount) >= 0 for row in remaining)
    assert to_card == sum(to_cents(p.amount) for p in CardRefund.objects.filter(refund__in=stored))
    assert_each_card_refund_made_once(payment)
    assert all(r.state == Refund.State.SUCCEEDED for r in stored)
    assert ledger_audit().ok


def test_twenty_complete_refunds_at_once_refund_once(shop):
    payment = accepted(shop, when=BOUGHT, installments_count=3, amount=30_000)

    results = run_in_threads(lambda _i: refund_now(payment.pk, None))

    made = [r for r in results if isinstance(r, Refund)]
    assert len(made) == 1
    assert all(isinstance(r, RefundAmountInvalid) for r in results if r is not made[0])
    assert all(r.extra["maximum"] == 0 for r in results if r is not made[0])
    payment.refresh_from_db()
    assert payment.is_completely_refunded and payment.state == "paid"
    assert merchant_balance_debited_by_refunds(payment) == 30_000
    assert_each_card_refund_made_once(payment)


def test_twenty_requests_with_one_idempotency_key_refund_once(shop):
    payment = accepted(shop, when=BOUGHT, installments_count=4, amount=40_000)

    def post(_i: int):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Alma-Auth {shop.test_key}")
        return client.post(
            f"/v1/payments/{payment.public_id}/refund",
            {"amount": 2_500},
            format="json",
            HTTP_IDEMPOTENCY_KEY="refund-once",
        )

    responses = run_in_threads(post)

    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {200, 409}
    answers = [r.json() for r in responses if r.status_code == 200]
    assert answers and all(answer == answers[0] for answer in answers)
    assert all(
        r.json()["error_code"] == "idempotent_request_in_progress"
        for r in responses
        if r.status_code == 409
    )
    assert Refund.objects.filter(payment=payment).count() == 1
    payment.refresh_from_db()
    assert to_cents(payment.amount_refunded) == 2_500


# --- a refund racing the debit run ----------------------------------------------------------


def charged_and_cancelled(payment: Payment) -> list[int]:
    """Instalments both charged (a succeeded debit) and cancelled by a refund."""
    cancelled = {
        cut["number"]
        for refund in Refund.objects.filter(payment=payment)
        for cut in refund.instalments
        if cut["cancelled"]
    }
    charged = set(
        Charge.objects.filter(
            payment=payment, kind=Charge.Kind.INSTALMENT, status=Charge.Status.SUCCEEDED
        ).values_list("instalment__number", flat=True)
    )
    return sorted(cancelled & charged)


@pytest.mark.parametrize("amount", [None, 15_000, 20_000])
def test_a_refund_racing_the_debit_of_the_same_instalment_never_both_charges_and_cancels(
    shop, amount
):
    payments = []
    for day in range(3):  # three races, each on the due date of its own payment
        payment = accepted(
            shop, when=BOUGHT + timedelta(days=day), installments_count=3, amount=30_000
        )
        payments.append(payment)
        second = Instalment.objects.get(payment=payment, number=2)
        due = second.next_debit_at + timedelta(minutes=5)

        with time_machine.travel(due, tick=False):
            # Thread 0 runs the day's debits; thread 1 refunds at the same moment.
            results = run_in_threads(
                lambda i, p=payment, at=due: (
                    debit_run(now=at) if i == 0 else refund_now(p.pk, amount, at)
                ),
                count=2,
            )
            refund = results[1]
            if isinstance(refund, RefundWaitForDebit):
                refund = refund_now(payment.pk, amount, due)  # the charge is recorded now
            debit_run(now=due)  # what the refund left due is charged (its lock was held)

        assert isinstance(refund, Refund)
        charge = Charge.objects.filter(
            payment=payment, instalment__number=2, kind=Charge.Kind.INSTALMENT
        ).first()
        second.refresh_from_db()
        if charge is not None:  # charged, whole or reduced, never cancelled afterwards
            assert charge.status == Charge.Status.SUCCEEDED
            assert second.state == "paid" and second.paid_at is not None
            assert to_cents(charge.amount) == to_cents(second.total_amount) > 0
        else:  # cancelled by the refund before the debit could claim it
            assert second.state == "paid" and second.paid_at is None
            assert to_cents(second.purchase_amount) == 0
    for payment in payments:
        assert charged_and_cancelled(payment) == []
        assert_the_customer_paid_the_purchase_less_refunds(payment)
    report = ledger_audit()
    assert report.ok, report.violations


def assert_the_customer_paid_the_purchase_less_refunds(payment: Payment) -> None:
    payment.refresh_from_db()
    rows = list(payment.instalments.all())
    assert all(to_cents(row.purchase_amount) >= 0 for row in rows)
    refunded = sum(to_cents(r.amount) for r in payment.refunds.all())
    assert refunded == to_cents(payment.amount_refunded) <= to_cents(payment.purchase_amount)
    assert merchant_balance_debited_by_refunds(payment) == refunded
    charged = sum(
        to_cents(c.amount)
        for c in Charge.objects.filter(payment=payment, status=Charge.Status.SUCCEEDED)
    )
    back = sum(
        to_cents(p.amount)
        for p in CardRefund.objects.filter(
            refund__payment=payment, status=CardRefund.Status.SUCCEEDED
        )
    )
    owed = sum(to_cents(row.total_amount) for row in rows if row.state != "paid")
    # No fees on this plan: to the cent, the purchase less what was refunded.
    assert charged - back + owed == to_cents(payment.purchase_amount) - refunded
