"""Verify the ledger's invariants; exit non-zero on any violation."""

from django.core.management.base import BaseCommand, CommandError

from apps.ledger.audit import CHECKS, ledger_audit


class Command(BaseCommand):
    help = (
        "Check that every posting is balanced, all legs sum to zero, every stored and running "
        "balance equals the sum of its legs, and no payout exceeded the available balance."
    )

    def add_arguments(self, parser):
        parser.add_argument("--mode", choices=["test", "live"], help="One mode (default: both).")

    def handle(self, *args, mode=None, **options):
        livemode = None if mode is None else mode == "live"
        report = ledger_audit(livemode=livemode)
        scope = mode or "test and live"
        counts = ", ".join(f"{count} {name}" for name, count in report.counts.items())
        self.stdout.write(f"Ledger ({scope}): {counts}.")
        for name, _sql in CHECKS:
            rows = report.violations.get(name)
            if rows is None:
                self.stdout.write(f"  ok    {name}")
                continue
            self.stdout.write(self.style.ERROR(f"  FAIL  {name}: {len(rows)} shown"))
            for row in rows:
                self.stdout.write(f"        {row}")
        if not report.ok:
            raise CommandError(f"{len(report.violations)} ledger check(s) failed.")
        self.stdout.write(self.style.SUCCESS("All ledger checks passed."))
