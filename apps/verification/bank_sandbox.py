"""The sandbox bank-data aggregator: an outside party that lives in our process.

It behaves like a real aggregator, not like a mock that always says yes: it keeps its own
connection records (in its own table, for an hour, keyed by the connection's reference;
Tranche's code never reads them), answers after ``settings.SANDBOX_BANK_LATENCY_MS`` (by
default the processor sandbox's ``SANDBOX_PROCESSOR_LATENCY_MS``, 0 in tests), and shows its
own "bank login" page (``apps.verification.bank_views.sandbox_bank``) where the customer
picks a test account, one per profile in ``PROFILES``, or cancels.

Each profile gives a deterministic account: the transactions of a calendar day depend on the
profile and that day only, from the first day of the month three months back up to today
(three whole months and the current one), with the French labels a real bank shows. Like a
real aggregator it keeps its own clock (``timezone.now()``); tests move it with time-machine.
"""

from __future__ import annotations

import random
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from apps.common.dates import add_months, business_date
from apps.verification.bank_analysis import Transaction
from apps.verification.bank_errors import (
    BankConnectionPending,
    BankConnectionUnknown,
    BankDataError,
    BankDataUnavailable,
)
from apps.verification.bank_provider import (
    CANCELLED,
    CONNECTED,
    PENDING,
    AccountData,
    ConnectionStart,
)
from apps.verification.models import SandboxBankConnection

CONNECTION_TTL_SECONDS = 60 * 60
MONTHS_OF_HISTORY = 3
REFERENCE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,100}$")

SALARIED = "salaried"
IRREGULAR = "irregular"
OVERINDEBTED = "overindebted"
GAMBLING = "gambling"
UNAVAILABLE = "unavailable"

# A day's events: (label, amount in cents, the aggregator's category or None).
Event = tuple[str, int, str | None]


class InvalidRequest(BankDataError):
    """The call itself was malformed (a bug in the caller, not the customer's doing)."""

    code = "invalid_request"
    http_status = 400


# --- the accounts -----------------------------------------------------------------------------


def _shopping(rng: random.Random, chance: int) -> Iterator[Event]:
    """Everyday card spending: a purchase on ``chance`` % of days."""
    shops = (
        ("CB CARREFOUR MARKET", 2500, 9000),
        ("CB LIDL", 1500, 6000),
        ("CB MONOPRIX", 1000, 4500),
        ("CB BOULANGERIE PAUL", 300, 1200),
        ("CB PHARMACIE DU CENTRE", 500, 3000),
        ("CB SNCF CONNECT", 1500, 6000),
        ("CB STATION TOTAL ACCESS", 3000, 7000),
    )
    if rng.randrange(100) < chance:
        label, low, high = shops[rng.randrange(len(shops))]
        yield label, -rng.randint(low, high), None


def _salaried(day: date, rng: random.Random) -> Iterator[Event]:
    monthly = {
        2: ("PRLV LOYER SCI LES TILLEULS", -75000, "rent"),
        3: ("RETRAIT DAB SG PARIS 11", -6000, None),
        6: ("PRLV EDF CLIENTS PARTICULIERS", -6480, "utilities"),
        9: ("PRLV ORANGE MOBILE", -2599, "telecom"),
        11: ("PRLV MAIF ASSURANCE HABITATION", -3850, "insurance"),
        14: ("PRLV NETFLIX.COM", -1349, "subscriptions"),
        17: ("RETRAIT DAB SG PARIS 11", -4000, None),
        20: ("PRLV VEOLIA EAU", -2870, "utilities"),
        28: ("VIR SALAIRE ACME SAS", 240000, "salary"),
    }
    if day.day in monthly:
        yield monthly[day.day]
    yield from _shopping(rng, 35)


# A freelancer's fees change from month to month: 1,400, 3,600 then 2,300 EUR (2,433 on
# average over any three months in a row).
FREELANCE_FEES = ((90000, 50000), (210000, 150000), (130000, 100000))


def _irregular(day: date, rng: random.Random) -> Iterator[Event]:
    first_fee, second_fee = FREELANCE_FEES[(day.year * 12 + day.month) % 3]
    monthly = {
        3: ("PRLV LOYER M DUPONT", -65000, None),
        7: ("VIR HONORAIRES STUDIO NOVA", first_fee, None),
        8: ("PRLV ENGIE", -5200, None),
        12: ("PRLV FREE MOBILE", -1999, None),
        15: ("PRLV URSSAF COTISATIONS", -38000, None),
        18: ("PRLV MACIF", -3200, None),
        21: ("VIR HONORAIRES AGENCE BLEUE", second_fee, None),
    }
    if day.day in monthly:
        yield monthly[day.day]
    yield from _shopping(rng, 35)


def _overindebted(day: date, rng: random.Random) -> Iterator[Event]:
    monthly = {
        2: ("PRLV LOYER OPH PARIS HABITAT", -60000, None),
        5: ("PRLV ECHEANCE PRET COFIDIS", -21000, None),
        6: ("PRLV EDF", -7800, None),
        8: ("PRLV CETELEM CREDIT RENOUVELABLE", -18000, None),
        9: ("PRLV SFR", -2499, None),
        10: ("PRLV SOFINCO", -9500, None),
        11: ("PRLV MAAF ASSURANCES", -3400, None),
        15: ("PRLV ONEY 4X", -6000, None),
        16: ("COMMISSION D INTERVENTION", -800, None),
        18: ("PRLV KLARNA", -4500, None),
        22: ("PRLV FLOA BANK", -3500, None),
        28: ("VIR SALAIRE TRANSPORTS MOREAU", 160000, None),
    }
    if day.day in monthly:
        yield monthly[day.day]
    yield from _shopping(rng, 25)


def _gambling(day: date, rng: random.Random) -> Iterator[Event]:
    monthly = {
        3: ("PRLV LOYER FONCIA", -68000, None),
        6: ("PRLV EDF", -5900, None),
        9: ("PRLV BOUYGUES TELECOM", -2199, None),
        12: ("PRLV AXA FRANCE IARD", -2900, None),
        28: ("VIR SALAIRE LOGISTIQUE DUBOIS", 210000, None),
    }
    if day.day in monthly:
        yield monthly[day.day]
    operators = ("CB FDJ", "CB PMU", "PRLV BETCLIC", "CB WINAMAX", "PARIONS SPORT EN LIGNE")
    if rng.randrange(100) < 45:
        yield operators[rng.randrange(len(operators))], -rng.randint(1000, 5000), None
    if rng.randrange(100) < 5:
        yield "VIR WINAMAX GAINS", rng.randint(5000, 20000), None
    yield from _shopping(rng, 35)


@dataclass(frozen=True)
class Profile:
    """A test account: the bank and holder it shows, what it is like (for the README and the
    sandbox page), its balance on the first day of its history, and its transactions."""

    name: str
    bank_name: str
    holder_name: str
    description: str | Promise
    opening_balance_cents: int
    events: Callable[[date, random.Random], Iterator[Event]] | None


PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile(
            SALARIED,
            "Banque Exemple",
            "Camille Martin",
            _(
                "Steady salary of 2,400 EUR, rent, utilities and groceries: a good repayment "
                "capacity and no flag."
            ),
            185000,
            _salaried,
        ),
        Profile(
            IRREGULAR,
            "Néobanque Test",
            "Léa Bernard",
            _(
                "Freelancer paid 1,400, 3,600 then 2,300 EUR in turn: fine on average, flagged "
                "irregular_income."
            ),
            300000,
            _irregular,
        ),
        Profile(
            OVERINDEBTED,
            "Banque Exemple",
            "Julien Petit",
            _(
                "Salary of 1,600 EUR, six credit repayments and an account overdrawn most days: "
                "a negative capacity, flagged heavy_existing_credit and frequent_overdraft."
            ),
            8000,
            _overindebted,
        ),
        Profile(
            GAMBLING,
            "Crédit Sandbox",
            "Thomas Durand",
            _(
                "Salary of 2,100 EUR and heavy betting (FDJ, PMU, Betclic, Winamax): "
                "flagged gambling."
            ),
            180000,
            _gambling,
        ),
        Profile(
            UNAVAILABLE,
            "Banque Hors Ligne",
            "",
            _("The aggregator times out once this account is chosen (bank data unavailable)."),
            0,
            None,
        ),
    )
}


def profile_account(profile: str, *, today: date) -> AccountData:
    """The account of a profile as the aggregator delivers it on ``today``: transactions
    from the first day of the month ``MONTHS_OF_HISTORY`` months back up to today, oldest
    first, each with the balance after it."""
    definition = PROFILES[profile]
    if definition.events is None:
        raise BankDataUnavailable()
    start = add_months(today.replace(day=1), -MONTHS_OF_HISTORY)
    balance = definition.opening_balance_cents
    transactions = []
    day = start
    while day <= today:
        # Seeded by the profile and the day: a day's transactions never change.
        rng = random.Random(f"{profile}:{day.isoformat()}")  # noqa: S311 (test data, not secrets)
        for label, amount_cents, category in definition.events(day, rng):
            balance += amount_cents
            transactions.append(
                Transaction(
                    booked_on=day,
                    amount_cents=amount_cents,
                    label=label,
                    category=category,
                    balance_after_cents=balance,
                )
            )
        day += timedelta(days=1)
    return AccountData(
        bank_name=definition.bank_name,
        holder_name=definition.holder_name,
        transactions=tuple(transactions),
        period_start=start,
        period_end=today,
    )


# --- the connections --------------------------------------------------------------------------


def _record(row: SandboxBankConnection) -> dict[str, Any]:
    return {
        "reference": row.reference,
        "return_url": row.return_url,
        "livemode": row.livemode,
        "created_at": row.created_at.isoformat(),
        "status": row.status,
        "profile": row.profile,
    }


def connection_get(*, reference: str) -> dict[str, Any] | None:
    """The sandbox's record of a connection (reference, return_url, livemode, status,
    profile), or None when it never existed or its hour is over."""
    if not REFERENCE_PATTERN.match(reference):
        return None
    row = SandboxBankConnection.objects.filter(
        reference=reference,
        created_at__gte=timezone.now() - timedelta(seconds=CONNECTION_TTL_SECONDS),
    ).first()
    return None if row is None else _record(row)


def connection_answer(*, reference: str, profile: str | None) -> dict[str, Any]:
    """The customer's choice on the sandbox bank page: a profile's account (connected), or
    None to cancel. Only the first answer counts (a conditional update), so a second click
    or a second tab changes nothing. Raises ``BankConnectionUnknown``."""
    if profile is not None and profile not in PROFILES:
        raise InvalidRequest("Unknown test profile.")
    if connection_get(reference=reference) is None:
        raise BankConnectionUnknown()
    SandboxBankConnection.objects.filter(reference=reference, status=PENDING).update(
        status=CANCELLED if profile is None else CONNECTED,
        profile=profile or "",
        answered_at=timezone.now(),
    )
    record = connection_get(reference=reference)
    if record is None:  # expired in between
        raise BankConnectionUnknown()
    return record


def connection_return_url(record: dict[str, Any]) -> str:
    """Where the bank page sends the browser back: the caller's return URL with
    ``bankcheck=<reference>`` in its query (keeping what is there)."""
    parts = urlsplit(record["return_url"])
    query = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if name != "bankcheck"
    ]
    query.append(("bankcheck", record["reference"]))
    return urlunsplit(parts._replace(query=urlencode(query)))


class SandboxBankDataProvider:
    """``apps.verification.bank_provider.BankDataProvider`` for development and tests."""

    def _network(self) -> None:
        # The simulated round trip: callers must not hold a transaction open across it.
        latency = getattr(
            settings, "SANDBOX_BANK_LATENCY_MS", settings.SANDBOX_PROCESSOR_LATENCY_MS
        )
        if latency > 0:
            time.sleep(latency / 1000)

    def connection_start(
        self, *, reference_hint: str, return_url: str, livemode: bool
    ) -> ConnectionStart:
        self._network()
        if not return_url or len(return_url) > 1000:
            raise InvalidRequest("A return URL of at most 1000 characters is required.")
        hint = reference_hint if REFERENCE_PATTERN.match(reference_hint or "") else ""
        # The hint becomes the reference unless it is taken (a start sent twice).
        for reference in (hint, f"bankconn_{secrets.token_hex(16)}"):
            if not reference:
                continue
            _row, created = SandboxBankConnection.objects.get_or_create(
                reference=reference,
                defaults={
                    "livemode": livemode,
                    "return_url": return_url,
                    "status": PENDING,
                    "created_at": timezone.now(),
                },
            )
            if created:
                break
        redirect_url = settings.PUBLIC_BASE_URL + reverse(
            "verification:sandbox-bank", args=[reference]
        )
        return ConnectionStart(reference=reference, redirect_url=redirect_url)

    def connection_status(self, *, reference: str) -> str:
        self._network()
        record = connection_get(reference=reference)
        if record is None:
            raise BankConnectionUnknown()
        if record["profile"] == UNAVAILABLE:
            raise BankDataUnavailable()
        return record["status"]

    def transactions(self, *, reference: str) -> AccountData:
        self._network()
        record = connection_get(reference=reference)
        if record is None:
            raise BankConnectionUnknown()
        if record["status"] != CONNECTED:
            raise BankConnectionPending()
        return profile_account(record["profile"], today=business_date(timezone.now()))
