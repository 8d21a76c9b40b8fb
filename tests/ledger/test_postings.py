"""Writing postings through the service, reading balances, and what PostgreSQL refuses."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from djmoney.money import Money

from apps.ledger import recipes
from apps.ledger.audit import ledger_audit
from apps.ledger.models import Account, AccountKind, Leg, Posting, account_key
from apps.ledger.postings import (
    AccountClosed,
    AccountRef,
    LedgerError,
    PostingConflict,
    PostingSpec,
    credit,
    debit,
)
from apps.ledger.selectors import account_balance_cents, merchant_account, merchant_balance
from apps.ledger.services import account_close, posting_create, posting_reverse, postings_create
from apps.ledger.services import postings as posting_service
from tests.factories import MerchantFactory

pytestmark = pytest.mark.django_db

K = AccountKind


@pytest.fixture
def merchant(db):
    return MerchantFactory()


def capture(merchant_id: int, payment_id: str, *, purchase=10000, fee=300, livemode=False):
    """A capture of a third of the purchase, with a customer fee and interest."""
    first = purchase // 3
    return recipes.payment_captured(
        merchant_id=merchant_id,
        livemode=livemode,
        payment_id=payment_id,
        purchase_cents=purchase,
        first_principal_cents=first,
        customer_fee_cents=100,
        interest_cents=50,
        merchant_fee_cents=fee,
        processor_reference=f"ch_{payment_id}",
        effective_at=timezone.now(),
    )


def account(merchant_id: int | None, kind: str, *, livemode=False, reference="") -> Account:
    return Account.objects.get(
        key=account_key(
            kind=kind,
            livemode=livemode,
            currency="EUR",
            merchant_id=merchant_id,
            reference=reference,
        )
    )


def make_account(
    kind: str, merchant=None, *, livemode=False, currency="EUR", reference=""
) -> Account:
    return Account.objects.create(
        key=account_key(
            kind=kind,
            livemode=livemode,
            currency=currency,
            merchant_id=merchant.pk if merchant else None,
            reference=reference,
        ),
        kind=kind,
        livemode=livemode,
        merchant=merchant,
        reference=reference,
        balance=Money(0, currency),
    )


def cents_of(acc: Account) -> int:
    return account_balance_cents(account_id=acc.pk)


def counts() -> tuple[int, int, int]:
    return Posting.objects.count(), Leg.objects.count(), Account.objects.count()


# ------------------------------------------------------------------------------ posting_create


def test_posting_create_writes_legs_and_running_balances(merchant):
    m = merchant.pk
    before = timezone.now()
    posted = posting_create(capture(m, "pay_1"))
    after = timezone.now()

    assert posted.created is True
    posting = Posting.objects.get(pk=posted.posting_id)
    assert (posting.kind, posting.source, posting.idempotency_key) == (
        "payment_captured",
        "payment",
        "pay_1:captured",
    )
    assert posting.merchant_id == m
    assert posting.reference == "pay_1"
    assert posting.processor_reference == "ch_pay_1"
    assert posting.livemode is False

    legs = {leg.account.key: leg for leg in posting.legs.select_related("account")}
    assert {key: leg.amount for key, leg in legs.items()} == {
        f"test:EUR:processor_clearing:m{m}": Money("34.83", "EUR"),  # 3333 + 100 + 50
        f"test:EUR:customer_receivable:m{m}:pay_1": Money("66.67", "EUR"),
        f"test:EUR:merchant_balance:m{m}": Money("-97.00", "EUR"),
        f"test:EUR:merchant_fee_revenue:m{m}": Money("-3.00", "EUR"),
        f"test:EUR:customer_fee_revenue:m{m}": Money("-1.00", "EUR"),
        f"test:EUR:interest_revenue:m{m}": Money("-0.50", "EUR"),
    }
    for leg in legs.values():
        # Set by the database: the first leg of each account, so the balance is the leg.
        assert leg.balance_after == leg.amount.amount
        assert before <= leg.posted_at <= after
        assert leg.account.balance == leg.amount

    merchant_acc = account(m, K.MERCHANT_BALANCE)
    assert cents_of(merchant_acc) == -9700
    assert merchant_acc.natural_balance == Money("97.00", "EUR")

    # A second capture adds to the shared accounts; balance_after is the running sum.
    posting_create(capture(m, "pay_2", purchase=5000, fee=0))
    merchant_acc.refresh_from_db()
    assert merchant_acc.balance == Money("-147.00", "EUR")
    assert list(
        Leg.objects.filter(account=merchant_acc)
        .order_by("posted_at")
        .values_list("balance_after", flat=True)
    ) == [Decimal("-97.00"), Decimal("-147.00")]
    assert cents_of(account(m, K.PROCESSOR_CLEARING)) == 3483 + 1666 + 150
    # Each payment has its own receivable.
    assert cents_of(account(m, K.CUSTOMER_RECEIVABLE, reference="pay_2")) == 5000 - 1666
    assert ledger_audit().ok


def test_posting_create_creates_accounts_once(merchant):
    posting_create(capture(merchant.pk, "pay_1"))
    accounts = Account.objects.count()
    posting_create(capture(merchant.pk, "pay_2"))
    assert Account.objects.count() == accounts + 1  # only pay_2's receivable
    assert Account.objects.filter(merchant=merchant, kind=K.MERCHANT_BALANCE).count() == 1


def test_posting_create_keeps_the_modes_apart(merchant):
    posting_create(capture(merchant.pk, "pay_1", livemode=False))
    posting_create(capture(merchant.pk, "pay_live", livemode=True))
    test_acc = account(merchant.pk, K.MERCHANT_BALANCE, livemode=False)
    live_acc = account(merchant.pk, K.MERCHANT_BALANCE, livemode=True, reference="")
    assert test_acc.pk != live_acc.pk
    assert cents_of(test_acc) == cents_of(live_acc) == -9700
    assert live_acc.key.startswith("live:")


def test_posting_create_platform_account(merchant):
    spec = recipes.payout_paid(
        merchant_id=merchant.pk,
        livemode=False,
        payout_id="po_1",
        cents=1200,
        effective_at=timezone.now(),
    )
    posting_create(spec)
    bank = Account.objects.get(key="test:EUR:bank")
    assert bank.merchant_id is None
    assert cents_of(bank) == -1200
    assert cents_of(account(merchant.pk, K.PAYOUTS_IN_TRANSIT)) == 1200


def test_replay_returns_the_first_posting_and_writes_nothing(merchant):
    spec = capture(merchant.pk, "pay_1")
    first = posting_create(spec)
    before = counts()
    balance = cents_of(account(merchant.pk, K.MERCHANT_BALANCE))

    # Same event, recorded again (another effective time does not make it another event).
    again = posting_create(capture(merchant.pk, "pay_1"))

    assert again.created is False
    assert again.posting_id == first.posting_id
    assert counts() == before
    assert cents_of(account(merchant.pk, K.MERCHANT_BALANCE)) == balance


def test_replay_with_other_legs_is_a_conflict(merchant):
    posting_create(capture(merchant.pk, "pay_1"))
    before = counts()
    balance = cents_of(account(merchant.pk, K.MERCHANT_BALANCE))

    with pytest.raises(PostingConflict):
        posting_create(capture(merchant.pk, "pay_1", purchase=20000))
    # Same amounts in the other mode name other accounts: a conflict too.
    with pytest.raises(PostingConflict):
        posting_create(capture(merchant.pk, "pay_1", livemode=True))

    assert counts() == before  # accounts created for the refused replay are rolled back
    assert cents_of(account(merchant.pk, K.MERCHANT_BALANCE)) == balance


def test_same_key_under_another_source_is_another_posting(merchant):
    m = merchant.pk
    legs = (
        debit(AccountRef(K.MERCHANT_BALANCE, m), 100),
        credit(AccountRef(K.MERCHANT_RESERVE, m), 100),
    )
    now = timezone.now()
    a = posting_create(PostingSpec("test", "src_a", "k", False, now, legs, merchant_id=m))
    b = posting_create(PostingSpec("test", "src_b", "k", False, now, legs, merchant_id=m))
    assert a.created and b.created
    assert a.posting_id != b.posting_id
    assert cents_of(account(m, K.MERCHANT_RESERVE)) == -200


def test_posting_on_a_closed_account_is_refused(merchant):
    m = merchant.pk
    posted = posting_create(capture(m, "pay_1"))
    posting_reverse(
        posting=Posting.objects.get(pk=posted.posting_id),
        reason="test",
        effective_at=timezone.now(),
    )
    receivable = account(m, K.CUSTOMER_RECEIVABLE, reference="pay_1")
    assert cents_of(receivable) == 0
    now = timezone.now()
    closed = account_close(account=receivable, now=now)
    assert closed.closed_at == now
    receivable.refresh_from_db()
    assert receivable.closed_at == now
    before = counts()

    spec = recipes.instalment_collected(
        merchant_id=m,
        livemode=False,
        payment_id="pay_1",
        instalment_id="inst_2",
        principal_cents=3333,
        processor_reference="ch_2",
        effective_at=timezone.now(),
    )
    with pytest.raises(AccountClosed, match="customer_receivable"):
        posting_create(spec)
    assert counts() == before

    with pytest.raises(AccountClosed, match="already closed"):
        account_close(account=receivable, now=timezone.now())


def test_the_database_refuses_a_closed_account_the_service_did_not_see(merchant, monkeypatch):
    """A close racing a posting: the trigger refuses, the service reports a LedgerError."""
    m = merchant.pk
    reserve = make_account(K.MERCHANT_RESERVE, merchant)
    account_close(account=reserve, now=timezone.now())
    real_resolve = posting_service._accounts_by_key

    def stale_resolve(wanted):
        return {key: (pk, None) for key, (pk, _closed) in real_resolve(wanted).items()}

    monkeypatch.setattr(posting_service, "_accounts_by_key", stale_resolve)
    spec = recipes.reserve_held(
        merchant_id=m, livemode=False, reserve_id="rsv_1", cents=100, effective_at=timezone.now()
    )
    with pytest.raises(LedgerError, match=rf"^ledger: account {reserve.key} is closed$"):
        posting_create(spec)
    assert not Posting.objects.exists()
    assert not Leg.objects.exists()


def test_account_close_refuses_a_balance(merchant):
    posting_create(capture(merchant.pk, "pay_1"))
    merchant_acc = account(merchant.pk, K.MERCHANT_BALANCE)
    with pytest.raises(LedgerError, match="still holds") as refused:
        account_close(account=merchant_acc, now=timezone.now())
    assert not isinstance(refused.value, AccountClosed)
    merchant_acc.refresh_from_db()
    assert merchant_acc.closed_at is None
    # Still open: postings go on.
    assert posting_create(capture(merchant.pk, "pay_2")).created


def test_posting_reverse_mirrors_a_posting_once(merchant):
    m = merchant.pk
    original = Posting.objects.get(pk=posting_create(capture(m, "pay_1")).posting_id)
    balances = {leg.account_id: leg.account.balance for leg in original.legs.all()}
    legs_before = Leg.objects.count()

    reversal = posting_reverse(posting=original, reason="wrong amount", effective_at=timezone.now())

    assert reversal.created is True
    mirror = Posting.objects.get(pk=reversal.posting_id)
    assert mirror.reverses_id == original.pk
    assert original.reversed_by == mirror
    assert (mirror.kind, mirror.source, mirror.idempotency_key) == (
        "reversal",
        "reversal",
        str(original.pk),
    )
    assert mirror.memo == "wrong amount"
    assert mirror.merchant_id == m
    assert mirror.reference == original.reference
    assert mirror.livemode == original.livemode
    original_legs = sorted(original.legs.values_list("account_id", "amount"))
    mirror_legs = sorted(mirror.legs.values_list("account_id", "amount"))
    assert mirror_legs == sorted((acc, -amount) for acc, amount in original_legs)
    assert Leg.objects.count() == legs_before + len(original_legs)
    for account_id in balances:
        assert account_balance_cents(account_id=account_id) == 0

    # A second reversal of the same posting is a replay: nothing more is written.
    again = posting_reverse(posting=original, reason="clicked twice", effective_at=timezone.now())
    assert again.created is False
    assert again.posting_id == mirror.pk
    assert Leg.objects.count() == legs_before + len(original_legs)
    for account_id in balances:
        assert account_balance_cents(account_id=account_id) == 0


def test_posting_reverse_keeps_the_livemode_and_currency(merchant):
    original = Posting.objects.get(
        pk=posting_create(capture(merchant.pk, "pay_1", livemode=True)).posting_id
    )
    mirror = Posting.objects.get(
        pk=posting_reverse(posting=original, reason="x", effective_at=timezone.now()).posting_id
    )
    assert mirror.livemode is True
    assert {leg.account.livemode for leg in mirror.legs.select_related("account")} == {True}
    assert {str(leg.amount.currency) for leg in mirror.legs.all()} == {"EUR"}


# ----------------------------------------------------------------------------------- balances


def test_account_balance_now_and_as_of(merchant):
    m = merchant.pk
    t0 = timezone.now()
    posting_create(capture(m, "pay_1", purchase=10000, fee=300))  # merchant -9700
    t1 = timezone.now()
    posting_create(capture(m, "pay_2", purchase=5000, fee=0))  # merchant -5000
    t2 = timezone.now()
    spec = recipes.refund_issued(
        merchant_id=m,
        livemode=False,
        payment_id="pay_1",
        refund_id="ref_1",
        receivable_cancelled_cents=2000,
        to_card_cents=0,
        effective_at=timezone.now(),
    )
    posting_create(spec)  # merchant +2000
    t3 = timezone.now()

    acc = account(m, K.MERCHANT_BALANCE).pk
    assert account_balance_cents(account_id=acc, as_of=t0) == 0
    assert account_balance_cents(account_id=acc, as_of=t1) == -9700
    assert account_balance_cents(account_id=acc, as_of=t2) == -14700
    assert account_balance_cents(account_id=acc, as_of=t3) == -12700
    assert account_balance_cents(account_id=acc) == -12700
    assert account_balance_cents(account_id=acc, as_of=t3 + timedelta(days=365)) == -12700
    # An account with no legs, or none at all, is at zero.
    assert account_balance_cents(account_id=make_account(K.MERCHANT_RESERVE, merchant).pk) == 0
    assert account_balance_cents(account_id=10**12) == 0
    assert account_balance_cents(account_id=10**12, as_of=t3) == 0


def test_merchant_balance_available_and_pending(merchant):
    m = merchant.pk
    empty = merchant_balance(
        merchant_id=m, livemode=False, settlement_delay_days=7, as_of=timezone.now()
    )
    assert (empty.total_cents, empty.pending_cents, empty.available_cents) == (0, 0, 0)
    assert (empty.reserve_cents, empty.in_transit_cents) == (0, 0)

    posting_create(capture(m, "pay_1", purchase=10000, fee=300))  # owed 9700
    t1 = timezone.now()
    posting_create(capture(m, "pay_2", purchase=5000, fee=0))  # owed 5000
    now = timezone.now()

    def balance(as_of, delay=7):
        return merchant_balance(
            merchant_id=m, livemode=False, settlement_delay_days=delay, as_of=as_of
        )

    # Right now everything is within the delay.
    right_now = balance(now)
    assert (right_now.total_cents, right_now.pending_cents, right_now.available_cents) == (
        14700,
        14700,
        0,
    )
    # Seven days after the first capture: only the second is still pending.
    week = balance(t1 + timedelta(days=7))
    assert (week.total_cents, week.pending_cents, week.available_cents) == (14700, 5000, 9700)
    # Eight days on, everything is available.
    later = balance(now + timedelta(days=8))
    assert (later.total_cents, later.pending_cents, later.available_cents) == (14700, 0, 14700)
    # Without a delay nothing is pending.
    assert balance(now, delay=0).available_cents == 14700
    # The other mode has nothing.
    live = merchant_balance(merchant_id=m, livemode=True, settlement_delay_days=7, as_of=now)
    assert (live.total_cents, live.pending_cents, live.available_cents) == (0, 0, 0)


def test_merchant_balance_pending_is_capped_by_the_total_and_reads_reserve(merchant):
    m = merchant.pk
    posting_create(capture(m, "pay_1", purchase=10000, fee=300))  # owed 9700
    posting_create(
        recipes.refund_issued(
            merchant_id=m,
            livemode=False,
            payment_id="pay_1",
            refund_id="ref_1",
            receivable_cancelled_cents=6667,
            to_card_cents=2000,
            effective_at=timezone.now(),
        )
    )  # owed 9700 - 8667 = 1033
    posting_create(
        recipes.reserve_held(
            merchant_id=m, livemode=False, reserve_id="rsv_1", cents=33, effective_at=timezone.now()
        )
    )  # owed 1000, reserve 33
    now = timezone.now()

    pending = merchant_balance(merchant_id=m, livemode=False, settlement_delay_days=7, as_of=now)
    assert pending.total_cents == 1000
    assert pending.pending_cents == 1000  # credits in the window (9700), capped by the total
    assert pending.available_cents == 0
    assert pending.reserve_cents == 33
    assert pending.in_transit_cents == 0

    later = merchant_balance(
        merchant_id=m, livemode=False, settlement_delay_days=7, as_of=now + timedelta(days=8)
    )
    assert (later.total_cents, later.pending_cents, later.available_cents) == (1000, 0, 1000)
    assert merchant_account(merchant_id=m, kind=K.MERCHANT_BALANCE, livemode=False) is not None
    assert merchant_account(merchant_id=m, kind=K.MERCHANT_BALANCE, livemode=True) is None


def test_a_job_killed_after_posting_leaves_nothing(merchant):
    with pytest.raises(RuntimeError, match="killed"), transaction.atomic():
        posted = posting_create(capture(merchant.pk, "pay_1"))
        assert posted.created
        assert Posting.objects.filter(pk=posted.posting_id).exists()
        raise RuntimeError("killed")

    assert counts() == (0, 0, 0)
    # Run again, the job posts for real.
    again = posting_create(capture(merchant.pk, "pay_1"))
    assert again.created is True
    assert cents_of(account(merchant.pk, K.MERCHANT_BALANCE)) == -9700


# --------------------------------------------------------------- what PostgreSQL refuses (raw SQL)


def raw(sql: str, params=()) -> list[tuple]:
    """Run SQL in a savepoint, so a refused statement leaves the test's transaction usable."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


_POSTING = """
INSERT INTO ledger_posting (kind, livemode, source, idempotency_key, reference,
                            processor_reference, memo, effective_at)
VALUES ('raw', %s, 'raw', %s, '', '', '', now()) RETURNING id
"""


def raw_leg_rows(posting_id: int, legs: list[tuple[int, str, str]]) -> tuple[str, list]:
    """VALUES rows for legs ((account id, amount, currency)) as a careful raw writer gives
    them: each with the balance after it (the account's balance plus the running sum) and
    the clock time, in the order written."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, balance FROM ledger_account WHERE id = ANY(%s)",
            [[account_id for account_id, _amount, _cur in legs]],
        )
        balances = dict(cursor.fetchall())
    params: list = []
    for account_id, amount, cur in legs:
        balances[account_id] = balances.get(account_id, Decimal(0)) + Decimal(amount)
        params += [posting_id, account_id, amount, cur, balances[account_id]]
    values = ", ".join(["(%s, %s, %s::numeric, %s, %s, clock_timestamp())"] * len(legs))
    return values, params


_LEGS = (
    "INSERT INTO ledger_leg "
    "(posting_id, account_id, amount, amount_currency, balance_after, posted_at) VALUES "
)


def raw_post(legs: list[tuple[int, str, str]], *, livemode=False, key="raw-1") -> int:
    """A posting and its legs ((account id, amount, currency)), in one savepoint."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_POSTING, [livemode, key])
        posting_id = cursor.fetchone()[0]
        values, params = raw_leg_rows(posting_id, legs)
        cursor.execute(_LEGS + values, params)
        return posting_id


@pytest.fixture
def pair(merchant) -> tuple[Account, Account]:
    """Two open test-mode EUR accounts of the merchant, with no legs."""
    return make_account(K.MERCHANT_BALANCE, merchant), make_account(K.MERCHANT_RESERVE, merchant)


def test_raw_sql_balanced_legs_are_accepted_and_maintained(pair):
    a, b = pair
    before = timezone.now()
    posting_id = raw_post([(a.pk, "12.34", "EUR"), (b.pk, "-12.34", "EUR")])
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.balance == Money("12.34", "EUR")
    assert b.balance == Money("-12.34", "EUR")
    legs = Leg.objects.filter(posting_id=posting_id)
    assert sorted(legs.values_list("balance_after", flat=True)) == [
        Decimal("-12.34"),
        Decimal("12.34"),
    ]
    assert all(leg.posted_at >= before for leg in legs)
    # The posting has its legs: the deferred check passes when fired now.
    raw("SET CONSTRAINTS ALL IMMEDIATE")
    raw("SET CONSTRAINTS ALL DEFERRED")


def test_db_refuses_unbalanced_legs(pair):
    a, b = pair
    with pytest.raises(
        IntegrityError,
        match=r"ledger: posting \d+ is not balanced \(2 legs, 1 currencies, sum 0.01\)",
    ):
        raw_post([(a.pk, "10.01", "EUR"), (b.pk, "-10.00", "EUR")])
    assert counts()[:2] == (0, 0)
    a.refresh_from_db()
    assert a.balance == Money(0, "EUR")


def test_db_refuses_legs_balanced_only_across_statements(pair):
    a, b = pair
    with (
        pytest.raises(IntegrityError, match=r"\(1 legs, 1 currencies, sum 5.00\)"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(_POSTING, [False, "raw-split"])
        posting_id = cursor.fetchone()[0]
        for account_id, amount in ((a.pk, "5.00"), (b.pk, "-5.00")):
            values, params = raw_leg_rows(posting_id, [(account_id, amount, "EUR")])
            cursor.execute(_LEGS + values, params)


def test_db_refuses_a_single_leg(pair):
    a, _b = pair
    with pytest.raises(IntegrityError, match=r"is not balanced \(1 legs, 1 currencies, sum 7.00\)"):
        raw_post([(a.pk, "7.00", "EUR")])


def test_db_refuses_a_leg_in_another_currency_than_its_account(pair):
    a, b = pair
    with pytest.raises(IntegrityError, match=rf"ledger: a USD leg on EUR account {a.key}"):
        raw_post([(a.pk, "1.00", "USD"), (b.pk, "-1.00", "EUR")])


def test_db_refuses_a_posting_in_two_currencies(merchant, pair):
    a, _b = pair
    usd = make_account(K.MERCHANT_RESERVE, merchant, currency="USD")
    assert usd.currency == "USD"
    with pytest.raises(IntegrityError, match=r"is not balanced \(2 legs, 2 currencies, sum 0.00\)"):
        raw_post([(a.pk, "3.00", "EUR"), (usd.pk, "-3.00", "USD")])
    usd.refresh_from_db()
    assert usd.balance == Money(0, "USD")


def test_db_refuses_a_zero_leg(pair):
    a, b = pair
    with pytest.raises(IntegrityError, match="ledger_leg_amount_nonzero"):
        raw_post([(a.pk, "0", "EUR"), (b.pk, "2.00", "EUR"), (a.pk, "-2.00", "EUR")])


def test_db_refuses_a_leg_on_a_closed_account(pair):
    a, b = pair
    account_close(account=b, now=timezone.now())
    with pytest.raises(IntegrityError, match=rf"ledger: account {b.key} is closed"):
        raw_post([(a.pk, "1.00", "EUR"), (b.pk, "-1.00", "EUR")])


def test_db_refuses_a_leg_on_an_account_of_the_other_mode(pair):
    a, b = pair
    with pytest.raises(
        IntegrityError, match=r"ledger: account test:EUR:\S+ belongs to the other mode"
    ):
        raw_post([(a.pk, "1.00", "EUR"), (b.pk, "-1.00", "EUR")], livemode=True)


def test_db_refuses_a_leg_on_a_missing_account(pair):
    a, _b = pair
    with pytest.raises(IntegrityError, match=r"ledger: account 999999999 does not exist"):
        raw_post([(a.pk, "1.00", "EUR"), (999999999, "-1.00", "EUR")])


def test_db_refuses_a_posting_without_legs_at_commit():
    with (
        pytest.raises(IntegrityError, match=r"ledger: posting \d+ has fewer than two legs"),
        transaction.atomic(),
    ):
        raw(_POSTING, [False, "raw-empty"])
        raw("SET CONSTRAINTS ALL IMMEDIATE")
    raw("SET CONSTRAINTS ALL DEFERRED")
    assert not Posting.objects.exists()


@pytest.fixture
def posted(merchant) -> Posting:
    return Posting.objects.get(pk=posting_create(capture(merchant.pk, "pay_1")).posting_id)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ledger_leg SET amount = amount * 2 WHERE posting_id = %s",
        "UPDATE ledger_leg SET posted_at = now() - interval '1 day' WHERE posting_id = %s",
        "DELETE FROM ledger_leg WHERE posting_id = %s",
    ],
)
def test_db_refuses_changing_or_deleting_legs(posted, sql):
    with pytest.raises(IntegrityError, match="ledger: ledger_leg rows are append-only"):
        raw(sql, [posted.pk])
    assert posted.legs.count() == 6


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ledger_posting SET memo = 'edited' WHERE id = %s",
        "UPDATE ledger_posting SET livemode = true WHERE id = %s",
        "DELETE FROM ledger_posting WHERE id = %s",
    ],
)
def test_db_refuses_changing_or_deleting_postings(posted, sql):
    with pytest.raises(IntegrityError, match="ledger: ledger_posting rows are append-only"):
        raw(sql, [posted.pk])
    posted.refresh_from_db()
    assert posted.memo == ""


def test_db_refuses_a_direct_balance_update(posted, merchant):
    acc = account(merchant.pk, K.MERCHANT_BALANCE)
    with pytest.raises(IntegrityError, match=rf"ledger: the balance of {acc.key} changes only"):
        raw("UPDATE ledger_account SET balance = 0 WHERE id = %s", [acc.pk])
    with pytest.raises(IntegrityError, match="changes only through legs"):
        raw("UPDATE ledger_account SET balance = balance + 1")
    acc.refresh_from_db()
    assert acc.balance == Money("-97.00", "EUR")


@pytest.mark.parametrize(
    "assignment",
    [
        "key = key || ':x'",
        "kind = 'merchant_reserve'",
        "livemode = true",
        "balance_currency = 'USD'",
    ],
)
def test_db_refuses_changing_what_an_account_is(posted, merchant, assignment):
    acc = account(merchant.pk, K.MERCHANT_BALANCE)
    with pytest.raises(
        IntegrityError, match=rf"ledger: account {acc.key} cannot change what it is"
    ):
        raw(f"UPDATE ledger_account SET {assignment} WHERE id = %s", [acc.pk])  # noqa: S608


def test_db_refuses_legs_added_to_a_stored_posting_even_balanced(pair):
    a, b = pair
    posting_id = raw_post([(a.pk, "4.00", "EUR"), (b.pk, "-4.00", "EUR")])
    with (
        pytest.raises(IntegrityError, match=rf"legs of posting {posting_id} must all be written"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        values, params = raw_leg_rows(posting_id, [(a.pk, "1", "EUR"), (b.pk, "-1", "EUR")])
        cursor.execute(_LEGS + values, params)
    assert Leg.objects.filter(posting_id=posting_id).count() == 2


def test_a_replay_after_an_account_closed_answers_the_first_posting(merchant):
    m = merchant.pk
    first = posting_create(capture(m, "pay_closed"))
    reversal = posting_reverse(
        posting=Posting.objects.get(pk=first.posting_id), reason="test", effective_at=timezone.now()
    )
    account_close(
        account=account(m, K.CUSTOMER_RECEIVABLE, reference="pay_closed"), now=timezone.now()
    )
    before = counts()
    replay = posting_create(capture(m, "pay_closed"))
    assert (replay.posting_id, replay.created) == (first.posting_id, False)
    again = posting_reverse(
        posting=Posting.objects.get(pk=first.posting_id), reason="test", effective_at=timezone.now()
    )
    assert (again.posting_id, again.created) == (reversal.posting_id, False)
    assert counts() == before


def test_a_batch_writes_each_posting_once_in_one_go(merchant):
    m = merchant.pk
    stored = posting_create(capture(m, "pay_old"))
    specs = [
        capture(m, "pay_a"),
        capture(m, "pay_b", livemode=True),
        capture(m, "pay_a"),  # the same event twice in the batch
        capture(m, "pay_old"),  # already stored
    ]
    results = postings_create(specs)
    assert [result.created for result in results] == [True, True, False, False]
    assert results[2].posting_id == results[0].posting_id
    assert results[3].posting_id == stored.posting_id
    assert Posting.objects.count() == 3
    assert Posting.objects.get(pk=results[1].posting_id).livemode is True
    assert cents_of(account(m, K.MERCHANT_BALANCE)) == -2 * (10000 - 300)
    assert cents_of(account(m, K.MERCHANT_BALANCE, livemode=True)) == -(10000 - 300)


def test_a_batch_with_a_conflict_writes_nothing(merchant):
    m = merchant.pk
    before = counts()
    with pytest.raises(PostingConflict):
        postings_create([capture(m, "pay_a"), capture(m, "pay_a", fee=400)])
    assert counts() == before


def test_db_refuses_a_wrong_running_balance(pair):
    a, b = pair
    raw_post([(a.pk, "4.00", "EUR"), (b.pk, "-4.00", "EUR")])
    with (
        pytest.raises(IntegrityError, match=rf"on {a.key} has balance_after 3.00 .*expected 7.00"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(_POSTING, [False, "raw-wrong-balance"])
        posting_id = cursor.fetchone()[0]
        cursor.execute(
            _LEGS + "(%s, %s, 3, 'EUR', 3, clock_timestamp()), "
            "(%s, %s, -3, 'EUR', -7, clock_timestamp())",
            [posting_id, a.pk, posting_id, b.pk],
        )
    a.refresh_from_db()
    assert a.balance == Money("4.00", "EUR")


def test_db_refuses_a_leg_dated_before_the_accounts_last_leg(pair):
    a, b = pair
    raw_post([(a.pk, "4.00", "EUR"), (b.pk, "-4.00", "EUR")])
    with (
        pytest.raises(IntegrityError, match=rf"on {a.key} has balance_after"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(_POSTING, [False, "raw-backdated"])
        posting_id = cursor.fetchone()[0]
        cursor.execute(
            _LEGS + "(%s, %s, 1, 'EUR', 5, now() - interval '1 day'), "
            "(%s, %s, -1, 'EUR', -5, now() - interval '1 day')",
            [posting_id, a.pk, posting_id, b.pk],
        )
