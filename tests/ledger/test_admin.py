"""Operators' ledger pages: read-only ledger, payout runs and files, actions behind a
confirmation, and the merchant's payout bank details."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from apps.ledger import recipes
from apps.ledger.models import Account, Mismatch, Payout, PayoutRun, Posting
from apps.ledger.reconciliation import SettlementLine
from apps.ledger.selectors import merchant_balance
from apps.ledger.services import payouts_run, posting_create, reconciliation_run
from apps.merchants.models import MerchantEvent
from tests.conftest import make_shop

pytestmark = pytest.mark.django_db

IBAN = "FR7630006000011234567890189"


def captured(merchant, payment_id="payment_adm1", purchase=30000, reference="ch_adm1"):
    return posting_create(
        recipes.payment_captured(
            merchant_id=merchant.pk,
            livemode=False,
            payment_id=payment_id,
            purchase_cents=purchase,
            first_principal_cents=purchase // 3,
            customer_fee_cents=0,
            interest_cents=0,
            merchant_fee_cents=900,
            processor_reference=reference,
            effective_at=timezone.now(),
        )
    )


@pytest.fixture
def paid_out(admin_client):
    shop = make_shop(payout_iban=IBAN, settlement_delay_days=0)
    captured(shop.merchant)
    run = payouts_run(run_date=timezone.localdate(), livemode=False, now=timezone.now())
    return shop.merchant, run


def test_payout_run_page_links_its_sepa_file(admin_client, paid_out):
    _merchant, run = paid_out
    page = admin_client.get(reverse("admin:ledger_payoutrun_change", args=[run.pk]))
    assert page.status_code == 200
    url = reverse("admin:ledger_payoutrun_sepa", args=[run.pk])
    assert url in page.content.decode()
    download = admin_client.get(url)
    assert download.status_code == 200
    assert download["Content-Type"] == "application/xml"
    assert f"tranche-payouts-test-{run.run_date.isoformat()}.xml" in download["Content-Disposition"]
    assert b"pain.001.001.03" in download.content
    assert b'<InstdAmt Ccy="EUR">291.00</InstdAmt>' in download.content


def test_the_sepa_file_is_for_staff_only(client, paid_out):
    _merchant, run = paid_out
    response = client.get(reverse("admin:ledger_payoutrun_sepa", args=[run.pk]))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_failing_a_payout_asks_for_a_reason_then_returns_the_money(admin_client, paid_out):
    merchant, run = paid_out
    payout = Payout.objects.get(run=run)
    url = reverse("admin:ledger_payout_changelist")
    chosen = {"action": "mark_failed", ACTION_CHECKBOX_NAME: [payout.pk]}

    confirmation = admin_client.post(url, chosen)
    assert confirmation.status_code == 200
    body = confirmation.content.decode()
    assert 'name="confirm"' in body and 'name="reason"' in body
    assert payout.public_id in body
    assert Payout.objects.get(pk=payout.pk).status == Payout.Status.SENT

    without_reason = admin_client.post(url, {**chosen, "confirm": "yes", "reason": ""})
    assert without_reason.status_code == 200
    assert Payout.objects.get(pk=payout.pk).status == Payout.Status.SENT

    done = admin_client.post(url, {**chosen, "confirm": "yes", "reason": "Account closed"})
    assert done.status_code == 302
    payout.refresh_from_db()
    assert payout.status == Payout.Status.FAILED
    assert payout.failure_reason == "Account closed"
    balance = merchant_balance(
        merchant_id=merchant.pk, livemode=False, settlement_delay_days=0, as_of=timezone.now()
    )
    assert balance.available_cents == 29100
    assert balance.in_transit_cents == 0


def test_marking_paid_moves_the_money_out_of_the_bank(admin_client, paid_out):
    _merchant, run = paid_out
    payout = Payout.objects.get(run=run)
    url = reverse("admin:ledger_payout_changelist")
    chosen = {"action": "mark_paid", ACTION_CHECKBOX_NAME: [payout.pk]}
    assert admin_client.post(url, chosen).status_code == 200  # the confirmation page
    assert admin_client.post(url, {**chosen, "confirm": "yes"}).status_code == 302
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PAID
    assert Posting.objects.filter(kind="payout_paid", reference=payout.public_id).count() == 1


def test_ledger_rows_cannot_be_added_edited_or_deleted(admin_client, paid_out):
    posting = Posting.objects.first()
    account = Account.objects.filter(kind="merchant_balance").first()
    assert admin_client.get(reverse("admin:ledger_posting_add")).status_code == 403
    assert (
        admin_client.post(
            reverse("admin:ledger_posting_delete", args=[posting.pk]), {"post": "yes"}
        )
    ).status_code == 403
    page = admin_client.get(reverse("admin:ledger_account_change", args=[account.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "payment_captured" in body and "payout_sent" in body  # the statement
    assert 'name="_save"' not in body


def test_resolving_a_mismatch_needs_a_resolution(admin_client):
    shop = make_shop()
    captured(shop.merchant, reference="ch_missing")
    run = reconciliation_run(
        report_date=timezone.localdate(),
        livemode=False,
        lines=[SettlementLine("ch_other", 500, timezone.now())],
        now=timezone.now(),
    )
    assert run.mismatches == 2
    item = Mismatch.objects.get(run=run, processor_reference="ch_missing")
    url = reverse("admin:ledger_mismatch_changelist")
    chosen = {"action": "resolve", ACTION_CHECKBOX_NAME: [item.pk]}
    assert admin_client.post(url, chosen).status_code == 200
    done = admin_client.post(url, {**chosen, "confirm": "yes", "reason": "Late report line"})
    assert done.status_code == 302
    item.refresh_from_db()
    assert item.resolved_at is not None
    assert item.resolution.startswith("Late report line")
    assert admin_client.get(url + "?state=open").content.decode().count("ch_missing") == 0


def test_merchant_bank_details_are_validated_stored_compact_and_recorded(admin_client):
    shop = make_shop()
    merchant = shop.merchant
    url = reverse("admin:merchants_merchant_change", args=[merchant.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {
        key: value
        for key, value in form.initial.items()
        if value is not None and not isinstance(value, list | tuple)
    }
    data.update(
        {
            "payout_minimum_0": "10.00",
            "payout_minimum_1": "EUR",
            "excluded_categories": "",
            # inline management forms
            **{
                f"{prefix}-{field}": value
                for prefix in ("memberships", "fee_plans", "events")
                for field, value in (("TOTAL_FORMS", "0"), ("INITIAL_FORMS", "0"))
            },
        }
    )
    bad = admin_client.post(url, {**data, "payout_iban": "FR76 3000 6000 0112 3456 7890 188"})
    assert bad.status_code == 200
    errors = bad.context["adminform"].form.errors.as_data()["payout_iban"]
    assert [error.code for error in errors] == ["invalid_iban"]

    good = admin_client.post(url, {**data, "payout_iban": "fr76 3000 6000 0112 3456 7890 189"})
    assert good.status_code == 302, good.content.decode()[:2000]
    merchant.refresh_from_db()
    assert merchant.payout_iban == IBAN
    event = MerchantEvent.objects.get(merchant=merchant, kind="payout_details_changed")
    assert event.detail == "IBAN …0189"


def test_payout_runs_list_is_empty_before_the_first_run(admin_client):
    page = admin_client.get(reverse("admin:ledger_payoutrun_changelist"))
    assert page.status_code == 200
    assert not PayoutRun.objects.exists()
    assert page.context["cl"].result_count == 0
