"""Postponing under concurrency, with real threads on their own connections: many tabs
moving one instalment move it once; a postponement racing the debit run never leaves an
instalment both charged and moved."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.db import connection

from apps.common.models import OutgoingEmail
from apps.payments.models import Charge, PaymentEvent
from apps.schedules.services.debits import debit_run
from apps.schedules.services.postponing import PostponeRefused, instalment_postpone
from tests.portal.helpers import CAMILLE, plan_for

pytestmark = pytest.mark.django_db(transaction=True)

BOUGHT = datetime(2026, 11, 10, 10, 0, tzinfo=UTC)  # 4 x 100 EUR: Nov 10, Dec 10, Jan 10, Feb 10
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
THREADS = 8


@pytest.fixture(autouse=True)
def _receipts_in_tmp(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "receipts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "allow_overwrite": True},
        },
    }


def run_in_threads(works: list[Callable[[], object]]) -> list[object]:
    """Each work in its own thread, released together, each on its own connection; the
    result or the PostponeRefused it raised. Anything else fails the test."""
    start = threading.Barrier(len(works))
    results: list[object] = [None] * len(works)
    failures: list[str] = []

    def worker(i: int) -> None:
        try:
            start.wait()
            results[i] = works[i]()
        except PostponeRefused as error:
            results[i] = error
        except BaseException:
            failures.append(f"thread {i}:\n{traceback.format_exc()}")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(works))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, "\n".join(failures)
    return results


def postponing(plan, new_date: date, now: datetime) -> Callable[[], object]:
    return lambda: instalment_postpone(
        payment_id=plan.pk, number=2, new_date=new_date, now=now, customer_id=plan.customer_id
    )


def test_many_tabs_postponing_one_instalment_move_it_once(shop):
    plan = plan_for(shop, CAMILLE, when=BOUGHT)
    dates = [date(2026, 12, 11) + timedelta(days=i) for i in range(THREADS)]

    with time_machine.travel(NOW, tick=False):
        results = run_in_threads([postponing(plan, day, NOW) for day in dates])

    moved = [r for r in results if not isinstance(r, PostponeRefused)]
    refused = [r for r in results if isinstance(r, PostponeRefused)]
    assert len(moved) == 1 and len(refused) == THREADS - 1
    assert {error.extra["reason"] for error in refused} == {"already_postponed"}
    second = plan.instalments.get(number=2)
    assert second.due_date == moved[0].due_date and second.postponements == 1
    assert PaymentEvent.objects.filter(payment=plan, kind="instalment_postponed").count() == 1
    assert OutgoingEmail.objects.filter(key__contains=":postponed:").count() == 1


@pytest.mark.parametrize("round_", range(3))
def test_a_postponement_racing_the_debit_run_never_both_charges_and_moves(shop, round_):
    plan = plan_for(shop, CAMILLE, when=BOUGHT)
    second = plan.instalments.get(number=2)
    due = second.next_debit_at + timedelta(minutes=1)  # Dec 10, 8:01 in Paris

    with time_machine.travel(due, tick=False):
        debit, postponed = run_in_threads(
            [lambda: debit_run(now=due), postponing(plan, date(2026, 12, 20), due)]
        )

    second.refresh_from_db()
    charges = Charge.objects.filter(instalment=second).count()
    if isinstance(postponed, PostponeRefused):
        assert postponed.extra["reason"] in {"debit_in_progress", "already_paid"}
        assert second.state == "paid" and charges == 1
        assert second.due_date == date(2026, 12, 10)
    else:
        assert second.state == "pending" and charges == 0
        assert second.due_date == date(2026, 12, 20)
        assert debit.claimed == 0
