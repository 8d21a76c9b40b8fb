"""Ledger figures for `make bench`, in process: posting throughput and balance reads.

Run by benchmarks/__main__.py (after plan computation, before the HTTP server starts), or
alone with ``python -m benchmarks --ledger-only``. The figures are described in the
docstring of benchmarks/__main__.py; this module measures, __main__ prints the summary lines.

Everything is written to the benchmark's own database (``tranche_bench``): two merchants of
its own, their ledger accounts, the postings timed here (kept: the ledger is append-only),
and plain tables ``bench_raw_posting`` / ``bench_raw_leg`` for the raw SQL baseline
(recreated on every run).
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

POSTINGS_MERCHANT = ("Benchmark ledger merchant", "benchmark-ledger@tranche.localhost")
BALANCE_MERCHANT = ("Benchmark ledger 1M legs", "benchmark-ledger-1m@tranche.localhost")
LIVEMODE = False
BATCH = 100  # postings per transaction in the batched figure
POSTINGS_TARGET = 2_000.0  # postings/s, batched
BALANCE_TARGET_MS = 10.0  # as-of balance of an account with 1,000,000 legs

# The 1,000,000-legs account: one million two-leg postings, each crediting (or, one in
# twenty, debiting) the merchant balance against the merchant's processor clearing.
LOAD_LEGS = 1_000_000
LOAD_CHUNK = 100_000  # postings per transaction
LOAD_START = datetime(2025, 11, 1, tzinfo=UTC)  # posted_at = LOAD_START + i * LOAD_STEP
LOAD_STEP_SECONDS = 30  # 1,000,000 legs over 347 days, one every 30 s
LOAD_PREFIX = "bench_1m_"
BALANCE_CALLS = 200
BASELINE_CALLS = 5

RAW_TABLES = (("bench_raw_posting", "ledger_posting"), ("bench_raw_leg", "ledger_leg"))
# What a table without triggers costs: the same columns, defaults, ids and indexes as the
# ledger's tables; no triggers, no foreign keys, no check constraints.
RAW_CREATE = (
    "CREATE TABLE {raw} (LIKE {table} INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING INDEXES)"
)
RAW_POSTINGS = """
INSERT INTO bench_raw_posting (
    kind, livemode, source, idempotency_key, merchant_id, reference,
    processor_reference, memo, effective_at, reverses_id
)
VALUES {rows}
RETURNING id
"""
RAW_LEGS = """
INSERT INTO bench_raw_leg (posting_id, account_id, amount, amount_currency, balance_after,
                           posted_at)
VALUES {rows}
"""

Say = Callable[[str], None]


@dataclass
class Throughput:
    """One mode (per transaction, or batched): service and raw SQL postings/s per round."""

    service: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)

    @property
    def value(self) -> float | None:
        return statistics.median(self.service) if self.service else None

    @property
    def baseline(self) -> float | None:
        return statistics.median(self.raw) if self.raw else None

    @property
    def ratios(self) -> list[float]:
        return [s / r for s, r in zip(self.service, self.raw, strict=False) if r]


@dataclass
class BalanceReads:
    legs: int
    as_of_ms: list[float]
    now_ms: list[float]
    sum_ms: list[float]

    @property
    def as_of_median(self) -> float:
        return statistics.median(self.as_of_ms)

    @property
    def now_median(self) -> float:
        return statistics.median(self.now_ms)

    @property
    def sum_median(self) -> float:
        return statistics.median(self.sum_ms)

    @property
    def ratios(self) -> list[float]:
        return [self.as_of_median / self.sum_median]


@dataclass
class LedgerFigures:
    per_tx: Throughput
    batched: Throughput
    balance: BalanceReads

    @property
    def verdicts(self) -> dict[str, bool]:
        return {
            "ledger_postings": (self.batched.value or 0.0) >= POSTINGS_TARGET,
            "ledger_balance": self.balance.as_of_median <= BALANCE_TARGET_MS,
        }


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def merchant_id(name: str, email: str) -> int:
    """A merchant of the benchmark's own (made once), so its accounts hold only its legs."""
    from django.utils import timezone

    from apps.merchants.models import Merchant
    from apps.merchants.services import merchant_create

    merchant = Merchant.objects.filter(legal_name=name, contact_email=email).order_by("pk").first()
    if merchant is None:
        merchant = merchant_create(
            legal_name=name, country="FR", contact_email=email, now=timezone.now()
        )
    return merchant.pk


# --- posting throughput ----------------------------------------------------------------------


class Postings:
    """payment_captured specs with exactly 3 legs, each with its own idempotency key: clearing
    debit (the first instalment, here the whole basket), merchant balance credit (basket minus
    fee), merchant-fee revenue credit (the fee)."""

    def __init__(self, merchant: int) -> None:
        self.merchant = merchant
        self.run = uuid.uuid4().hex[:12]  # keys never seen by an earlier run
        self.number = 0
        self.now = datetime.now(UTC)

    def next(self):
        from apps.ledger import recipes

        self.number += 1
        purchase = 5_000 + (self.number * 7_919) % 195_000
        payment = f"pay_bench_{self.run}_{self.number}"
        return recipes.payment_captured(
            merchant_id=self.merchant,
            livemode=LIVEMODE,
            payment_id=payment,
            purchase_cents=purchase,
            first_principal_cents=purchase,
            customer_fee_cents=0,
            interest_cents=0,
            merchant_fee_cents=purchase * 3 // 100 + 25,
            processor_reference=f"ch_{payment}",
            effective_at=self.now,
        )


def service_rate(postings: Postings, duration: float, batch: int) -> float:
    """The posting service for `duration` seconds: posting_create, one transaction per
    posting (batch 1), or postings_create with `batch` postings per transaction; postings/s."""
    from apps.ledger.services import posting_create, postings_create

    count = 0
    start = time.perf_counter()
    deadline = start + duration
    while time.perf_counter() < deadline:
        if batch == 1:
            results = [posting_create(postings.next())]
        else:
            results = postings_create([postings.next() for _ in range(batch)])
        if not all(result.created for result in results):
            raise SystemExit("the posting service did not create every posting")
        count += batch
    return count / (time.perf_counter() - start)


class RawWriter:
    """The baseline: the same posting rows and their 3 leg rows each (same values;
    balance_after kept as running sums in Python, posted_at the clock) into plain tables, with
    psycopg on Django's own connection: per transaction, one multi-row INSERT of the postings
    and one of their legs (two statements, as the service's one statement with its checks)."""

    def __init__(self, accounts: dict) -> None:
        self.accounts = accounts  # AccountRef -> account id
        self.balances: dict[int, Decimal] = {}

    def write(self, cursor, specs: list) -> None:
        """The postings in one multi-row INSERT, then all their legs in another."""
        posting_rows = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(specs))
        cursor.execute(
            RAW_POSTINGS.format(rows=posting_rows),
            [
                value
                for spec in specs
                for value in (
                    spec.kind,
                    spec.livemode,
                    spec.source,
                    spec.idempotency_key,
                    spec.merchant_id,
                    spec.reference,
                    spec.processor_reference,
                    spec.memo,
                    spec.effective_at,
                    spec.reverses_id,
                )
            ],
        )
        posting_ids = [row[0] for row in cursor.fetchall()]
        params: list = []
        for posting_id, spec in zip(posting_ids, specs, strict=True):
            for leg in sorted(spec.legs, key=lambda leg: self.accounts[leg.account]):
                account = self.accounts[leg.account]
                amount = Decimal(leg.cents) / 100
                balance = self.balances.get(account, Decimal(0)) + amount
                self.balances[account] = balance
                params += [posting_id, account, amount, spec.currency, balance]
        leg_rows = ", ".join(["(%s, %s, %s, %s, %s, clock_timestamp())"] * (len(params) // 5))
        cursor.execute(RAW_LEGS.format(rows=leg_rows), params)

    def rate(self, postings: Postings, duration: float, batch: int) -> float:
        from django.db import connection

        connection.ensure_connection()
        pg = connection.connection  # psycopg, in autocommit as Django keeps it
        count = 0
        start = time.perf_counter()
        deadline = start + duration
        with pg.cursor() as cursor:
            while time.perf_counter() < deadline:
                with pg.transaction():
                    self.write(cursor, [postings.next() for _ in range(batch)])
                count += batch
        return count / (time.perf_counter() - start)


def raw_tables() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for raw, table in RAW_TABLES:
            cursor.execute(f"DROP TABLE IF EXISTS {raw}")
            cursor.execute(RAW_CREATE.format(raw=raw, table=table))


def check_postings(merchant: int, run: str, service_count: int, raw_count: int) -> None:
    """What was timed was written: every posting with its 3 legs, balances = sum of legs."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*), count(*) FILTER (WHERE legs <> 3 OR total <> 0)
              FROM (SELECT p.id, count(l.id) AS legs, coalesce(sum(l.amount), 0) AS total
                      FROM ledger_posting p LEFT JOIN ledger_leg l ON l.posting_id = p.id
                     WHERE p.merchant_id = %s AND p.idempotency_key LIKE %s
                     GROUP BY p.id) s
            """,
            [merchant, f"pay_bench_{run}_%:captured"],
        )
        postings, bad = cursor.fetchone()
        cursor.execute(
            """
            SELECT count(*) FROM ledger_account a
             WHERE a.merchant_id = %s
               AND a.balance <> (SELECT coalesce(sum(amount), 0) FROM ledger_leg
                                  WHERE account_id = a.id)
            """,
            [merchant],
        )
        (wrong_balances,) = cursor.fetchone()
        cursor.execute(
            "SELECT (SELECT count(*) FROM bench_raw_posting), count(*) FROM bench_raw_leg"
        )
        raw_postings, raw_legs = cursor.fetchone()
    if bad or wrong_balances or postings != service_count:
        raise SystemExit(
            f"ledger postings of this run: {postings} (expected "
            f"{service_count}), {bad} not 3 balanced legs, {wrong_balances} accounts whose "
            "balance is not the sum of their legs"
        )
    if raw_postings != raw_count or raw_legs != 3 * raw_count:
        raise SystemExit(
            f"raw baseline: {raw_postings} postings and {raw_legs} legs, expected {raw_count} "
            f"and {3 * raw_count}"
        )


def measure_postings(say: Say, *, duration: float, rounds: int) -> tuple[Throughput, Throughput]:
    from django.db import connection

    from apps.ledger.services.postings import accounts_resolve

    merchant = merchant_id(*POSTINGS_MERCHANT)
    postings = Postings(merchant)
    spec = postings.next()
    if len(spec.legs) != 3:
        raise SystemExit(f"the benchmark's payment_captured has {len(spec.legs)} legs, not 3")
    say(
        "  spec: payment_captured, no customer fee, no interest, purchase = first principal "
        "(50.00-2,000.00 EUR, fee 3 % + 0.25): clearing debit, merchant balance credit, "
        "merchant-fee revenue credit (3 legs); a fresh idempotency key per posting; one merchant"
    )
    raw_tables()
    accounts = {
        ref: pk
        for ref, (pk, _closed) in accounts_resolve(
            {leg.account for leg in spec.legs}, livemode=spec.livemode, currency=spec.currency
        ).items()
    }
    raw = RawWriter(accounts)
    per_tx, batched = Throughput(), Throughput()
    counts = {"service": 0, "raw": 0}

    def timed(name: str, batch: int, seconds: float) -> float:
        before = postings.number
        if name == "service":
            rate = service_rate(postings, seconds, batch)
        else:
            rate = raw.rate(postings, seconds, batch)
        counts[name] += postings.number - before
        return rate

    for name in ("service", "raw"):  # warm-up: imports, plans, caches, accounts' rows
        for batch in (1, BATCH):
            timed(name, batch, 0.5)

    kinds = [
        ("posting_create, 1 per transaction", per_tx.service, "service", 1),
        ("raw SQL, 1 per transaction", per_tx.raw, "raw", 1),
        (f"postings_create, {BATCH} per transaction", batched.service, "service", BATCH),
        (f"raw SQL, {BATCH} per transaction", batched.raw, "raw", BATCH),
    ]
    for round_number in range(1, rounds + 1):
        shift = (round_number - 1) % len(kinds)
        for what, results, name, batch in kinds[shift:] + kinds[:shift]:
            rate = timed(name, batch, duration)
            results.append(rate)
            say(f"  round {round_number}  {what:<40} {rate:>8.0f} postings/s")
    check_postings(merchant, postings.run, counts["service"], counts["raw"])
    for label, figure in (("1 per transaction", per_tx), (f"{BATCH} per transaction", batched)):
        per_round = " ".join(f"{ratio:.2f}" for ratio in figure.ratios)
        say(f"  posting service / raw SQL, {label}, per round: {per_round}")
    connection.close()
    return per_tx, batched


# --- balance of an account with 1,000,000 legs ------------------------------------------------

_LOAD_CHUNK_SQL = """
WITH posting AS (
    INSERT INTO ledger_posting (
        kind, livemode, source, idempotency_key, merchant_id, reference,
        processor_reference, memo, effective_at
    )
    SELECT 'payment_captured', %(livemode)s, 'payment',
           %(prefix)s || i || ':captured', %(merchant)s, %(prefix)s || i,
           'ch_' || %(prefix)s || i, '', %(start)s + i * make_interval(secs => %(step)s)
      FROM generate_series(%(first)s, %(last)s) AS i
    RETURNING id, reference, effective_at
), legs AS (
    SELECT posting.id AS posting_id, side.account_id,
           side.sign * (CASE WHEN n %% 20 = 0 THEN -1 ELSE 1 END)
               * (100 + (n * 7919) %% 99900)::numeric / 100 AS amount,
           posting.effective_at AS posted_at
      FROM posting
     CROSS JOIN LATERAL (SELECT substr(posting.reference, %(skip)s)::bigint AS n) AS number
     CROSS JOIN (VALUES (%(target)s::bigint, -1), (%(counter)s::bigint, 1))
                AS side(account_id, sign)
), carried AS MATERIALIZED (  -- each account's balance after the previous chunks
    SELECT a.id AS account_id,
           coalesce((SELECT l.balance_after FROM ledger_leg l WHERE l.account_id = a.id
                      ORDER BY l.posted_at DESC, l.id DESC LIMIT 1), 0) AS balance
      FROM ledger_account a WHERE a.id IN (%(target)s, %(counter)s)
)
INSERT INTO ledger_leg (posting_id, account_id, amount, amount_currency, balance_after, posted_at)
SELECT legs.posting_id, legs.account_id, legs.amount, 'EUR',
       carried.balance + sum(legs.amount) OVER (
           PARTITION BY legs.account_id ORDER BY legs.posted_at, legs.posting_id),
       legs.posted_at
  FROM legs JOIN carried USING (account_id)
"""

_SET_BALANCES = """
UPDATE ledger_account a
   SET balance = (SELECT coalesce(sum(amount), 0) FROM ledger_leg WHERE account_id = a.id)
 WHERE a.id IN (%s, %s)
"""


def load_accounts() -> tuple[int, int, int]:
    """The 1M-legs merchant's balance (target) and clearing (counter) accounts."""
    from apps.ledger.models import AccountKind
    from apps.ledger.postings import AccountRef
    from apps.ledger.services.postings import accounts_resolve

    merchant = merchant_id(*BALANCE_MERCHANT)
    target = AccountRef(AccountKind.MERCHANT_BALANCE, merchant)
    counter = AccountRef(AccountKind.PROCESSOR_CLEARING, merchant)
    found = accounts_resolve({target, counter}, livemode=LIVEMODE, currency="EUR")
    return merchant, found[target][0], found[counter][0]


def leg_count(account: int) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ledger_leg WHERE account_id = %s", [account])
        return cursor.fetchone()[0]


def load_legs(say: Say, merchant: int, target: int, counter: int, present: int) -> None:
    """Bulk-load the missing postings, LOAD_CHUNK per transaction, the ledger's triggers off
    (each chunk computes balance_after itself), then the two accounts' balances."""
    from django.db import connection, transaction

    if present % LOAD_CHUNK:
        raise SystemExit(
            f"the 1M-legs account holds {present} legs, not a whole number of load chunks: "
            "drop the tranche_bench database and run again"
        )
    started = time.perf_counter()
    try:
        for first in range(present + 1, LOAD_LEGS + 1, LOAD_CHUNK):
            with transaction.atomic(), connection.cursor() as cursor:
                # Foreign keys are checked at the end of the statement, not at commit: a table
                # with pending trigger events cannot have its triggers enabled again.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute("ALTER TABLE ledger_leg DISABLE TRIGGER USER")
                cursor.execute("ALTER TABLE ledger_posting DISABLE TRIGGER USER")
                cursor.execute(
                    _LOAD_CHUNK_SQL,
                    {
                        "livemode": LIVEMODE,
                        "prefix": LOAD_PREFIX,
                        "skip": len(LOAD_PREFIX) + 1,
                        "merchant": merchant,
                        "start": LOAD_START,
                        "step": LOAD_STEP_SECONDS,
                        "first": first,
                        "last": min(first + LOAD_CHUNK - 1, LOAD_LEGS),
                        "target": target,
                        "counter": counter,
                    },
                )
                cursor.execute("ALTER TABLE ledger_posting ENABLE TRIGGER USER")
                cursor.execute("ALTER TABLE ledger_leg ENABLE TRIGGER USER")
            say(
                f"  loaded postings {first:,}-{min(first + LOAD_CHUNK - 1, LOAD_LEGS):,}  "
                f"({time.perf_counter() - started:.0f} s)"
            )
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("ALTER TABLE ledger_account DISABLE TRIGGER USER")
            cursor.execute(_SET_BALANCES, [target, counter])
            cursor.execute("ALTER TABLE ledger_account ENABLE TRIGGER USER")
    finally:  # each chunk re-enables them in its own transaction; this is belt and braces
        with connection.cursor() as cursor:
            for table in ("ledger_leg", "ledger_posting", "ledger_account"):
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    with connection.cursor() as cursor:
        for table in ("ledger_leg", "ledger_posting", "ledger_account"):
            cursor.execute(f"ANALYZE {table}")
    say(f"  load done in {time.perf_counter() - started:.0f} s (then ANALYZE)")


def audit_loaded(merchant: int, target: int, counter: int) -> None:
    """The audit's own checks (apps.ledger.audit.CHECKS), restricted to the two accounts and
    the merchant's postings; any violation fails the benchmark."""
    from django.db import connection

    from apps.ledger.audit import CHECKS

    filters = {
        "posting_mode": f"p.merchant_id = {int(merchant)}",
        "account_mode": f"a.id IN ({int(target)}, {int(counter)})",
        "payout_mode": "FALSE",
    }
    violations = {}
    with connection.cursor() as cursor:
        for name, sql in CHECKS:
            cursor.execute(f"{sql % filters} LIMIT 5")
            if rows := cursor.fetchall():
                violations[name] = rows
    if violations:
        raise SystemExit(f"the 1M-legs account fails the ledger audit: {violations}")


def timed_ms(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def measure_balance(say: Say) -> BalanceReads:
    from django.db import connection

    from apps.ledger.selectors import account_balance_cents

    merchant, target, counter = load_accounts()
    present = leg_count(target)
    if present == LOAD_LEGS:
        say(f"  account {target} holds {present:,} legs (loaded by an earlier run): reused")
    else:
        say(
            f"  account {target} holds {present:,} legs: loading {LOAD_LEGS - present:,} "
            f"two-leg postings (merchant balance against processor clearing), {LOAD_CHUNK:,} "
            "per transaction, the ledger's triggers disabled, balance_after as window sums"
        )
        load_legs(say, merchant, target, counter, present)
        present = leg_count(target)
        if present != LOAD_LEGS:
            raise SystemExit(f"the 1M-legs account holds {present} legs after the load")
    started = time.perf_counter()
    audit_loaded(merchant, target, counter)
    say(
        f"  audit of the two accounts (stored balance = sum of legs, balance_after = running "
        f"sum, postings balanced): clean ({time.perf_counter() - started:.1f} s)"
    )

    rng = random.Random(20_261_122)
    span = (LOAD_LEGS - 1) * LOAD_STEP_SECONDS
    times = [LOAD_START + timedelta(seconds=rng.uniform(0, span)) for _ in range(BALANCE_CALLS)]
    # The answer is right: as of a leg's own time, that leg's balance_after.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT posted_at, balance_after FROM ledger_leg WHERE account_id = %s "
            "ORDER BY posted_at DESC, id DESC LIMIT 1 OFFSET 123456",
            [target],
        )
        at, expected = cursor.fetchone()
    if account_balance_cents(account_id=target, as_of=at) != round(expected * 100):
        raise SystemExit("account_balance_cents as of a leg's time is not its balance_after")
    for as_of in times[:20]:  # warm-up: the index's pages in memory, as on a server
        account_balance_cents(account_id=target, as_of=as_of)
        account_balance_cents(account_id=target)
    as_of_ms = [
        timed_ms(lambda t=as_of: account_balance_cents(account_id=target, as_of=t))
        for as_of in times
    ]
    now_ms = [
        timed_ms(lambda: account_balance_cents(account_id=target)) for _ in range(BALANCE_CALLS)
    ]

    def leg_sum() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT sum(amount) FROM ledger_leg WHERE account_id = %s", [target])
            cursor.fetchone()

    leg_sum()  # warm-up
    sum_ms = [timed_ms(leg_sum) for _ in range(BASELINE_CALLS)]
    say(
        f"  account_balance_cents as of {BALANCE_CALLS} random past times: median "
        f"{statistics.median(as_of_ms):.3f} ms, p99 {p99(as_of_ms):.3f} ms; now (the account "
        f"row): median {statistics.median(now_ms):.3f} ms, p99 {p99(now_ms):.3f} ms; "
        f"sum(amount) over the legs: median {statistics.median(sum_ms):.1f} ms "
        f"({BASELINE_CALLS} calls)"
    )
    connection.close()
    return BalanceReads(legs=present, as_of_ms=as_of_ms, now_ms=now_ms, sum_ms=sum_ms)


def run(say: Say, *, duration: float, rounds: int) -> LedgerFigures:
    say(
        f"ledger in process: the posting service vs raw SQL inserts of the same rows, "
        f"{duration:g} s "
        f"per run, {rounds} rounds, alternating order; medians, and the median per-round ratio"
    )
    per_tx, batched = measure_postings(say, duration=duration, rounds=rounds)
    say(f"ledger balance reads: an account with {LOAD_LEGS:,} legs")
    balance = measure_balance(say)
    return LedgerFigures(per_tx=per_tx, batched=batched, balance=balance)
