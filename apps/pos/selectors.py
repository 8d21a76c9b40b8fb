"""Reads of in-store sessions and terminals, always scoped to one merchant and one mode."""

from __future__ import annotations

from datetime import datetime

from django.db.models import F, QuerySet

from apps.common.errors import NotFound
from apps.common.ids import with_prefix
from apps.merchants.models import Merchant
from apps.pos import services
from apps.pos.models import PosSession, Terminal


def session_for(
    *, merchant: Merchant, livemode: bool, session_id: str, now: datetime
) -> PosSession:
    """The merchant's session in this mode, by id with or without its prefix, brought up to
    date with its payment (``NotFound`` for anyone else's, or the other mode's)."""
    found = (
        PosSession.objects.filter(
            merchant=merchant,
            livemode=livemode,
            public_id=with_prefix("pos_session", session_id),
        )
        .values_list("pk", flat=True)
        .first()
    )
    if found is None:
        raise NotFound("pos_session", session_id)
    return services.session_sync(session_id=found, now=now)


def sessions_since(*, merchant: Merchant, livemode: bool, since: datetime) -> QuerySet:
    """The sessions started since ``since``, newest first (pos_session_list_idx)."""
    return (
        PosSession.objects.filter(merchant=merchant, livemode=livemode, created_at__gte=since)
        .select_related("terminal", "payment")
        .order_by("-created_at", "-id")
    )


def terminals(*, merchant: Merchant, livemode: bool) -> QuerySet:
    """The terminals registered in this mode: working ones first, newest first."""
    return Terminal.objects.filter(merchant=merchant, livemode=livemode).order_by(
        F("revoked_at").desc(nulls_first=True), "-created_at", "-id"
    )


def terminal_for(*, merchant: Merchant, livemode: bool, terminal_id: str) -> Terminal:
    """The merchant's terminal in this mode (``NotFound`` for anyone else's)."""
    terminal = Terminal.objects.filter(
        merchant=merchant, livemode=livemode, public_id=with_prefix("terminal", terminal_id)
    ).first()
    if terminal is None:
        raise NotFound("terminal", terminal_id)
    return terminal
