"""Where the card processor's daily settlement reports come from.

Processors deliver one file per day (by SFTP or a download API). The interface is one call;
the implementation is chosen by ``settings.SETTLEMENT_REPORTS``. ``DirectorySettlementReports``
reads ``<SETTLEMENT_REPORTS_DIR>/<test|live>/settlement-YYYY-MM-DD.csv``: where an SFTP job
drops the real files, and where the sandbox processor writes its own.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from .reconciliation import SettlementLine, parse_settlement_csv, settlement_csv


class SettlementReports(Protocol):
    def fetch(self, *, report_date: date, livemode: bool) -> list[SettlementLine] | None:
        """The day's lines, or None while the report is not available yet."""


class DirectorySettlementReports:
    def __init__(self, directory: Path | str | None = None):
        self.directory = Path(directory or settings.SETTLEMENT_REPORTS_DIR)

    def path(self, *, report_date: date, livemode: bool) -> Path:
        mode = "live" if livemode else "test"
        return self.directory / mode / f"settlement-{report_date.isoformat()}.csv"

    def fetch(self, *, report_date: date, livemode: bool) -> list[SettlementLine] | None:
        path = self.path(report_date=report_date, livemode=livemode)
        if not path.exists():
            return None
        return parse_settlement_csv(path.read_text(encoding="utf-8"))

    def write(self, *, report_date: date, livemode: bool, lines: list[SettlementLine]) -> Path:
        """Deliver a report (used by the sandbox processor and by tests)."""
        path = self.path(report_date=report_date, livemode=livemode)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".part")
        temporary.write_text(settlement_csv(lines), encoding="utf-8")
        temporary.replace(path)  # readers never see half a file
        return path


def settlement_reports() -> SettlementReports:
    return import_string(settings.SETTLEMENT_REPORTS)()
