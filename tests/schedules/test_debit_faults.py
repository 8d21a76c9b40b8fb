"""Faults: a worker that dies mid-run, timeouts, two workers at once, a clock that jumps."""

import threading
import time
import zlib
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connections
from django.db.models import Count

from apps.common.models import OutgoingEmail
from apps.ledger.audit import ledger_audit
from apps.payments.models import Charge, Instalment, SandboxCharge
from apps.payments.processor import ProcessorUnavailable
from apps.payments.processor_sandbox import SandboxProcessor
from apps.schedules.services import debits
from apps.schedules.services.debits import debit_run
from apps.schedules.services.reminders import reminders_send
from tests.schedules.builders import TIMEOUT, accepted

BOUGHT = datetime(2026, 1, 10, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _receipts_storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "receipts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "allow_overwrite": True},
        },
    }


def run(at, **kwargs):
    with time_machine.travel(at, tick=False):
        return debit_run(now=at, **kwargs)


def charged_once():
    """Every instalment charged by the run has exactly one succeeded charge, and the
    processor moved money once per key."""
    doubles = (
        Charge.objects.filter(kind="instalment", status="succeeded")
        .values("instalment_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert not doubles.exists()
    keys = Charge.objects.filter(kind="instalment").values_list("idempotency_key", flat=True)
    assert SandboxCharge.objects.filter(idempotency_key__in=list(keys)).count() == len(keys) - (
        Charge.objects.filter(kind="instalment", failure_code="not_received").count()
    )


@pytest.mark.django_db
def test_a_worker_dying_after_the_charge_and_before_the_record_charges_nothing_twice(
    shop, settings, monkeypatch
):
    payment = accepted(shop, when=BOUGHT)
    second = payment.instalments.get(number=2)
    at = second.next_debit_at + timedelta(minutes=1)

    def crash(outcomes, *, now):
        raise SystemExit("worker killed")

    with monkeypatch.context() as patch:
        patch.setattr(debits, "debit_results_record", crash)
        with pytest.raises(SystemExit):
            run(at)

    charge = Charge.objects.get(instalment=second, kind="instalment")
    assert charge.status == "pending"
    assert SandboxCharge.objects.filter(idempotency_key=charge.idempotency_key).count() == 1
    # At once: the instalment is not due any more, and the charge is too young to ask about.
    assert run(at + timedelta(seconds=30)).claimed == 0
    summary = run(at + timedelta(minutes=3))
    assert summary.settled == 1 and summary.claimed == 0
    assert run(at + timedelta(minutes=10)).settled == 0  # recorded once
    second.refresh_from_db()
    charge.refresh_from_db()
    assert second.state == "paid" and charge.status == "succeeded"
    assert Charge.objects.filter(instalment=second, kind="instalment").count() == 1
    charged_once()
    assert ledger_audit().ok


@pytest.mark.django_db
def test_timeouts_on_one_call_in_ten_end_charged_once_or_settled_later(shop, settings, monkeypatch):
    payments = [accepted(shop, when=BOUGHT, card_number=TIMEOUT) for _ in range(2)]
    payments += [accepted(shop, when=BOUGHT) for _ in range(18)]
    at = payments[0].instalments.get(number=2).next_debit_at + timedelta(minutes=1)
    # The timeout cards: the money moves and the answer is lost; asking by key finds it.
    # On top of that the status call itself fails for one in ten keys: those stay unknown.
    original = SandboxProcessor.charge_status
    calls = {"n": 0}

    def flaky_status(self, *, idempotency_key):
        calls["n"] += 1
        if calls["n"] % 10 == 1:
            raise ProcessorUnavailable()
        return original(self, idempotency_key=idempotency_key)

    original_charge_many = SandboxProcessor.charge_many
    batches = {"n": 0}

    def flaky_charge_many(self, requests):
        results = original_charge_many(self, requests)
        batches["n"] += 1
        if batches["n"] == 2:
            raise ProcessorUnavailable()  # the whole exchange timed out after the work
        # One answer in ten lost on the way back.
        return [
            None if zlib.crc32(request.idempotency_key.encode()) % 10 == 0 else result
            for request, result in zip(requests, results, strict=True)
        ]

    with monkeypatch.context() as patch:
        patch.setattr(SandboxProcessor, "charge_status", flaky_status)
        patch.setattr(SandboxProcessor, "charge_many", flaky_charge_many)
        first = run(at, batch_size=5)
    assert first.claimed == 20
    assert first.succeeded + first.in_doubt == 20 and first.in_doubt >= 1
    settled = run(at + timedelta(minutes=3))
    assert settled.settled == first.in_doubt and settled.claimed == 0
    assert Instalment.objects.filter(number=2, state="paid").count() == 20
    assert not Charge.objects.filter(status__in=["pending", "unknown"]).exists()
    charged_once()
    assert ledger_audit().ok


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_over_a_thousand_due_instalments_charge_each_once(shop, settings):
    payments = [accepted(shop, when=BOUGHT, amount=9_000) for _ in range(334)]
    last_due = max(
        Instalment.objects.filter(payment__in=payments, next_debit_at__isnull=False).values_list(
            "next_debit_at", flat=True
        )
    )
    due = Instalment.objects.filter(next_debit_at__isnull=False).count()
    assert due >= 1000
    at = last_due + timedelta(minutes=1)  # a catch-up: every instalment is due at once
    summaries, errors = [], []

    def worker():
        try:
            summaries.append(run(at, batch_size=50))
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(summary.claimed for summary in summaries) == due
    assert all(summary.claimed > 0 for summary in summaries)  # both took a share
    assert Instalment.objects.filter(state="paid").count() == 334 * 4
    assert Charge.objects.filter(kind="instalment", status="succeeded").count() == due
    charged_once()
    assert ledger_audit().ok


@pytest.mark.django_db
def test_after_a_three_day_outage_missed_debits_run_once_and_late_reminders_are_not_sent(
    shop, settings
):
    payment = accepted(shop, when=BOUGHT, installments_count=3, amount=9_000)
    second = payment.instalments.get(number=2)
    # The machine was off from 2 days before the second debit until the day after it.
    back = second.next_debit_at + timedelta(days=1)
    with time_machine.travel(back, tick=False):
        assert reminders_send(now=back) == 0  # the date is past: no reminder now
    assert run(back).succeeded == 1
    assert run(back + timedelta(hours=1)).claimed == 0
    assert not OutgoingEmail.objects.filter(key__contains=":reminder:").exists()
    third = payment.instalments.get(number=3)
    before = third.next_debit_at - timedelta(hours=72)
    with time_machine.travel(before, tick=False):
        assert reminders_send(now=before) == 1
        assert reminders_send(now=before + timedelta(hours=1)) == 0


@pytest.mark.django_db
def test_past_its_budget_a_run_starts_no_processor_call(shop, monkeypatch):
    payment = accepted(shop, when=BOUGHT, card_number=TIMEOUT)
    second = payment.instalments.get(number=2)
    at = second.next_debit_at + timedelta(minutes=1)
    asked = []
    original = SandboxProcessor.charge_status

    def counted_status(self, *, idempotency_key):
        asked.append(idempotency_key)
        return original(self, idempotency_key=idempotency_key)

    monkeypatch.setattr(SandboxProcessor, "charge_status", counted_status)

    assert run(at, budget_seconds=0).claimed == 0  # the budget is spent before the first batch
    with time_machine.travel(at, tick=False):
        # A batch whose deadline passed while it was charged: the lost answer is not asked for.
        batch = debits.debit_batch(now=at, size=10, deadline=time.monotonic() - 1)

    assert (batch.claimed, batch.in_doubt) == (1, 1) and asked == []
    charge = Charge.objects.get(instalment=second)
    assert charge.status == "unknown"
    later = run(at + timedelta(minutes=3))  # the next run's sweep asks, once
    assert later.settled == 1 and len(asked) == 1
    charged_once()
