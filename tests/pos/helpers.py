"""Shared by the in-store tests: a French mobile, a terminal, a started session."""

from __future__ import annotations

from django.utils import timezone

from apps.pos import services
from apps.pos.models import PosSession, Terminal

PHONE = "06 12 34 56 78"
PHONE_E164 = "+33612345678"


def terminal_for(shop, *, livemode: bool = False, name: str = "Caisse 1") -> tuple[Terminal, str]:
    """A registered terminal of ``shop`` and its secret."""
    issued = services.terminal_register(
        merchant=shop.merchant, livemode=livemode, name=name, shop="Boutique", now=timezone.now()
    )
    return issued.terminal, issued.secret


def started(
    shop,
    *,
    amount_cents: int = 30000,
    phone: str = PHONE,
    terminal: Terminal | None = None,
    livemode: bool = False,
    staff_name: str = "Léa",
    now=None,
) -> PosSession:
    session, _created = services.session_start(
        merchant=shop.merchant,
        livemode=livemode,
        sale=services.SaleRequest(amount_cents=amount_cents, phone=phone, staff_name=staff_name),
        terminal=terminal,
        now=now or timezone.now(),
    )
    return session
