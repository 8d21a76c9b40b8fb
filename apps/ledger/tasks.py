"""django-q2 entry points of the ledger: thin, idempotent, safe to run twice or at once."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from apps.common.dates import BUSINESS_TZ, business_date

from .models import ReconciliationRun
from .reconciliation import InvalidSettlementReport
from .services import payouts_run, reconciliation_run
from .settlement_reports import settlement_reports

logger = logging.getLogger(__name__)


def run_payouts() -> list[str]:
    """Today's payout run in each mode, once the payout hour has come (hourly schedule)."""
    now = timezone.now()
    if now.astimezone(BUSINESS_TZ).hour < settings.PAYOUT_HOUR:
        return []
    runs = [
        payouts_run(run_date=business_date(now), livemode=mode == "live", now=now)
        for mode in settings.PAYOUT_MODES
    ]
    return [f"{run}: {run.payout_count} payouts, {run.total}" for run in runs]


def reconcile_settlement_reports() -> list[str]:
    """Match every recent day whose report has arrived and was not matched yet."""
    now = timezone.now()
    today = business_date(now)
    source = settlement_reports()
    done = []
    for days_back in range(settings.RECONCILIATION_LOOKBACK_DAYS, 0, -1):
        day = today - timedelta(days=days_back)
        for livemode in (False, True):
            if ReconciliationRun.objects.filter(report_date=day, livemode=livemode).exists():
                continue
            try:
                lines = source.fetch(report_date=day, livemode=livemode)
            except InvalidSettlementReport:  # one bad file must not hold up the others
                logger.exception("Settlement report %s (%s) is unreadable", day, livemode)
                continue
            if lines is None:
                continue
            run = reconciliation_run(report_date=day, livemode=livemode, lines=lines, now=now)
            if run.mismatches:
                logger.warning("Reconciliation %s: %d mismatches", run, run.mismatches)
            done.append(f"{run}: {run.matched} matched, {run.mismatches} mismatches")
    return done
