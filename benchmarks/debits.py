"""Debit-run figures for `make bench`, in process: instalments charged per second by
``apps.schedules.services.debits.debit_run`` with the sandbox processor, beside a raw SQL
batch update of the same number of rows, with 10,000 and with 1,000,000 instalments due.

Run alone with ``python -m benchmarks.debits`` (``--quick``: 2,000-row runs beside a backlog
of at least 100,000, a fast check; ``--profile``: then cProfile of one more run), or from
benchmarks/__main__.py (``run`` measures, ``figure_lines`` formats the summary lines).

What is timed: ``debit_run(now=..., limit=ROWS, batch_size=DEBIT_RUN_BATCH_SIZE)`` from the
call to its return (claim, the batch's sandbox charges in one ``charge_many``, record:
instalments paid, ledger postings, receipts, emails, events); the sandbox processor runs in
this process with ``SANDBOX_PROCESSOR_LATENCY_MS=0``. Baseline, on rows in the same state:
``UPDATE payments_instalment SET state='paid', paid_at=now(), next_debit_at=NULL WHERE id =
ANY(%s)`` per batch of ids of the same size, each batch its own transaction (the ids read
before the clock starts). Each run is checked after it, untimed.

The data (the benchmark's own database, ``tranche_bench``; built once, reused, checked):

- a merchant of its own, activated; 10,000 customers with one saved card each (a sandbox card,
  scenario ``success``, expiring 12/2035, and the Card pointing at its token); payment ``i``
  belongs to customer ``i % 10,000``;
- each payment as after checkout: 4 instalments (150.00-1,999.99 EUR in all, no customer fee,
  no interest), number 1 paid, 2-4 pending with ``next_debit_at`` at 08:00 Paris on their
  due date (``debit_time``, as acceptance sets it: a day's instalments share that time),
  ``in_progress``, one order, its checkout (done), and the ledger as checkout leaves it: a
  ``payment_captured`` posting (clearing debit, the receivable for the 3 instalments left,
  merchant balance and fee revenue credits) with its receivable account;
- written by ``generate_series`` statements, 100,000 payments per transaction, no trigger
  firing (the ledger's rows carry the balances its trigger would write; every id comes from
  the statements' own RETURNING), audited with ``apps.ledger.audit.CHECKS`` after a load.

The two cases:

- 10,000 due: each run loads a fresh slice of 10,000 payments whose instalment 2 is due
  2020-04-01 and runs at 2020-04-01 12:00 Paris: only the slice is due (the backlog's
  instalments are in the table, due later);
- 1,000,000 due: the backlog, 1,000,000 payments whose instalment 2 is due 2020-04-02, runs
  at 2020-04-02 12:00: the run claims the 10,000 oldest (lowest ids: they share their
  ``next_debit_at``), and as many new backlog payments are loaded after it, so every run
  sees 1,000,000 due. ``--quick`` keeps whatever backlog is there if it holds 100,000 or more.

Before every run the number of due rows is checked exactly (nothing else in the database is
claimed); after it: the summary, and that exactly the expected instalments were charged,
each once: one succeeded Charge for its amount, the processor's charge under its key and no
other processor charge, one receipt, one ``instalment_collected`` posting with the right legs,
the receivable holding what is left to pay, the other instalments untouched. The
receipt-rendering tasks a run queues are dropped (no cluster serves this database). After
the rounds, the ledger audit over what the run wrote.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import platform
import pstats
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

MERCHANT = ("Benchmark debits merchant", "benchmark-debits@tranche.localhost")
LIVEMODE = False
ROWS = 10_000  # instalments charged per measured run
QUICK_ROWS = 2_000
WARMUP_ROWS = 500
BACKLOG = 1_000_000  # due instalments beside the measured run
QUICK_BACKLOG = 100_000
CHUNK = 100_000  # payments per load transaction
CUSTOMERS = 10_000  # one card each
ROUNDS = 3
TARGET = 1_000.0  # instalments/s
FLAT_TARGET = 1.20  # per-instalment cost with the backlog / without, at most

PARIS = ZoneInfo("Europe/Paris")
SLICE_BOUGHT = date(2020, 3, 1)
SLICE_DUE = date(2020, 4, 1)  # its instalment 2: a month after
BACKLOG_BOUGHT = date(2020, 3, 2)
BACKLOG_DUE = date(2020, 4, 2)  # their instalment 2, all at 08:00 Paris
NOON = clock_time(12, 0)
BACKLOG_TAG = "backlog000000000"  # 16 base62 characters: public ids are bd<tag><16 digits>
PARKED_AT = datetime(2099, 1, 1, tzinfo=PARIS)  # a killed run's unclaimed slice rows
EMAIL_DOMAIN = "debits.bench.tranche.localhost"
TOKEN_PREFIX = "tok_benchdebits_"  # noqa: S105 (a sandbox card token, not a secret)
RENDER_TASK = "apps.schedules.tasks.render_receipts"

Say = Callable[[str], None]


# --- figures ------------------------------------------------------------------------------------


@dataclass
class Case:
    """One case (10,000 or 1,000,000 due): debit_run and raw SQL rates per round."""

    due: int
    value: list[float] = field(default_factory=list)  # instalments/s
    raw: list[float] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        return statistics.median(self.value) if self.value else None

    @property
    def baseline(self) -> float | None:
        return statistics.median(self.raw) if self.raw else None

    @property
    def ratios(self) -> list[float]:
        return [v / r for v, r in zip(self.value, self.raw, strict=False) if r]

    @property
    def cost_ms(self) -> float | None:
        return 1000 / self.median if self.median else None


@dataclass
class DebitFigures:
    rows: int
    batch_size: int
    small: Case
    large: Case
    audit: str = ""

    @property
    def cost_ratios(self) -> list[float]:
        """Per round: the per-instalment cost with the backlog due over the cost without."""
        return [s / b for s, b in zip(self.small.value, self.large.value, strict=False) if b]

    @property
    def verdicts(self) -> dict[str, bool]:
        ratios = self.cost_ratios
        return {
            "debits_small": (self.small.median or 0.0) >= TARGET,
            "debits_large": (self.large.median or 0.0) >= TARGET,
            "debits_flat": bool(ratios) and statistics.median(ratios) <= FLAT_TARGET,
        }


def figure_lines(figures: DebitFigures) -> list[str]:
    """The summary lines, formatted by benchmarks.__main__.figure_line."""
    from benchmarks.__main__ import figure_line

    verdicts = {name: "PASS" if ok else "FAIL" for name, ok in figures.verdicts.items()}
    small, large = figures.small, figures.large
    how = (
        f"debit_run limit {figures.rows:,}, batch {figures.batch_size}, "
        "sandbox processor in process (0 ms), vs raw SQL "
        f"UPDATE of {figures.rows:,} rows in the same batches"
    )
    cost = (
        f"per instalment {small.cost_ms or 0:.3f} ms with {small.due:,} due, "
        f"{large.cost_ms or 0:.3f} ms with {large.due:,} due"
    )
    return [
        figure_line(
            f"debit_run_per_s_{_short(small.due)}_due",
            small.median,
            small.baseline,
            small.ratios,
            f"({how}; {small.due:,} due; target value >= {TARGET:,.0f} instalments/s)  "
            f"{verdicts['debits_small']}",
            unit="instalments/s",
        ),
        figure_line(
            f"debit_run_per_s_{_short(large.due)}_due",
            large.median,
            large.baseline,
            large.ratios,
            f"(the same with {large.due:,} due at one time, as a day's are: the run claims the "
            f"{figures.rows:,} oldest; target value >= {TARGET:,.0f} instalments/s)  "
            f"{verdicts['debits_large']}",
            unit="instalments/s",
        ),
        figure_line(
            f"debit_run_cost_{_short(large.due)}_vs_{_short(small.due)}_due",
            large.cost_ms,
            small.cost_ms,
            figures.cost_ratios,
            f"({cost}; ratio per round; target ratio <= {FLAT_TARGET:.2f}: flat)  "
            f"{verdicts['debits_flat']}",
            unit="ms",
        ),
    ]


def _short(count: int) -> str:
    if count >= 1_000_000 and count % 1_000_000 == 0:
        return f"{count // 1_000_000}m"
    if count >= 1_000 and count % 1_000 == 0:
        return f"{count // 1_000}k"
    return str(count)


# --- reference data: merchant, customers, cards ---------------------------------------------------


@dataclass(frozen=True)
class Shop:
    merchant: int
    clearing: int  # the merchant's processor clearing account
    balance: int  # its merchant balance
    fee_revenue: int  # its merchant-fee revenue
    customers: list[int]  # customer ids, by number
    cards: list[int]  # their cards' ids, by the same number
    sandbox_cards: list[int]


def shop(say: Say) -> Shop:
    """The benchmark's merchant (active), its three shared ledger accounts, and the customers
    with their cards (made on the first run, checked on the next)."""
    from django.db import transaction
    from django.utils import timezone

    from apps.ledger.models import AccountKind
    from apps.ledger.postings import AccountRef
    from apps.ledger.services.postings import accounts_resolve
    from apps.merchants.models import Merchant
    from apps.merchants.services import (
        fee_plans_install_defaults,
        merchant_activate,
        merchant_create,
    )

    now = timezone.now()
    name, email = MERCHANT
    with transaction.atomic():
        merchant = (
            Merchant.objects.filter(legal_name=name, contact_email=email).order_by("pk").first()
        )
        if merchant is None:
            merchant = merchant_create(legal_name=name, country="FR", contact_email=email, now=now)
        if merchant.status != Merchant.Status.ACTIVE:
            merchant = merchant_activate(merchant=merchant, now=now)
        if not merchant.fee_plans.exists():
            fee_plans_install_defaults(merchant=merchant)
    refs = {
        kind: AccountRef(kind, merchant.pk)
        for kind in (
            AccountKind.PROCESSOR_CLEARING,
            AccountKind.MERCHANT_BALANCE,
            AccountKind.MERCHANT_FEE_REVENUE,
        )
    }
    found = accounts_resolve(set(refs.values()), livemode=LIVEMODE, currency="EUR")
    customers, cards, sandbox_cards = _people(say)
    return Shop(
        merchant=merchant.pk,
        clearing=found[refs[AccountKind.PROCESSOR_CLEARING]][0],
        balance=found[refs[AccountKind.MERCHANT_BALANCE]][0],
        fee_revenue=found[refs[AccountKind.MERCHANT_FEE_REVENUE]][0],
        customers=customers,
        cards=cards,
        sandbox_cards=sandbox_cards,
    )


def _email(number: int) -> str:
    return f"debits-{number:05d}@{EMAIL_DOMAIN}"


def _token(number: int) -> str:
    return f"{TOKEN_PREFIX}{number:05d}"


def _people(say: Say) -> tuple[list[int], list[int], list[int]]:
    from django.db import transaction
    from django.utils import timezone

    from apps.payments.models import Card, Customer, SandboxCard

    def read() -> tuple[list[int], list[int], list[int]]:
        customers = list(
            Customer.objects.filter(livemode=LIVEMODE, email__endswith=f"@{EMAIL_DOMAIN}")
            .order_by("email")
            .values_list("pk", flat=True)
        )
        cards = list(
            Card.objects.filter(processor_token__startswith=TOKEN_PREFIX)
            .order_by("processor_token")
            .values_list("pk", "customer_id")
        )
        sandbox = list(
            SandboxCard.objects.filter(token__startswith=TOKEN_PREFIX)
            .order_by("token")
            .values_list("pk", flat=True)
        )
        if cards and [customer for _pk, customer in cards] != customers:
            raise SystemExit(
                "the debit benchmark's cards do not match its customers: drop the "
                "tranche_bench database and run again"
            )
        return customers, [pk for pk, _customer in cards], sandbox

    customers, cards, sandbox = read()
    if len(customers) == len(cards) == len(sandbox) == CUSTOMERS:
        return customers, cards, sandbox
    if customers or cards or sandbox:
        raise SystemExit(
            f"the debit benchmark has {len(customers)} customers, {len(cards)} cards and "
            f"{len(sandbox)} sandbox cards, not {CUSTOMERS} each: drop the tranche_bench "
            "database and run again"
        )
    now = timezone.now()
    joined = now - timedelta(days=400)
    with transaction.atomic():
        people = Customer.objects.bulk_create(
            Customer(
                livemode=LIVEMODE,
                email=_email(number),
                first_name="Camille",
                last_name=f"Debit {number}",
                phone=f"+3361{number:07d}",
                phone_verified_at=joined,
                birth_date=date(1985, 6, 15),
                created_at=joined,
                updated_at=joined,
            )
            for number in range(CUSTOMERS)
        )
        SandboxCard.objects.bulk_create(
            SandboxCard(
                token=_token(number),
                livemode=LIVEMODE,
                bin="49701000",
                last4="0006",
                scenario="success",
                exp_month=12,
                exp_year=2035,
                created_at=joined,
            )
            for number in range(CUSTOMERS)
        )
        Card.objects.bulk_create(
            Card(
                customer=person,
                livemode=LIVEMODE,
                processor_token=_token(number),
                bin="49701000",
                last4="0006",
                brand=Card.Brand.CB,
                funding="debit",
                issuer_country="FR",
                exp_month=12,
                exp_year=2035,
                three_ds_authenticated_at=joined,
                fingerprint=f"fp_benchdebits_{number:05d}",
                created_at=joined,
            )
            for number, person in enumerate(people)
        )
    say(f"  made {CUSTOMERS:,} customers, each with a saved card (sandbox scenario success)")
    return read()


# --- bulk loading payments as after checkout ---------------------------------------------------

_SOURCE = """
CREATE TEMP TABLE bench_debits_src ON COMMIT DROP AS
SELECT s.*, s.purchase * 3 / 100 AS fee, s.purchase / 4 AS share,
       s.purchase / 4 + s.purchase %% 4 AS first,
       'debits-' || lpad(s.person::text, 5, '0') || '@' || %(domain)s AS email
  FROM (SELECT i,
               'bd' || %(tag)s || lpad(i::text, 16, '0') AS body,
               15000 + (i * 7919) %% 185000 AS purchase,
               i %% %(people)s AS person,
               (%(customers)s::bigint[])[1 + i %% %(people)s] AS customer_id,
               (%(cards)s::bigint[])[1 + i %% %(people)s] AS card_id,
               CASE WHEN i %% 4 = 0 THEN 'en' ELSE 'fr' END AS language,
               (%(bought)s::date + time '09:00') AT TIME ZONE 'Europe/Paris'
                   + make_interval(secs => (i * 37) %% 36000) AS accepted_at
          FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i) AS s
"""

_ADDRESS = (
    '{"first_name": "Camille", "last_name": "Debit", "line1": "12 rue de la Paix", '
    '"postal_code": "75002", "city": "Paris", "country": "FR"}'
)

_PAY_TABLE = """
CREATE TEMP TABLE bench_debits_pay ON COMMIT DROP AS
SELECT *, 0::bigint AS payment_id FROM bench_debits_src WITH NO DATA
"""

_PAYMENTS = """
WITH payment AS (
INSERT INTO payments_payment (
    public_id, livemode, state, installments_count, deferred_days, deferred_months,
    purchase_amount_currency, purchase_amount, customer_fee_currency, customer_fee,
    customer_interest_currency, customer_interest, merchant_fee_currency, merchant_fee,
    annual_interest_rate, purchase_date, return_url, customer_cancel_url, failure_return_url,
    ipn_callback_url, custom_data, locale, origin, customer_data, billing_address,
    shipping_address, deferred_trigger, deferred_trigger_description, created_at, updated_at,
    expires_at, accepted_at, paid_in_full_fallback, card_id, customer_id, merchant_id,
    amount_refunded_currency, amount_refunded, customer_fees_refunded_currency,
    customer_fees_refunded
)
SELECT 'payment_' || body, %(livemode)s, 'in_progress', 4, 0, 0,
       'EUR', purchase / 100.0, 'EUR', 0, 'EUR', 0, 'EUR', fee / 100.0,
       0, %(bought)s, 'https://shop.example/return', 'https://shop.example/cancel', '',
       'https://shop.example/ipn', jsonb_build_object('cart_id', body),
       CASE language WHEN 'en' THEN 'en_GB' ELSE 'fr_FR' END, 'online',
       jsonb_build_object('first_name', 'Camille', 'last_name', 'Debit ' || person,
                          'email', email),
       %(address)s::jsonb, %(address)s::jsonb, false, '',
       accepted_at - interval '4 minutes', accepted_at,
       accepted_at - interval '4 minutes' + interval '1 day', accepted_at, false,
       card_id, customer_id, %(merchant)s, 'EUR', 0, 'EUR', 0
  FROM bench_debits_src
 ORDER BY i
RETURNING id, public_id
)
INSERT INTO bench_debits_pay
SELECT s.*, payment.id
  FROM bench_debits_src s JOIN payment ON payment.public_id = 'payment_' || s.body
"""

_INSTALMENTS = """
INSERT INTO payments_instalment (
    public_id, number, due_date, purchase_amount_currency, purchase_amount,
    original_purchase_amount_currency, original_purchase_amount, customer_fee_currency,
    customer_fee, customer_interest_currency, customer_interest, state, paid_at, payment_id,
    debit_attempts, next_debit_at, reminded_for
)
SELECT 'installment_bd' || %(tag)s || lpad((p.i * 4 + n.n - 1)::text, 16, '0'), n.n, d.due,
       'EUR', a.amount, 'EUR', a.amount, 'EUR', 0, 'EUR', 0,
       CASE WHEN n.n = 1 THEN 'paid' ELSE 'pending' END,
       CASE WHEN n.n = 1 THEN p.accepted_at END,
       p.payment_id, 0,
       CASE WHEN n.n > 1 THEN (d.due + make_time(%(hour)s, 0, 0)) AT TIME ZONE 'Europe/Paris' END,
       CASE WHEN n.n = 2 THEN d.due END
  FROM bench_debits_pay p
 CROSS JOIN generate_series(1, 4) AS n(n)
 CROSS JOIN LATERAL (SELECT (%(bought)s::date + make_interval(months => n.n - 1))::date AS due) d
 CROSS JOIN LATERAL (SELECT (CASE WHEN n.n = 1 THEN p.first ELSE p.share END) / 100.0
                            AS amount) a
 ORDER BY p.i, n.n
"""

_ORDERS = """
INSERT INTO payments_order (
    public_id, livemode, merchant_reference, data, created_at, updated_at, merchant_id,
    payment_id
)
SELECT 'order_' || body, %(livemode)s, 'BD-' || %(tag)s || '-' || i, '{}'::jsonb,
       accepted_at - interval '4 minutes', accepted_at - interval '4 minutes', %(merchant)s,
       payment_id
  FROM bench_debits_pay
 ORDER BY i
"""

_CHECKOUTS = """
INSERT INTO payments_checkout (
    step, first_name, last_name, email, phone, birth_date, address, terms_accepted_at,
    phone_check_id, phone_verified_at, three_ds_reference, three_ds_completed_at, pay_in_full,
    refusal_code, created_at, updated_at, card_id, payment_id, bank_check_id, device_id,
    identity_check_id, ip_address, language
)
SELECT 'done', 'Camille', 'Debit ' || person, email, '+3361' || lpad(person::text, 7, '0'),
       date '1985-06-15', %(address)s::jsonb - 'first_name' - 'last_name',
       accepted_at - interval '3 minutes', '', accepted_at - interval '2 minutes',
       '3ds_' || body, accepted_at - interval '1 minute', false, '',
       accepted_at - interval '4 minutes', accepted_at, card_id, payment_id, '', '', '', NULL,
       language
  FROM bench_debits_pay
 ORDER BY i
"""

# The ledger as payment_captured leaves it, written as its trigger would (the triggers are
# off during the load): one receivable account per payment holding the 3 instalments left,
# one posting per payment, its 4 legs carrying the accounts' running balances.
_LEDGER = """
WITH account AS (
    INSERT INTO ledger_account (
        key, kind, livemode, reference, balance_currency, balance, last_posted_at, created_at,
        closed_at, merchant_id
    )
    SELECT %(key_prefix)s || 'payment_' || body, 'customer_receivable', %(livemode)s,
           'payment_' || body, 'EUR', (purchase - first) / 100.0, now(), now(), NULL,
           %(merchant)s
      FROM bench_debits_pay
     ORDER BY i
    RETURNING id, reference
), posting AS (
    INSERT INTO ledger_posting (
        kind, livemode, source, idempotency_key, merchant_id, reference, processor_reference,
        memo, effective_at
    )
    SELECT 'payment_captured', %(livemode)s, 'payment', 'payment_' || body || ':captured',
           %(merchant)s, 'payment_' || body, 'ch_' || body, '', accepted_at
      FROM bench_debits_pay
     ORDER BY i
    RETURNING id, reference
), carried AS MATERIALIZED (
    SELECT id AS account_id, balance FROM ledger_account
     WHERE id IN (%(clearing)s, %(balance)s, %(fee_revenue)s)
     ORDER BY id FOR UPDATE
), payment AS (
    SELECT p.i, p.purchase, p.fee, p.first, posting.id AS posting_id, account.id AS receivable
      FROM bench_debits_pay p
      JOIN posting ON posting.reference = 'payment_' || p.body
      JOIN account ON account.reference = 'payment_' || p.body
), legs AS (
    SELECT payment.i, payment.posting_id, side.account_id, side.cents
      FROM payment
     CROSS JOIN LATERAL (VALUES
         (%(clearing)s::bigint, payment.first),
         (payment.receivable, payment.purchase - payment.first),
         (%(balance)s::bigint, -(payment.purchase - payment.fee)),
         (%(fee_revenue)s::bigint, -payment.fee)
     ) AS side(account_id, cents)
)
INSERT INTO ledger_leg (posting_id, account_id, amount, amount_currency, balance_after, posted_at)
SELECT legs.posting_id, legs.account_id, legs.cents / 100.0, 'EUR',
       coalesce(carried.balance, 0)
           + sum(legs.cents) OVER (PARTITION BY legs.account_id ORDER BY legs.i) / 100.0,
       now()
  FROM legs LEFT JOIN carried USING (account_id)
 ORDER BY legs.account_id, legs.i
"""

_SHARED_BALANCES = """
UPDATE ledger_account a
   SET balance = a.balance + moved.total / 100.0, last_posted_at = now()
  FROM (SELECT %(clearing)s::bigint AS id, sum(first) AS total FROM bench_debits_pay
        UNION ALL
        SELECT %(balance)s::bigint, -sum(purchase - fee) FROM bench_debits_pay
        UNION ALL
        SELECT %(fee_revenue)s::bigint, -sum(fee) FROM bench_debits_pay) AS moved
 WHERE a.id = moved.id
"""

_SLICE_ROWS = """
SELECT i.id, i.payment_id FROM payments_instalment i
  JOIN bench_debits_pay p ON p.payment_id = i.payment_id
 WHERE i.number = 2
 ORDER BY i.next_debit_at, i.id
"""

LEDGER_TABLES = ("ledger_leg", "ledger_posting", "ledger_account")


@dataclass(frozen=True)
class Slice:
    tag: str
    instalments: list[int]  # the due instalment (number 2) of each payment, claim order
    payments: list[int]


def load_payments(shop: Shop, *, tag: str, first: int, last: int, bought: date) -> Slice:
    """Payments first..last as after checkout, bought on ``bought`` (instalment 2 due a
    month later), in one transaction; the ledger written with its triggers off."""
    from django.conf import settings
    from django.db import connection, transaction

    params = {
        "tag": tag,
        "first": first,
        "last": last,
        "bought": bought,
        "people": CUSTOMERS,
        "customers": shop.customers,
        "cards": shop.cards,
        "domain": EMAIL_DOMAIN,
        "livemode": LIVEMODE,
        "merchant": shop.merchant,
        "address": _ADDRESS,
        "hour": settings.DEBIT_HOUR,
        "key_prefix": f"{'live' if LIVEMODE else 'test'}:EUR:customer_receivable:m{shop.merchant}:",
        "clearing": shop.clearing,
        "balance": shop.balance,
        "fee_revenue": shop.fee_revenue,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        (superuser,) = cursor.fetchone()
        if superuser:
            # No trigger fires in this transaction: neither the ledger's checks (the rows are
            # written as they would write them, and audited after a load) nor the foreign
            # keys' (every id comes from the statements' own RETURNING): 40 % of the time.
            cursor.execute("SET LOCAL session_replication_role = replica")
        else:
            # Foreign keys checked at each statement: a table with pending trigger events
            # cannot have its triggers enabled again.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for sql in (_SOURCE, _PAY_TABLE, _PAYMENTS, _INSTALMENTS, _ORDERS, _CHECKOUTS):
            cursor.execute(sql, params)
        if not superuser:
            for table in LEDGER_TABLES:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        for sql in (_LEDGER, _SHARED_BALANCES):
            cursor.execute(sql, params)
        if not superuser:
            for table in LEDGER_TABLES:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        cursor.execute(_SLICE_ROWS)
        rows = cursor.fetchall()
        # SET LOCAL lasts to the end of the transaction: a caller's too, if there is one.
        if superuser:
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")
        cursor.execute("SET LOCAL work_mem = DEFAULT")
    if len(rows) != last - first + 1:
        raise SystemExit(f"loaded {len(rows)} payments instead of {last - first + 1}")
    return Slice(tag=tag, instalments=[r[0] for r in rows], payments=[r[1] for r in rows])


# --- the backlog ----------------------------------------------------------------------------


def debit_at(day: date) -> datetime:
    from django.conf import settings

    from apps.common.dates import debit_time

    return debit_time(day, hour=settings.DEBIT_HOUR)


def due_count(when: datetime) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM payments_instalment WHERE next_debit_at <= %s", [when])
        return cursor.fetchone()[0]


def backlog_due() -> int:
    """Backlog instalments still due (all at 08:00 Paris on BACKLOG_DUE)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM payments_instalment WHERE next_debit_at = %s",
            [debit_at(BACKLOG_DUE)],
        )
        return cursor.fetchone()[0]


def _backlog_loaded() -> int:
    """Backlog payments ever loaded (numbered 1..n, charged or not)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM payments_payment WHERE public_id LIKE %s",
            [f"payment_bd{BACKLOG_TAG}%"],
        )
        return cursor.fetchone()[0]


def load_backlog(shop: Shop, count: int, say: Say | None = None) -> None:
    """``count`` more backlog payments, numbered after the last, CHUNK per transaction."""
    started = time.perf_counter()
    first = _backlog_loaded() + 1
    end = first + count
    while first < end:
        last = min(first + CHUNK, end) - 1
        load_payments(shop, tag=BACKLOG_TAG, first=first, last=last, bought=BACKLOG_BOUGHT)
        if say is not None:
            say(
                f"  loaded backlog payments {first:,}-{last:,} "
                f"({time.perf_counter() - started:.0f} s)"
            )
        first = last + 1


def backlog(say: Say, shop: Shop, wanted: int) -> int:
    """At least ``wanted`` backlog instalments due (loaded on the first run, topped up after
    each run that charged some); how many are."""
    from django.db import connection

    present = backlog_due()
    if present >= wanted:
        say(f"  backlog: {present:,} instalments due (loaded by earlier runs): reused")
        return present
    say(
        f"  backlog: {present:,} instalments due: loading {wanted - present:,} payments as "
        f"after checkout, {CHUNK:,} per transaction (generate_series; triggers off)"
    )
    started = time.perf_counter()
    before = _max_posting_id()
    load_backlog(shop, wanted - present, say)
    with connection.cursor() as cursor:
        for table in (
            "payments_payment",
            "payments_instalment",
            "payments_order",
            "payments_checkout",
            *LEDGER_TABLES,
        ):
            cursor.execute(f"ANALYZE {table}")
    say(f"  backlog loaded in {time.perf_counter() - started:.0f} s (then ANALYZE)")
    audit_run(say, shop, since_posting=before, what="the loaded backlog")
    present = backlog_due()
    if present < wanted:
        raise SystemExit(f"the backlog holds {present:,} due instalments after the load")
    return present


# --- the ledger audit ----------------------------------------------------------------------------


def _max_posting_id() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM ledger_posting")
        return cursor.fetchone()[0]


def audit_run(say: Say, shop: Shop, *, since_posting: int, what: str) -> str:
    """``apps.ledger.audit.CHECKS`` over the merchant's postings written since
    ``since_posting`` (loaded and debited), their receivables and the merchant's shared
    accounts; "all legs sum to zero" over all the merchant's accounts (a part of a ledger
    need not sum to zero)."""
    from django.db import connection, transaction

    from apps.ledger.audit import CHECKS

    started = time.perf_counter()
    merchant = int(shop.merchant)
    # Built from integers only. The accounts: those the postings touched (their receivables
    # and the merchant's shared accounts), as a semi-join (an OR would defeat it).
    postings = f"p.merchant_id = {merchant} AND p.id > {int(since_posting)}"
    accounts = (
        "a.id IN (SELECT l.account_id FROM ledger_leg l "  # noqa: S608
        f"JOIN ledger_posting p ON p.id = l.posting_id WHERE {postings})"
    )
    violations = {}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(f"SELECT count(*) FROM ledger_posting p WHERE {postings}")  # noqa: S608
        (posting_count,) = cursor.fetchone()
        cursor.execute(
            "SELECT count(DISTINCT l.account_id), count(*) FROM ledger_leg l "  # noqa: S608
            f"WHERE l.account_id IN (SELECT a.id FROM ledger_account a WHERE {accounts})"
        )
        account_count, leg_count = cursor.fetchone()
        for name, sql in CHECKS:
            whole = "sum to zero" in name
            filters = {
                "posting_mode": postings,
                "account_mode": f"a.merchant_id = {merchant}" if whole else accounts,
                "payout_mode": "FALSE",
            }
            cursor.execute(f"{sql % filters} LIMIT 5")
            if rows := cursor.fetchall():
                violations[name] = rows
    if violations:
        raise SystemExit(f"the ledger audit fails on {what}: {violations}")
    text = (
        f"ledger audit (apps.ledger.audit.CHECKS) of {what}: {posting_count:,} postings, "
        f"{account_count:,} accounts with {leg_count:,} legs (their receivables and the "
        f"merchant's shared accounts), all the merchant's legs summing to zero: clean "
        f"({time.perf_counter() - started:.1f} s)"
    )
    say(f"  {text}")
    return text


# --- measured runs ----------------------------------------------------------------------------


def fresh_slice(shop: Shop, rows: int) -> Slice:
    """A new slice due on SLICE_DUE, after parking what a killed run left due there."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE payments_instalment SET next_debit_at = %s WHERE next_debit_at = %s",
            [PARKED_AT, debit_at(SLICE_DUE)],
        )
    return load_payments(
        shop, tag="s" + uuid.uuid4().hex[:15], first=1, last=rows, bought=SLICE_BOUGHT
    )


def next_due(now: datetime, rows: int) -> Slice:
    """The ``rows`` instalments a run at ``now`` claims first (oldest next_debit_at, then
    id, as the claim orders them), with their payments."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, payment_id FROM payments_instalment WHERE next_debit_at <= %s "
            "ORDER BY next_debit_at, id LIMIT %s",
            [now, rows],
        )
        found = cursor.fetchall()
    return Slice(
        tag=BACKLOG_TAG, instalments=[row[0] for row in found], payments=[row[1] for row in found]
    )


def timed_debit_run(*, now: datetime, rows: int, batch_size: int):
    from apps.schedules.services.debits import debit_run

    started = time.perf_counter()
    summary = debit_run(now=now, limit=rows, batch_size=batch_size)
    return time.perf_counter() - started, summary


_RAW_UPDATE = (
    "UPDATE payments_instalment SET state = 'paid', paid_at = now(), next_debit_at = NULL "
    "WHERE id = ANY(%s)"
)


def timed_raw(instalments: list[int], batch_size: int) -> float:
    from django.db import connection, transaction

    batches = [
        instalments[start : start + batch_size] for start in range(0, len(instalments), batch_size)
    ]
    started = time.perf_counter()
    for ids in batches:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_RAW_UPDATE, [ids])
    return time.perf_counter() - started


def check_raw(piece: Slice) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM payments_instalment WHERE id = ANY(%s) AND state = 'paid' "
            "AND next_debit_at IS NULL AND paid_at IS NOT NULL",
            [piece.instalments],
        )
        (done,) = cursor.fetchone()
    if done != len(piece.instalments):
        raise SystemExit(f"raw SQL marked {done} of {len(piece.instalments)} rows paid")


def _charge_mark() -> tuple[int, datetime]:
    """The last charge id and the processor's clock before a run."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0), clock_timestamp() FROM payments_charge")
        return cursor.fetchone()


def check_paid_once(shop: Shop, piece: Slice, summary, *, mark: tuple[int, datetime]) -> None:
    """The run charged exactly the instalments of ``piece``, each once: one succeeded Charge
    for its amount, the processor's charge under its key, one receipt, one
    ``instalment_collected`` posting with the right legs, the receivable holding what is
    left to pay; the payments' other instalments untouched."""
    from django.db import connection

    last_charge, since = mark
    count = len(piece.instalments)
    problems = []
    wanted = {
        "claimed": count,
        "succeeded": count,
        "failed": 0,
        "in_doubt": 0,
        "settled": 0,
        "skipped": 0,
    }
    got = {name: getattr(summary, name) for name in wanted}
    if got != wanted:
        problems.append(f"summary {summary}, expected {wanted}")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE NOT instalment_id = ANY(%s)) "
            "FROM payments_charge WHERE id > %s",
            [piece.instalments, last_charge],
        )
        made, elsewhere = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM payments_sandboxcharge WHERE livemode = %s AND created_at >= %s",
            [LIVEMODE, since],
        )
        (processor_calls,) = cursor.fetchone()
        if (made, elsewhere, processor_calls) != (count, 0, count):
            problems.append(
                f"the run made {made} charges ({elsewhere} for other instalments than the "
                f"{count} oldest due) and the processor {processor_calls}"
            )
        cursor.execute(
            """
            SELECT count(*) FILTER (WHERE i.number = 2 AND i.state = 'paid'
                                      AND i.next_debit_at IS NULL AND i.paid_at IS NOT NULL
                                      AND i.debit_attempts = 1),
                   count(*) FILTER (WHERE i.number > 2 AND i.state = 'pending'
                                      AND i.next_debit_at IS NOT NULL AND i.debit_attempts = 0),
                   count(*) FILTER (WHERE i.number = 1 AND i.state = 'paid'),
                   count(DISTINCT i.payment_id) FILTER (WHERE p.state = 'in_progress')
              FROM payments_instalment i JOIN payments_payment p ON p.id = i.payment_id
             WHERE i.payment_id = ANY(%s)
            """,
            [piece.payments],
        )
        paid, left, first, in_progress = cursor.fetchone()
        if (paid, left, first, in_progress) != (count, 2 * count, count, count):
            problems.append(
                f"instalments: {paid} paid of {count}, {left} left pending of {2 * count}, "
                f"{first} first paid, {in_progress} payments in progress"
            )
        cursor.execute(
            """
            SELECT count(*), count(DISTINCT c.instalment_id),
                   count(*) FILTER (WHERE c.status = 'succeeded' AND c.kind = 'instalment'
                                      AND c.amount = i.purchase_amount AND c.attempt = 1
                                      AND c.processor_reference <> ''),
                   count(s.id) FILTER (WHERE s.status = 'succeeded' AND s.kind = 'charge'
                                         AND s.amount_cents = round(c.amount * 100)
                                         AND s.reference = c.processor_reference
                                         AND s.card_id = ANY(%s)),
                   count(r.id)
              FROM payments_charge c
              JOIN payments_instalment i ON i.id = c.instalment_id
              LEFT JOIN payments_sandboxcharge s ON s.idempotency_key = c.idempotency_key
              LEFT JOIN schedules_receipt r ON r.charge_id = c.id
             WHERE c.instalment_id = ANY(%s)
            """,
            [shop.sandbox_cards, piece.instalments],
        )
        charges, charged, good, processor, receipts = cursor.fetchone()
        if (charges, charged, good, processor, receipts) != (count,) * 5:
            problems.append(
                f"charges: {charges} for {charged} instalments, {good} succeeded for the "
                f"amount, {processor} matching sandbox charges, {receipts} receipts; expected "
                f"{count} each"
            )
        cursor.execute(
            """
            SELECT count(*),
                   count(*) FILTER (
                       WHERE legs.n = 2 AND legs.clearing = i.purchase_amount
                         AND legs.receivable = -i.purchase_amount
                         AND post.processor_reference = c.processor_reference
                         AND post.kind = 'instalment_collected'),
                   count(*) FILTER (WHERE receivable.balance = left_to_pay.amount)
              FROM payments_instalment i
              JOIN payments_payment p ON p.id = i.payment_id
              JOIN payments_charge c ON c.instalment_id = i.id
              JOIN ledger_posting post
                ON post.source = 'instalment' AND post.reference = p.public_id
              JOIN ledger_account receivable ON receivable.key = %s || p.public_id
             CROSS JOIN LATERAL (
                   SELECT count(*) AS n,
                          sum(l.amount) FILTER (WHERE l.account_id = %s) AS clearing,
                          sum(l.amount) FILTER (WHERE l.account_id = receivable.id)
                              AS receivable
                     FROM ledger_leg l WHERE l.posting_id = post.id) AS legs
             CROSS JOIN LATERAL (
                   SELECT sum(purchase_amount) AS amount FROM payments_instalment
                    WHERE payment_id = p.id AND state = 'pending') AS left_to_pay
             WHERE i.id = ANY(%s)
            """,
            [
                f"{'live' if LIVEMODE else 'test'}:EUR:customer_receivable:m{shop.merchant}:",
                shop.clearing,
                piece.instalments,
            ],
        )
        postings, right, balances = cursor.fetchone()
        if (postings, right, balances) != (count,) * 3:
            problems.append(
                f"ledger: {postings} instalment postings for {count} instalments, {right} with "
                f"the right legs, {balances} receivables holding what is left to pay"
            )
    if problems:
        raise SystemExit("the debit run's results are wrong: " + "; ".join(problems))


def purge_render_tasks(piece: Slice) -> int:
    """Drop the receipt-rendering tasks the run queued for these payments: no cluster serves
    the benchmark database, and one started later should not render benchmark receipts."""
    from django_q.models import OrmQ

    from apps.schedules.models import Receipt

    numbers = set(
        Receipt.objects.filter(payment_id__in=piece.payments).values_list("number", flat=True)
    )
    dropped = []
    for queued in OrmQ.objects.all().only("id", "payload"):
        task = queued.task
        if task.get("func") != RENDER_TASK:
            continue
        args = task.get("args") or ()
        if args and set(args[0]) <= numbers:
            dropped.append(queued.pk)
    OrmQ.objects.filter(pk__in=dropped).delete()
    return len(dropped)


@dataclass
class Plan:
    rows: int
    batch_size: int
    backlog: int
    small_now: datetime
    large_now: datetime


def one_run(say: Say, shop: Shop, plan: Plan, *, large: bool, raw: bool, label: str) -> float:
    """One timed run, checked; instalments/s.

    Without the backlog: a fresh slice of ``rows`` due on SLICE_DUE, the only rows due at
    ``small_now``. With it: the ``rows`` oldest of the backlog's due instalments (all due
    at the same time, as a day's are; the claim takes the lowest ids), topped up afterwards
    with as many new backlog payments, so every run sees the same number due."""
    now = plan.large_now if large else plan.small_now
    if large:
        expected = plan.backlog
    else:
        fresh_slice(shop, plan.rows)
        expected = plan.rows
    due = due_count(now)
    if due != expected:
        raise SystemExit(
            f"{due:,} instalments are due at {now.isoformat()}, expected {expected:,}: other "
            "rows in tranche_bench are due then (drop the database and run again)"
        )
    piece = next_due(now, plan.rows)
    if raw:
        elapsed = timed_raw(piece.instalments, plan.batch_size)
        check_raw(piece)
    else:
        mark = _charge_mark()
        elapsed, summary = timed_debit_run(now=now, rows=plan.rows, batch_size=plan.batch_size)
        check_paid_once(shop, piece, summary, mark=mark)
        purge_render_tasks(piece)
    after = due_count(now)
    if after != expected - plan.rows:
        raise SystemExit(f"{after:,} due after the run, expected {expected - plan.rows:,}")
    if large:
        load_backlog(shop, plan.rows)
    rate = plan.rows / elapsed
    say(
        f"  {label:<48} {plan.rows:>7,} in {elapsed:6.2f} s  {rate:>8,.0f} instalments/s  "
        f"({1000 * elapsed / plan.rows:.3f} ms each)"
    )
    return rate


def profile_run(say: Say, shop: Shop, plan: Plan) -> None:
    """One more run without the backlog under cProfile."""
    from apps.schedules.services.debits import debit_run

    fresh_slice(shop, plan.rows)
    piece = next_due(plan.small_now, plan.rows)
    mark = _charge_mark()
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    summary = debit_run(now=plan.small_now, limit=plan.rows, batch_size=plan.batch_size)
    profiler.disable()
    elapsed = time.perf_counter() - started
    check_paid_once(shop, piece, summary, mark=mark)
    purge_render_tasks(piece)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)
    say(f"  profile: {plan.rows:,} instalments in {elapsed:.2f} s")
    for line in out.getvalue().splitlines():
        say(f"    {line}")


def settle_leftovers(say: Say, plan: Plan) -> None:
    """Charges a killed earlier run left in doubt are settled now, untimed, so no measured
    run pays for them (debit_run first settles those older than IN_FLIGHT_GRACE)."""
    from apps.schedules.services.debits import debits_settle_in_doubt

    later = max(plan.small_now, plan.large_now) + timedelta(days=1)
    while settled := debits_settle_in_doubt(now=later):
        say(f"  settled {settled:,} charges left in doubt by an earlier, interrupted run")


def run(
    say: Say, *, quick: bool = False, rounds: int = ROUNDS, profile: bool = False
) -> DebitFigures:
    from django.conf import settings

    rows = QUICK_ROWS if quick else ROWS
    wanted = QUICK_BACKLOG if quick else BACKLOG
    logging.getLogger("django-q").setLevel(logging.WARNING)  # not a line per queued task
    # The sandbox answers at once: what is measured is Tranche's own work, not a network.
    settings.SANDBOX_PROCESSOR_LATENCY_MS = 0
    batch_size = settings.DEBIT_RUN_BATCH_SIZE
    say(
        f"debit run in process: debit_run over {rows:,} due instalments, sandbox processor "
        f"(0 ms), batch {batch_size}; vs raw SQL UPDATE of "
        f"{rows:,} rows in batches of {batch_size}; {rounds} rounds, alternating order, "
        "medians and the median per-round ratio"
    )
    the_shop = shop(say)
    started_with = _max_posting_id()
    present = backlog(say, the_shop, wanted)
    plan = Plan(
        rows=rows,
        batch_size=batch_size,
        backlog=present,
        small_now=datetime.combine(SLICE_DUE, NOON, tzinfo=PARIS),
        large_now=datetime.combine(BACKLOG_DUE, NOON, tzinfo=PARIS),
    )
    say(
        f"  without the backlog: a fresh slice of {rows:,} due {SLICE_DUE} 08:00 Paris per run, "
        f"now {SLICE_DUE} 12:00 ({rows:,} due); with it: {present:,} due {BACKLOG_DUE} 08:00, "
        f"now {BACKLOG_DUE} 12:00, the run claims the {rows:,} oldest (lowest ids), topped "
        "up after each run"
    )
    settle_leftovers(say, plan)
    warm = Plan(WARMUP_ROWS, batch_size, present, plan.small_now, plan.large_now)
    one_run(say, the_shop, warm, large=False, raw=False, label="warm-up: debit_run")
    one_run(say, the_shop, warm, large=False, raw=True, label="warm-up: raw SQL")

    small, large = Case(due=rows), Case(due=present)
    kinds = [
        (f"debit_run, {rows:,} due", small.value, False, False),
        (f"raw SQL, {rows:,} due", small.raw, False, True),
        (f"debit_run, {present:,} due", large.value, True, False),
        (f"raw SQL, {present:,} due", large.raw, True, True),
    ]
    for number in range(1, rounds + 1):
        shift = (number - 1) % len(kinds)
        for what, results, is_large, raw in kinds[shift:] + kinds[:shift]:
            label = f"round {number}  {what}"
            results.append(one_run(say, the_shop, plan, large=is_large, raw=raw, label=label))
    figures = DebitFigures(rows=rows, batch_size=batch_size, small=small, large=large)
    say(
        "  debit_run / raw SQL per round: "
        + f"{rows:,} due: {' '.join(f'{r:.3f}' for r in small.ratios)}; "
        + f"{present:,} due: {' '.join(f'{r:.3f}' for r in large.ratios)}; "
        + f"cost with/without the backlog: {' '.join(f'{r:.2f}' for r in figures.cost_ratios)}"
    )
    if profile:
        profile_run(say, the_shop, plan)
    figures.audit = audit_run(say, the_shop, since_posting=started_with, what="what this run wrote")
    from django.db import connection

    connection.close()
    return figures


# --- alone: python -m benchmarks.debits ---------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.debits", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_ROWS:,}-row runs beside a backlog of at least {QUICK_BACKLOG:,}",
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"rounds ({ROUNDS})")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="then one more run under cProfile",
    )
    args = parser.parse_args(argv)

    from benchmarks import __main__ as bench

    bench.setup_django()
    bench.migrate_if_needed()
    try:
        bench.say(
            f"benchmark: the debit run only, in process, "
            f"{datetime.now().astimezone():%Y-%m-%d %H:%M %z}"
        )
        bench.say(
            f"  revision {bench.git_revision()}, python {platform.python_version()}, "
            f"{os.cpu_count()} CPUs"
        )
        figures = run(bench.say, quick=args.quick, rounds=args.rounds, profile=args.profile)
    except SystemExit as stop:
        if isinstance(stop.code, str):
            bench.say(f"STOPPED: {stop.code}")
            bench.write_results()
            return 1
        raise
    bench.say()
    for line in figure_lines(figures):
        bench.say(line)
    bench.write_results()
    return 0 if all(figures.verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
