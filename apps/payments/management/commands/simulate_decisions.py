"""Replay synthetic checkouts through the credit decision with the rules in force, and say how
many honest customers, fraudsters and over-indebted customers it would accept
(apps/payments/simulation.py describes the traffic)."""

import time

from django.core.management.base import BaseCommand, CommandError

from apps.payments.decision import BANK, IDENTITY, PHONE
from apps.payments.services.scoring import rules_active
from apps.payments.simulation import (
    ABANDONED,
    FINALS,
    FRAUD,
    HONEST,
    OVERINDEBTED,
    POPULATIONS,
    REFUSED,
    Report,
    simulate,
)

LABELS = {HONEST: "honest", FRAUD: "fraudsters", OVERINDEBTED: "over-indebted"}
PROGRESS_FROM = 10_000  # checkouts; smaller runs end before progress would help
TOP_REASONS = 8


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "n/a"


class Command(BaseCommand):
    help = (
        "Replay synthetic checkouts (honest customers, fraudsters, over-indebted customers) "
        "through the credit decision with the active rules; print the acceptance and "
        "refusal rates, the bad debt avoided and the most frequent reasons."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--count", type=int, default=10_000, help="Synthetic checkouts (10,000)."
        )
        parser.add_argument(
            "--seed", type=int, default=1, help="Seed: the same seed makes the same traffic (1)."
        )

    def handle(self, *args, count: int, seed: int, **options):
        if count < 1:
            raise CommandError(f"--count must be at least 1 (got {count}).")
        rules = rules_active()
        progress = None
        if count >= PROGRESS_FROM:

            def progress(done: int) -> None:
                self.stderr.write(f"simulated {100 * done // count} % ({done:,} of {count:,})")
                self.stderr.flush()

        started = time.perf_counter()
        report = simulate(count, seed, rules, progress=progress)
        elapsed = time.perf_counter() - started
        for line in report_lines(report, elapsed):
            self.stdout.write(line)
        self.stdout.write(report.summary())


def report_lines(report: Report, elapsed: float) -> list[str]:
    """The readable report, before the summary line."""
    lines = [
        f"Simulated {report.count:,} checkouts (seed {report.seed}) with the rules "
        f"{report.rules_version}.",
        "",
        "Populations:",
    ]
    for population in POPULATIONS:
        number = report.populations[population]
        lines.append(f"  {LABELS[population]:<14} {number:>9,}  ({_share(number, report.count)})")
    lines += [
        "",
        "Outcomes: accepted first time / accepted after more information / refused / abandoned:",
    ]
    for population in POPULATIONS:
        whole, finals = report.populations[population], report.finals[population]
        cells = [f"{finals[final]:>8,} ({_share(finals[final], whole):>7})" for final in FINALS]
        lines.append(f"  {LABELS[population]:<14}" + "  ".join(cells))
    lines += ["", "More information asked: phone code / identity document / bank data:"]
    for population in POPULATIONS:
        asked = report.asked[population]
        lines.append(
            f"  {LABELS[population]:<14}"
            + "  ".join(f"{asked[ask]:>8,}" for ask in (PHONE, IDENTITY, BANK))
        )
    honest = report.populations[HONEST]
    refused = sum(report.finals[p][REFUSED] for p in POPULATIONS)
    abandoned = sum(report.finals[p][ABANDONED] for p in POPULATIONS)
    let_through = report.bad_debt_cents - report.bad_debt_avoided_cents
    lines += [
        "",
        f"Honest customers accepted: {report.honest_accepted:.1f} %: first time "
        f"{report.honest_first_time:.1f} % (after the phone code only: "
        f"{_share(report.honest_phone_only, honest)}; the phone code is asked of every new "
        f"customer once), after an identity document or bank data "
        f"{report.honest_after_info:.1f} %.",
        f"Fraudsters caught (refused or gave up): {report.fraud_caught:.1f} %.",
        f"Defaults avoided (over-indebted customers refused or gave up): "
        f"{report.defaults_avoided:.1f} %.",
        f"Bad debt (purchases of fraudsters and over-indebted customers): avoided "
        f"{_euros(report.bad_debt_avoided_cents)}, let through {_euros(let_through)}.",
        f"Refused: {_share(refused, report.count)} of all payments; abandoned: "
        f"{_share(abandoned, report.count)}.",
        "",
        "Most frequent reasons against the customer in first decisions:",
        *_reason_lines(report.first_reasons, report.count),
        "Most frequent reasons in refusals:",
        *_reason_lines(report.refusal_reasons, refused),
        "",
        f"Throughput: {report.decisions:,} decisions in {report.seconds:.1f} s: "
        f"{report.decisions_per_second:,.0f} decisions/s (deciding and answering only); "
        f"{report.count:,} checkouts in {elapsed:.1f} s with their generation.",
        "",
    ]
    return lines


def _reason_lines(reasons, whole: int) -> list[str]:
    return [
        f"  {code:<32} {number:>9,}  ({_share(number, whole)})"
        for code, number in reasons.most_common(TOP_REASONS)
    ] or ["  none"]


def _euros(cents: int) -> str:
    return f"{(cents + 50) // 100:,} EUR"
