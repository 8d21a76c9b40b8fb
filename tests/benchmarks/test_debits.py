"""The debit benchmark's data and checks (benchmarks/debits.py) on a few rows: what it loads
is what checkout leaves (the ledger audit runs after each test, and the debit run's own
postings must continue the loaded balances), and its checks catch a wrong run."""

from __future__ import annotations

from datetime import datetime

import pytest

from apps.common.dates import debit_time
from apps.common.money import to_cents
from apps.ledger.models import Account
from apps.payments.models import Card, Instalment, Payment
from apps.payments.processor_sandbox import SandboxProcessor
from benchmarks import debits

pytestmark = pytest.mark.django_db

SLICE_NOW = datetime.combine(debits.SLICE_DUE, debits.NOON, tzinfo=debits.PARIS)


@pytest.fixture
def bench_shop(settings, monkeypatch) -> debits.Shop:
    monkeypatch.setattr(debits, "CUSTOMERS", 3)
    # The processor's calls on this test's connection, which sees its uncommitted rows.
    settings.SANDBOX_PROCESSOR_LATENCY_MS = 0
    return debits.shop(lambda line: None)


def load(shop: debits.Shop, count: int) -> debits.Slice:
    return debits.load_payments(shop, tag="t" * 16, first=1, last=count, bought=debits.SLICE_BOUGHT)


def test_loaded_payments_are_as_checkout_leaves_them(bench_shop):
    piece = load(bench_shop, 5)

    payment = Payment.objects.get(pk=piece.payments[0])
    instalments = list(payment.instalments.order_by("number"))
    receivable = Account.objects.get(kind="customer_receivable", reference=payment.public_id)
    assert debits.due_count(SLICE_NOW) == 5
    assert payment.state == "in_progress"
    assert payment.checkout.step == "done" and payment.orders.count() == 1
    assert Card.objects.get(pk=payment.card_id).processor_token.startswith(debits.TOKEN_PREFIX)
    assert [row.state for row in instalments] == ["paid", "pending", "pending", "pending"]
    assert sum(to_cents(row.purchase_amount) for row in instalments) == to_cents(
        payment.purchase_amount
    )
    assert instalments[1].due_date == debits.SLICE_DUE
    assert instalments[1].next_debit_at == debit_time(debits.SLICE_DUE, hour=8)
    assert to_cents(receivable.balance) == sum(to_cents(r.purchase_amount) for r in instalments[1:])


def test_a_debit_run_over_loaded_payments_passes_the_checks(bench_shop):
    load(bench_shop, 6)
    piece = debits.next_due(SLICE_NOW, 6)
    mark = debits._charge_mark()

    _elapsed, summary = debits.timed_debit_run(now=SLICE_NOW, rows=6, batch_size=4)

    debits.check_paid_once(bench_shop, piece, summary, mark=mark)
    assert debits.due_count(SLICE_NOW) == 0
    assert Instalment.objects.filter(pk__in=piece.instalments, state="paid").count() == 6


def test_the_checks_catch_a_second_charge_at_the_processor(bench_shop):
    load(bench_shop, 3)
    piece = debits.next_due(SLICE_NOW, 3)
    mark = debits._charge_mark()
    _elapsed, summary = debits.timed_debit_run(now=SLICE_NOW, rows=3, batch_size=3)
    instalment = Instalment.objects.select_related("payment__card").get(pk=piece.instalments[0])

    SandboxProcessor().charge(
        token=instalment.payment.card.processor_token,
        amount_cents=to_cents(instalment.purchase_amount),
        idempotency_key=f"instalment:{instalment.public_id}:attempt:2",
        livemode=False,
        merchant_initiated=True,
    )

    with pytest.raises(SystemExit, match="the processor 4"):
        debits.check_paid_once(bench_shop, piece, summary, mark=mark)


def test_the_raw_baseline_marks_the_rows_paid_and_is_checked(bench_shop):
    load(bench_shop, 5)
    piece = debits.next_due(SLICE_NOW, 5)
    short = debits.Slice(tag=piece.tag, instalments=piece.instalments[:3], payments=[])

    debits.timed_raw(short.instalments, 2)

    debits.check_raw(short)
    with pytest.raises(SystemExit, match="marked 3 of 5"):
        debits.check_raw(piece)
