"""check_ledger: passes on a healthy ledger, names the check that fails on a corrupted one.

The corrupted ledgers are made the only way left: with the guard triggers switched off (the
test database user owns the tables), inside the test's transaction, switched on again after.
"""

from __future__ import annotations

import io
import uuid
from datetime import date

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from djmoney.money import Money

from apps.common.money import to_money
from apps.ledger import recipes
from apps.ledger.audit import CHECKS, ledger_audit
from apps.ledger.models import AccountKind, Leg, Payout, PayoutEvent
from apps.ledger.selectors import merchant_account
from apps.ledger.services import payout_fail, payout_mark_paid, payouts_run, posting_create
from apps.ledger.services.payouts import payout_run_open
from apps.merchants.models import Merchant
from apps.merchants.services import merchant_activate
from tests.factories import MerchantFactory

BALANCED = "postings balanced, in one currency, with two legs or more"
ALL_ZERO = "all legs sum to zero per mode and currency"
LEG_MODE = "each leg in the mode and currency of its account and posting"
STORED = "stored balance equals the sum of the account's legs"
RUNNING = "each leg's balance_after is the running sum of its account's legs in time order"
PAYOUT_POSTED = "each payout posted once when made, and once more when paid or failed"
PAYOUT_AVAILABLE = "no payout exceeds the merchant's available balance when it was made"
ALL = [BALANCED, ALL_ZERO, LEG_MODE, STORED, RUNNING, PAYOUT_POSTED, PAYOUT_AVAILABLE]


def test_the_names_here_are_the_checks():
    assert [name for name, _sql in CHECKS] == ALL


def merchant_create(**fields) -> Merchant:
    fields = {"payout_iban": "FR7630006000011234567890189", "settlement_delay_days": 0, **fields}
    return merchant_activate(merchant=MerchantFactory(**fields), now=timezone.now())


def sale(merchant: Merchant, cents: int, *, livemode: bool = False) -> str:
    payment_id = f"pay_{uuid.uuid4().hex[:12]}"
    posting_create(
        recipes.payment_captured(
            merchant_id=merchant.pk,
            livemode=livemode,
            payment_id=payment_id,
            purchase_cents=cents,
            first_principal_cents=cents // 4,
            customer_fee_cents=99,
            interest_cents=0,
            merchant_fee_cents=cents // 20,
            processor_reference=f"ch_{payment_id}",
            effective_at=timezone.now(),
        )
    )
    return payment_id


def check(*args) -> str:
    out = io.StringIO()
    call_command("check_ledger", *args, stdout=out)
    return out.getvalue()


def check_fails(*args) -> str:
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"ledger check\(s\) failed"):
        call_command("check_ledger", *args, stdout=out)
    return out.getvalue()


def status(output: str) -> dict[str, str]:
    """Each check's verdict in the command's output: 'ok' or 'FAIL'."""
    verdicts = {}
    for text in output.splitlines():
        for name in ALL:
            if text.strip() == f"ok    {name}":
                verdicts[name] = "ok"
            elif text.strip().startswith(f"FAIL  {name}:"):
                verdicts[name] = "FAIL"
    return verdicts


def raw(sql: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def without_guards(table: str, *statements: tuple[str, list]) -> None:
    """Run statements with the table's user triggers off (deferred checks flushed first)."""
    raw("SET CONSTRAINTS ALL IMMEDIATE")
    raw(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    try:
        for sql, params in statements:
            raw(sql, params)
        raw("SET CONSTRAINTS ALL IMMEDIATE")
    finally:
        raw(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        raw("SET CONSTRAINTS ALL DEFERRED")


@pytest.fixture
def busy_ledger(db):
    """Sales, refunds, payouts sent, paid and failed, in both modes."""
    first, second = merchant_create(), merchant_create(payout_iban="DE89370400440532013000")
    for merchant in (first, second):
        payment = sale(merchant, 12_000)
        sale(merchant, 4_000, livemode=True)
        posting_create(
            recipes.refund_issued(
                merchant_id=merchant.pk,
                livemode=False,
                payment_id=payment,
                refund_id=f"rf_{payment}",
                receivable_cancelled_cents=1_000,
                to_card_cents=0,
                effective_at=timezone.now(),
            )
        )
    run = payouts_run(run_date=date(2030, 1, 2), livemode=False, now=timezone.now())
    live = payouts_run(run_date=date(2030, 1, 2), livemode=True, now=timezone.now())
    paid, failed = run.payouts.order_by("pk")
    payout_mark_paid(payout=paid, now=timezone.now())
    payout_fail(payout=failed, reason="AC04 account closed", now=timezone.now())
    assert live.payout_count == 2
    return first, second


def test_a_healthy_ledger_passes_every_check(busy_ledger):
    output = check()

    assert status(output) == dict.fromkeys(ALL, "ok")
    assert "Ledger (test and live):" in output
    assert "All ledger checks passed." in output
    assert "4 payouts" in output


@pytest.mark.parametrize(("mode", "payouts"), [("test", 2), ("live", 2)])
def test_one_mode_at_a_time(busy_ledger, mode, payouts):
    output = check("--mode", mode)

    assert status(output) == dict.fromkeys(ALL, "ok")
    assert f"Ledger ({mode}):" in output
    assert f"{payouts} payouts" in output
    assert "All ledger checks passed." in output


def test_an_empty_ledger_passes(db):
    output = check()

    assert status(output) == dict.fromkeys(ALL, "ok")
    assert "0 postings, 0 accounts, 0 payouts, 0 legs" in output


@pytest.mark.ledger_corrupt
def test_an_unbalanced_leg_fails_and_is_named(busy_ledger):
    first, _second = busy_ledger
    balance = merchant_account(
        merchant_id=first.pk, kind=AccountKind.MERCHANT_BALANCE, livemode=False
    )
    posting_id = balance.legs.order_by("pk").first().posting_id
    legs = Leg.objects.filter(posting_id=posting_id).count()
    without_guards(
        "ledger_leg",
        (
            "INSERT INTO ledger_leg (posting_id, account_id, amount, amount_currency, "
            "balance_after, posted_at) VALUES (%s, %s, -1.00, 'EUR', %s, now())",
            [posting_id, balance.pk, balance.balance.amount - 1],
        ),
    )

    output = check_fails()

    verdicts = status(output)
    assert verdicts[BALANCED] == "FAIL"
    assert verdicts[ALL_ZERO] == "FAIL"
    # The guard that would have updated the account's balance was off, too.
    assert verdicts[STORED] == "FAIL"
    assert verdicts[LEG_MODE] == "ok"
    assert verdicts[PAYOUT_POSTED] == "ok"
    assert f"({posting_id}, {legs + 1}, 1, Decimal('-1.00'))" in output
    assert "All ledger checks passed." not in output
    assert not ledger_audit(livemode=False).ok

    # The live ledger is untouched.
    assert status(check("--mode", "live")) == dict.fromkeys(ALL, "ok")
    check_fails("--mode", "test")


@pytest.mark.ledger_corrupt
def test_a_stored_balance_that_drifted_fails_and_names_the_account(busy_ledger):
    first, _second = busy_ledger
    revenue = merchant_account(
        merchant_id=first.pk, kind=AccountKind.MERCHANT_FEE_REVENUE, livemode=True
    )
    without_guards(
        "ledger_account",
        ("UPDATE ledger_account SET balance = balance - 0.01 WHERE id = %s", [revenue.pk]),
    )

    output = check_fails()

    verdicts = status(output)
    assert verdicts == {**dict.fromkeys(ALL, "ok"), STORED: "FAIL"}
    assert revenue.key in output
    with pytest.raises(CommandError, match=r"^1 ledger check\(s\) failed\.$"):
        call_command("check_ledger", stdout=io.StringIO())
    assert status(check("--mode", "test")) == dict.fromkeys(ALL, "ok")
    check_fails("--mode", "live")


@pytest.mark.ledger_corrupt
def test_a_rewritten_leg_breaks_the_running_balance(busy_ledger):
    first, _second = busy_ledger
    clearing = merchant_account(
        merchant_id=first.pk, kind=AccountKind.PROCESSOR_CLEARING, livemode=False
    )
    leg = clearing.legs.order_by("pk").first()
    without_guards(
        "ledger_leg",
        ("UPDATE ledger_leg SET balance_after = balance_after + 5 WHERE id = %s", [leg.pk]),
    )

    output = check_fails()

    assert status(output) == {**dict.fromkeys(ALL, "ok"), RUNNING: "FAIL"}
    assert clearing.key in output


@pytest.mark.ledger_corrupt
def test_a_payout_above_the_available_balance_is_caught(db):
    merchant = merchant_create()
    sale(merchant, 10_000)  # the balance is 9 500 (10 000 minus the 5 % fee)
    now = timezone.now()
    run = payout_run_open(run_date=date(2030, 1, 3), livemode=False, now=now)
    # What a broken payout service could do: pay more than the balance holds.
    payout = Payout.objects.create(
        run=run,
        merchant=merchant,
        livemode=False,
        amount=to_money(9_600),
        iban=merchant.payout_iban,
        account_holder=merchant.legal_name,
        settlement_delay_days=0,
        created_at=now,
    )
    posting_create(
        recipes.payout_sent(
            merchant_id=merchant.pk,
            livemode=False,
            payout_id=payout.public_id,
            cents=9_600,
            effective_at=now,
        )
    )
    PayoutEvent.objects.create(payout=payout, to_status=payout.status, created_at=now)

    output = check_fails()

    assert status(output) == {**dict.fromkeys(ALL, "ok"), PAYOUT_AVAILABLE: "FAIL"}
    assert payout.public_id in output
    assert "Decimal('96.00')" in output
    assert "Decimal('95.00')" in output


@pytest.mark.ledger_corrupt
def test_a_payout_of_credits_still_within_the_settlement_delay_is_caught(db):
    merchant = merchant_create(settlement_delay_days=7)
    sale(merchant, 10_000)  # credited just now: none of it is available for a week
    now = timezone.now()
    run = payout_run_open(run_date=date(2030, 1, 3), livemode=False, now=now)
    payout = Payout.objects.create(
        run=run,
        merchant=merchant,
        livemode=False,
        amount=to_money(9_500),
        iban=merchant.payout_iban,
        account_holder=merchant.legal_name,
        settlement_delay_days=7,
        created_at=now,
    )
    posting_create(
        recipes.payout_sent(
            merchant_id=merchant.pk,
            livemode=False,
            payout_id=payout.public_id,
            cents=9_500,
            effective_at=now,
        )
    )

    output = check_fails()

    assert status(output) == {**dict.fromkeys(ALL, "ok"), PAYOUT_AVAILABLE: "FAIL"}
    assert payout.public_id in output


@pytest.mark.ledger_corrupt
def test_a_payout_amount_changed_after_posting_is_caught(busy_ledger):
    payout = Payout.objects.filter(livemode=True).order_by("pk").first()
    raw("UPDATE ledger_payout SET amount = amount + 0.01 WHERE id = %s", [payout.pk])

    output = check_fails()

    assert status(output) == {**dict.fromkeys(ALL, "ok"), PAYOUT_AVAILABLE: "FAIL"}
    assert payout.public_id in output
    assert status(check("--mode", "test")) == dict.fromkeys(ALL, "ok")


@pytest.mark.ledger_corrupt
def test_a_payout_without_its_posting_is_caught(busy_ledger):
    first, _second = busy_ledger
    run = payout_run_open(run_date=date(2030, 1, 9), livemode=False, now=timezone.now())
    payout = Payout.objects.create(
        run=run,
        merchant=first,
        livemode=False,
        amount=Money(5, "EUR"),
        iban=first.payout_iban,
        account_holder=first.legal_name,
        settlement_delay_days=0,
        created_at=timezone.now(),
    )

    output = check_fails()

    assert status(output)[PAYOUT_POSTED] == "FAIL"
    assert payout.public_id in output
