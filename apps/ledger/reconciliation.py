"""Matching the processor's daily settlement report with the processor clearing accounts.

Pure: the report's lines and the ledger's net clearing movement per processor reference go
in, the mismatches come out. The report format (CSV, one line per card movement) is what a
processor's settlement file carries; ``parse_settlement_csv`` reads it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from apps.common.money import CURRENCY, decimal_to_cents, format_eur

from .postings import LedgerError

MISSING_IN_LEDGER = "missing_in_ledger"
MISSING_IN_REPORT = "missing_in_report"
AMOUNT_DIFFERS = "amount_differs"

REPORT_COLUMNS = ("processor_reference", "type", "amount", "currency", "occurred_at")


class InvalidSettlementReport(LedgerError):
    code = "invalid_settlement_report"


@dataclass(frozen=True)
class SettlementLine:
    processor_reference: str
    cents: int  # as clearing sees it: a charge is positive, a refund negative
    occurred_at: datetime


@dataclass(frozen=True)
class Mismatch:
    kind: str
    processor_reference: str
    report_cents: int | None
    ledger_cents: int | None


@dataclass(frozen=True)
class Matching:
    matched: int
    mismatches: tuple[Mismatch, ...]


def match(report: Iterable[SettlementLine], ledger: Mapping[str, int]) -> Matching:
    """Compare the net per reference on each side; every difference is a mismatch."""
    reported: dict[str, int] = {}
    for line in report:
        reported[line.processor_reference] = reported.get(line.processor_reference, 0) + line.cents
    mismatches = []
    matched = 0
    for reference in sorted(reported.keys() | ledger.keys()):
        in_report, in_ledger = reported.get(reference), ledger.get(reference)
        if in_ledger is None:
            mismatches.append(Mismatch(MISSING_IN_LEDGER, reference, in_report, None))
        elif in_report is None and in_ledger == 0:
            continue  # posted and reversed the same day: nothing moved
        elif in_report is None:
            mismatches.append(Mismatch(MISSING_IN_REPORT, reference, None, in_ledger))
        elif in_report != in_ledger:
            mismatches.append(Mismatch(AMOUNT_DIFFERS, reference, in_report, in_ledger))
        else:
            matched += 1
    return Matching(matched=matched, mismatches=tuple(mismatches))


def parse_settlement_csv(text: str) -> list[SettlementLine]:
    """Read a settlement report: a header, then ``reference,charge|refund,12.34,EUR,ISO time``.

    Amounts are positive decimals with two places at most; a refund counts negative.
    """
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != REPORT_COLUMNS:
        raise InvalidSettlementReport(f"The report's columns must be {', '.join(REPORT_COLUMNS)}.")
    lines = []
    for number, row in enumerate(reader, start=2):
        try:
            amount = Decimal(row["amount"])
            cents = decimal_to_cents(amount)
            occurred_at = datetime.fromisoformat(row["occurred_at"])
        except (InvalidOperation, ValueError) as error:
            raise InvalidSettlementReport(f"Line {number}: {error}") from error
        if cents <= 0 or row["type"] not in ("charge", "refund") or not row["processor_reference"]:
            raise InvalidSettlementReport(
                f"Line {number}: a reference, a type (charge or refund) and a positive amount."
            )
        if row["currency"] != CURRENCY or occurred_at.tzinfo is None:
            raise InvalidSettlementReport(
                f"Line {number}: amounts in {CURRENCY} and times with their offset."
            )
        lines.append(
            SettlementLine(
                processor_reference=row["processor_reference"],
                cents=cents if row["type"] == "charge" else -cents,
                occurred_at=occurred_at,
            )
        )
    return lines


def settlement_csv(lines: Iterable[SettlementLine]) -> str:
    """Write lines in the report format (what a processor, or its sandbox, delivers)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    for line in lines:
        writer.writerow(
            [
                line.processor_reference,
                "charge" if line.cents > 0 else "refund",
                format_eur(abs(line.cents)),
                CURRENCY,
                line.occurred_at.isoformat(),
            ]
        )
    return out.getvalue()
