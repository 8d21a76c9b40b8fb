"""Payouts: the daily run, its SEPA file, the payout lifecycle and the hourly task."""

from __future__ import annotations

import threading
import uuid
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sepaxml
import xmlschema
from django.db import connection, connections
from django.utils import timezone
from djmoney.money import Money

from apps.common.dates import BUSINESS_TZ
from apps.common.errors import InvalidTransition
from apps.common.money import to_cents
from apps.ledger import recipes
from apps.ledger.models import (
    Account,
    AccountKind,
    Payout,
    PayoutEvent,
    PayoutRun,
    Posting,
    account_key,
)
from apps.ledger.postings import LedgerError
from apps.ledger.selectors import merchant_account, merchant_balance
from apps.ledger.services import (
    PayoutRunClosed,
    payout_fail,
    payout_mark_paid,
    payouts_run,
    posting_create,
)
from apps.ledger.services.payouts import payout_create, payout_run_open
from apps.ledger.tasks import run_payouts
from apps.merchants.models import Merchant
from apps.merchants.services import merchant_activate
from tests.factories import MerchantFactory

PAIN = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"
NS = {"p": PAIN}
FR_IBAN = "FR7630006000011234567890189"
DE_IBAN = "DE89370400440532013000"
XSD = Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.03.xsd"


def merchant_create(**fields) -> Merchant:
    fields = {
        "payout_iban": FR_IBAN,
        "settlement_delay_days": 0,
        "payout_minimum": Money(10, "EUR"),
        **fields,
    }
    return merchant_activate(merchant=MerchantFactory(**fields), now=timezone.now())


def sale(merchant: Merchant, purchase_cents: int, *, livemode: bool = False, fee: int = 0) -> str:
    """A one-instalment payment: the merchant's balance is credited purchase - fee."""
    payment_id = f"pay_{uuid.uuid4().hex[:12]}"
    posting_create(
        recipes.payment_captured(
            merchant_id=merchant.pk,
            livemode=livemode,
            payment_id=payment_id,
            purchase_cents=purchase_cents,
            first_principal_cents=purchase_cents,
            customer_fee_cents=0,
            interest_cents=0,
            merchant_fee_cents=fee,
            processor_reference=f"ch_{payment_id}",
            effective_at=timezone.now(),
        )
    )
    return payment_id


def natural(merchant: Merchant, kind: str, *, livemode: bool = False) -> int:
    account = merchant_account(merchant_id=merchant.pk, kind=kind, livemode=livemode)
    if account is None:
        return 0
    account.refresh_from_db()
    return to_cents(account.natural_balance)


def bank_cents(livemode: bool = False) -> int:
    account = Account.objects.filter(
        key=account_key(kind=AccountKind.BANK, livemode=livemode, currency="EUR", merchant_id=None)
    ).first()
    return 0 if account is None else to_cents(account.natural_balance)


def backdate_ledger(days: int) -> None:
    """Move every leg written so far `days` into the past (as if posted then).

    All legs move together, so each account's legs stay in the same time order and the
    running balances stay right. Only a test may do this: it lifts the append-only guard.
    """
    with connection.cursor() as cursor:
        # ALTER TABLE refuses while deferred checks (foreign keys) are pending: run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE ledger_leg DISABLE TRIGGER ledger_leg_append_only")
        cursor.execute(
            "UPDATE ledger_leg SET posted_at = posted_at - make_interval(days => %s)", [days]
        )
        cursor.execute("ALTER TABLE ledger_leg ENABLE TRIGGER ledger_leg_append_only")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


RUN_DAY = date(2030, 1, 7)


def run(day: date = RUN_DAY, *, now: datetime | None = None, livemode: bool = False):
    return payouts_run(run_date=day, livemode=livemode, now=now or timezone.now())


# --- the run ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_run_pays_the_available_balance_in_one_payout_and_sends_the_file():
    merchant = merchant_create(payout_bic="AGRIFRPP")
    sale(merchant, 12_000, fee=450)
    sale(merchant, 3_000, fee=90)

    payout_run = run()

    payout = Payout.objects.get(merchant=merchant)
    assert payout.run == payout_run
    assert to_cents(payout.amount) == 12_000 - 450 + 3_000 - 90
    assert payout.status == Payout.Status.SENT
    assert payout.sent_at is not None
    assert payout.iban == FR_IBAN
    assert payout.bic == "AGRIFRPP"
    assert payout.account_holder == merchant.legal_name
    assert payout.settlement_delay_days == 0
    assert payout_run.payout_count == 1
    assert payout_run.total == payout.amount
    assert payout_run.file_built_at is not None
    assert bytes(payout_run.sepa_file).startswith(b"<?xml")
    assert payout_run.message_id
    posting = Posting.objects.get(kind="payout_sent")
    assert posting.reference == payout.public_id
    assert posting.merchant_id == merchant.pk
    assert natural(merchant, AccountKind.MERCHANT_BALANCE) == 0
    assert natural(merchant, AccountKind.PAYOUTS_IN_TRANSIT) == 14_460
    assert list(payout.events.order_by("pk").values_list("from_status", "to_status")) == [
        ("", "pending"),
        ("pending", "sent"),
    ]


@pytest.mark.django_db
def test_one_payout_per_merchant_per_run_and_only_payable_merchants():
    first = merchant_create(payout_iban=FR_IBAN)
    second = merchant_create(payout_iban=DE_IBAN)
    pending = MerchantFactory(payout_iban=FR_IBAN, settlement_delay_days=0)
    without_iban = merchant_create(payout_iban="")
    for merchant in (first, second, pending, without_iban):
        sale(merchant, 5_000)
        sale(merchant, 2_500)

    payout_run = run()

    payouts = {p.merchant_id: to_cents(p.amount) for p in payout_run.payouts.all()}
    assert payouts == {first.pk: 7_500, second.pk: 7_500}
    assert payout_run.payout_count == 2
    assert to_cents(payout_run.total) == 15_000
    assert Posting.objects.filter(kind="payout_sent").count() == 2
    assert natural(pending, AccountKind.MERCHANT_BALANCE) == 7_500
    assert natural(without_iban, AccountKind.MERCHANT_BALANCE) == 7_500


@pytest.mark.django_db
def test_running_twice_the_same_day_creates_nothing_more():
    merchant = merchant_create()
    sale(merchant, 5_000)
    first = run()
    sale(merchant, 4_000)  # arrives after the day's file was built

    again = run()

    assert again.pk == first.pk
    assert again.file_built_at == first.file_built_at
    assert bytes(again.sepa_file) == bytes(first.sepa_file)
    assert Payout.objects.count() == 1
    assert PayoutRun.objects.count() == 1
    assert Posting.objects.filter(kind="payout_sent").count() == 1
    assert natural(merchant, AccountKind.MERCHANT_BALANCE) == 4_000

    next_day = run(RUN_DAY + timedelta(days=1))

    assert next_day.pk != first.pk
    assert [to_cents(p.amount) for p in next_day.payouts.all()] == [4_000]
    assert natural(merchant, AccountKind.MERCHANT_BALANCE) == 0
    assert natural(merchant, AccountKind.PAYOUTS_IN_TRANSIT) == 9_000


@pytest.mark.django_db
def test_a_closed_run_takes_no_new_payout():
    merchant = merchant_create()
    payout_run = run()  # nothing to pay: the file is "built" empty
    sale(merchant, 5_000)

    with pytest.raises(PayoutRunClosed):
        payout_create(run=payout_run, merchant=merchant, now=timezone.now())
    assert Payout.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_two_workers_running_at_once_make_one_payout():
    merchant = merchant_create()
    sale(merchant, 8_000)
    sale(merchant, 2_000)
    barrier = threading.Barrier(2)
    results: list = []
    errors: list = []

    def worker():
        try:
            barrier.wait(timeout=10)
            results.append(run().pk)
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert len(results) == 2
    assert len(set(results)) == 1
    assert PayoutRun.objects.count() == 1
    payout = Payout.objects.get()
    assert to_cents(payout.amount) == 10_000
    assert payout.status == Payout.Status.SENT
    assert Posting.objects.filter(kind="payout_sent").count() == 1
    assert PayoutRun.objects.get().payout_count == 1
    assert natural(merchant, AccountKind.MERCHANT_BALANCE) == 0


@pytest.mark.django_db
def test_below_the_minimum_there_is_no_payout():
    merchant = merchant_create(payout_minimum=Money(50, "EUR"))
    sale(merchant, 4_999)

    payout_run = run()

    assert Payout.objects.count() == 0
    assert payout_run.payout_count == 0
    assert payout_run.sepa_file is None
    assert payout_run.file_built_at is not None
    assert natural(merchant, AccountKind.MERCHANT_BALANCE) == 4_999

    sale(merchant, 1)  # exactly the minimum the next day
    payout_run = run(RUN_DAY + timedelta(days=1))

    assert [to_cents(p.amount) for p in payout_run.payouts.all()] == [5_000]


@pytest.mark.django_db
def test_a_negative_balance_is_not_paid():
    merchant = merchant_create()
    payment = sale(merchant, 2_000)
    posting_create(
        recipes.refund_issued(
            merchant_id=merchant.pk,
            livemode=False,
            payment_id=payment,
            refund_id="rf_neg",
            receivable_cancelled_cents=0,
            to_card_cents=2_000,
            effective_at=timezone.now(),
        )
    )
    posting_create(
        recipes.refund_issued(
            merchant_id=merchant.pk,
            livemode=False,
            payment_id=payment,
            refund_id="rf_neg2",
            receivable_cancelled_cents=0,
            to_card_cents=500,
            effective_at=timezone.now(),
        )
    )
    assert natural(merchant, AccountKind.MERCHANT_BALANCE) == -500

    run()

    assert Payout.objects.count() == 0


@pytest.mark.django_db
def test_recent_credits_wait_for_the_settlement_delay():
    merchant = merchant_create(settlement_delay_days=7)
    sale(merchant, 5_000)
    backdate_ledger(10)  # this sale is ten days old
    sale(merchant, 3_000)  # this one is today's

    balance = merchant_balance(
        merchant_id=merchant.pk, livemode=False, settlement_delay_days=7, as_of=timezone.now()
    )
    assert (balance.total_cents, balance.pending_cents, balance.available_cents) == (
        8_000,
        3_000,
        5_000,
    )

    payout_run = run()

    assert [to_cents(p.amount) for p in payout_run.payouts.all()] == [5_000]
    assert payout_run.payouts.get().settlement_delay_days == 7
    assert natural(merchant, AccountKind.MERCHANT_BALANCE) == 3_000


@pytest.mark.django_db
def test_money_back_from_a_failed_payout_does_not_wait_the_delay_again():
    merchant = merchant_create(settlement_delay_days=7)
    sale(merchant, 5_000)
    backdate_ledger(10)
    payout = run().payouts.get()
    payout_fail(payout=payout, reason="IBAN closed (AC04)", now=timezone.now())

    balance = merchant_balance(merchant_id=merchant.pk, livemode=False, settlement_delay_days=7)
    assert (balance.total_cents, balance.pending_cents, balance.available_cents) == (
        5_000,
        0,
        5_000,
    )
    assert [to_cents(p.amount) for p in run(RUN_DAY + timedelta(days=1)).payouts.all()] == [5_000]


@pytest.mark.django_db
def test_only_recent_credits_pays_nothing():
    merchant = merchant_create(settlement_delay_days=3)
    sale(merchant, 5_000)

    run()

    assert Payout.objects.count() == 0
    assert natural(merchant, AccountKind.MERCHANT_BALANCE) == 5_000


# --- the payout's life -----------------------------------------------------------------------


def sent_payout(cents: int = 6_000) -> tuple[Merchant, Payout]:
    merchant = merchant_create()
    sale(merchant, cents)
    run()
    return merchant, Payout.objects.get(merchant=merchant)


@pytest.mark.django_db
def test_a_failed_payout_returns_the_money_to_the_balance():
    merchant, payout = sent_payout(6_000)

    failed = payout_fail(payout=payout, reason="  IBAN closed (AC04)  ", now=timezone.now())

    assert failed.status == Payout.Status.FAILED
    assert failed.failure_reason == "IBAN closed (AC04)"
    assert failed.failed_at is not None
    payout.refresh_from_db()
    assert payout.status == Payout.Status.FAILED
    assert natural(merchant, AccountKind.MERCHANT_BALANCE) == 6_000
    assert natural(merchant, AccountKind.PAYOUTS_IN_TRANSIT) == 0
    assert Posting.objects.get(kind="payout_failed").reference == payout.public_id
    event = payout.events.order_by("-pk").first()
    assert (event.from_status, event.to_status, event.detail) == (
        "sent",
        "failed",
        "IBAN closed (AC04)",
    )

    # The money returned is paid again by the next run.
    next_run = run(RUN_DAY + timedelta(days=1))
    assert [to_cents(p.amount) for p in next_run.payouts.all()] == [6_000]


@pytest.mark.django_db
@pytest.mark.parametrize("reason", ["", "   "])
def test_a_payout_fails_only_with_a_reason(reason):
    merchant, payout = sent_payout()

    with pytest.raises(LedgerError):
        payout_fail(payout=payout, reason=reason, now=timezone.now())

    payout.refresh_from_db()
    assert payout.status == Payout.Status.SENT
    assert not Posting.objects.filter(kind="payout_failed").exists()
    assert natural(merchant, AccountKind.PAYOUTS_IN_TRANSIT) == 6_000


@pytest.mark.django_db
def test_a_paid_payout_leaves_the_bank():
    merchant, payout = sent_payout(6_000)
    bank_before = bank_cents()

    paid = payout_mark_paid(payout=payout, now=timezone.now())

    assert paid.status == Payout.Status.PAID
    assert paid.paid_at is not None
    assert natural(merchant, AccountKind.PAYOUTS_IN_TRANSIT) == 0
    assert natural(merchant, AccountKind.MERCHANT_BALANCE) == 0
    assert bank_cents() == bank_before - 6_000
    assert Posting.objects.get(kind="payout_paid").reference == payout.public_id


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("first", "then"),
    [("paid", "paid"), ("paid", "failed"), ("failed", "paid"), ("failed", "failed")],
)
def test_a_finished_payout_cannot_change_again(first, then):
    merchant, payout = sent_payout(6_000)
    act = {
        "paid": lambda: payout_mark_paid(payout=payout, now=timezone.now()),
        "failed": lambda: payout_fail(payout=payout, reason="returned", now=timezone.now()),
    }
    act[first]()
    postings = Posting.objects.count()
    events = PayoutEvent.objects.count()

    with pytest.raises(InvalidTransition):
        act[then]()

    payout.refresh_from_db()
    assert payout.status == first
    assert Posting.objects.count() == postings
    assert PayoutEvent.objects.count() == events
    expected_balance = 6_000 if first == "failed" else 0
    assert natural(merchant, AccountKind.MERCHANT_BALANCE) == expected_balance
    assert natural(merchant, AccountKind.PAYOUTS_IN_TRANSIT) == 0


@pytest.mark.django_db
def test_a_pending_payout_is_neither_paid_nor_failed_before_its_file_is_sent():
    merchant = merchant_create()
    sale(merchant, 6_000)
    payout_run = payout_run_open(run_date=RUN_DAY, livemode=False, now=timezone.now())
    payout = payout_create(run=payout_run, merchant=merchant, now=timezone.now())
    assert payout.status == Payout.Status.PENDING

    with pytest.raises(InvalidTransition):
        payout_mark_paid(payout=payout, now=timezone.now())
    with pytest.raises(InvalidTransition):
        payout_fail(payout=payout, reason="returned", now=timezone.now())

    payout.refresh_from_db()
    assert payout.status == Payout.Status.PENDING
    assert natural(merchant, AccountKind.PAYOUTS_IN_TRANSIT) == 6_000


# --- the SEPA file ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_sepa_file_is_a_valid_pain_001_001_03_credit_transfer():
    french = merchant_create(payout_iban=FR_IBAN, legal_name="Boutique Été & Fils")
    german = merchant_create(payout_iban=DE_IBAN, payout_bic="COBADEFFXXX")
    sale(french, 12_345)
    sale(german, 1_005)
    sale(german, 2_000)

    payout_run = run()

    content = bytes(payout_run.sepa_file)
    root = ET.fromstring(content)  # noqa: S314 (the file our own code built)
    assert root.tag == f"{{{PAIN}}}Document"
    xmlschema.XMLSchema(str(XSD)).validate(content.decode("utf-8"))
    assert xmlschema.XMLSchema(str(XSD)).is_valid(content.decode("utf-8"))

    header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", NS)
    assert header.findtext("p:MsgId", namespaces=NS) == payout_run.message_id
    assert header.findtext("p:NbOfTxs", namespaces=NS) == "2"
    assert Decimal(header.findtext("p:CtrlSum", namespaces=NS)) == Decimal("153.50")
    debtor_iban = root.findtext("p:CstmrCdtTrfInitn/p:PmtInf/p:DbtrAcct/p:Id/p:IBAN", None, NS)
    assert debtor_iban == "FR7630006000011234567890189"
    execution = root.findtext("p:CstmrCdtTrfInitn/p:PmtInf/p:ReqdExctnDt", None, NS)
    assert execution == RUN_DAY.isoformat()

    transfers = {}
    for tx in root.iterfind("p:CstmrCdtTrfInitn/p:PmtInf/p:CdtTrfTxInf", NS):
        iban = tx.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS)
        amount = tx.find("p:Amt/p:InstdAmt", NS)
        assert amount.get("Ccy") == "EUR"
        transfers[iban] = (
            Decimal(amount.text),
            tx.findtext("p:PmtId/p:EndToEndId", namespaces=NS),
            tx.findtext("p:Cdtr/p:Nm", namespaces=NS),
        )
    payouts = {p.iban: p for p in payout_run.payouts.all()}
    assert set(transfers) == {FR_IBAN, DE_IBAN}
    assert transfers[FR_IBAN][0] == Decimal("123.45")
    assert transfers[DE_IBAN][0] == Decimal("30.05")
    for iban, (_amount, end_to_end, _name) in transfers.items():
        assert payouts[iban].public_id.endswith(end_to_end)
    assert german.legal_name in transfers[DE_IBAN][2]
    bic = [
        tx.findtext("p:CdtrAgt/p:FinInstnId/p:BIC", namespaces=NS)
        for tx in root.iterfind("p:CstmrCdtTrfInitn/p:PmtInf/p:CdtTrfTxInf", NS)
        if tx.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS) == DE_IBAN
    ]
    assert bic == ["COBADEFFXXX"]


# --- the hourly task -------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_task_pays_once_a_day_from_the_payout_hour(settings, time_machine):
    settings.PAYOUT_MODES = ["test"]
    settings.PAYOUT_HOUR = 6
    merchant = merchant_create()
    sale(merchant, 5_000)
    sale(merchant, 700, livemode=True)

    # 5:59 in Paris (CEST, UTC+2) is 3:59 UTC: too early.
    time_machine.move_to(datetime(2030, 6, 3, 5, 59, tzinfo=BUSINESS_TZ), tick=False)
    assert run_payouts() == []
    assert PayoutRun.objects.count() == 0

    # 6:00 in Paris is still 4:00 UTC the same day.
    time_machine.move_to(datetime(2030, 6, 3, 6, 0, tzinfo=BUSINESS_TZ), tick=False)
    done = run_payouts()

    assert len(done) == 1
    assert "1 payouts" in done[0]
    payout_run = PayoutRun.objects.get()
    assert payout_run.run_date == date(2030, 6, 3)
    assert payout_run.livemode is False
    assert [to_cents(p.amount) for p in payout_run.payouts.all()] == [5_000]
    assert natural(merchant, AccountKind.MERCHANT_BALANCE, livemode=True) == 700

    # Later the same day: the run exists, nothing more is paid.
    sale(merchant, 1_000)
    time_machine.move_to(datetime(2030, 6, 3, 23, 30, tzinfo=BUSINESS_TZ), tick=False)
    done = run_payouts()
    assert PayoutRun.objects.count() == 1
    assert Payout.objects.count() == 1
    assert done == [f"{payout_run}: 1 payouts, {payout_run.total}"]


@pytest.mark.django_db
def test_the_task_pays_each_configured_mode(settings, time_machine):
    settings.PAYOUT_MODES = ["test", "live"]
    settings.PAYOUT_HOUR = 6
    merchant = merchant_create()
    sale(merchant, 5_000)
    sale(merchant, 7_000, livemode=True)

    time_machine.move_to(datetime(2030, 6, 4, 7, 0, tzinfo=BUSINESS_TZ), tick=False)
    run_payouts()

    runs = {r.livemode: r for r in PayoutRun.objects.all()}
    assert set(runs) == {False, True}
    assert [to_cents(p.amount) for p in runs[False].payouts.all()] == [5_000]
    assert [to_cents(p.amount) for p in runs[True].payouts.all()] == [7_000]
    assert runs[True].payouts.get().livemode is True


@pytest.mark.django_db
def test_a_refund_posted_while_the_run_is_under_way_is_not_paid_out():
    # A run takes its time once for every merchant; a merchant further down the list may
    # have a refund posted after that time and before its payout is made.
    merchant = merchant_create()
    payment = sale(merchant, 10_000)
    started = timezone.now()
    posting_create(
        recipes.refund_issued(
            merchant_id=merchant.pk,
            livemode=False,
            payment_id=payment,
            refund_id="rf_during_run",
            receivable_cancelled_cents=0,
            to_card_cents=4_000,
            effective_at=timezone.now(),
        )
    )

    payout_run = run(now=started)

    assert [to_cents(p.amount) for p in payout_run.payouts.all()] == [6_000]
    assert natural(merchant, AccountKind.MERCHANT_BALANCE) == 0
