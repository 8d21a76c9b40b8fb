"""Refunds over a payment's whole life, on the database: a Hypothesis state machine.

One accepted payment per example (2 to 10 instalments, with or without customer fees and
interest, paid by a card whose later debits succeed or are declined), then in random order:
refunds (a random part, or everything left), the debit run at the next due date, and days
passing (dunning retries, contact, default). After every step the money adds up: no
instalment below zero, refunds within the purchase and equal to what the payment and the
ledger say, the customer never paying more than the purchase less refunds plus the fees
kept, and the ledger audit behind ``check_ledger`` passing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import time_machine
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from apps.common.money import decimal_to_cents, to_cents
from apps.ledger.audit import ledger_audit
from apps.ledger.models import Account, AccountKind, Leg
from apps.ledger.selectors import merchant_account
from apps.merchants.models import FeePlan
from apps.payments.models import Charge, Instalment, Payment, PaymentState
from apps.refunds.models import CardRefund, Refund
from apps.refunds.services import RefundRequest, refund_issue
from apps.schedules.services.debits import debit_run
from apps.schedules.services.dunning import dunning_advance
from tests.conftest import make_shop
from tests.schedules.builders import LATER_DECLINED, SUCCESS, accepted

BOUGHT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OWED = (Instalment.State.PENDING, Instalment.State.INCIDENT)
STILL_COLLECTING = (
    PaymentState.IN_PROGRESS,
    PaymentState.LATE_DUNNING,
    PaymentState.LATE_CONTACT_CUSTOMER,
)


def cents(queryset, field: str = "amount") -> int:
    return decimal_to_cents(queryset.aggregate(total=Sum(field))["total"] or Decimal(0))


class RefundMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        # Each example works in a savepoint rolled back at its end.
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.now = BOUGHT
        self.payment: Payment | None = None

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- the payment ---------------------------------------------------------------------------

    @initialize(
        # (instalments, customer fee in bps): 10 instalments carry interest; the fees stay
        # under the usury rate.
        plan=st.sampled_from([(2, 0), (3, 0), (4, 0), (4, 150), (4, 232), (10, 0)]),
        amount=st.integers(min_value=5_000, max_value=200_000),
        declined=st.booleans(),
    )
    def buy(self, plan, amount, declined):
        count, fee_bps = plan
        shop = make_shop()
        FeePlan.objects.filter(
            merchant=shop.merchant, kind="general", installments_count=count
        ).update(customer_fee_variable=fee_bps)
        self.payment = accepted(
            shop,
            when=BOUGHT,
            card_number=LATER_DECLINED if declined else SUCCESS,
            installments_count=count,
            amount=amount,
        )
        self.purchase = amount
        event(f"{count} instalments" + (", later debits declined" if declined else ""))

    def reread(self) -> Payment:
        return Payment.objects.get(pk=self.payment.pk)

    # --- rules -----------------------------------------------------------------------------------

    def refundable(self) -> int:
        return to_cents(self.reread().refundable_amount)

    @precondition(lambda self: self.refundable() > 0)
    @rule(data=st.data(), everything=st.booleans())
    def refund(self, data, everything):
        left = self.refundable()
        event(f"refund of a payment {self.reread().state}")
        amount = None if everything else data.draw(st.integers(1, left), label="amount")
        self.now += timedelta(hours=1)
        refunded_before = to_cents(self.reread().amount_refunded)

        with time_machine.travel(self.now, tick=False):
            refund = refund_issue(
                payment=self.reread(),
                request=RefundRequest(amount=amount),
                origin=Refund.Origin.API,
                now=self.now,
            )

        assert to_cents(refund.amount) == (left if amount is None else amount)
        assert refund.full == (to_cents(refund.amount) == left)
        assert refund.state == Refund.State.SUCCEEDED  # the sandbox gave every part back
        assert to_cents(self.reread().amount_refunded) == refunded_before + to_cents(refund.amount)
        event("complete refund" if refund.full else "partial refund")
        if to_cents(refund.to_card):
            event("refund to the card")
        if to_cents(refund.written_off_cancelled):
            event("refund of written-off instalments")

    def next_debit_at(self) -> datetime | None:
        row = (
            Instalment.objects.filter(payment=self.payment, next_debit_at__isnull=False)
            .order_by("next_debit_at")
            .first()
        )
        return None if row is None else row.next_debit_at

    @precondition(lambda self: self.next_debit_at() is not None)
    @rule()
    def debit_when_due(self):
        self.now = max(self.now, self.next_debit_at()) + timedelta(minutes=5)
        with time_machine.travel(self.now, tick=False):
            summary = debit_run(now=self.now)
        assert summary.claimed >= 1
        assert summary.in_doubt == 0
        event("debit declined" if summary.failed else "debit paid")

    def collecting_or_done(self) -> bool:
        """Days passing matter while the payment is collected; once nothing is left to
        collect, refunds come first (days passing still end an example refunded in full)."""
        return self.reread().state in STILL_COLLECTING or self.refundable() == 0

    @precondition(lambda self: self.collecting_or_done())
    @rule(days=st.integers(min_value=1, max_value=30))
    def days_pass(self, days):
        """Days go by: dunning moves on (contact, default), retries due are made."""
        self.now += timedelta(days=days)
        with time_machine.travel(self.now, tick=False):
            dunning_advance(now=self.now)
            debit_run(now=self.now)
        event(f"payment {self.reread().state}")

    # --- the checks ------------------------------------------------------------------------------

    def rows(self) -> list[Instalment]:
        return list(Instalment.objects.filter(payment=self.payment).order_by("number"))

    @invariant()
    def instalments_never_go_negative(self):
        if self.payment is None:
            return
        for row in self.rows():
            assert to_cents(row.purchase_amount) >= 0
            assert to_cents(row.customer_fee) >= 0
            assert to_cents(row.customer_interest) >= 0
            assert row.purchase_amount <= row.original_purchase_amount

    @invariant()
    def refunds_add_up_within_the_purchase(self):
        if self.payment is None:
            return
        payment = self.reread()
        refunds = Refund.objects.filter(payment=payment)
        refunded = cents(refunds)
        assert refunded == to_cents(payment.amount_refunded) <= self.purchase
        assert to_cents(payment.customer_fees_refunded) == cents(
            refunds, "customer_fee_refunded"
        ) + cents(refunds, "interest_refunded")
        # What the refunds cancelled and sent to the card is what they refunded.
        assert refunded == (
            cents(refunds, "owed_cancelled")
            + cents(refunds, "written_off_cancelled")
            + cents(refunds, "to_card")
        )
        # The merchant's balance was debited by exactly the refunds.
        balance = merchant_account(
            merchant_id=payment.merchant_id, kind=AccountKind.MERCHANT_BALANCE, livemode=False
        )
        debited = cents(
            Leg.objects.filter(
                account=balance,
                posting__kind="refund_issued",
                posting__reference=payment.public_id,
            )
        )
        assert debited == refunded

    @invariant()
    def each_charge_gives_back_at_most_what_it_took(self):
        if self.payment is None:
            return
        for charge in Charge.objects.filter(payment=self.payment):
            back = cents(CardRefund.objects.filter(charge=charge))
            taken = to_cents(charge.amount) if charge.status == Charge.Status.SUCCEEDED else 0
            assert back <= taken

    @invariant()
    def the_customer_never_pays_more_than_the_purchase_less_refunds_plus_fees_kept(self):
        if self.payment is None:
            return
        payment = self.reread()
        rows = self.rows()
        charged = cents(Charge.objects.filter(payment=payment, status=Charge.Status.SUCCEEDED))
        back = cents(
            CardRefund.objects.filter(refund__payment=payment, status=CardRefund.Status.SUCCEEDED)
        )
        paid = charged - back
        fees_kept = sum(
            to_cents(row.customer_fee) + to_cents(row.customer_interest) for row in rows
        ) - to_cents(payment.customer_fees_refunded)
        assert fees_kept >= 0
        ceiling = self.purchase - to_cents(payment.amount_refunded) + fees_kept
        assert 0 <= paid <= ceiling
        # To the cent: what is paid and what is still to pay (collected later, or claimed
        # in default) is exactly that ceiling.
        still_to_pay = sum(
            to_cents(row.total_amount) for row in rows if row.state != Instalment.State.PAID
        )
        assert paid + still_to_pay == ceiling

    @invariant()
    def the_ledger_follows_the_schedule(self):
        if self.payment is None:
            return
        payment = self.reread()
        rows = self.rows()
        receivable = Account.objects.filter(
            merchant_id=payment.merchant_id,
            kind=AccountKind.CUSTOMER_RECEIVABLE,
            reference=payment.public_id,
        ).first()
        owed = sum(to_cents(row.purchase_amount) for row in rows if row.state in OWED)
        if payment.state in (PaymentState.DEFAULT, PaymentState.COLLECTION_DONE):
            owed = 0  # written off
        balance = 0 if receivable is None else to_cents(receivable.natural_balance)
        assert balance == owed
        payable = merchant_account(
            merchant_id=payment.merchant_id, kind=AccountKind.REFUNDS_PAYABLE, livemode=False
        )
        assert payable is None or to_cents(payable.balance) == 0  # every card part confirmed

    @invariant()
    def nothing_left_to_pay_reads_paid(self):
        if self.payment is None:
            return
        payment = self.reread()
        left = [row for row in self.rows() if row.state != Instalment.State.PAID]
        if not left:
            assert payment.state not in STILL_COLLECTING
        if any(row.state in OWED for row in left):
            assert payment.state != PaymentState.PAID

    @invariant()
    def the_audit_passes(self):
        report = ledger_audit()
        assert report.ok, report.violations


def test_refunds_over_a_payments_life_keep_the_money_right(db):
    run_state_machine_as_test(
        RefundMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
