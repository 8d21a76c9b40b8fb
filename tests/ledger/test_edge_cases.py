"""Edge cases found in review: stale merchants in a payout run, one bad merchant in a run,
settlement and same-day reversals in reconciliation, reopened mismatches, reversing payout
postings, read-only payout pages, and a replay with other accounts in one batch."""

import pytest
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from apps.ledger import recipes
from apps.ledger.models import Mismatch, Payout, Posting
from apps.ledger.postings import LedgerError, PostingConflict
from apps.ledger.reconciliation import SettlementLine
from apps.ledger.services import (
    mismatch_resolve,
    payouts_run,
    posting_create,
    posting_reverse,
    postings_create,
    reconciliation_run,
)
from apps.ledger.services.payouts import payout_create, payout_run_open
from apps.merchants.models import Merchant
from tests.conftest import make_shop

pytestmark = pytest.mark.django_db

IBAN = "FR7630006000011234567890189"
OTHER_IBAN = "DE89370400440532013000"


def sale(merchant, payment_id: str, cents: int = 10_000, reference: str | None = None):
    return posting_create(
        recipes.payment_captured(
            merchant_id=merchant.pk,
            livemode=False,
            payment_id=payment_id,
            purchase_cents=cents,
            first_principal_cents=cents,
            customer_fee_cents=0,
            interest_cents=0,
            merchant_fee_cents=0,
            processor_reference=reference or f"ch_{payment_id}",
            effective_at=timezone.now(),
        )
    )


def payable_shop(**fields):
    return make_shop(payout_iban=IBAN, settlement_delay_days=0, **fields).merchant


def test_a_payout_uses_the_merchant_as_it_is_when_paid():
    merchant = payable_shop()
    sale(merchant, "pay_stale")
    stale = Merchant.objects.get(pk=merchant.pk)
    Merchant.objects.filter(pk=merchant.pk).update(payout_iban=OTHER_IBAN)
    run = payout_run_open(run_date=timezone.localdate(), livemode=False, now=timezone.now())

    payout = payout_create(run=run, merchant=stale, now=timezone.now())

    assert payout.iban == OTHER_IBAN


def test_a_merchant_suspended_during_the_run_is_not_paid():
    merchant = payable_shop()
    sale(merchant, "pay_suspended")
    stale = Merchant.objects.get(pk=merchant.pk)
    Merchant.objects.filter(pk=merchant.pk).update(status=Merchant.Status.SUSPENDED)
    run = payout_run_open(run_date=timezone.localdate(), livemode=False, now=timezone.now())

    assert payout_create(run=run, merchant=stale, now=timezone.now()) is None


def test_one_merchant_failing_does_not_hold_up_the_run(caplog):
    broken, fine = payable_shop(), payable_shop()
    sale(broken, "pay_broken")
    sale(fine, "pay_fine")
    Merchant.objects.filter(pk=broken.pk).update(payout_iban="FR00NOTANIBAN")

    run = payouts_run(run_date=timezone.localdate(), livemode=False, now=timezone.now())

    payouts: QuerySet[Payout] = run.payouts.all()
    assert [payout.merchant_id for payout in payouts] == [fine.pk]
    assert run.file_built_at is not None and run.payout_count == 1
    assert f"No payout for merchant {broken.pk}" in caplog.text


def test_settlements_and_same_day_reversals_are_not_mismatches():
    merchant = payable_shop()
    reversed_sale = sale(merchant, "pay_reversed", reference="ch_reversed")
    posting_reverse(
        posting=Posting.objects.get(pk=reversed_sale.posting_id),
        reason="duplicate",
        effective_at=timezone.now(),
    )
    sale(merchant, "pay_kept", cents=2_000, reference="ch_kept")
    posting_create(
        recipes.processor_settled(
            livemode=False,
            settlement_date=timezone.localdate(),
            cents_by_merchant={merchant.pk: 2_000},
            processor_reference="po_1",
            effective_at=timezone.now(),
        )
    )

    run = reconciliation_run(
        report_date=timezone.localdate(),
        livemode=False,
        lines=[SettlementLine("ch_kept", 2_000, timezone.now())],
        now=timezone.now(),
    )

    assert (run.matched, run.mismatches) == (1, 0)


def test_a_resolved_mismatch_reopens_when_its_amounts_change():
    merchant = payable_shop()
    sale(merchant, "pay_mis", cents=2_000, reference="ch_mis")
    day = timezone.localdate()

    def rerun(cents: int):
        return reconciliation_run(
            report_date=day,
            livemode=False,
            lines=[SettlementLine("ch_mis", cents, timezone.now())],
            now=timezone.now(),
        )

    rerun(1_900)
    item = Mismatch.objects.get(processor_reference="ch_mis")
    mismatch_resolve(mismatch=item, resolution="fee withheld", now=timezone.now())
    rerun(1_900)
    assert Mismatch.objects.get(pk=item.pk).resolved_at is not None  # same amounts: kept

    rerun(1_500)
    item.refresh_from_db()
    assert (item.resolved_at, item.resolution) == (None, "")
    assert item.report_amount.amount == 15


def test_payout_postings_cannot_be_reversed():
    merchant = payable_shop()
    sale(merchant, "pay_po")
    run = payouts_run(run_date=timezone.localdate(), livemode=False, now=timezone.now())
    posting = Posting.objects.get(kind="payout_sent", reference=run.payouts.get().public_id)

    with pytest.raises(LedgerError, match="mark the payout failed"):
        posting_reverse(posting=posting, reason="oops", effective_at=timezone.now())


def test_a_payout_page_is_read_only(admin_client):
    merchant = payable_shop()
    sale(merchant, "pay_page")
    run = payouts_run(run_date=timezone.localdate(), livemode=False, now=timezone.now())
    page = admin_client.get(reverse("admin:ledger_payout_change", args=[run.payouts.get().pk]))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()


def test_a_batch_replaying_an_event_on_other_accounts_is_a_conflict():
    first, second = payable_shop(), payable_shop()
    spec = recipes.payment_captured(
        merchant_id=first.pk,
        livemode=False,
        payment_id="pay_twice",
        purchase_cents=1_000,
        first_principal_cents=1_000,
        customer_fee_cents=0,
        interest_cents=0,
        merchant_fee_cents=0,
        processor_reference="ch_twice",
        effective_at=timezone.now(),
    )
    other = recipes.payment_captured(
        **{**spec_kwargs(spec), "merchant_id": second.pk},
    )
    with pytest.raises(PostingConflict):
        postings_create([spec, other])
    assert not Posting.objects.exists()


def spec_kwargs(spec) -> dict:
    return {
        "livemode": spec.livemode,
        "payment_id": spec.reference,
        "purchase_cents": 1_000,
        "first_principal_cents": 1_000,
        "customer_fee_cents": 0,
        "interest_cents": 0,
        "merchant_fee_cents": 0,
        "processor_reference": spec.processor_reference,
        "effective_at": spec.effective_at,
    }
