"""Postings written at the same time by many workers, each on its own database connection."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.utils import timezone

from apps.ledger import recipes
from apps.ledger.audit import ledger_audit
from apps.ledger.models import AccountKind, Leg, Posting
from apps.ledger.selectors import account_balance_cents, merchant_account
from apps.ledger.services import Posted, posting_create
from tests.factories import MerchantFactory
from tests.support import run_in_threads as threads_run

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 20


def run_in_threads(work: Callable[[int], object], count: int = THREADS) -> list[object]:
    return threads_run(work, count)


def capture(merchant_id: int, payment_id: str, purchase: int, fee: int):
    return recipes.payment_captured(
        merchant_id=merchant_id,
        livemode=False,
        payment_id=payment_id,
        purchase_cents=purchase,
        first_principal_cents=purchase // 4,
        customer_fee_cents=25,
        interest_cents=10,
        merchant_fee_cents=fee,
        processor_reference=f"ch_{payment_id}",
        effective_at=timezone.now(),
    )


def natural(merchant_id: int, kind: str) -> int:
    account = merchant_account(merchant_id=merchant_id, kind=kind, livemode=False)
    assert account is not None
    signed = account_balance_cents(account_id=account.pk)
    return signed if account.debit_normal else -signed


def test_many_workers_posting_for_one_merchant_lose_nothing():
    merchant_id = MerchantFactory().pk
    per_thread = 10
    amounts = {
        f"pay_{t}_{n}": (1000 + 37 * t + n, 30 + t)
        for t in range(THREADS)
        for n in range(per_thread)
    }

    def work(t: int) -> list[Posted]:
        return [
            posting_create(capture(merchant_id, f"pay_{t}_{n}", *amounts[f"pay_{t}_{n}"]))
            for n in range(per_thread)
        ]

    results = run_in_threads(work)

    assert all(posted.created for batch in results for posted in batch)
    assert Posting.objects.filter(merchant_id=merchant_id).count() == THREADS * per_thread
    owed = sum(purchase - fee for purchase, fee in amounts.values())
    assert natural(merchant_id, AccountKind.MERCHANT_BALANCE) == owed
    assert natural(merchant_id, AccountKind.MERCHANT_FEE_REVENUE) == sum(
        fee for _purchase, fee in amounts.values()
    )
    assert natural(merchant_id, AccountKind.PROCESSOR_CLEARING) == sum(
        purchase // 4 + 25 + 10 for purchase, _fee in amounts.values()
    )
    assert natural(merchant_id, AccountKind.INTEREST_REVENUE) == 10 * len(amounts)
    # The merchant account's running balance went up one leg at a time.
    account = merchant_account(
        merchant_id=merchant_id, kind=AccountKind.MERCHANT_BALANCE, livemode=False
    )
    after = list(
        Leg.objects.filter(account=account)
        .order_by("posted_at", "id")
        .values_list("balance_after", flat=True)
    )
    assert len(after) == len(amounts)
    assert len(set(after)) == len(after)
    assert after == sorted(after, reverse=True)  # credits only: ever more negative
    report = ledger_audit()
    assert report.ok, report.violations
    assert report.counts["postings"] == THREADS * per_thread


def test_many_workers_posting_one_event_post_it_once():
    merchant_id = MerchantFactory().pk
    spec = capture(merchant_id, "pay_once", 12000, 360)

    results = run_in_threads(lambda _i: posting_create(spec))

    created = [posted for posted in results if posted.created]
    replayed = [posted for posted in results if not posted.created]
    assert len(created) == 1
    assert len(replayed) == THREADS - 1
    assert {posted.posting_id for posted in results} == {created[0].posting_id}
    assert Posting.objects.count() == 1
    assert Leg.objects.count() == len(spec.legs)
    assert natural(merchant_id, AccountKind.MERCHANT_BALANCE) == 12000 - 360
    assert ledger_audit().ok


def test_workers_for_many_merchants_on_fresh_accounts():
    """Every worker creates accounts on first use, some shared with others, at the same time."""
    merchants = [MerchantFactory().pk for _ in range(4)]

    def work(t: int) -> list[Posted]:
        return [
            posting_create(capture(merchant_id, f"pay_{t}_{merchant_id}", 2000 + t, 50))
            for merchant_id in (merchants[t % 4], merchants[(t + 1) % 4])
        ]

    results = run_in_threads(work)

    assert all(posted.created for batch in results for posted in batch)
    for merchant_id in merchants:
        expected = sum(
            2000 + t - 50
            for t in range(THREADS)
            if merchant_id in (merchants[t % 4], merchants[(t + 1) % 4])
        )
        assert natural(merchant_id, AccountKind.MERCHANT_BALANCE) == expected
    assert ledger_audit().ok
