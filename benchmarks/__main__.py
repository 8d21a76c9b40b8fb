"""`make bench`: the API through gunicorn, plan computation, the ledger and the credit decision
in process, against baselines.

Every figure is a ratio against a baseline measured in the same run on the same machine.

Figures (one summary line each: name, value, baseline, ratio, target, verdict):

- ``me_vs_bare_drf``: requests/s of ``GET /v1/me`` (API key authentication, key lookup,
  active-merchant permission, per-key rate limit, serializer) divided by requests/s of a bare
  DRF view that returns a constant (``GET /_bench/constant``, benchmarks/endpoints.py).
  Target: ratio >= 0.70.
- ``eligibility_vs_bare_drf``: requests/s of ``POST /v2/payments/eligibility`` with 4 queries
  (3x, 4x, 10x, 1x+30 days; 450 EUR; every answer eligible for the benchmark merchant) divided
  by requests/s of the same bare DRF view. Target: ratio >= 0.50.
- ``eligibility_p99_c8``: p99 latency of that eligibility request at 8 concurrent connections
  (``wrk --latency``); baseline: the bare DRF view's p99 in the same rounds. Target: p99 <= 25
  ms on loopback (the ratio is context).
- ``payments_create_vs_bare_drf``: requests/s of ``POST /v1/payments`` (450 EUR in 3
  instalments, a customer with a distinct email on every request, so each creates a
  customer; shipping and billing addresses; one order; no Idempotency-Key, so each request
  creates a payment: the eligibility re-check, the plan, 1 payment + 3 instalment + 1 order
  + 1 event rows in one transaction, and the whole Payment JSON back) divided by requests/s
  of the bare DRF view in the same rounds. Target: ratio >= 0.30. ``--payments-only``
  measures it alone (with its baseline).
- ``plans_many_dates_vs_split_evenly``: ``compute_plan`` + ``plan_apr_bps`` in process over a
  fixed-seed mix of plans (3x, 4x, 4x with a 2.32 % fee, 10x and 12x at 17 %, 1x+30 days;
  50-2,000 EUR) bought on 365 different days, so the date caches miss as they would across a
  year; baseline: the same number of instalment tuples built with ``split_evenly`` (no dates
  arithmetic, no interest, no APR). Target: >= 20,000 plans/s.
- ``ledger_postings_per_tx``: balanced 3-leg postings/s through
  ``apps.ledger.services.posting_create``, single process, one database transaction (and
  commit) per posting: ``recipes.payment_captured`` with a merchant fee, no customer fee, no
  interest and the whole basket captured (clearing debit, merchant balance credit,
  merchant-fee revenue credit), a fresh idempotency key each, all on one merchant; the spec
  is built in the timed loop. Baseline: raw SQL through psycopg on the same connection
  inserting the same rows (the posting rows in one INSERT, then their leg rows with the same
  values in another) into
  plain tables made with ``CREATE TABLE ... (LIKE ledger_... INCLUDING DEFAULTS INCLUDING
  IDENTITY INCLUDING INDEXES)``: no triggers, no foreign keys. Context, no target: bounded by
  the machine's commit (fsync) time.
- ``ledger_postings_batched``: the same with 100 postings per transaction
  (``postings_create`` with 100 specs: one account lookup and one statement), against raw SQL
  with 100 postings per transaction (two multi-row INSERTs). Target: value >= 2,000
  postings/s. Both posting figures: a
  fixed duration per run (``--ledger-duration``, 5 s), the four runs in alternating order
  over ``--rounds`` rounds; medians and the median per-round ratio; every posting is checked
  afterwards (3 legs summing to zero, account balances = sum of legs).
- ``ledger_balance_1m_legs``: ``selectors.account_balance_cents`` as of a past time for an
  account holding 1,000,000 legs: the median over 200 random times (p99 printed beside it).
  Baseline: ``SELECT sum(amount) FROM ledger_leg WHERE account_id = ...`` (what a ledger
  without running balances reads), median of 5. Target: value <= 10 ms. The current balance
  (the account row) is printed as context. The account is built once in the benchmark
  database and reused: a merchant of its own whose merchant balance receives 1,000,000
  two-leg postings against its processor clearing (so 2,000,000 legs in all; one every 30 s
  from 2025-11-01, amounts 1.00-999.99 EUR, one in twenty a debit), bulk-loaded with
  ``generate_series`` 100,000 postings per transaction with the ledger's triggers disabled,
  ``balance_after`` as window sums in time order, then the two balances set and ``ANALYZE``.
  Every run checks both accounts with the audit's SQL (``apps.ledger.audit.CHECKS``) first.
- ``decision_p99_100_past_payments``: p99 latency (ms) of ``payment_score`` in process, as the
  checkout runs it: in ``transaction.atomic()`` with the payment row locked (``payment_lock``)
  and its checkout row locked, the features gathered from the database (history and
  exposure, velocity, deny list), ``decide`` and the CreditDecision insert, for a test-mode
  customer with 100 past payments (80 paid, 20 in progress, with their instalments; 4 cards;
  a verified phone; bulk-inserted once in the benchmark database and reused). 500 timed runs
  after 20 warm-ups; p50 printed beside it. Baseline: p99 of ``Payment.objects.get(pk=...)``
  of the same payment, timed alternately with it in the same run. Target: value <= 50 ms.
- ``decision_simulation_100k``: ``apps.payments.simulation.simulate(100_000, seed=1)`` with
  the active rules, its summary line (honest customers accepted first time and after more
  information, fraud caught, defaults avoided, bad debt avoided, share refused). Context;
  target: honest customers accepted >= 95 %. ``--decision-only`` runs the two decision
  figures alone (about a minute).
- ``queue_tasks_per_s``: django-q2 tasks/s through the ORM broker with Tranche's
  ``Q_CLUSTER`` beside django-q2's defaults, a real ``qcluster`` (benchmarks/queue.py;
  docs/background-jobs.md). Context, no target.
- ``receipt_pdf_ms``: median ms of ``apps.schedules.receipts.receipt_pdf`` in one process
  beside a naive WeasyPrint render of the same template with the system font
  (benchmarks/receipts.py). Target: value <= 30 ms.
- ``debit_run_per_s_10k_due``, ``debit_run_per_s_1m_due``, ``debit_run_cost_1m_vs_10k_due``:
  instalments charged per second by the debit run with the sandbox processor in process,
  with 10,000 and with 1,000,000 instalments due, beside a raw SQL batch update of the same
  rows (benchmarks/debits.py). Targets: >= 1,000 instalments/s; the cost per instalment flat
  (ratio <= 1.20). ``--schedules-only`` runs the queue, receipt and debit figures alone.
- ``dashboard_list_first_page_p95_ms``, ``dashboard_list_deep_page_p95_ms``,
  ``dashboard_search_email_p95_ms``: p95 ms of the dashboard's payment list (the whole
  response through ``django.test.Client`` in process, logged in as staff) with >= 1,000,000
  payments for one merchant (the debit benchmark's): the first page, the page after the
  payment at position 500,000, and a search by email; 50 runs after 5 warm-ups, p50 beside
  it. Baseline: p95 of the bare SELECT of the same rows. Target: value <= 50 ms.
- ``dashboard_export_100k_payments_s``: ``export_request`` + ``export_build`` (CSV and XLSX)
  of exactly 100,000 of that merchant's payments, wall time of the build; baseline: COPY of
  the same rows and columns TO STDOUT WITH CSV. Target: value <= 60 s (benchmarks/dashboard.py).
  ``--dashboard-only`` runs the dashboard figures alone.
- Context, no target: the same plans all bought on one day (what a server sees: a day's
  purchases share their due dates), ``/v1/me`` and eligibility on a second server with
  ``CONFIG_CACHE_SECONDS=0``, and the bare DRF view against a bare Django view.

gunicorn runs with 2 sync workers on 127.0.0.1; the load generator (wrk, 1 thread) shares
the machine's cores. Endpoints are measured for a fixed duration each, in alternating
order, over several rounds; the medians and the median per-round ratio are reported. Each
endpoint's answer is checked before and after it is timed. A run with any non-2xx response
or socket error is reported as failed and left out of the medians, and the benchmark fails.
Plan computation runs first, in this process, before the server starts: 20,000 plans per
run, each run timing the many-dates mix, the one-day mix and the reference one after the
other; the best run of each is reported (the least disturbed on a shared machine). The
ledger figures follow, in this process too (benchmarks/ledger.py); ``--ledger-only`` runs
them alone (about two minutes once the 1,000,000-legs account exists). The credit decision
figures come next, in this process too (benchmarks/decision.py).

Exit status: 0 when every run was clean and every target is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from apps.payments.plans import PlanTerms
    from benchmarks.dashboard import DashboardFigures
    from benchmarks.debits import DebitFigures
    from benchmarks.decision import DecisionFigures
    from benchmarks.ledger import LedgerFigures
    from benchmarks.queue import QueueFigures
    from benchmarks.receipts import ReceiptFigures

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"

BENCH_DATABASE = "tranche_bench"
MERCHANT_NAME = "Benchmark merchant"
MERCHANT_EMAIL = "benchmark@tranche.localhost"
TARGET = 0.70
ELIGIBILITY_TARGET = 0.50
ELIGIBILITY_P99_TARGET_MS = 25.0
PLANS_TARGET = 20_000  # plans/s
PAYMENTS_TARGET = 0.30
WORKERS = 2
RATE_LIMIT = "100000000/minute"

ME = "/v1/me"
BARE_DRF = "/_bench/constant"
BARE_DJANGO = "/_bench/django"
ELIGIBILITY = "/v2/payments/eligibility"
PAYMENTS = "/v1/payments"
ENDPOINTS = [ME, BARE_DRF, BARE_DJANGO, ELIGIBILITY, PAYMENTS]

# What a checkout page asks: four plans for a 450 EUR basket. Every one is eligible for the
# benchmark merchant (the default fee plans: 1x..12x and deferrals, 50-2,000 EUR, FR served).
ELIGIBILITY_BODY = {
    "purchase_amount": 45000,
    "queries": [
        {"installments_count": 3},
        {"installments_count": 4},
        {"installments_count": 10},
        {"installments_count": 1, "deferred_days": 30},
    ],
    "billing_address": {"country": "FR"},
    "locale": "fr",
}
# What a plugin sends to create a payment: 450 EUR in 3, a customer, both addresses, one
# order. wrk sends it with a distinct customer email and order reference on every request
# (PAYMENT_MARK is replaced), without Idempotency-Key: every request creates a payment.
PAYMENT_MARK = "BENCHMARK_MARK"
ADDRESS = {
    "first_name": "Camille",
    "last_name": "Martin",
    "line1": "12 rue de la Paix",
    "postal_code": "75002",
    "city": "Paris",
    "country": "FR",
    "phone": "+33612345678",
}
PAYMENT_BODY = {
    "payment": {
        "purchase_amount": 45000,
        "installments_count": 3,
        "return_url": "https://shop.example/alma/return",
        "customer_cancel_url": "https://shop.example/alma/cancel",
        "ipn_callback_url": "https://shop.example/alma/ipn",
        "custom_data": {"cart_id": PAYMENT_MARK},
        "locale": "fr_FR",
        "shipping_address": ADDRESS,
        "billing_address": ADDRESS,
    },
    "customer": {
        "first_name": "Camille",
        "last_name": "Martin",
        "email": f"c.{PAYMENT_MARK}@example.com",
        "phone": "06 12 34 56 78",
        "birth_date": "1990-05-17",
    },
    "order": {"merchant_reference": f"A-{PAYMENT_MARK}", "data": {"source": "bench"}},
}
POST_BODIES = {
    ELIGIBILITY: json.dumps(ELIGIBILITY_BODY, separators=(",", ":")),
    PAYMENTS: json.dumps(PAYMENT_BODY, separators=(",", ":")).replace(PAYMENT_MARK, "check"),
}


# --- output ----------------------------------------------------------------------------

_lines: list[str] = []


def say(line: str = "") -> None:
    print(line, flush=True)
    _lines.append(line)


# --- benchmark merchant and key ----------------------------------------------------------


def setup_django() -> None:
    """Django on the benchmark's own database: without DATABASE_URL, a `tranche_bench`
    database on the embedded server, so what the benchmark sets up (its merchant, this
    quarter's usury rates) never reaches the database `make run` serves."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(BASE_DIR))
    if not os.environ.get("DATABASE_URL"):
        from config.embedded_db import ensure_running

        socket_dir = ensure_running(database=BENCH_DATABASE)
        os.environ["DATABASE_URL"] = f"postgresql://postgres@/{BENCH_DATABASE}?host={socket_dir}"
    import django

    django.setup()


def migrate_if_needed() -> None:
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        say(f"benchmark database {BENCH_DATABASE}: applying migrations")
        call_command("migrate", interactive=False, verbosity=0)


def benchmark_key() -> str:
    """The benchmark merchant (made once, kept active) and a fresh test key for this run.

    Keys left usable by an earlier run (one that was killed) are revoked first.
    """
    from django.db import transaction
    from django.utils import timezone

    from apps.merchants.models import APIKey, Merchant
    from apps.merchants.services import (
        api_key_create,
        api_key_revoke,
        fee_plans_install_defaults,
        merchant_activate,
        merchant_create,
    )

    now = timezone.now()
    with transaction.atomic():
        merchant = (
            Merchant.objects.filter(legal_name=MERCHANT_NAME, contact_email=MERCHANT_EMAIL)
            .order_by("pk")
            .first()
        )
        if merchant is None:
            merchant = merchant_create(
                legal_name=MERCHANT_NAME, country="FR", contact_email=MERCHANT_EMAIL, now=now
            )
        if merchant.status != Merchant.Status.ACTIVE:
            merchant = merchant_activate(merchant=merchant, now=now)
        if not merchant.fee_plans.exists():  # made before activation installed them
            fee_plans_install_defaults(merchant=merchant)
        for key in APIKey.objects.filter(merchant=merchant, revoked_at__isnull=True):
            if key.is_usable(now):
                api_key_revoke(key=key, now=now)
        issued = api_key_create(merchant=merchant, livemode=False, now=now)
        this_quarters_usury_rates(now)
    return issued.secret


def this_quarters_usury_rates(now) -> None:
    """Credit plans (10x) need the current quarter's usury table, which operators enter
    each quarter: in the benchmark's own database, copy the latest shipped quarter."""
    from apps.common.dates import business_date
    from apps.payments.models import UsuryRate
    from apps.payments.regulation import quarter_start

    quarter = quarter_start(business_date(now))
    latest = UsuryRate.objects.order_by("-effective_from").first()
    if latest is None or latest.effective_from == quarter:
        return
    for rate in UsuryRate.objects.filter(effective_from=latest.effective_from):
        UsuryRate.objects.create(
            effective_from=quarter,
            max_credit_amount=rate.max_credit_amount,
            rate_bps=rate.rate_bps,
            source=f"make bench: copy of {latest.effective_from} (benchmark database only)",
        )


def revoke_key(secret: str) -> None:
    from django.db import connection
    from django.utils import timezone

    from apps.merchants.selectors import api_key_for_secret
    from apps.merchants.services import api_key_revoke

    now = timezone.now()
    key = api_key_for_secret(secret, now=now)
    if key is not None:
        api_key_revoke(key=key, now=now)
    connection.close()


# --- gunicorn ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gunicorn_binary() -> str:
    candidate = Path(sys.executable).parent / "gunicorn"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("gunicorn")
    if found is None:
        raise SystemExit("gunicorn not found (run `make install`)")
    return found


def start_gunicorn(port: int, log: TextIO, extra_env: dict[str, str]) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        TRANCHE_BENCHMARK_ENDPOINTS="1",
        API_RATE_LIMIT=RATE_LIMIT,
        DJANGO_DEBUG="0",  # DEBUG keeps every query in memory: not what production runs
        DJANGO_SETTINGS_MODULE="config.settings",
        LOG_LEVEL="WARNING",
        **extra_env,
    )
    command = [
        gunicorn_binary(),
        "config.wsgi",
        "--workers",
        str(WORKERS),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
    ]
    return subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop_gunicorn(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # the master stops its workers
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def call(url: str, key: str, body: str | None = None) -> tuple[int, bytes]:
    """GET, or POST `body` as JSON, with the API key; (status, body)."""
    headers = {"Authorization": f"Alma-Auth {key}"}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = body.encode()
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_until_serving(process: subprocess.Popen, base: str, key: str, log: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            status, _ = call(base + BARE_DRF, key)
            if status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"gunicorn did not answer in 90 s:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


def label(path: str) -> str:
    return f"{'POST' if path in POST_BODIES else 'GET'} {path}"


def check_endpoints(base: str, key: str, endpoints: list[str], log: Path) -> None:
    """Each endpoint answers 200 with what it should (before and after it is timed)."""
    for path in endpoints:
        status, body = call(base + path, key, POST_BODIES.get(path))
        if status != 200:
            raise SystemExit(
                f"{label(path)} answered {status}: {body[:500]!r} (gunicorn log: {log})"
            )
        if path == ME and (b'"id"' not in body or MERCHANT_NAME.encode() not in body):
            raise SystemExit(f"GET {ME} did not return the benchmark merchant: {body[:500]!r}")
        if path == ELIGIBILITY:
            check_eligibility(body)
        if path == PAYMENTS:
            check_payment(body)


def check_eligibility(body: bytes) -> None:
    """One answer per query, in order, each eligible with its plan."""
    try:
        answers = json.loads(body)
    except ValueError:
        answers = None
    queries = ELIGIBILITY_BODY["queries"]
    if not isinstance(answers, list) or len(answers) != len(queries):
        raise SystemExit(
            f"POST {ELIGIBILITY} did not answer one object per query ({len(queries)}): "
            f"{body[:1000]!r}"
        )
    wrong = [
        f"query {number} {query}: "
        + json.dumps({k: v for k, v in answer.items() if k != "payment_plan"}, sort_keys=True)
        if isinstance(answer, dict)
        else f"query {number} {query}: {answer!r}"
        for number, (query, answer) in enumerate(zip(queries, answers, strict=True), start=1)
        if not (
            isinstance(answer, dict)
            and answer.get("eligible") is True
            and answer.get("installments_count") == query["installments_count"]
            and answer.get("deferred_days") == query.get("deferred_days", 0)
            and len(answer.get("payment_plan") or []) == query["installments_count"]
        )
    ]
    if wrong:
        raise SystemExit(
            f"POST {ELIGIBILITY} did not answer {len(queries)} eligible plans, in order, for "
            "the benchmark merchant; not eligible or not as asked:\n  " + "\n  ".join(wrong)
        )


def check_payment(body: bytes) -> None:
    """A new payment, not started, its 3-instalment plan summing to the amount, with the
    customer, both addresses and the order as sent."""
    try:
        payment = json.loads(body)
    except ValueError:
        payment = None
    sent = PAYMENT_BODY["payment"]
    ok = (
        isinstance(payment, dict)
        and payment.get("state") == "not_started"
        and payment.get("purchase_amount") == sent["purchase_amount"]
        and len(payment.get("payment_plan") or []) == sent["installments_count"]
        and sum(i["total_amount"] for i in payment["payment_plan"]) == sent["purchase_amount"]
        and payment.get("customer", {}).get("email") == "c.check@example.com"
        and (payment.get("shipping_address") or {}).get("city") == ADDRESS["city"]
        and (payment.get("billing_address") or {}).get("city") == ADDRESS["city"]
        and [o.get("merchant_reference") for o in payment.get("orders") or []] == ["A-check"]
        and payment.get("custom_data") == {"cart_id": "check"}
    )
    if not ok:
        raise SystemExit(f"POST {PAYMENTS} did not create the payment as sent: {body[:1500]!r}")


# --- wrk -----------------------------------------------------------------------------------


@dataclass
class Run:
    path: str
    round_no: int
    requests_per_second: float
    requests: int
    non_2xx: int
    socket_errors: int
    latency: str
    p99_ms: float | None

    @property
    def ok(self) -> bool:
        return self.non_2xx == 0 and self.socket_errors == 0 and self.requests > 0


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    say("wrk not found: installing it with apt-get")
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, check=False, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], check=False, capture_output=True)
        subprocess.run(install, check=True, capture_output=True)
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk could not be installed")
    return found


def write_post_script(directory: Path, path: str) -> Path:
    """A wrk script that sends `path`'s JSON body (headers from the command line stay)."""
    if path == PAYMENTS:
        return write_payments_script(directory)
    body = POST_BODIES[path]
    if "]==]" in body:
        raise ValueError("the body would end the Lua string early")
    script = directory / f"post{path.replace('/', '_')}.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = [==[{body}]==]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return script


def write_payments_script(directory: Path) -> Path:
    """A wrk script that sends the payment body with a distinct mark on every request (a
    new customer email and order reference), the mark unique across runs too."""
    template = json.dumps(PAYMENT_BODY, separators=(",", ":"))
    if "]==]" in template or "%" in template:
        raise ValueError("the body would break the Lua template")
    script = directory / "post_v1_payments.lua"
    script.write_text(
        f"local template = [==[{template.replace(PAYMENT_MARK, '%s')}]==]\n"
        "local run = tostring(os.time()) .. tostring(math.random(1000000))\n"
        "local counter = 0\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        "request = function()\n"
        "  counter = counter + 1\n"
        '  local mark = run .. "x" .. counter\n'
        '  return wrk.format("POST", nil, nil, string.format(template, mark, mark, mark))\n'
        "end\n"
    )
    return script


_MS_PER_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def milliseconds(text: str) -> float | None:
    """wrk's durations ("812.00us", "4.56ms", "1.02s", "1.50m") in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    return float(match.group(1)) * _MS_PER_UNIT[match.group(2)] if match else None


def run_wrk(
    wrk: str,
    url: str,
    key: str,
    *,
    duration: int,
    connections: int,
    path: str,
    round_no: int,
    script: Path | None = None,
) -> Run:
    command = [
        wrk,
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{duration}s",
        "--timeout",
        "5s",
        "--latency",
        "--header",
        f"Authorization: Alma-Auth {key}",
        *(["--script", str(script)] if script else []),
        url,
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    out = result.stdout
    if result.returncode != 0:
        raise SystemExit(f"wrk failed ({result.returncode}): {result.stderr or out}")

    def number(pattern: str) -> float | None:
        match = re.search(pattern, out)
        return float(match.group(1)) if match else None

    socket_errors = 0
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        socket_errors = sum(int(group) for group in match.groups())
    latency = re.search(r"Latency\s+(\S+)", out)
    p99 = re.search(r"^\s*99%\s+(\S+)", out, re.MULTILINE)
    return Run(
        path=path,
        round_no=round_no,
        requests_per_second=number(r"Requests/sec:\s+([\d.]+)") or 0.0,
        requests=int(number(r"(\d+) requests in") or 0),
        non_2xx=int(number(r"Non-2xx or 3xx responses:\s+(\d+)") or 0),
        socket_errors=socket_errors,
        latency=latency.group(1) if latency else "?",
        p99_ms=milliseconds(p99.group(1)) if p99 else None,
    )


def describe(run: Run) -> str:
    state = "ok" if run.ok else f"FAILED (non-2xx={run.non_2xx}, socket errors={run.socket_errors})"
    p99 = f"{run.p99_ms:.2f}ms" if run.p99_ms is not None else "?"
    return (
        f"  round {run.round_no}  {label(run.path):<30} {run.requests_per_second:>8.1f} req/s  "
        f"{run.requests:>7} requests  latency avg {run.latency:>8} p99 {p99:>8}  {state}"
    )


RPS = "requests_per_second"
P99 = "p99_ms"


def median_of(runs: list[Run], path: str, measure: str = RPS) -> float | None:
    """The median of `measure` over path's clean runs."""
    values = [getattr(run, measure) for run in runs if run.path == path and run.ok]
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else None


def round_ratios(runs: list[Run], path: str, baseline_path: str, measure: str = RPS) -> list[float]:
    """path / baseline_path in each round, both measured minutes apart on the same server."""
    ratios = []
    for round_number in sorted({run.round_no for run in runs}):
        value, base = (
            next((r for r in runs if r.round_no == round_number and r.path == p), None)
            for p in (path, baseline_path)
        )
        if value and base and value.ok and base.ok:
            numerator, denominator = getattr(value, measure), getattr(base, measure)
            if numerator is not None and denominator:
                ratios.append(numerator / denominator)
    return ratios


def figure_line(
    name: str,
    value: float | None,
    baseline: float | None,
    ratios: list[float],
    suffix: str,
    unit: str = "req/s",
) -> str:
    """value and baseline are medians over the rounds; ratio is the median per-round ratio."""
    if value is None or baseline is None or not ratios:
        return f"{name}  value=n/a  baseline=n/a  ratio=n/a  {suffix}"
    digits = {"ms": 2, "plans/s": 0, "postings/s": 0}.get(unit, 1)
    ratio = statistics.median(ratios)
    shown = f"{ratio:.{2 if ratio >= 0.1 else 3}f}" if ratio >= 0.01 else f"{ratio:.2g}"
    return (
        f"{name}  value={value:.{digits}f} {unit}  baseline={baseline:.{digits}f} {unit}  "
        f"ratio={shown}  {suffix}"
    )


def ledger_figure_lines(figures: LedgerFigures) -> list[str]:
    from benchmarks import ledger

    verdicts = {name: "PASS" if ok else "FAIL" for name, ok in figures.verdicts.items()}
    balance = figures.balance
    return [
        figure_line(
            "ledger_postings_per_tx",
            figures.per_tx.value,
            figures.per_tx.baseline,
            figures.per_tx.ratios,
            "(posting_create, 3 legs, 1 posting per transaction, vs raw SQL inserts of the "
            "same rows; context: bounded by commits, no target)",
            unit="postings/s",
        ),
        figure_line(
            "ledger_postings_batched",
            figures.batched.value,
            figures.batched.baseline,
            figures.batched.ratios,
            f"(postings_create, 3 legs, {ledger.BATCH} postings per transaction, vs raw SQL; "
            f"target value >= {ledger.POSTINGS_TARGET:,.0f} postings/s)  "
            f"{verdicts['ledger_postings']}",
            unit="postings/s",
        ),
        figure_line(
            "ledger_balance_1m_legs",
            balance.as_of_median,
            balance.sum_median,
            balance.ratios,
            f"(account_balance_cents as of a past time, {balance.legs:,} legs, median of "
            f"{len(balance.as_of_ms)}, p99 {ledger.p99(balance.as_of_ms):.2f} ms; now: median "
            f"{balance.now_median:.2f} ms; baseline sum(amount) of the legs; target value <= "
            f"{ledger.BALANCE_TARGET_MS:.0f} ms)  {verdicts['ledger_balance']}",
            unit="ms",
        ),
    ]


# --- plan computation, in process ------------------------------------------------------------

PLANS_PER_RUN = 20_000
PLAN_RUNS = 7
PLAN_SEED = 20_260_101
PLAN_DAYS = 365
FIRST_PLAN_DAY = date(2026, 1, 1)
PlanInput = tuple[int, "PlanTerms", date]  # purchase amount in cents, terms, purchase day


def plan_mix() -> list[tuple[str, PlanTerms]]:
    from apps.payments.plans import PlanTerms

    return [
        ("3x", PlanTerms(3)),
        ("4x", PlanTerms(4)),
        ("4x 2.32 % fee", PlanTerms(4, customer_fee_variable=232)),
        ("10x 17 %", PlanTerms(10, customer_lending_rate=1700)),
        ("12x 17 %", PlanTerms(12, customer_lending_rate=1700)),
        ("1x+30d", PlanTerms(1, deferred_days=30)),
    ]


def plan_inputs(*, one_day: bool) -> list[PlanInput]:
    """PLANS_PER_RUN (amount, terms, purchase day), bought over PLAN_DAYS days or on one day:
    the same amounts and plans either way."""
    rng = random.Random(PLAN_SEED)
    mix = [terms for _name, terms in plan_mix()]
    inputs = []
    for _ in range(PLANS_PER_RUN):
        amount = rng.randint(5_000, 200_000)
        terms = rng.choice(mix)
        day = FIRST_PLAN_DAY + timedelta(days=rng.randrange(PLAN_DAYS))
        inputs.append((amount, terms, FIRST_PLAN_DAY if one_day else day))
    return inputs


def plans_per_second(inputs: list[PlanInput]) -> float:
    """What an eligibility answer needs for each plan: the plan and its APR."""
    from apps.payments.eligibility import plan_apr_bps
    from apps.payments.plans import compute_plan

    start = time.perf_counter()
    for amount, terms, day in inputs:
        plan_apr_bps(compute_plan(purchase_amount=amount, terms=terms, purchase_date=day))
    return len(inputs) / (time.perf_counter() - start)


def reference_per_second(inputs: list[PlanInput]) -> float:
    """The baseline: the same number of instalment tuples, split evenly, nothing else."""
    from apps.common.money import split_evenly

    start = time.perf_counter()
    for amount, terms, day in inputs:
        tuple((day, share, 0, 0) for share in split_evenly(amount, terms.installments_count))
    return len(inputs) / (time.perf_counter() - start)


def check_plans(inputs: list[PlanInput]) -> None:
    """The timed work is the real one: plans add up, and priced plans have an APR."""
    from apps.payments.eligibility import plan_apr_bps
    from apps.payments.plans import compute_plan

    for amount, terms, day in inputs[:200]:
        plan = compute_plan(purchase_amount=amount, terms=terms, purchase_date=day)
        apr = plan_apr_bps(plan)
        priced = terms.customer_fee_variable or terms.customer_lending_rate
        if plan.total_amount != amount + plan.customer_total_cost_amount or (apr > 0) != bool(
            priced
        ):
            raise SystemExit(f"unexpected plan for {amount} {terms} {day}: {plan} APR {apr}")


@dataclass
class PlanFigure:
    value: float
    baseline: float

    @property
    def ratios(self) -> list[float]:
        return [self.value / self.baseline]


def measure_plans() -> tuple[PlanFigure, PlanFigure]:
    """(many dates, one day), each against the reference: the best of PLAN_RUNS runs.

    The three are timed one after the other in each run, so they share the machine's state;
    the best run of each is the least disturbed by whatever else the machine runs.
    """
    many_dates, one_day = plan_inputs(one_day=False), plan_inputs(one_day=True)
    for inputs in (many_dates, one_day):
        check_plans(inputs)
        plans_per_second(inputs)  # warm-up: imports, caches in their steady state
    best = {"many dates": 0.0, "one day": 0.0, "reference": 0.0}
    for run_number in range(1, PLAN_RUNS + 1):
        rates = {
            "many dates": plans_per_second(many_dates),
            "one day": plans_per_second(one_day),
            "reference": reference_per_second(many_dates),
        }
        best = {name: max(best[name], rate) for name, rate in rates.items()}
        say(
            f"  run {run_number}  "
            + "   ".join(f"{name} {rate:>8.0f} plans/s" for name, rate in rates.items())
        )
    return (
        PlanFigure(best["many dates"], best["reference"]),
        PlanFigure(best["one day"], best["reference"]),
    )


# --- main ------------------------------------------------------------------------------------


def git_revision() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else "no commit"


def main(argv: list[str] | None = None) -> int:
    try:
        return run_benchmarks(argv)
    except SystemExit as stop:
        if isinstance(stop.code, str) and _lines:  # a run stopped on a wrong answer: say so
            say(f"STOPPED: {stop.code}")
            write_results()
            raise SystemExit(1) from None
        raise


def write_results() -> None:
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "latest.txt").write_text("\n".join(_lines) + "\n")


def run_benchmarks(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the endpoints (3)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds per endpoint (3)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (8)")
    parser.add_argument(
        "--ledger-duration", type=float, default=5, help="seconds per ledger posting run (5)"
    )
    parser.add_argument(
        "--ledger-only", action="store_true", help="only the ledger figures (no server, no plans)"
    )
    parser.add_argument(
        "--decision-only",
        action="store_true",
        help="only the credit decision figures (no server, no plans, no ledger)",
    )
    parser.add_argument(
        "--schedules-only",
        action="store_true",
        help="only the queue, receipt and debit-run figures (no server, no plans)",
    )
    parser.add_argument(
        "--dashboard-only",
        action="store_true",
        help="only the dashboard figures: payment list pages and an export (no server, no plans)",
    )
    parser.add_argument(
        "--payments-only",
        action="store_true",
        help="only POST /v1/payments against the bare DRF view (no plans, no ledger)",
    )
    args = parser.parse_args(argv)
    if args.ledger_only:
        return run_ledger_only(args)
    if args.payments_only:
        return run_payments_only(args)
    if args.decision_only:
        return run_decision_only()
    if args.schedules_only:
        return run_schedules_only(args)
    if args.dashboard_only:
        return run_dashboard_only()

    wrk = ensure_wrk()
    setup_django()
    migrate_if_needed()
    key = benchmark_key()
    from django.db import connection

    connection.close()  # nothing held open in this process while the server is measured

    RESULTS_DIR.mkdir(exist_ok=True)
    log_path = RESULTS_DIR / "gunicorn.log"
    log_path.write_text("")
    port = free_port()

    say(
        f"benchmark: GET {ME}, POST {ELIGIBILITY} and POST {PAYMENTS} vs a bare DRF view; plan "
        f"computation in process, {datetime.now().astimezone():%Y-%m-%d %H:%M %z}"
    )
    say(
        f"  revision {git_revision()}, python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs shared by server and load generator"
    )

    try:
        mix = ", ".join(name for name, _terms in plan_mix())
        say(
            f"plan computation in process: compute_plan + plan_apr_bps, {PLANS_PER_RUN} plans "
            f"per run, {PLAN_RUNS} runs; best run of each (the least disturbed on a shared machine)"
        )
        say(
            f"  mix (fixed seed {PLAN_SEED}): {mix}; amounts 50.00-2,000.00 EUR; reference: "
            "split_evenly into the same number of instalment tuples, no dates, no interest, no APR"
        )
        say(
            f"  many dates: purchases spread over {PLAN_DAYS} days from {FIRST_PLAN_DAY}, so the "
            "due-date and year-fraction caches miss (the headline: pessimistic); one day: the "
            "same purchases all made on one day (realistic for a server, whose purchases of a "
            "day share their due dates: the caches hit)"
        )
        many_dates, one_day = measure_plans()
        ledger_figures = measure_ledger(args)
        decision_figures = measure_decision()
        schedules_figures = measure_schedules(args)
        dashboard_figures = measure_dashboard()

        say(
            f"HTTP: gunicorn config.wsgi: {WORKERS} sync workers on 127.0.0.1:{port}, DEBUG off; "
            f"wrk --latency: 1 thread, {args.connections} connections, {args.duration} s per "
            f"run, {args.rounds} rounds, alternating order; medians, and the median per-round "
            "ratio"
        )
        say(
            f"  API_RATE_LIMIT={RATE_LIMIT}: the per-key rate limit runs on every API request "
            "but never rejects; every request carries the Authorization header"
        )
        say(f"  POST {ELIGIBILITY} body: {POST_BODIES[ELIGIBILITY]}")
        say(payments_body_line())
        with tempfile.TemporaryDirectory(prefix="tranche-bench-") as scripts:
            runs = measure(
                wrk,
                key,
                args,
                port=port,
                log_path=log_path,
                extra_env={},
                endpoints=ENDPOINTS,
                scripts=Path(scripts),
            )
            say(
                "  then the same with CONFIG_CACHE_SECONDS=0 (key, merchant, fee plan and "
                "usury queries on every request):"
            )
            uncached = measure(
                wrk,
                key,
                args,
                port=free_port(),
                log_path=log_path,
                extra_env={"CONFIG_CACHE_SECONDS": "0"},
                endpoints=[ME, BARE_DRF, ELIGIBILITY],
                scripts=Path(scripts),
            )
    finally:
        revoke_key(key)

    failed = [run for run in runs + uncached if not run.ok]
    dirty = f" ({len(failed)} run(s) had errors and were not counted)" if failed else ""
    me_ratios = round_ratios(runs, ME, BARE_DRF)
    eligibility_ratios = round_ratios(runs, ELIGIBILITY, BARE_DRF)
    p99_ratios = round_ratios(runs, ELIGIBILITY, BARE_DRF, P99)
    eligibility_p99 = median_of(runs, ELIGIBILITY, P99)
    payments_ratios = round_ratios(runs, PAYMENTS, BARE_DRF)
    verdicts = {
        "me": bool(me_ratios) and statistics.median(me_ratios) >= TARGET,
        "eligibility": bool(eligibility_ratios)
        and statistics.median(eligibility_ratios) >= ELIGIBILITY_TARGET,
        "eligibility_p99": eligibility_p99 is not None
        and eligibility_p99 <= ELIGIBILITY_P99_TARGET_MS,
        "plans": many_dates.value >= PLANS_TARGET,
        "payments": bool(payments_ratios) and statistics.median(payments_ratios) >= PAYMENTS_TARGET,
        **ledger_figures.verdicts,
        **decision_figures.verdicts,
        **schedules_figures.verdicts,
        **dashboard_figures.verdicts,
    }

    def verdict(name: str, http: bool = True) -> str:
        return ("PASS" if verdicts[name] else "FAIL") + (dirty if http else "")

    for path, ratios, what in (
        (ME, me_ratios, "req/s"),
        (ELIGIBILITY, eligibility_ratios, "req/s"),
        (ELIGIBILITY, p99_ratios, "p99"),
        (PAYMENTS, payments_ratios, "req/s"),
    ):
        per_round = " ".join(f"{r:.2f}" for r in ratios) or "n/a"
        say(f"  {path} / {BARE_DRF} {what} per round: {per_round}")

    say()
    bare_drf = median_of(runs, BARE_DRF)
    say(
        figure_line(
            "me_vs_bare_drf",
            median_of(runs, ME),
            bare_drf,
            me_ratios,
            f"(target >= {TARGET:.2f})  {verdict('me')}",
        )
    )
    say(
        figure_line(
            "eligibility_vs_bare_drf",
            median_of(runs, ELIGIBILITY),
            bare_drf,
            eligibility_ratios,
            f"(4 queries; target >= {ELIGIBILITY_TARGET:.2f})  {verdict('eligibility')}",
        )
    )
    say(
        figure_line(
            f"eligibility_p99_c{args.connections}",
            eligibility_p99,
            median_of(runs, BARE_DRF, P99),
            p99_ratios,
            f"(p99 latency at {args.connections} connections; target value <= "
            f"{ELIGIBILITY_P99_TARGET_MS:.0f} ms)  {verdict('eligibility_p99')}",
            unit="ms",
        )
    )
    say(payments_figure_line(runs, payments_ratios, verdict("payments")))
    say(
        figure_line(
            "plans_many_dates_vs_split_evenly",
            many_dates.value,
            many_dates.baseline,
            many_dates.ratios,
            f"(compute_plan + plan_apr_bps, {PLAN_DAYS} purchase days; target value >= "
            f"{PLANS_TARGET:,} plans/s)  {verdict('plans', http=False)}",
            unit="plans/s",
        )
    )
    for line in ledger_figure_lines(ledger_figures):
        say(line)
    for line in decision_figure_lines(decision_figures):
        say(line)
    for line in schedules_figures.lines():
        say(line)
    for line in dashboard_figure_lines(dashboard_figures):
        say(line)
    say(
        figure_line(
            "plans_one_day_vs_split_evenly",
            one_day.value,
            one_day.baseline,
            one_day.ratios,
            "(context: one purchase day, as a day's purchases share due dates; no target)",
            unit="plans/s",
        )
    )
    say(
        figure_line(
            "me_uncached_vs_bare_drf",
            median_of(uncached, ME),
            median_of(uncached, BARE_DRF),
            round_ratios(uncached, ME, BARE_DRF),
            "(context: config cache off, no target)",
        )
    )
    say(
        figure_line(
            "eligibility_uncached_vs_bare_drf",
            median_of(uncached, ELIGIBILITY),
            median_of(uncached, BARE_DRF),
            round_ratios(uncached, ELIGIBILITY, BARE_DRF),
            "(context: config cache off, no target)",
        )
    )
    say(
        figure_line(
            "bare_drf_vs_bare_django",
            bare_drf,
            median_of(runs, BARE_DJANGO),
            round_ratios(runs, BARE_DRF, BARE_DJANGO),
            "(context, no target)",
        )
    )

    write_results()
    return 0 if all(verdicts.values()) and not failed else 1


def measure_ledger(args: argparse.Namespace) -> LedgerFigures:
    from benchmarks import ledger

    return ledger.run(say, duration=args.ledger_duration, rounds=args.rounds)


def run_ledger_only(args: argparse.Namespace) -> int:
    setup_django()
    migrate_if_needed()
    say(f"benchmark: the ledger only, in process, {datetime.now().astimezone():%Y-%m-%d %H:%M %z}")
    say(f"  revision {git_revision()}, python {platform.python_version()}, {os.cpu_count()} CPUs")
    figures = measure_ledger(args)
    say()
    for line in ledger_figure_lines(figures):
        say(line)
    write_results()
    return 0 if all(figures.verdicts.values()) else 1


def measure_decision() -> DecisionFigures:
    from benchmarks import decision

    return decision.run(say)


def decision_figure_lines(figures: DecisionFigures) -> list[str]:
    from benchmarks import decision

    verdicts = {name: "PASS" if ok else "FAIL" for name, ok in figures.verdicts.items()}
    return [
        figure_line(
            "decision_p99_100_past_payments",
            figures.value,
            figures.baseline,
            figures.ratios,
            f"(payment_score in its transaction, payment locked, {decision.PAST_PAYMENTS} past "
            f"payments, p99 of {len(figures.score_ms)}; p50 {figures.p50:.2f} ms; baseline "
            f"Payment.objects.get(pk=...) p99, p50 {figures.baseline_p50:.3f} ms; target value "
            f"<= {decision.TARGET_MS:.0f} ms)  {verdicts['decision_p99']}",
            unit="ms",
        ),
        f"decision_simulation_100k  {figures.simulation.summary()}  (seed "
        f"{figures.simulation.seed}, rules {figures.simulation.rules_version}; context; target "
        f"honest accepted >= {decision.HONEST_TARGET:.0f} %)  {verdicts['decision_simulation']}",
    ]


def run_decision_only() -> int:
    setup_django()
    migrate_if_needed()
    say(
        "benchmark: the credit decision only, in process, "
        f"{datetime.now().astimezone():%Y-%m-%d %H:%M %z}"
    )
    say(f"  revision {git_revision()}, python {platform.python_version()}, {os.cpu_count()} CPUs")
    figures = measure_decision()
    say()
    for line in decision_figure_lines(figures):
        say(line)
    write_results()
    return 0 if all(figures.verdicts.values()) else 1


@dataclass
class SchedulesFigures:
    """The schedules issue's figures: the task queue, receipts and the debit run."""

    queue: QueueFigures
    receipts: ReceiptFigures
    debits: DebitFigures

    @property
    def verdicts(self) -> dict[str, bool]:
        return {
            "queue": self.queue.ok,  # context: only a clean run is required
            **self.receipts.verdicts,
            **self.debits.verdicts,
        }

    def lines(self) -> list[str]:
        from benchmarks import debits, queue, receipts

        return [
            *queue.figure_lines(self.queue),
            *receipts.figure_lines(self.receipts),
            *debits.figure_lines(self.debits),
        ]


def measure_schedules(args: argparse.Namespace) -> SchedulesFigures:
    from benchmarks import debits, queue, receipts

    return SchedulesFigures(
        queue=queue.run(say, rounds=args.rounds),
        receipts=receipts.run(say),
        debits=debits.run(say, rounds=args.rounds),
    )


def run_schedules_only(args: argparse.Namespace) -> int:
    setup_django()
    migrate_if_needed()
    say(
        "benchmark: the task queue, receipts and the debit run, "
        f"{datetime.now().astimezone():%Y-%m-%d %H:%M %z}"
    )
    say(f"  revision {git_revision()}, python {platform.python_version()}, {os.cpu_count()} CPUs")
    figures = measure_schedules(args)
    say()
    for line in figures.lines():
        say(line)
    write_results()
    return 0 if all(figures.verdicts.values()) else 1


def measure_dashboard() -> DashboardFigures:
    from benchmarks import dashboard

    return dashboard.run(say)


def dashboard_figure_lines(figures: DashboardFigures) -> list[str]:
    from benchmarks import dashboard

    return dashboard.figure_lines(figures)


def run_dashboard_only() -> int:
    setup_django()
    migrate_if_needed()
    say(
        "benchmark: the dashboard's payment list and exports, in process, "
        f"{datetime.now().astimezone():%Y-%m-%d %H:%M %z}"
    )
    say(f"  revision {git_revision()}, python {platform.python_version()}, {os.cpu_count()} CPUs")
    figures = measure_dashboard()
    say()
    for line in dashboard_figure_lines(figures):
        say(line)
    write_results()
    return 0 if all(figures.verdicts.values()) else 1


def payments_body_line() -> str:
    return (
        f"  POST {PAYMENTS} body ({PAYMENT_MARK}: distinct on every request, no "
        f"Idempotency-Key): {json.dumps(PAYMENT_BODY, separators=(',', ':'))}"
    )


def payments_figure_line(runs: list[Run], ratios: list[float], verdict: str) -> str:
    return figure_line(
        "payments_create_vs_bare_drf",
        median_of(runs, PAYMENTS),
        median_of(runs, BARE_DRF),
        ratios,
        f"(3x, new customer, 2 addresses, 1 order; target >= {PAYMENTS_TARGET:.2f})  {verdict}",
    )


def run_payments_only(args: argparse.Namespace) -> int:
    wrk = ensure_wrk()
    setup_django()
    migrate_if_needed()
    key = benchmark_key()
    from django.db import connection

    connection.close()
    RESULTS_DIR.mkdir(exist_ok=True)
    log_path = RESULTS_DIR / "gunicorn.log"
    log_path.write_text("")
    port = free_port()
    say(
        f"benchmark: POST {PAYMENTS} vs a bare DRF view, "
        f"{datetime.now().astimezone():%Y-%m-%d %H:%M %z}"
    )
    say(
        f"  revision {git_revision()}, python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs shared by server and load generator"
    )
    say(
        f"HTTP: gunicorn config.wsgi: {WORKERS} sync workers on 127.0.0.1:{port}, DEBUG off; "
        f"wrk --latency: 1 thread, {args.connections} connections, {args.duration} s per run, "
        f"{args.rounds} rounds, alternating order; medians, and the median per-round ratio"
    )
    say(payments_body_line())
    try:
        with tempfile.TemporaryDirectory(prefix="tranche-bench-") as scripts:
            runs = measure(
                wrk,
                key,
                args,
                port=port,
                log_path=log_path,
                extra_env={},
                endpoints=[PAYMENTS, BARE_DRF],
                scripts=Path(scripts),
            )
    finally:
        revoke_key(key)
    failed = [run for run in runs if not run.ok]
    ratios = round_ratios(runs, PAYMENTS, BARE_DRF)
    passed = bool(ratios) and statistics.median(ratios) >= PAYMENTS_TARGET
    dirty = f" ({len(failed)} run(s) had errors and were not counted)" if failed else ""
    say(
        f"  {PAYMENTS} / {BARE_DRF} req/s per round: "
        + (" ".join(f"{r:.2f}" for r in ratios) or "n/a")
    )
    say()
    say(payments_figure_line(runs, ratios, ("PASS" if passed else "FAIL") + dirty))
    write_results()
    return 0 if passed and not failed else 1


def measure(
    wrk: str,
    key: str,
    args: argparse.Namespace,
    *,
    port: int,
    log_path: Path,
    extra_env: dict[str, str],
    endpoints: list[str],
    scripts: Path,
) -> list[Run]:
    """Start a server, check and warm it up, then time each endpoint over the rounds, check
    the answers again; stop it."""
    base = f"http://127.0.0.1:{port}"
    script_for = {
        path: write_post_script(scripts, path) for path in endpoints if path in POST_BODIES
    }
    runs: list[Run] = []

    def timed(path: str, duration: int, round_number: int) -> Run:
        return run_wrk(
            wrk,
            base + path,
            key,
            duration=duration,
            connections=args.connections,
            path=path,
            round_no=round_number,
            script=script_for.get(path),
        )

    with open(log_path, "a") as log:
        process = start_gunicorn(port, log, extra_env)
    try:
        wait_until_serving(process, base, key, log_path)
        check_endpoints(base, key, endpoints, log_path)
        for path in endpoints:  # warm-up: workers import lazily, connections open
            warm = timed(path, args.warmup, 0)
            if not warm.ok:
                say(describe(warm) + "  (warm-up)")
        for round_number in range(1, args.rounds + 1):
            shift = (round_number - 1) % len(endpoints)
            for path in endpoints[shift:] + endpoints[:shift]:
                run = timed(path, args.duration, round_number)
                runs.append(run)
                say(describe(run))
        check_endpoints(base, key, endpoints, log_path)
    finally:
        stop_gunicorn(process)
    return runs


if __name__ == "__main__":
    sys.exit(main())
