"""Refunds through the service: allocation over the schedule, the card, the ledger and the
payment's state, in every state a refund may meet (on schedule, late, in default, pay later
not yet charged, in store, paid in full)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import translation

from apps.common.dates import debit_time
from apps.common.money import to_cents
from apps.ledger.models import AccountKind
from apps.ledger.selectors import merchant_account, merchant_balance
from apps.payments.models import Charge, Notification, PaymentState, SandboxCharge
from apps.payments.processor_sandbox import REFUND
from apps.refunds.allocation import RefundAmountInvalid, RefundWaitForDebit
from apps.refunds.models import CardRefund, Refund
from apps.refunds.services import PaymentNotRefundable, refund_preview
from apps.schedules.services.debits import debit_run
from apps.schedules.services.dunning import dunning_advance
from tests.payments.builders import payment_create_for
from tests.refunds.builders import accepted_pay_later, refunded
from tests.schedules.builders import LATER_DECLINED, TIMEOUT, accepted

pytestmark = pytest.mark.django_db

BOUGHT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LATER = datetime(2026, 3, 5, 10, 0, tzinfo=UTC)


def schedule(payment):
    return [
        (row.number, to_cents(row.purchase_amount), row.state)
        for row in payment.instalments.order_by("number")
    ]


def balance(shop, kind):
    account = merchant_account(merchant_id=shop.merchant.pk, kind=kind, livemode=False)
    return 0 if account is None else to_cents(account.balance)


def test_partial_refund_cancels_last_instalments_first(shop):
    payment = accepted(shop, when=BOUGHT, installments_count=4, amount=40_000)
    refund = refunded(payment, amount=15_000, when=LATER, merchant_reference="R-1")
    payment.refresh_from_db()
    assert refund.state == Refund.State.SUCCEEDED
    assert schedule(payment) == [
        (1, 10_000, "paid"),
        (2, 10_000, "pending"),
        (3, 5_000, "pending"),
        (4, 0, "paid"),
    ]
    last = payment.instalments.get(number=4)
    assert last.cancelled_by_refund and last.next_debit_at is None
    assert to_cents(last.original_purchase_amount) == 10_000
    assert to_cents(payment.amount_refunded) == 15_000
    assert payment.state == PaymentState.IN_PROGRESS
    assert refund.instalments == [
        {"number": 4, "principal": 10_000, "fee": 0, "interest": 0, "cancelled": True},
        {"number": 3, "principal": 5_000, "fee": 0, "interest": 0, "cancelled": False},
    ]
    assert not CardRefund.objects.filter(refund=refund).exists()
    # The merchant's balance gave the refund back; the receivable shrank by as much.
    assert refund.merchant_reference == "R-1"
    assert Notification.objects.filter(payment=payment, event=f"refund:{refund.public_id}")


def test_full_refund_cancels_what_is_owed_and_gives_the_rest_back_to_the_card(shop):
    payment = accepted(shop, when=BOUGHT, installments_count=4, amount=40_000)
    refund = refunded(payment, amount=None, when=LATER)
    payment.refresh_from_db()
    assert refund.full
    assert to_cents(refund.owed_cancelled) == 30_000
    assert to_cents(refund.to_card) == 10_000
    assert refund.state == Refund.State.SUCCEEDED
    assert payment.state == PaymentState.PAID
    assert payment.is_completely_refunded
    [card_refund] = CardRefund.objects.filter(refund=refund)
    assert card_refund.status == CardRefund.Status.SUCCEEDED
    sandbox = SandboxCharge.objects.get(kind=REFUND)
    assert sandbox.amount_cents == to_cents(refund.back_to_card)
    assert sandbox.idempotency_key == card_refund.idempotency_key
    assert balance(shop, AccountKind.REFUNDS_PAYABLE) == 0
    # The merchant fee stays earned: the merchant now owes it (a debit balance).
    assert balance(shop, AccountKind.MERCHANT_BALANCE) == to_cents(payment.merchant_fee)
    with pytest.raises(RefundAmountInvalid) as refused:
        refunded(payment, amount=1, when=LATER)
    assert refused.value.extra["maximum"] == 0


def test_refunds_beyond_what_is_owed_go_back_through_the_newest_charge_first(shop):
    payment = accepted(shop, when=BOUGHT, installments_count=3, amount=30_000)
    second = payment.instalments.get(number=2)
    with time_machine.travel(debit_time(second.due_date, hour=8), tick=False):
        debit_run(now=debit_time(second.due_date, hour=8))
    charges = list(Charge.objects.filter(payment=payment).order_by("created_at"))
    assert [c.status for c in charges] == ["succeeded", "succeeded"]
    refund = refunded(payment, amount=25_000, when=debit_time(second.due_date, hour=9))
    parts = list(refund.card_refunds.order_by("number"))
    # 10 000 cancels the last instalment; 15 000 go back: 10 000 through the newest charge,
    # 5 000 through the first.
    assert [(p.charge_id, to_cents(p.amount)) for p in parts] == [
        (charges[1].pk, 10_000),
        (charges[0].pk, 5_000),
    ]
    assert all(p.status == CardRefund.Status.SUCCEEDED for p in parts)


def test_a_full_refund_gives_back_the_interest_paid(shop):
    payment = accepted(shop, when=BOUGHT, installments_count=10, amount=100_000)
    paid_interest = to_cents(payment.instalments.get(number=1).customer_interest)
    future_interest = sum(
        to_cents(row.customer_interest) for row in payment.instalments.exclude(number=1)
    )
    assert future_interest > 0
    refund = refunded(payment, amount=None, when=LATER)
    payment.refresh_from_db()
    assert to_cents(refund.interest_refunded) == paid_interest
    assert to_cents(payment.customer_fees_refunded) == paid_interest
    # What was not earned is simply no longer owed: every instalment reads zero.
    assert all(to_cents(row.total_amount) == 0 for row in payment.instalments.exclude(number=1))
    # The customer gets back everything the card paid.
    first = Charge.objects.get(payment=payment)
    assert to_cents(refund.back_to_card) == to_cents(first.amount)


def test_a_partial_refund_keeps_the_interest_of_a_reduced_instalment(shop):
    payment = accepted(shop, when=BOUGHT, installments_count=10, amount=100_000)
    before = {row.number: row for row in payment.instalments.all()}
    cut = to_cents(before[10].purchase_amount) + 100
    refunded(payment, amount=cut, when=LATER)
    after = {row.number: row for row in payment.instalments.all()}
    assert to_cents(after[10].total_amount) == 0  # all of it, interest too
    assert after[9].customer_interest == before[9].customer_interest
    assert to_cents(after[9].purchase_amount) == to_cents(before[9].purchase_amount) - 100


def test_refund_in_dunning_reduces_the_late_instalment_and_the_retry_charges_less(shop):
    payment = accepted(shop, when=BOUGHT, card_number=LATER_DECLINED, installments_count=4)
    second = payment.instalments.get(number=2)
    due = debit_time(second.due_date, hour=8)
    with time_machine.travel(due, tick=False):
        debit_run(now=due)
    payment.refresh_from_db()
    assert payment.state == PaymentState.LATE_DUNNING
    refunded(payment, amount=25_000, when=due + timedelta(hours=2))
    payment.refresh_from_db()
    assert schedule(payment)[1:] == [(2, 5_000, "incident"), (3, 0, "paid"), (4, 0, "paid")]
    assert payment.state == PaymentState.LATE_DUNNING
    second.refresh_from_db()
    retry = second.next_debit_at
    with time_machine.travel(retry, tick=False):
        debit_run(now=retry)
    last = Charge.objects.filter(instalment=second).order_by("-attempt").first()
    assert to_cents(last.amount) == to_cents(second.total_amount)  # 50 € + the late fee
    # Cancelling the late instalment too puts the plan back: nothing is left to pay.
    refunded(payment, amount=5_000, when=retry + timedelta(hours=1))
    payment.refresh_from_db()
    assert payment.state == PaymentState.PAID


def test_refund_in_default_reduces_the_credit_loss(shop):
    payment = accepted(shop, when=BOUGHT, card_number=LATER_DECLINED, installments_count=4)
    second = payment.instalments.get(number=2)
    start = debit_time(second.due_date, hour=8)
    for day in range(0, 18):
        at = start + timedelta(days=day, minutes=1)
        with time_machine.travel(at, tick=False):
            debit_run(now=at)
            dunning_advance(now=at)
    payment.refresh_from_db()
    assert payment.state == PaymentState.DEFAULT
    lost = balance(shop, AccountKind.CREDIT_LOSSES)
    assert lost == 30_000
    refund = refunded(payment, amount=None, when=start + timedelta(days=20))
    payment.refresh_from_db()
    assert to_cents(refund.written_off_cancelled) == 30_000
    assert to_cents(refund.owed_cancelled) == 0
    assert to_cents(refund.to_card) == 10_000
    assert balance(shop, AccountKind.CREDIT_LOSSES) == 0
    assert payment.state == PaymentState.PAID


def test_refund_of_a_pay_later_payment_not_yet_charged_only_cancels(shop):
    payment = accepted_pay_later(shop, when=BOUGHT, amount=30_000)
    assert payment.state == PaymentState.IN_PROGRESS
    partial = refunded(payment, amount=10_000, when=LATER)
    assert schedule(payment) == [(1, 20_000, "pending")]
    full = refunded(payment, amount=None, when=LATER + timedelta(hours=1))
    payment.refresh_from_db()
    assert (to_cents(partial.to_card), to_cents(full.to_card)) == (0, 0)
    assert payment.state == PaymentState.PAID and payment.is_completely_refunded
    assert not SandboxCharge.objects.filter(kind=REFUND).exists()
    assert balance(shop, AccountKind.CUSTOMER_RECEIVABLE) == 0


def test_refund_of_an_in_store_payment(shop):
    payment = accepted(shop, when=BOUGHT, installments_count=5, origin="pos_device", amount=50_000)
    assert payment.origin == "pos_device"
    refund = refunded(payment, amount=None, when=LATER)
    payment.refresh_from_db()
    assert refund.full and payment.state == PaymentState.PAID
    first = Charge.objects.get(payment=payment)
    assert to_cents(refund.back_to_card) == to_cents(first.amount)


def test_refund_of_a_payment_paid_in_full_goes_back_to_the_card(shop):
    payment = accepted(shop, when=BOUGHT, installments_count=1, amount=20_000)
    assert payment.state == PaymentState.PAID
    refund = refunded(payment, amount=5_000, when=LATER)
    assert to_cents(refund.to_card) == 5_000 and refund.state == Refund.State.SUCCEEDED
    payment.refresh_from_db()
    assert payment.state == PaymentState.PAID and not payment.is_completely_refunded


@pytest.mark.parametrize("how", ["created", "cancelled", "expired"])
def test_a_payment_never_paid_cannot_be_refunded(shop, how):
    from apps.payments.services.payments import payment_cancel, payments_expire

    with time_machine.travel(BOUGHT, tick=False):
        payment = payment_create_for(shop)
    if how == "cancelled":
        payment = payment_cancel(payment=payment, now=BOUGHT)
    if how == "expired":
        payments_expire(now=BOUGHT + timedelta(days=60))
        payment.refresh_from_db()
    with translation.override("en"), pytest.raises(PaymentNotRefundable) as refused:
        refunded(payment, amount=100, when=LATER)
    assert {"created": "not been paid", "cancelled": "cancelled", "expired": "expired"}[how] in (
        refused.value.message
    )
    assert not Refund.objects.exists()


def test_a_refund_waits_while_an_instalment_is_being_debited(shop):
    payment = accepted(shop, when=BOUGHT, installments_count=4)
    second = payment.instalments.get(number=2)
    Charge.objects.create(
        payment=payment,
        instalment=second,
        card=payment.card,
        kind=Charge.Kind.INSTALMENT,
        idempotency_key=f"instalment:{second.public_id}:attempt:1",
        amount=second.total_amount,
        created_at=LATER,
    )
    with pytest.raises(RefundWaitForDebit):
        refunded(payment, amount=1_000, when=LATER)
    with pytest.raises(RefundWaitForDebit):
        refund_preview(payment=payment, amount=1_000)


def test_a_merchant_whose_balance_is_short_goes_negative_and_the_next_sales_make_it_good(shop):
    payment = accepted(shop, when=BOUGHT, installments_count=4, amount=40_000)

    def total() -> int:
        return merchant_balance(
            merchant_id=shop.merchant.pk, livemode=False, settlement_delay_days=0
        ).total_cents

    credited = total()
    assert credited == 40_000 - to_cents(payment.merchant_fee)
    refunded(payment, amount=None, when=LATER)
    # The merchant fee stays earned: the refund takes back more than the sale left.
    assert total() == credited - 40_000 < 0
    sale = accepted(shop, when=LATER + timedelta(hours=1), installments_count=4, amount=100_000)
    assert total() == credited - 40_000 + 100_000 - to_cents(sale.merchant_fee)


def test_a_card_refund_whose_answer_is_lost_is_finished_by_the_sweep(shop):
    from apps.refunds.services import refunds_send_pending

    payment = accepted(shop, when=BOUGHT, card_number=TIMEOUT, installments_count=2, amount=20_000)
    refund = refunded(payment, amount=None, when=LATER)
    assert refund.state == Refund.State.PENDING
    [part] = refund.card_refunds.all()
    assert part.status == CardRefund.Status.UNKNOWN
    assert balance(shop, AccountKind.REFUNDS_PAYABLE) == -to_cents(part.amount)
    assert refunds_send_pending(now=LATER + timedelta(minutes=5)) == 1
    assert refunds_send_pending(now=LATER + timedelta(minutes=10)) == 0
    refund.refresh_from_db()
    part.refresh_from_db()
    assert refund.state == Refund.State.SUCCEEDED
    assert part.status == CardRefund.Status.SUCCEEDED and part.attempts == 2
    assert SandboxCharge.objects.filter(kind=REFUND).count() == 1
    assert balance(shop, AccountKind.REFUNDS_PAYABLE) == 0
