"""The bank-data aggregator, as Tranche uses it: one small interface, chosen by a setting.

``settings.BANK_DATA_PROVIDER`` names the implementation; ``apps.verification.bank_sandbox``
is the default in development and tests and behaves like a real aggregator (accounts chosen
by test profiles on its own bank page, see the README). A real adapter implements the same
methods and translates its failures into the errors below.

The journey: ``connection_start`` gives the URL where the customer logs in to their bank
(read-only consent); the aggregator sends the browser back to the return URL with
``bankcheck=<reference>`` in its query; ``connection_status`` then says whether the customer
connected, and ``transactions`` gives the account's last 3 months.

Rules every caller follows: no call is made inside an open database transaction; a
``BankDataUnavailable`` (timeout, 5xx) means the aggregator could not answer, nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from apps.verification.bank_analysis import Transaction
from apps.verification.bank_errors import BankConnectionUnknown, BankDataUnavailable

__all__ = [
    "CANCELLED",
    "CONNECTED",
    "CONNECTION_STATUSES",
    "FAILED",
    "PENDING",
    "AccountData",
    "BankConnectionUnknown",
    "BankDataProvider",
    "BankDataUnavailable",
    "ConnectionStart",
    "bank_data_provider",
]

# What ``connection_status`` answers.
PENDING = "pending"
CONNECTED = "connected"
CANCELLED = "cancelled"
FAILED = "failed"
CONNECTION_STATUSES = frozenset({PENDING, CONNECTED, CANCELLED, FAILED})


@dataclass(frozen=True)
class ConnectionStart:
    """A connection waiting for the customer: send the browser to ``redirect_url``."""

    reference: str
    redirect_url: str


@dataclass(frozen=True)
class AccountData:
    """One account's holder and booked transactions from ``period_start`` to ``period_end``
    (both included), oldest first."""

    bank_name: str
    holder_name: str
    transactions: tuple[Transaction, ...]
    period_start: date
    period_end: date


class BankDataProvider(Protocol):
    def connection_start(
        self, *, reference_hint: str, return_url: str, livemode: bool
    ) -> ConnectionStart:
        """Open a connection. ``reference_hint`` is the caller's id for it, which the
        aggregator uses as the connection's reference when it can; the browser comes back to
        ``return_url`` with ``bankcheck=<reference>``."""

    def connection_status(self, *, reference: str) -> str:
        """pending, connected, cancelled or failed; ``BankConnectionUnknown`` if none."""

    def transactions(self, *, reference: str) -> AccountData:
        """The connected account's last 3 months of transactions, up to today."""


def bank_data_provider() -> BankDataProvider:
    return import_string(settings.BANK_DATA_PROVIDER)()
