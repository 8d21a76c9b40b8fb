"""Reference data the payments app ships: the usury table's known quarters.

Installed after every migrate and every flush (Django's ``post_migrate``, as it does for
content types), idempotently, so a fresh database, a test database emptied between
transactional tests, and a production database all hold at least the shipped quarters.
Operators add later quarters in the admin; an operator's edit of a shipped row is kept.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

USURY_RATES_FILE = Path(__file__).resolve().parent / "data" / "usury_rates.json"


def install_shipped_usury_rates(sender=None, *, apps=None, using="default", **kwargs) -> None:
    """``post_migrate`` receiver (also callable directly)."""
    if apps is None:
        from django.apps import apps
    try:
        UsuryRate = apps.get_model("payments", "UsuryRate")
    except LookupError:  # migrating backwards past the table
        return
    table = json.loads(USURY_RATES_FILE.read_text())
    for quarter in table["quarters"]:
        for band in quarter["bands"]:
            cents = band["max_credit_amount"]
            UsuryRate.objects.using(using).get_or_create(
                effective_from=date.fromisoformat(quarter["effective_from"]),
                max_credit_amount=None if cents is None else Decimal(cents) / 100,
                defaults={"rate_bps": band["rate_bps"], "source": table["source"][:200]},
            )
