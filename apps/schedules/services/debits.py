"""The debit run: charge every instalment due, once, whatever crashes or runs twice.

One run works in batches, each in three steps:

1. **claim** (one short transaction): the oldest due instalments (``next_debit_at <= now``)
   are locked with ``FOR UPDATE SKIP LOCKED`` (a worker elsewhere takes other rows), their
   ``next_debit_at`` is cleared and ``debit_attempts`` counted, and a ``pending`` Charge is
   written for each with the key ``instalment:<id>:attempt:<n>``. Committed before any call:
   a claimed instalment is not due any more, so no other run takes it.
2. **charge** (no transaction): the saved cards are charged through the processor
   interface, merchant-initiated (no 3-D Secure), the whole batch in one exchange
   (``charge_many``). An answer lost (a timeout) is asked about by key at once; what is
   still unknown stays ``unknown``.
3. **record** (one transaction per batch): ``debit_results_record`` writes the outcomes:
   instalments paid, ledger postings, receipts, events, payment states, emails and IPNs; or
   the failures and their dunning retry.

A worker that dies between 2 and 3 leaves ``pending`` charges: the next run first asks the
processor about charges in doubt older than ``IN_FLIGHT_GRACE`` (``debits_settle_in_doubt``)
and records what it says, once; a key the processor never saw means the call never left,
and the instalment is simply due again (a new attempt, a new key).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F

from apps.common.money import to_cents
from apps.payments.models import Charge, Instalment, PaymentState
from apps.payments.processor import (
    ChargeRequest,
    ChargeResult,
    ProcessorUnavailable,
    card_processor,
)
from apps.payments.services.charges import IN_DOUBT, IN_FLIGHT_GRACE, charge_status_ask
from apps.schedules.services.recording import DebitOutcome, debit_results_record

logger = logging.getLogger(__name__)

# Charges whose doubt the debit run settles (recorded by debit_results_record).
SETTLED_KINDS = (Charge.Kind.INSTALMENT, Charge.Kind.EARLY_PAYMENT)
DEBITABLE_STATES = (
    PaymentState.IN_PROGRESS,
    PaymentState.LATE_DUNNING,
    PaymentState.LATE_CONTACT_CUSTOMER,
)


@dataclass
class DebitRunSummary:
    claimed: int = 0
    succeeded: int = 0
    failed: int = 0
    in_doubt: int = 0
    settled: int = 0  # charges in doubt from earlier runs, recorded now
    skipped: int = 0  # claimed but nothing to charge (payment stopped, no card)

    def add(self, other: DebitRunSummary) -> None:
        for name in ("claimed", "succeeded", "failed", "in_doubt", "settled", "skipped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class Claimed:
    """A charge written by the claim, with what the call needs."""

    charge_id: int
    idempotency_key: str
    token: str
    amount_cents: int
    livemode: bool


def debits_due_count(*, now: datetime) -> int:
    return Instalment.objects.filter(next_debit_at__lte=now).count()


def debit_run(
    *,
    now: datetime,
    limit: int | None = None,
    batch_size: int | None = None,
    budget_seconds: float | None = None,
    progress: Callable[[DebitRunSummary], None] | None = None,
) -> DebitRunSummary:
    """Charge the instalments due at ``now``: at most ``limit``, for about
    ``budget_seconds`` (then the caller queues another run for the rest)."""
    batch_size = batch_size or settings.DEBIT_RUN_BATCH_SIZE
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    summary = DebitRunSummary()
    summary.settled = debits_settle_in_doubt(now=now, deadline=deadline)
    while limit is None or summary.claimed < limit:
        if _past(deadline):
            break
        size = batch_size if limit is None else min(batch_size, limit - summary.claimed)
        batch = debit_batch(now=now, size=size, deadline=deadline)
        if batch.claimed == 0 and batch.skipped == 0:
            break
        summary.add(batch)
        if progress is not None:
            progress(summary)
    return summary


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def debit_batch(*, now: datetime, size: int, deadline: float | None = None) -> DebitRunSummary:
    """Claim up to ``size`` due instalments, charge them and record the results. Past the
    ``deadline`` (``time.monotonic()``) no processor call starts: what is unknown then stays
    unknown for the next run."""
    claimed, skipped = _claim(now=now, size=size)
    summary = DebitRunSummary(claimed=len(claimed), skipped=skipped)
    if not claimed:
        return summary
    outcomes = [
        DebitOutcome(charge_id=item.charge_id, result=result)
        for item, result in zip(claimed, _charge(claimed, deadline=deadline), strict=True)
    ]
    recorded = debit_results_record(outcomes, now=now)
    summary.succeeded = recorded.succeeded
    summary.failed = recorded.failed
    summary.in_doubt = recorded.in_doubt
    return summary


def _claim(*, now: datetime, size: int) -> tuple[list[Claimed], int]:
    with transaction.atomic():
        due = list(
            Instalment.objects.filter(next_debit_at__lte=now)
            .order_by("next_debit_at", "id")
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("id", flat=True)[:size]
        )
        if not due:
            return [], 0
        rows = list(
            Instalment.objects.filter(id__in=due)
            .select_related("payment__card")
            .only(
                "id",
                "public_id",
                "state",
                "debit_attempts",
                "purchase_amount",
                "purchase_amount_currency",
                "customer_fee",
                "customer_fee_currency",
                "customer_interest",
                "customer_interest_currency",
                "payment__id",
                "payment__state",
                "payment__livemode",
                "payment__card__id",
                "payment__card__processor_token",
            )
        )
        Instalment.objects.filter(id__in=due).update(next_debit_at=None)
        charges, claimed, chargeable = [], [], []
        for row in rows:
            payment = row.payment
            if (
                row.state not in (Instalment.State.PENDING, Instalment.State.INCIDENT)
                or payment.state not in DEBITABLE_STATES
                or payment.card is None
            ):
                continue  # nothing to charge any more: left with no next debit
            attempt = row.debit_attempts + 1
            chargeable.append(row.id)
            charges.append(
                Charge(
                    payment_id=payment.id,
                    instalment_id=row.id,
                    card_id=payment.card.id,
                    kind=Charge.Kind.INSTALMENT,
                    attempt=attempt,
                    idempotency_key=f"instalment:{row.public_id}:attempt:{attempt}",
                    amount=row.total_amount,
                    created_at=now,
                )
            )
            claimed.append((row, payment))
        if chargeable:
            Instalment.objects.filter(id__in=chargeable).update(
                debit_attempts=F("debit_attempts") + 1
            )
        created = Charge.objects.bulk_create(charges)
    items = [
        Claimed(
            charge_id=charge.pk,
            idempotency_key=charge.idempotency_key,
            token=payment.card.processor_token,
            amount_cents=to_cents(charge.amount),
            livemode=payment.livemode,
        )
        for charge, (_row, payment) in zip(created, claimed, strict=True)
    ]
    return items, len(rows) - len(items)


def _charge(claimed: list[Claimed], *, deadline: float | None) -> list[ChargeResult | None]:
    """The batch's merchant-initiated charges; None where the outcome is unknown.

    An answer lost on the way back is asked for by key at once, until the deadline. When the
    whole exchange failed nobody is asked now: the processor is down or slow, and the
    in-doubt sweep of a later run asks about each charge."""
    requests = [
        ChargeRequest(
            token=item.token,
            amount_cents=item.amount_cents,
            idempotency_key=item.idempotency_key,
            livemode=item.livemode,
        )
        for item in claimed
    ]
    try:
        results = card_processor().charge_many(requests)
    except ProcessorUnavailable:
        logger.warning("Processor unavailable for %d debits; left in doubt", len(requests))
        return [None] * len(requests)
    except Exception:  # a bug or a refusal of the call itself: the outcomes are unknown
        logger.exception("Debit batch of %d failed unexpectedly", len(requests))
        return [None] * len(requests)
    return [
        result if result is not None or _past(deadline) else _ask(request.idempotency_key)
        for request, result in zip(requests, results, strict=True)
    ]


def _ask(idempotency_key: str) -> ChargeResult | None:
    probe = Charge(idempotency_key=idempotency_key)
    return charge_status_ask(charge=probe)


def debits_settle_in_doubt(
    *, now: datetime, limit: int = 1000, deadline: float | None = None
) -> int:
    """Ask the processor about instalment charges (debits, and early payments made in the
    portal) left pending or unknown for longer than IN_FLIGHT_GRACE (a worker died, a
    timeout) and record what it says, once; no question starts past the ``deadline``
    (``time.monotonic()``)."""
    candidates = list(
        Charge.objects.filter(
            status__in=IN_DOUBT,
            kind__in=SETTLED_KINDS,
            created_at__lte=now - IN_FLIGHT_GRACE,
        )
        .order_by("created_at")
        .values_list("pk", "idempotency_key")[:limit]
    )
    outcomes = []
    for charge_id, key in candidates:
        if _past(deadline):
            break
        result = charge_status_ask(charge=Charge(idempotency_key=key), unknown_means_not_sent=True)
        if result is not None:
            outcomes.append(DebitOutcome(charge_id=charge_id, result=result))
    if not outcomes:
        return 0
    return debit_results_record(outcomes, now=now).recorded
