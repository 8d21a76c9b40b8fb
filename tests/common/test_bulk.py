"""apps.common.bulk (one UPDATE from arrays; deletes in batches) and the task-results
pruning built on it, on the real database."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone
from django_q.models import Task
from djmoney.money import Money

from apps.common.bulk import rows_delete, rows_update
from apps.common.tasks import prune_task_results
from apps.payments.models import Instalment
from tests.schedules.builders import accepted

pytestmark = pytest.mark.django_db

WHEN = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def test_each_row_gets_its_own_values_and_nothing_else_changes(shop, django_assert_num_queries):
    payment = accepted(shop, when=WHEN, installments_count=3, amount=9_000)
    rows = list(payment.instalments.order_by("number"))
    untouched = {row.pk: (row.due_date, row.purchase_amount) for row in rows}
    rows[0].state, rows[0].paid_at, rows[0].customer_fee = "paid", WHEN, Money("1.25", "EUR")
    rows[1].state, rows[1].next_debit_at, rows[1].reminded_for = "incident", None, date(2026, 4, 2)
    rows[2].reminded_for = None  # a NULL in a column

    with django_assert_num_queries(1):
        updated = rows_update(
            rows, ["state", "paid_at", "next_debit_at", "customer_fee", "reminded_for"]
        )

    assert updated == 3
    fresh = {row.number: row for row in Instalment.objects.filter(payment=payment)}
    assert (fresh[1].state, fresh[1].paid_at, fresh[1].customer_fee) == (
        "paid",
        WHEN,
        Money("1.25", "EUR"),
    )
    assert (fresh[2].state, fresh[2].next_debit_at, fresh[2].reminded_for) == (
        "incident",
        None,
        date(2026, 4, 2),
    )
    assert fresh[3].reminded_for is None and fresh[3].state == "pending"
    assert {row.pk: (row.due_date, row.purchase_amount) for row in fresh.values()} == untouched


def test_no_rows_is_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert rows_update([], ["state"]) == 0


def _task(name: str, *, success: bool, age_days: int) -> Task:
    stopped = timezone.now() - timedelta(days=age_days)
    return Task.objects.create(
        id=uuid.uuid4().hex,
        name=name,
        func="apps.common.tasks.send_unsent_emails",
        started=stopped,
        stopped=stopped,
        success=success,
    )


def test_rows_delete_goes_in_batches_until_nothing_is_left(django_assert_num_queries):
    for number in range(5):
        _task(f"old-{number}", success=True, age_days=10)
    kept = _task("recent", success=True, age_days=1)

    with django_assert_num_queries(7):  # 3 batches of at most 2: read + delete, then a read
        deleted = rows_delete(Task.objects.filter(name__startswith="old-"), batch_size=2)

    assert deleted == 5
    assert list(Task.objects.values_list("id", flat=True)) == [kept.id]


def test_task_results_are_pruned_successes_after_a_week_failures_after_a_month():
    _task("old success", success=True, age_days=8)
    _task("week-old failure", success=False, age_days=8)
    _task("old failure", success=False, age_days=31)
    _task("recent success", success=True, age_days=6)

    assert prune_task_results() == 2

    assert set(Task.objects.values_list("name", flat=True)) == {
        "week-old failure",
        "recent success",
    }
