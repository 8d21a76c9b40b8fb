"""Charge the instalments due now, as the hourly job does, with a progress bar.

    python manage.py run_debits [--limit N] [--dry-run]

Safe beside the running job and other workers: each instalment is claimed by one of them.
``--dry-run`` counts what is due (and the amounts, per mode) without charging anything.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, F, Sum
from django.utils import timezone

from apps.common.money import decimal_to_cents, display_eur
from apps.payments.models import Instalment
from apps.schedules.services.debits import DebitRunSummary, debit_run, debits_due_count

BAR_WIDTH = 30


class Command(BaseCommand):
    help = "Charge the instalments due now (the hourly debit run), with a progress bar."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, help="Charge at most this many instalments.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Only count what is due; charge nothing."
        )

    def handle(self, *args, limit=None, dry_run=False, **options):
        if limit is not None and limit <= 0:
            raise CommandError("--limit must be a positive number.")
        now = timezone.now()
        due = debits_due_count(now=now)
        if dry_run:
            self._dry_run(now, due, limit)
            return
        total = min(due, limit) if limit else due
        if total == 0:
            self.stdout.write("Nothing is due.")
            return
        started = time.monotonic()

        def progress(summary: DebitRunSummary) -> None:
            done = min(summary.claimed + summary.skipped, total)
            filled = BAR_WIDTH * done // total
            self.stdout.write(
                f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}",
                ending="",
            )
            self.stdout.flush()

        summary = debit_run(now=now, limit=limit, progress=progress)
        elapsed = time.monotonic() - started
        self.stdout.write("")
        rate = summary.claimed / elapsed if elapsed else 0
        self.stdout.write(
            f"{summary.claimed} charged in {elapsed:.1f} s ({rate:.0f}/s): "
            f"{summary.succeeded} paid, {summary.failed} declined, {summary.in_doubt} in doubt "
            f"(settled by the next run), {summary.skipped} skipped; "
            f"{summary.settled} earlier charges in doubt settled."
        )

    def _dry_run(self, now, due: int, limit: int | None) -> None:
        rows = (
            Instalment.objects.filter(next_debit_at__lte=now)
            .values("payment__livemode")
            .annotate(
                count=Count("id"),
                total=Sum(F("purchase_amount") + F("customer_fee") + F("customer_interest")),
            )
            .order_by("payment__livemode")
        )
        self.stdout.write(f"{due} instalments due (dry run: nothing charged).")
        for row in rows:
            mode = "live" if row["payment__livemode"] else "test"
            cents = decimal_to_cents(row["total"]) if row["total"] is not None else 0
            self.stdout.write(f"  {mode}: {row['count']} for {display_eur(cents)}")
        if limit:
            self.stdout.write(f"A run with --limit {limit} would charge {min(due, limit)}.")
