"""A model of one merchant's money, checked against the ledger after every step.

Hypothesis drives the ledger's services (captures, collections, refunds, write-offs, payout
runs, paid and failed payouts, replays of earlier postings) in random orders; a small
pure-Python model says where the money should be. After each step, the natural balance of
every account of the merchant (and the bank's movement) must equal the model, and the
ledger audit behind ``check_ledger`` must pass.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from apps.common.money import bps_of, decimal_to_cents, split_evenly, to_cents, to_money
from apps.ledger import recipes
from apps.ledger.audit import ledger_audit
from apps.ledger.models import Account, AccountKind, Payout, Posting, account_key
from apps.ledger.postings import PostingSpec
from apps.ledger.selectors import merchant_balance, natural_cents
from apps.ledger.services import (
    payout_fail,
    payout_mark_paid,
    payouts_run,
    posting_create,
)
from apps.merchants.services import merchant_activate
from tests.factories import MerchantFactory

K = AccountKind
MINIMUM_CENTS = 1_000
# One payout run per mode and day, for the whole database: every run of every example
# gets a day of its own.
RUN_DAYS = itertools.count()
FIRST_RUN_DAY = date(2031, 1, 1)


@dataclass
class PaymentModel:
    purchase: int
    receivable: int
    instalments: list[int]  # the principal of each instalment still to collect
    customer_fee: int
    interest_paid: int
    refunded: int = 0
    fees_refunded: bool = False
    written_off: bool = False
    collected: int = field(default=0)

    @property
    def refundable(self) -> int:
        return self.purchase - self.refunded


def bank_natural() -> int:
    key = account_key(kind=K.BANK, livemode=False, currency="EUR", merchant_id=None)
    account = Account.objects.filter(key=key).first()
    return 0 if account is None else to_cents(account.natural_balance)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        # Each example works in a savepoint rolled back at its end: no example sees another's
        # merchants, payments or payouts (and their payout runs).
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.merchant = merchant_activate(
            merchant=MerchantFactory(
                payout_iban="FR7630006000011234567890189",
                settlement_delay_days=0,
                payout_minimum=to_money(MINIMUM_CENTS),
            ),
            now=timezone.now(),
        )
        self.m = self.merchant.pk
        self.ids = itertools.count(1)
        self.bank_at_start = bank_natural()
        # The model: natural balances, in cents.
        self.balance = 0
        self.clearing = 0
        self.merchant_fees = 0
        self.customer_fees = 0
        self.interest = 0
        self.losses = 0
        self.in_transit = 0
        self.bank = 0  # movement since the start of the example
        self.payments: dict[str, PaymentModel] = {}
        self.payouts: dict[str, list] = {}  # public id -> [cents, status]
        self.posted: list[tuple[PostingSpec, int]] = []

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- helpers -----------------------------------------------------------------------------

    def post(self, spec: PostingSpec) -> None:
        posted = posting_create(spec)
        assert posted.created
        self.posted.append((spec, posted.posting_id))
        event(spec.kind)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{self.m}_{next(self.ids)}"

    def collectable(self) -> list[str]:
        return sorted(
            pid
            for pid, p in self.payments.items()
            if p.receivable > 0 and p.instalments and not p.written_off
        )

    def refundable(self) -> list[str]:
        return sorted(
            pid for pid, p in self.payments.items() if p.refundable > 0 and not p.written_off
        )

    def owing(self) -> list[str]:
        return sorted(
            pid for pid, p in self.payments.items() if p.receivable > 0 and not p.written_off
        )

    def with_status(self, status: str) -> list[str]:
        return sorted(pid for pid, (_cents, s) in self.payouts.items() if s == status)

    # --- rules -------------------------------------------------------------------------------

    @rule(
        purchase=st.integers(min_value=100, max_value=500_000),
        count=st.integers(min_value=1, max_value=4),
        customer_fee=st.integers(min_value=0, max_value=2_000),
        merchant_fee_bps=st.integers(min_value=0, max_value=1_000),
        interest=st.integers(min_value=0, max_value=500),
    )
    def capture(self, purchase, count, customer_fee, merchant_fee_bps, interest):
        pid = self.new_id("pay")
        shares = split_evenly(purchase, count)
        merchant_fee = bps_of(purchase, merchant_fee_bps)
        self.post(
            recipes.payment_captured(
                merchant_id=self.m,
                livemode=False,
                payment_id=pid,
                purchase_cents=purchase,
                first_principal_cents=shares[0],
                customer_fee_cents=customer_fee,
                interest_cents=interest,
                merchant_fee_cents=merchant_fee,
                processor_reference=f"ch_{pid}",
                effective_at=timezone.now(),
            )
        )
        self.payments[pid] = PaymentModel(
            purchase=purchase,
            receivable=purchase - shares[0],
            instalments=shares[1:],
            customer_fee=customer_fee,
            interest_paid=interest,
            collected=shares[0],
        )
        self.clearing += shares[0] + customer_fee + interest
        self.balance += purchase - merchant_fee
        self.merchant_fees += merchant_fee
        self.customer_fees += customer_fee
        self.interest += interest

    @precondition(lambda self: self.collectable())
    @rule(data=st.data(), interest=st.integers(min_value=0, max_value=300))
    def collect(self, data, interest):
        pid = data.draw(st.sampled_from(self.collectable()), label="payment")
        payment = self.payments[pid]
        principal = min(payment.instalments.pop(0), payment.receivable)
        self.post(
            recipes.instalment_collected(
                merchant_id=self.m,
                livemode=False,
                payment_id=pid,
                instalment_id=f"{pid}_{len(payment.instalments)}",
                principal_cents=principal,
                interest_cents=interest,
                processor_reference=self.new_id("ch"),
                effective_at=timezone.now(),
            )
        )
        payment.receivable -= principal
        payment.collected += principal
        payment.interest_paid += interest
        if payment.receivable == 0:
            payment.instalments.clear()
        self.clearing += principal + interest
        self.interest += interest

    @precondition(lambda self: self.refundable())
    @rule(data=st.data(), full=st.booleans())
    def refund(self, data, full):
        pid = data.draw(st.sampled_from(self.refundable()), label="payment")
        payment = self.payments[pid]
        if full or payment.refundable == 1:
            amount = payment.refundable
        else:
            amount = data.draw(st.integers(1, payment.refundable - 1), label="amount")
        full = amount == payment.refundable
        event("full refund" if full else "partial refund")
        cancelled = min(amount, payment.receivable)
        to_card = amount - cancelled
        fee_back = payment.customer_fee if full else 0
        interest_back = payment.interest_paid if full else 0
        refund_id = self.new_id("rf")
        self.post(
            recipes.refund_issued(
                merchant_id=self.m,
                livemode=False,
                payment_id=pid,
                refund_id=refund_id,
                receivable_cancelled_cents=cancelled,
                to_card_cents=to_card,
                customer_fee_refunded_cents=fee_back,
                interest_refunded_cents=interest_back,
                effective_at=timezone.now(),
            )
        )
        if to_card + fee_back + interest_back:  # the processor confirms the card refund
            self.post(
                recipes.refund_sent_to_card(
                    merchant_id=self.m,
                    livemode=False,
                    payment_id=pid,
                    refund_id=refund_id,
                    part=1,
                    cents=to_card + fee_back + interest_back,
                    processor_reference=f"re_{refund_id}",
                    effective_at=timezone.now(),
                )
            )
        # The refund never takes back more than the customer paid by card.
        assert to_card <= payment.collected
        payment.refunded += amount
        payment.receivable -= cancelled
        if payment.receivable == 0:
            payment.instalments.clear()
        if full:
            payment.fees_refunded = True
        self.balance -= amount
        self.clearing -= to_card + fee_back + interest_back
        self.customer_fees -= fee_back
        self.interest -= interest_back

    @precondition(lambda self: self.owing())
    @rule(data=st.data())
    def write_off(self, data):
        pid = data.draw(st.sampled_from(self.owing()), label="payment")
        payment = self.payments[pid]
        self.post(
            recipes.receivable_written_off(
                merchant_id=self.m,
                livemode=False,
                payment_id=pid,
                cents=payment.receivable,
                effective_at=timezone.now(),
            )
        )
        self.losses += payment.receivable
        payment.receivable = 0
        payment.instalments.clear()
        payment.written_off = True

    @rule()
    def run_payouts(self):
        run_date = FIRST_RUN_DAY + timedelta(days=next(RUN_DAYS))
        run = payouts_run(run_date=run_date, livemode=False, now=timezone.now())
        assert run.file_built_at is not None
        mine = list(run.payouts.filter(merchant_id=self.m))
        if self.balance >= MINIMUM_CENTS:
            assert len(mine) == 1
            payout = mine[0]
            assert to_cents(payout.amount) == self.balance
            assert payout.status == Payout.Status.SENT
            assert run.sepa_file is not None
            self.payouts[payout.public_id] = [self.balance, Payout.Status.SENT]
            posting = Posting.objects.get(
                source="payout", idempotency_key=f"{payout.public_id}:sent"
            )
            replay = recipes.payout_sent(
                merchant_id=self.m,
                livemode=False,
                payout_id=payout.public_id,
                cents=self.balance,
                effective_at=timezone.now(),
            )
            self.posted.append((replay, posting.pk))
            self.in_transit += self.balance
            self.balance = 0
            event("payout made")
        else:
            assert mine == []
            event("no payout" if self.balance >= 0 else "no payout, negative balance")

    @precondition(lambda self: self.with_status(Payout.Status.SENT))
    @rule(data=st.data())
    def payout_paid(self, data):
        public_id = data.draw(st.sampled_from(self.with_status(Payout.Status.SENT)))
        payout = Payout.objects.get(public_id=public_id)
        assert payout_mark_paid(payout=payout, now=timezone.now()).status == Payout.Status.PAID
        cents = self.payouts[public_id][0]
        self.payouts[public_id][1] = Payout.Status.PAID
        self.in_transit -= cents
        self.bank -= cents
        event("payout paid")

    @precondition(lambda self: self.with_status(Payout.Status.SENT))
    @rule(data=st.data(), reason=st.sampled_from(["AC04 closed account", "MS03 rejected"]))
    def payout_failed(self, data, reason):
        public_id = data.draw(st.sampled_from(self.with_status(Payout.Status.SENT)))
        payout = Payout.objects.get(public_id=public_id)
        failed = payout_fail(payout=payout, reason=reason, now=timezone.now())
        assert failed.status == Payout.Status.FAILED
        assert failed.failure_reason == reason
        cents = self.payouts[public_id][0]
        self.payouts[public_id][1] = Payout.Status.FAILED
        self.in_transit -= cents
        self.balance += cents
        event("payout failed")

    @precondition(lambda self: self.posted)
    @rule(data=st.data())
    def replay(self, data):
        spec, posting_id = data.draw(st.sampled_from(self.posted), label="posting")
        postings = Posting.objects.count()

        posted = posting_create(spec)

        assert posted.created is False
        assert posted.posting_id == posting_id
        assert Posting.objects.count() == postings
        event(f"replay of {spec.kind}")

    # --- the checks --------------------------------------------------------------------------

    def expected(self) -> dict[tuple[str, str], int]:
        expected = {
            (K.MERCHANT_BALANCE, ""): self.balance,
            (K.PROCESSOR_CLEARING, ""): self.clearing,
            (K.MERCHANT_FEE_REVENUE, ""): self.merchant_fees,
            (K.CUSTOMER_FEE_REVENUE, ""): self.customer_fees,
            (K.INTEREST_REVENUE, ""): self.interest,
            (K.CREDIT_LOSSES, ""): self.losses,
            (K.PAYOUTS_IN_TRANSIT, ""): self.in_transit,
        }
        for pid, payment in self.payments.items():
            expected[(K.CUSTOMER_RECEIVABLE, pid)] = payment.receivable
        return {key: cents for key, cents in expected.items() if cents != 0}

    @invariant()
    def balances_match_the_model(self):
        actual = {
            (kind, reference): natural_cents(kind, decimal_to_cents(balance))
            for kind, reference, balance in Account.objects.filter(merchant_id=self.m).values_list(
                "kind", "reference", "balance"
            )
        }
        assert {key: cents for key, cents in actual.items() if cents != 0} == self.expected()
        assert bank_natural() - self.bank_at_start == self.bank
        balance = merchant_balance(
            merchant_id=self.m, livemode=False, settlement_delay_days=0, as_of=timezone.now()
        )
        assert balance.total_cents == balance.available_cents == self.balance
        assert balance.pending_cents == 0
        assert balance.in_transit_cents == self.in_transit

    @invariant()
    def payouts_match_the_model(self):
        actual = {
            public_id: [decimal_to_cents(amount), status]
            for public_id, amount, status in Payout.objects.filter(merchant_id=self.m).values_list(
                "public_id", "amount", "status"
            )
        }
        assert actual == self.payouts

    @invariant()
    def the_model_conserves_money(self):
        # What came in by card and is still owed equals what is owed to the merchant, earned,
        # lost, on its way out or gone from the bank.
        receivables = sum(p.receivable for p in self.payments.values())
        assert (
            self.clearing + receivables + self.losses + self.bank
            == (self.balance + self.merchant_fees + self.customer_fees + self.interest)
            + self.in_transit
        )

    @invariant()
    def the_audit_passes(self):
        report = ledger_audit()
        assert report.ok, report.violations


def test_the_ledger_follows_the_model(db):
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
