"""Reconciliation runs: one per (mode, day), rerun safely; mismatches listed for operators."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Sum

from apps.common.dates import BUSINESS_TZ
from apps.common.money import decimal_to_cents, to_money

from ..models import AccountKind, Leg, Mismatch, ReconciliationRun
from ..postings import LedgerError
from ..reconciliation import SettlementLine, match


def clearing_by_reference(*, report_date: date, livemode: bool) -> dict[str, int]:
    """Net processor-clearing movement per processor reference for postings whose event
    happened on report_date (Paris), the day the processor's report covers."""
    start = datetime.combine(report_date, time.min, tzinfo=BUSINESS_TZ)
    end = datetime.combine(report_date + timedelta(days=1), time.min, tzinfo=BUSINESS_TZ)
    rows = (
        Leg.objects.filter(
            account__kind=AccountKind.PROCESSOR_CLEARING,
            posting__livemode=livemode,
            posting__effective_at__gte=start,
            posting__effective_at__lt=end,
        )
        .exclude(posting__processor_reference="")
        # The processor's payment of a day's net into the bank is not a card movement.
        .exclude(posting__kind="processor_settled")
        .values("posting__processor_reference")
        .annotate(total=Sum("amount"))
    )
    return {row["posting__processor_reference"]: decimal_to_cents(row["total"]) for row in rows}


def reconciliation_run(
    *, report_date: date, livemode: bool, lines: list[SettlementLine], now: datetime
) -> ReconciliationRun:
    """Match the day's report; a rerun refreshes the open mismatches and keeps resolutions."""
    matching = match(lines, clearing_by_reference(report_date=report_date, livemode=livemode))
    ledger_entries = matching.matched + sum(
        1 for item in matching.mismatches if item.ledger_cents is not None
    )
    with transaction.atomic():
        run, _ = ReconciliationRun.objects.select_for_update().update_or_create(
            report_date=report_date,
            livemode=livemode,
            defaults={
                "report_lines": len(lines),
                "ledger_entries": ledger_entries,
                "matched": matching.matched,
                "mismatches": len(matching.mismatches),
                "ran_at": now,
            },
        )
        found = {item.processor_reference for item in matching.mismatches}
        run.items.filter(resolved_at=None).exclude(processor_reference__in=found).delete()
        for item in matching.mismatches:
            values = {
                "kind": item.kind,
                "report_amount": None if item.report_cents is None else to_money(item.report_cents),
                "ledger_amount": None if item.ledger_cents is None else to_money(item.ledger_cents),
            }
            known = run.items.filter(processor_reference=item.processor_reference).first()
            if known is None:
                Mismatch.objects.create(
                    run=run, processor_reference=item.processor_reference, **values
                )
            elif any(getattr(known, field) != value for field, value in values.items()):
                # A resolution explained other amounts: the new difference is open again.
                for field, value in values.items():
                    setattr(known, field, value)
                known.resolved_at, known.resolution = None, ""
                known.save()
    return run


def mismatch_resolve(
    *, mismatch: Mismatch, resolution: str, now: datetime, actor: AbstractBaseUser | None = None
) -> Mismatch:
    """An operator explains a mismatch (the correction itself is a posting of its own)."""
    if not resolution.strip():
        raise LedgerError("Say how the mismatch was resolved.")
    with transaction.atomic():
        locked = Mismatch.objects.select_for_update().get(pk=mismatch.pk)
        if locked.resolved_at is not None:
            raise LedgerError("This mismatch is already resolved.")
        locked.resolved_at = now
        who = f" ({actor})" if actor is not None else ""
        locked.resolution = f"{resolution.strip()}{who}"[:200]
        locked.save(update_fields=["resolved_at", "resolution"])
    return locked
