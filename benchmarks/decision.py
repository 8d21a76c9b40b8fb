"""Credit decision figures for `make bench`, in process: the latency of one decision for a
customer with a long history, and the simulated traffic's rates as context.

Run by benchmarks/__main__.py (after the ledger figures, before the HTTP server starts), or
alone with ``python -m benchmarks --decision-only``. The figures are described in the
docstring of benchmarks/__main__.py; this module measures, __main__ prints the summary lines.

Written to the benchmark's own database (``tranche_bench``), built once and reused: a
merchant of its own, one test-mode customer (verified phone, four cards) with 100 past
payments bulk-inserted (80 paid, 20 in progress, each with its instalments, one a week for
100 weeks) and the payment that is scored, with its checkout at the decision step. Every
timed call records a CreditDecision on that payment, as the checkout does (kept: decisions
are a history; a run adds 520).
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from benchmarks.ledger import merchant_id, p99

if TYPE_CHECKING:
    from apps.payments.simulation import Report

MERCHANT = ("Benchmark decision merchant", "benchmark-decision@tranche.localhost")
CUSTOMER_EMAIL = "camille.decision@bench.tranche.localhost"
PHONE = "+33612345678"
SCORED_MARK = {"bench": "decision_scored"}  # custom_data of the payment that is scored
PAST_PAYMENTS = 100
PAST_PAID = 80  # the others are in progress
WARMUPS = 20
RUNS = 500
TARGET_MS = 50.0
SIMULATION_COUNT = 100_000
SIMULATION_SEED = 1
HONEST_TARGET = 95.0  # % of honest customers accepted

Say = Callable[[str], None]


@dataclass
class DecisionFigures:
    score_ms: list[float]  # payment_score in its transaction, with the payment locked
    read_ms: list[float]  # Payment.objects.get(pk=...), timed alternately
    outcome: str
    simulation: Report
    simulation_seconds: float

    @property
    def value(self) -> float:
        return p99(self.score_ms)

    @property
    def baseline(self) -> float:
        return p99(self.read_ms)

    @property
    def p50(self) -> float:
        return statistics.median(self.score_ms)

    @property
    def baseline_p50(self) -> float:
        return statistics.median(self.read_ms)

    @property
    def ratios(self) -> list[float]:
        return [self.value / self.baseline] if self.baseline else []

    @property
    def verdicts(self) -> dict[str, bool]:
        return {
            "decision_p99": self.value <= TARGET_MS,
            "decision_simulation": self.simulation.honest_accepted >= HONEST_TARGET,
        }


# --- the customer with 100 past payments ------------------------------------------------------


def _address() -> dict[str, str]:
    return {
        "first_name": "Camille",
        "last_name": "Decision",
        "line1": "12 rue de la Paix",
        "postal_code": "75002",
        "city": "Paris",
        "country": "FR",
    }


def scored_payment_id(say: Say) -> int:
    """The payment to score (its customer and history built on the first run)."""
    from apps.payments.models import Customer, Payment

    found = (
        Payment.objects.filter(
            livemode=False, customer__email=CUSTOMER_EMAIL, custom_data=SCORED_MARK
        )
        .values_list("pk", flat=True)
        .first()
    )
    if found is not None:
        past = (
            Payment.objects.filter(livemode=False, customer__email=CUSTOMER_EMAIL)
            .exclude(pk=found)
            .count()
        )
        if past != PAST_PAYMENTS:
            raise SystemExit(
                f"the decision benchmark's customer has {past} past payments, not "
                f"{PAST_PAYMENTS}: drop the tranche_bench database and run again"
            )
        say(f"  customer {CUSTOMER_EMAIL} with {past} past payments (built by an earlier run)")
        return found
    if Customer.objects.filter(livemode=False, email=CUSTOMER_EMAIL).exists():
        raise SystemExit(
            "the decision benchmark's customer exists without its scored payment: drop the "
            "tranche_bench database and run again"
        )
    started = time.perf_counter()
    payment_id = _build(merchant_id(*MERCHANT))
    say(
        f"  built customer {CUSTOMER_EMAIL}: {PAST_PAYMENTS} past payments ({PAST_PAID} paid, "
        f"{PAST_PAYMENTS - PAST_PAID} in progress) with their instalments, 4 cards, a verified "
        f"phone ({time.perf_counter() - started:.1f} s)"
    )
    return payment_id


def _build(merchant: int) -> int:
    """Bulk inserts in one transaction: the customer, cards, past payments and instalments,
    the payment to score and its checkout."""
    from django.db import transaction
    from django.utils import timezone

    from apps.common.money import split_evenly, to_money
    from apps.payments.models import Card, Checkout, Customer, Instalment, Payment
    from apps.payments.models import PaymentState as S

    now = timezone.now()
    run = uuid.uuid4().hex[:12]
    with transaction.atomic():
        customer = Customer.objects.create(
            livemode=False,
            email=CUSTOMER_EMAIL,
            first_name="Camille",
            last_name="Decision",
            phone=PHONE,
            phone_verified_at=now - timedelta(days=700),
            birth_date=date(1986, 4, 12),
            created_at=now - timedelta(days=720),
            updated_at=now - timedelta(days=700),
        )
        cards = Card.objects.bulk_create(
            Card(
                customer=customer,
                livemode=False,
                processor_token=f"tok_bench_decision_{run}_{number}",
                bin="49740200",
                last4=f"{4242 + number}",
                brand=Card.Brand.CB,
                funding="debit" if number % 2 else "credit",
                issuer_country="FR",
                exp_month=number + 1,
                exp_year=2030,
                three_ds_authenticated_at=created,
                fingerprint=f"fp_bench_decision_{run}_{number}",
                created_at=created,
            )
            for number, created in enumerate(
                now - timedelta(days=days) for days in (715, 480, 200, 2)
            )
        )
        payments, plans = [], []
        for number in range(PAST_PAYMENTS):
            created = now - timedelta(weeks=PAST_PAYMENTS - number, hours=number % 9)
            count = (3, 4, 3, 10, 1)[number % 5]
            purchase = 4_990 + (number * 7_919) % 60_000
            paid = number < PAST_PAID
            payments.append(
                Payment(
                    merchant_id=merchant,
                    livemode=False,
                    state=S.PAID if paid else S.IN_PROGRESS,
                    customer=customer,
                    card=cards[min(number // 30, 2)],
                    installments_count=count,
                    deferred_days=30 if count == 1 else 0,
                    purchase_amount=to_money(purchase),
                    customer_fee=to_money(0),
                    customer_interest=to_money(0),
                    merchant_fee=to_money(purchase * 3 // 100),
                    purchase_date=created.date(),
                    custom_data={"bench": "decision_history"},
                    billing_address=_address(),
                    shipping_address=_address(),
                    created_at=created,
                    updated_at=created,
                    expires_at=created + timedelta(hours=1),
                    accepted_at=created,
                )
            )
            plans.append((created, purchase, count, paid))
        payments = Payment.objects.bulk_create(payments)
        instalments = []
        for payment, (created, purchase, count, paid) in zip(payments, plans, strict=True):
            for number, share in enumerate(split_evenly(purchase, count), start=1):
                due = created + timedelta(days=30 * (number - 1) + (30 if count == 1 else 0))
                settled = paid or (due < now and number < count)  # in progress: not all
                instalments.append(
                    Instalment(
                        payment=payment,
                        number=number,
                        due_date=due.date(),
                        purchase_amount=to_money(share),
                        original_purchase_amount=to_money(share),
                        customer_fee=to_money(0),
                        customer_interest=to_money(0),
                        state=Instalment.State.PAID if settled else Instalment.State.PENDING,
                        paid_at=due if settled else None,
                    )
                )
        Instalment.objects.bulk_create(instalments)
        scored = Payment.objects.create(
            merchant_id=merchant,
            livemode=False,
            state=S.NOT_STARTED,
            customer=customer,
            installments_count=3,
            purchase_amount=to_money(45_000),
            customer_fee=to_money(0),
            customer_interest=to_money(0),
            merchant_fee=to_money(1_350),
            purchase_date=now.date(),
            custom_data=SCORED_MARK,
            billing_address=_address(),
            shipping_address=_address(),
            website_customer_details={
                "new_customer": False,
                "is_guest": False,
                "previous_orders": [{"purchase_amount": 3_000}, {"purchase_amount": 8_000}],
            },
            created_at=now,
            updated_at=now,
            expires_at=now + timedelta(days=3_650),
        )
        Instalment.objects.bulk_create(
            Instalment(
                payment=scored,
                number=number,
                due_date=(now + timedelta(days=30 * (number - 1))).date(),
                purchase_amount=to_money(share),
                original_purchase_amount=to_money(share),
                customer_fee=to_money(0),
                customer_interest=to_money(0),
            )
            for number, share in enumerate(split_evenly(45_000, 3), start=1)
        )
        Checkout.objects.create(
            payment=scored,
            step=Checkout.Step.DECISION,
            first_name="Camille",
            last_name="Decision",
            email=CUSTOMER_EMAIL,
            phone=PHONE,
            birth_date=customer.birth_date,
            address={k: v for k, v in _address().items() if k not in ("first_name", "last_name")},
            terms_accepted_at=now,
            card=cards[3],
            three_ds_completed_at=now,
            device_id=f"dev_bench_decision_{run}",
            ip_address="127.0.0.1",
            created_at=now,
            updated_at=now,
        )
    return scored.pk


# --- timing -------------------------------------------------------------------------------------


def _timed_ms(call: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = call()
    return (time.perf_counter() - start) * 1000, result


def measure_latency(say: Say, payment_id: int) -> tuple[list[float], list[float], str]:
    """payment_score as the checkout runs it (its transaction, the payment and checkout rows
    locked), alternating with the baseline primary-key read: WARMUPS, then RUNS of each."""
    from django.db import connection, transaction
    from django.utils import timezone

    from apps.payments.models import Checkout, Payment
    from apps.payments.services.scoring import payment_score
    from apps.payments.services.transitions import payment_lock

    def score():
        with transaction.atomic():
            payment = payment_lock(payment_id=payment_id)
            checkout = Checkout.objects.select_for_update().get(payment=payment)
            return payment_score(payment=payment, checkout=checkout, now=timezone.now())

    def read():
        return Payment.objects.get(pk=payment_id)

    score_ms, read_ms = [], []
    decision = None
    for number in range(WARMUPS + RUNS):
        elapsed, decision = _timed_ms(score)
        read_elapsed, _payment = _timed_ms(read)
        if number >= WARMUPS:
            score_ms.append(elapsed)
            read_ms.append(read_elapsed)
    features = decision.features
    if features["paid_plans"] != PAST_PAID or features["open_plans"] != PAST_PAYMENTS - PAST_PAID:
        raise SystemExit(
            f"the decision did not see the customer's history: {features['paid_plans']} paid "
            f"and {features['open_plans']} open plans, expected {PAST_PAID} and "
            f"{PAST_PAYMENTS - PAST_PAID}"
        )
    reasons = ", ".join(f"{r['code']} {r['points']:+d}" for r in decision.reasons)
    say(
        f"  payment_score, {RUNS} runs after {WARMUPS} warm-ups: p50 "
        f"{statistics.median(score_ms):.2f} ms, p99 {p99(score_ms):.2f} ms; Payment.objects.get"
        f"(pk=...): p50 {statistics.median(read_ms):.3f} ms, p99 {p99(read_ms):.3f} ms"
    )
    say(
        f"  decision: {decision.outcome}, score {decision.score} ({reasons}); it saw "
        f"{features['paid_plans']} paid and {features['open_plans']} open plans, "
        f"{features['outstanding_cents'] / 100:,.2f} EUR outstanding"
    )
    connection.close()
    return score_ms, read_ms, decision.outcome


def run(say: Say) -> DecisionFigures:
    from apps.payments.services.scoring import rules_active
    from apps.payments.simulation import simulate

    say(
        f"credit decision in process: payment_score for a customer with {PAST_PAYMENTS} past "
        "payments (the features' queries, decide, the CreditDecision insert) in its "
        "transaction with the payment locked, vs a primary-key read of the payment"
    )
    payment_id = scored_payment_id(say)
    score_ms, read_ms, outcome = measure_latency(say, payment_id)
    rules = rules_active()
    say(
        f"simulated traffic: simulate({SIMULATION_COUNT:,}, seed={SIMULATION_SEED}) with the "
        f"rules {rules.version} (apps/payments/simulation.py)"
    )
    started = time.perf_counter()
    report = simulate(SIMULATION_COUNT, SIMULATION_SEED, rules)
    elapsed = time.perf_counter() - started
    say(
        f"  {report.decisions:,} decisions, {report.decisions_per_second:,.0f} decisions/s "
        f"(deciding and answering); {SIMULATION_COUNT:,} checkouts in {elapsed:.1f} s with "
        "their generation"
    )
    return DecisionFigures(
        score_ms=score_ms,
        read_ms=read_ms,
        outcome=outcome,
        simulation=report,
        simulation_seconds=elapsed,
    )
