"""`make bench`: GET /v1/me against a bare DRF view, through gunicorn, same server, same run.

Figure: requests/s of ``GET /v1/me`` (API key authentication, key lookup, active-merchant
permission, per-key rate limit, serializer) divided by requests/s of a bare DRF view that
returns a constant (``/_bench/constant``, benchmarks/endpoints.py). Target: >= 0.70.
A bare Django view (``/_bench/django``) is measured too, as context.

gunicorn runs with 2 sync workers on 127.0.0.1; the load generator (wrk, 1 thread) shares
the machine's cores. Endpoints are measured for a fixed duration each, in alternating
order, over several rounds; the median is reported. A run with any non-2xx response or
socket error is reported as failed and left out of the median, and the benchmark fails.

Exit status: 0 when every run was clean and the target is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"

MERCHANT_NAME = "Benchmark merchant"
MERCHANT_EMAIL = "benchmark@tranche.localhost"
TARGET = 0.70
WORKERS = 2
RATE_LIMIT = "100000000/minute"

ME = "/v1/me"
BARE_DRF = "/_bench/constant"
BARE_DJANGO = "/_bench/django"
ENDPOINTS = [ME, BARE_DRF, BARE_DJANGO]


# --- output ----------------------------------------------------------------------------

_lines: list[str] = []


def say(line: str = "") -> None:
    print(line, flush=True)
    _lines.append(line)


# --- benchmark merchant and key ----------------------------------------------------------


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()


def migrate_if_needed() -> None:
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        say("dev database has unapplied migrations: running `manage.py migrate` (as make run)")
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
        for key in APIKey.objects.filter(merchant=merchant, revoked_at__isnull=True):
            if key.is_usable(now):
                api_key_revoke(key=key, now=now)
        issued = api_key_create(merchant=merchant, livemode=False, now=now)
    return issued.secret


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


def get(url: str, key: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Alma-Auth {key}"})
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
            status, _ = get(base + BARE_DRF, key)
            if status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"gunicorn did not answer in 90 s:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


def check_endpoints(base: str, key: str, endpoints: list[str]) -> None:
    """Each endpoint answers 200 with what it should, before anything is timed."""
    for path in endpoints:
        status, body = get(base + path, key)
        if status != 200:
            raise SystemExit(f"GET {path} answered {status}: {body[:500]!r}")
    _, body = get(base + ME, key)
    if b'"id"' not in body or MERCHANT_NAME.encode() not in body:
        raise SystemExit(f"GET {ME} did not return the benchmark merchant: {body[:500]!r}")


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


def run_wrk(
    wrk: str, url: str, key: str, *, duration: int, connections: int, path: str, round_no: int
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
        "--header",
        f"Authorization: Alma-Auth {key}",
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
    return Run(
        path=path,
        round_no=round_no,
        requests_per_second=number(r"Requests/sec:\s+([\d.]+)") or 0.0,
        requests=int(number(r"(\d+) requests in") or 0),
        non_2xx=int(number(r"Non-2xx or 3xx responses:\s+(\d+)") or 0),
        socket_errors=socket_errors,
        latency=latency.group(1) if latency else "?",
    )


def describe(run: Run) -> str:
    state = "ok" if run.ok else f"FAILED (non-2xx={run.non_2xx}, socket errors={run.socket_errors})"
    return (
        f"  round {run.round_no}  {run.path:<16} {run.requests_per_second:>9.1f} req/s  "
        f"{run.requests:>7} requests  avg latency {run.latency:>8}  {state}"
    )


def median_rps(runs: list[Run], path: str) -> float | None:
    values = [run.requests_per_second for run in runs if run.path == path and run.ok]
    return statistics.median(values) if values else None


def round_ratios(runs: list[Run], path: str, baseline_path: str) -> list[float]:
    """path / baseline_path in each round, both measured minutes apart on the same server."""
    ratios = []
    for round_number in sorted({run.round_no for run in runs}):
        value, base = (
            next((r for r in runs if r.round_no == round_number and r.path == p), None)
            for p in (path, baseline_path)
        )
        if value and base and value.ok and base.ok and base.requests_per_second:
            ratios.append(value.requests_per_second / base.requests_per_second)
    return ratios


def figure_line(
    name: str, value: float | None, baseline: float | None, ratios: list[float], suffix: str
) -> str:
    """value and baseline are medians over the rounds; ratio is the median per-round ratio."""
    if value is None or baseline is None or not ratios:
        return f"{name}  value=n/a  baseline=n/a  ratio=n/a  {suffix}"
    return (
        f"{name}  value={value:.1f} req/s  baseline={baseline:.1f} req/s  "
        f"ratio={statistics.median(ratios):.2f}  {suffix}"
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
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the endpoints (3)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds per endpoint (3)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (8)")
    args = parser.parse_args(argv)

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

    say(f"benchmark: GET {ME} vs a bare DRF view, {datetime.now().astimezone():%Y-%m-%d %H:%M %z}")
    say(
        f"  revision {git_revision()}, python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs shared by server and load generator"
    )
    say(
        f"  gunicorn config.wsgi: {WORKERS} sync workers on 127.0.0.1:{port}, DEBUG off; "
        f"wrk: 1 thread, {args.connections} connections, {args.duration} s per run, "
        f"{args.rounds} rounds, alternating order; medians, and the median per-round ratio"
    )
    say(
        f"  API_RATE_LIMIT={RATE_LIMIT}: the per-key rate limit runs on every {ME} request "
        "but never rejects; every request carries the Authorization header"
    )

    try:
        runs = measure(
            wrk, key, args, port=port, log_path=log_path, extra_env={}, endpoints=ENDPOINTS
        )
        say(f"  then the same with API_KEY_CACHE_SECONDS=0 (a key lookup query on every {ME}):")
        uncached = measure(
            wrk,
            key,
            args,
            port=free_port(),
            log_path=log_path,
            extra_env={"API_KEY_CACHE_SECONDS": "0"},
            endpoints=[ME, BARE_DRF],
        )
    finally:
        revoke_key(key)

    failed = [run for run in runs + uncached if not run.ok]
    ratios = round_ratios(runs, ME, BARE_DRF)
    passed = not failed and bool(ratios) and statistics.median(ratios) >= TARGET
    verdict = "PASS" if passed else "FAIL"
    if failed:
        verdict += f" ({len(failed)} run(s) had errors and were not counted)"
    say(f"  {ME} / {BARE_DRF} per round: {' '.join(f'{r:.2f}' for r in ratios) or 'n/a'}")

    say()
    me, bare_drf = median_rps(runs, ME), median_rps(runs, BARE_DRF)
    bare_django = median_rps(runs, BARE_DJANGO)
    say(figure_line("me_vs_bare_drf", me, bare_drf, ratios, f"(target >= {TARGET:.2f})  {verdict}"))
    say(
        figure_line(
            "me_uncached_vs_bare_drf",
            median_rps(uncached, ME),
            median_rps(uncached, BARE_DRF),
            round_ratios(uncached, ME, BARE_DRF),
            "(context: key cache off, no target)",
        )
    )
    say(
        figure_line(
            "bare_drf_vs_bare_django",
            bare_drf,
            bare_django,
            round_ratios(runs, BARE_DRF, BARE_DJANGO),
            "(context, no target)",
        )
    )

    (RESULTS_DIR / "latest.txt").write_text("\n".join(_lines) + "\n")
    return 0 if passed else 1


def measure(
    wrk: str,
    key: str,
    args: argparse.Namespace,
    *,
    port: int,
    log_path: Path,
    extra_env: dict[str, str],
    endpoints: list[str],
) -> list[Run]:
    """Start a server, warm it up, then time each endpoint over the rounds; stop it."""
    base = f"http://127.0.0.1:{port}"
    runs: list[Run] = []
    with open(log_path, "a") as log:
        process = start_gunicorn(port, log, extra_env)
    try:
        wait_until_serving(process, base, key, log_path)
        check_endpoints(base, key, endpoints)
        for path in endpoints:  # warm-up: workers import lazily, connections open
            warm = run_wrk(
                wrk,
                base + path,
                key,
                duration=args.warmup,
                connections=args.connections,
                path=path,
                round_no=0,
            )
            if not warm.ok:
                say(describe(warm) + "  (warm-up)")
        for round_number in range(1, args.rounds + 1):
            shift = (round_number - 1) % len(endpoints)
            for path in endpoints[shift:] + endpoints[:shift]:
                run = run_wrk(
                    wrk,
                    base + path,
                    key,
                    duration=args.duration,
                    connections=args.connections,
                    path=path,
                    round_no=round_number,
                )
                runs.append(run)
                say(describe(run))
    finally:
        stop_gunicorn(process)
    return runs


if __name__ == "__main__":
    sys.exit(main())
