"""The debit run and customers paying early at the same moment, each on its own database
connection: an instalment is charged once, whoever wins, and the ledger agrees."""

from __future__ import annotations

import threading
import traceback
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.db.models import Count

from apps.common.money import to_cents
from apps.ledger.audit import ledger_audit
from apps.ledger.models import Posting
from apps.payments.models import Charge, Instalment, Payment, SandboxCharge
from apps.payments.processor_sandbox import SandboxProcessor
from apps.schedules.services.debits import debit_run
from apps.schedules.services.early import (
    DebitInProgress,
    InstalmentNotPayable,
    early_payment_make,
)
from tests.portal.helpers import CAMILLE, DOMINIQUE, plan_for

pytestmark = pytest.mark.django_db(transaction=True)

BOUGHT = datetime(2026, 10, 23, 10, 0, tzinfo=UTC)  # instalment 2 due on November 23
THREADS = 12
SOMEONE = {
    "email": "sam.petit@example.com",
    "first_name": "Sam",
    "last_name": "Petit",
    "phone": "+33611223344",
}


@pytest.fixture(autouse=True)
def _receipts_in_tmp(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "receipts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "allow_overwrite": True},
        },
    }


def test_the_debit_run_racing_early_payments_never_charges_an_instalment_twice(shop):
    plans = [plan_for(shop, person, when=BOUGHT) for person in (CAMILLE, DOMINIQUE, SOMEONE)]
    seconds = [plan.instalments.get(number=2) for plan in plans]
    at = seconds[0].next_debit_at + timedelta(minutes=1)
    assert all(row.next_debit_at < at for row in seconds)
    with time_machine.travel(at, tick=False):
        references = [
            SandboxProcessor()
            .three_ds_start(
                token=plan.card.processor_token,
                amount_cents=to_cents(row.total_amount),
                return_url="",
                livemode=False,
            )
            .reference
            for plan, row in zip(plans, seconds, strict=True)
        ]
    start = threading.Barrier(THREADS)
    outcomes: list[object] = [None] * THREADS
    failures: list[str] = []

    def work(i: int) -> object:
        if i % 2 == 0:
            return debit_run(now=at, batch_size=2)
        k = (i // 2) % len(plans)
        plan = Payment.objects.select_related("customer").get(pk=plans[k].pk)
        return early_payment_make(
            customer=plan.customer,
            payment_id=plan.pk,
            numbers=[2],
            card_id=plan.card_id,
            three_ds_reference=references[k],
            now=at,
        )

    def worker(i: int) -> None:
        try:
            start.wait()
            outcomes[i] = work(i)
        except (DebitInProgress, InstalmentNotPayable) as error:
            outcomes[i] = error
        except BaseException:
            failures.append(f"thread {i}:\n{traceback.format_exc()}")
        finally:
            connection.close()

    with time_machine.travel(at, tick=True):
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert not failures, "\n".join(failures)
    for row in seconds:
        row.refresh_from_db()
        assert row.state == "paid" and row.next_debit_at is None
    paid_by = [
        charge
        for charge in Charge.objects.filter(status="succeeded").exclude(kind="first_instalment")
        if set(charge.instalment_ids) & {row.pk for row in seconds}
    ]
    assert len(paid_by) == len(seconds)  # one charge each, debit or early payment
    assert not any(charge.failure_code for charge in paid_by)  # none orphaned
    keys = [charge.idempotency_key for charge in paid_by]
    assert SandboxCharge.objects.filter(idempotency_key__in=keys, status="succeeded").count() == 3
    # Nothing else moved money: every other attempt was refused before the processor.
    assert SandboxCharge.objects.filter(kind="charge").count() == 3 + len(plans)
    assert not Charge.objects.filter(status__in=["pending", "unknown"]).exists()
    collected = (
        Posting.objects.filter(kind="instalment_collected")
        .values("idempotency_key")
        .annotate(n=Count("id"))
    )
    assert all(row["n"] == 1 for row in collected) and len(collected) == len(seconds)
    assert Instalment.objects.filter(number=2, state="paid").count() == len(seconds)
    refused = [o for o in outcomes if isinstance(o, DebitInProgress | InstalmentNotPayable)]
    early_won = [o for o in outcomes if isinstance(o, Charge)]
    assert len(refused) + len(early_won) == THREADS // 2
    assert ledger_audit().ok
