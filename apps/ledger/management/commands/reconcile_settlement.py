"""Match one day's settlement report now (also reruns a day already matched)."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.ledger.services import reconciliation_run
from apps.ledger.settlement_reports import settlement_reports


class Command(BaseCommand):
    help = "Match the processor's settlement report of one day with processor clearing."

    def add_arguments(self, parser):
        parser.add_argument("--date", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
        parser.add_argument("--mode", choices=["test", "live"], default="live")

    def handle(self, *args, date, mode, **options):
        livemode = mode == "live"
        lines = settlement_reports().fetch(report_date=date, livemode=livemode)
        if lines is None:
            raise CommandError(f"No {mode} settlement report for {date} yet.")
        run = reconciliation_run(
            report_date=date, livemode=livemode, lines=lines, now=timezone.now()
        )
        self.stdout.write(
            f"{run}: {run.report_lines} report lines, {run.ledger_entries} ledger entries, "
            f"{run.matched} matched, {run.mismatches} mismatches."
        )
        still_open = run.items.filter(resolved_at=None).count()
        if still_open:
            raise CommandError(
                f"{still_open} open mismatches; see Reconciliation mismatches in the admin."
            )
