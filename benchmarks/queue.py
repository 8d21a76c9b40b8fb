"""Task queue figure for `make bench`: django-q2 throughput with Tranche's Q_CLUSTER beside
django-q2's defaults, through real clusters.

``queue_tasks_per_s``: tasks/s from the enqueue of the first of 2,000 trivial tasks
(``noop`` below, through ``django_q.tasks.async_task`` and the ORM broker, one autocommit
INSERT each, as an after-commit enqueue does) until the broker holds none of them (every
one executed, its result saved as the variant saves results, and acknowledged). Value:
Tranche's settings (``config.settings``); baseline: django-q2's defaults
(``benchmarks/settings_queue_defaults.py``: only the ORM broker, the name and the worker
count set). Each cluster is a subprocess with 2 workers (``python -m benchmarks.queue
--serve``: the ``qcluster`` command, as ``manage.py qcluster`` runs it, with the variant's
DJANGO_SETTINGS_MODULE and this benchmark's queue), one at a time, alternating order over 3
rounds; medians and the median per-round ratio. Context, no target (docs/background-jobs.md
explains the values).

Written to the benchmark's own database (``tranche_bench``, as benchmarks/ledger.py), on a
queue of its own (``cluster_name`` ``tranche-bench-queue``: the clusters started here
neither run another queue's tasks nor Tranche's schedules). Before each timed run, the task
results table is brought to the variant's steady state: the rows of earlier runs removed,
then filled to ``save_limit`` successes (what a long-running cluster holds, and what
django-q2's pruning reads on every result it saves). The rows this benchmark wrote are
removed at the end. Cluster logs: benchmarks/results/queue-<variant>.log.

Run alone: ``python -m benchmarks.queue [--tasks N] [--rounds N] [--tranche-overrides JSON]``
(the last to try Q_CLUSTER values before they go into config/settings.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"

CLUSTER = "tranche-bench-queue"  # the broker key (queue) of the clusters started here
TASK_FUNC = "benchmarks.queue.noop"
PREFILL_GROUP = "bench-queue-prefill"
TASKS = 2_000
WARMUP_TASKS = 50
WORKERS = 2
ROUNDS = 3
VARIANTS = (
    ("tranche", "config.settings"),
    ("defaults", "benchmarks.settings_queue_defaults"),
)
START_LIMIT_SECONDS = 60.0
DRAIN_LIMIT_SECONDS = 600.0
STOP_LIMIT_SECONDS = 30.0
POLL_SECONDS = 0.02
CONF_MARK = "BENCH_QUEUE_CONF "
# What each cluster says it runs with (read from django_q.conf.Conf in the subprocess).
CONF_FIELDS = (
    "WORKERS",
    "TIMEOUT",
    "RETRY",
    "MAX_ATTEMPTS",
    "SAVE_LIMIT",
    "QUEUE_LIMIT",
    "BULK",
    "POLL",
    "GUARD_CYCLE",
    "ACK_FAILURES",
    "CATCH_UP",
    "RECYCLE",
)

Say = Callable[[str], None]


def noop(number: int) -> int:
    """The trivial task timed here: what remains is django-q2's own cost per task."""
    return number


@dataclass
class Run:
    variant: str
    round_no: int
    tasks: int
    seconds: float  # first enqueue to the last acknowledgement
    enqueue_seconds: float
    kept: int  # results of this run still in the table (pruning may remove some)
    failed: int
    repeated: int  # results with attempt_count > 1 (a task run again)
    conf: dict[str, Any]

    @property
    def per_s(self) -> float:
        return self.tasks / self.seconds

    @property
    def ok(self) -> bool:
        every_result_kept = self.conf["SAVE_LIMIT"] != 0 or self.kept == self.tasks
        return self.failed == 0 and self.repeated == 0 and every_result_kept

    def describe(self) -> str:
        return (
            f"  round {self.round_no} {self.variant:<8} {self.tasks:,} tasks in "
            f"{self.seconds:6.2f} s = {self.per_s:7.1f} tasks/s  (enqueued in "
            f"{self.enqueue_seconds:.2f} s; results kept {self.kept:,}, failed {self.failed}, "
            f"run twice {self.repeated}){'' if self.ok else '  WRONG'}"
        )


@dataclass
class QueueFigures:
    runs: list[Run] = field(default_factory=list)

    def _per_s(self, variant: str) -> list[float]:
        return [run.per_s for run in self.runs if run.variant == variant]

    @property
    def value(self) -> float | None:
        values = self._per_s("tranche")
        return statistics.median(values) if values else None

    @property
    def baseline(self) -> float | None:
        values = self._per_s("defaults")
        return statistics.median(values) if values else None

    @property
    def ratios(self) -> list[float]:
        by_round: dict[int, dict[str, float]] = {}
        for run in self.runs:
            by_round.setdefault(run.round_no, {})[run.variant] = run.per_s
        return [
            per["tranche"] / per["defaults"]
            for per in by_round.values()
            if "tranche" in per and per.get("defaults")
        ]

    @property
    def ok(self) -> bool:
        return bool(self.runs) and all(run.ok for run in self.runs)


# --- the measurement (parent process) -------------------------------------------------------


def run(
    say: Say,
    *,
    tasks: int = TASKS,
    rounds: int = ROUNDS,
    tranche_overrides: dict[str, Any] | None = None,
) -> QueueFigures:
    """Time both variants, alternating, and return the runs (Django is set up on the
    benchmark database by the caller). ``tranche_overrides`` replace some of Tranche's
    Q_CLUSTER values, to try values before they go into config/settings.py."""
    say(
        f"task queue: django-q2 ORM broker, `manage.py qcluster` subprocess with {WORKERS} "
        f"workers, {tasks:,} trivial tasks per run from the first enqueue until all are "
        f"acknowledged; Tranche's Q_CLUSTER vs django-q2's defaults, {rounds} rounds, "
        "alternating order; medians, and the median per-round ratio"
    )
    RESULTS_DIR.mkdir(exist_ok=True)
    for variant, _module in VARIANTS:
        _log_path(variant).write_text("")
    figures = QueueFigures()
    described: set[str] = set()
    _clean()
    try:
        for round_no in range(1, rounds + 1):
            order = VARIANTS if round_no % 2 else tuple(reversed(VARIANTS))
            for variant, module in order:
                measured = measure_run(
                    variant,
                    module,
                    round_no=round_no,
                    tasks=tasks,
                    overrides=tranche_overrides if variant == "tranche" else None,
                )
                if variant not in described:
                    described.add(variant)
                    tried = (
                        " with " + json.dumps(tranche_overrides)
                        if variant == "tranche" and tranche_overrides
                        else ""
                    )
                    say(f"  {variant} ({module}{tried}): {_describe_conf(measured.conf)}")
                figures.runs.append(measured)
                say(measured.describe())
    finally:
        _clean()
    return figures


def figure_lines(figures: QueueFigures) -> list[str]:
    from benchmarks.__main__ import figure_line

    per_round = " ".join(f"{ratio:.2f}" for ratio in figures.ratios) or "n/a"
    verdict = "" if figures.ok else "  FAIL (a run lost, failed or repeated tasks)"
    return [
        f"  tranche / defaults tasks/s per round: {per_round}",
        figure_line(
            "queue_tasks_per_s",
            figures.value,
            figures.baseline,
            figures.ratios,
            f"(Tranche's Q_CLUSTER vs django-q2's defaults, {WORKERS} workers, ORM broker; "
            f"context, no target){verdict}",
            unit="tasks/s",
        ),
    ]


def measure_run(
    variant: str,
    settings_module: str,
    *,
    round_no: int,
    tasks: int = TASKS,
    overrides: dict[str, Any] | None = None,
) -> Run:
    """Start a cluster with ``settings_module`` (and Q_CLUSTER ``overrides``), warm it up,
    bring the results table to its steady state, time ``tasks`` tasks, stop it."""
    from django_q.brokers import get_broker
    from django_q.models import Task

    broker = get_broker(CLUSTER)
    with _log_path(variant).open("a") as log:
        log.write(f"\n--- round {round_no} {datetime.now().astimezone():%H:%M:%S}\n")
        log.flush()
        offset = log.tell()
        process = _start_cluster(settings_module, overrides or {}, log)
    try:
        conf = _cluster_conf(process, _log_path(variant), offset)
        warm_up = f"bench-queue-warmup-{uuid.uuid4().hex[:12]}"
        _enqueue(broker, WARMUP_TASKS, group=warm_up)
        _wait_drained(process, _log_path(variant), limit=START_LIMIT_SECONDS)
        _steady_state(conf["SAVE_LIMIT"])

        group = f"bench-queue-{uuid.uuid4().hex[:12]}"
        started = time.perf_counter()
        _enqueue(broker, tasks, group=group)
        enqueued = time.perf_counter()
        _wait_drained(process, _log_path(variant), limit=DRAIN_LIMIT_SECONDS)
        finished = time.perf_counter()
    finally:
        _stop_cluster(process)

    results = Task.objects.filter(group=group)
    return Run(
        variant=variant,
        round_no=round_no,
        tasks=tasks,
        seconds=finished - started,
        enqueue_seconds=enqueued - started,
        kept=results.filter(success=True).count(),
        failed=results.filter(success=False).count(),
        repeated=results.filter(attempt_count__gt=1).count(),
        conf=conf,
    )


def _log_path(variant: str) -> Path:
    return RESULTS_DIR / f"queue-{variant}.log"


def _start_cluster(
    settings_module: str, overrides: dict[str, Any], log: Any
) -> subprocess.Popen[bytes]:
    from django.conf import settings

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "Q_WORKERS": str(WORKERS),
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,  # signs the task packages: the same here
        "DATABASE_URL": os.environ["DATABASE_URL"],  # the benchmark database (setup_django)
    }
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.queue", "--serve", json.dumps(overrides)],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: its sentinel and workers stop with it
    )


def _stop_cluster(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # the cluster stops its pusher, workers and monitor
    try:
        process.wait(timeout=STOP_LIMIT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the group started above, nothing else
        process.wait(timeout=STOP_LIMIT_SECONDS)


def _log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]


def _cluster_conf(process: subprocess.Popen[bytes], log_path: Path, offset: int) -> dict[str, Any]:
    """What the cluster says it runs with (its first line, written from ``offset`` on)."""
    deadline = time.monotonic() + START_LIMIT_SECONDS
    while time.monotonic() < deadline:
        with log_path.open("rb") as log:
            log.seek(offset)
            for line in log.read().decode(errors="replace").splitlines():
                if line.startswith(CONF_MARK):
                    return json.loads(line[len(CONF_MARK) :])
        if process.poll() is not None:
            raise SystemExit(f"the cluster exited ({process.returncode}):\n{_log_tail(log_path)}")
        time.sleep(0.05)
    raise SystemExit(f"the cluster did not start in {START_LIMIT_SECONDS} s")


@contextmanager
def _quiet_enqueue() -> Iterator[None]:
    """async_task logs each enqueue at INFO: not 2,000 lines here."""
    logger = logging.getLogger("django-q")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _enqueue(broker: Any, count: int, *, group: str) -> None:
    from django_q.tasks import async_task

    with _quiet_enqueue():
        for number in range(count):
            async_task(TASK_FUNC, number, broker=broker, group=group)


def _wait_drained(process: subprocess.Popen[bytes], log_path: Path, *, limit: float) -> None:
    """Until the broker holds none of this queue's tasks (each one acknowledged)."""
    from django_q.models import OrmQ

    pending = OrmQ.objects.filter(key=CLUSTER)
    deadline = time.monotonic() + limit
    while pending.exists():
        if process.poll() is not None:
            raise SystemExit(f"the cluster exited ({process.returncode}):\n{_log_tail(log_path)}")
        if time.monotonic() > deadline:
            raise SystemExit(
                f"{pending.count()} tasks still queued after {limit:.0f} s:\n{_log_tail(log_path)}"
            )
        time.sleep(POLL_SECONDS)


def _steady_state(save_limit: int) -> None:
    """This benchmark's earlier results removed, then successes up to ``save_limit`` (the
    table a long-running cluster prunes on every result it saves)."""
    from django_q.models import Success, Task

    Task.objects.filter(func=TASK_FUNC).delete()
    if save_limit <= 0:
        return
    others = Success.objects.count()
    stopped = datetime.now(UTC) - timedelta(days=1)  # older than anything timed: pruned first
    Task.objects.bulk_create(
        Task(
            id=uuid.uuid4().hex,
            name=f"prefill-{number}",
            func=TASK_FUNC,
            args=(number,),
            kwargs={},
            result=number,
            group=PREFILL_GROUP,
            started=stopped,
            stopped=stopped,
            success=True,
            attempt_count=1,
        )
        for number in range(max(0, save_limit - others))
    )


def _clean() -> None:
    """Nothing of this benchmark left behind: its results and any task still queued."""
    from django_q.models import OrmQ, Task

    OrmQ.objects.filter(key=CLUSTER).delete()
    Task.objects.filter(func=TASK_FUNC).delete()


def _describe_conf(conf: dict[str, Any]) -> str:
    return ", ".join(f"{name.lower()}={conf[name]}" for name in CONF_FIELDS)


# --- the cluster (subprocess) -----------------------------------------------------------------


def serve(overrides: dict[str, Any]) -> None:
    """``manage.py qcluster`` with DJANGO_SETTINGS_MODULE's Q_CLUSTER on this benchmark's own
    queue (plus ``overrides``, for trying other values by hand); says its configuration
    first."""
    from django.conf import settings

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, **overrides, "cluster_name": CLUSTER}
    import django

    django.setup()
    from django_q.conf import Conf

    conf = {name: getattr(Conf, name) for name in CONF_FIELDS}
    print(CONF_MARK + json.dumps(conf), flush=True)
    from django.core.management import execute_from_command_line

    execute_from_command_line(["manage.py", "qcluster"])


# --- alone: python -m benchmarks.queue -----------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.queue", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--tasks", type=int, default=TASKS, help=f"tasks per run ({TASKS:,})")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"rounds ({ROUNDS})")
    parser.add_argument(
        "--tranche-overrides",
        metavar="JSON",
        help="Q_CLUSTER values to try in place of Tranche's, e.g. '{\"save_limit\": 0}'",
    )
    parser.add_argument("--serve", metavar="OVERRIDES", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(json.loads(args.serve))
        return 0

    from benchmarks.__main__ import (
        git_revision,
        migrate_if_needed,
        say,
        setup_django,
        write_results,
    )

    setup_django()
    migrate_if_needed()
    say(f"benchmark: the task queue only, {datetime.now().astimezone():%Y-%m-%d %H:%M %z}")
    say(f"  revision {git_revision()}, python {platform.python_version()}, {os.cpu_count()} CPUs")
    overrides = json.loads(args.tranche_overrides) if args.tranche_overrides else None
    figures = run(say, tasks=args.tasks, rounds=args.rounds, tranche_overrides=overrides)
    say()
    for line in figure_lines(figures):
        say(line)
    write_results()
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
