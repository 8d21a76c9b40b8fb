"""django-q2 entry points of in-store sales: thin, idempotent, safe to run twice and at once."""

from __future__ import annotations

from django.utils import timezone


def expire_sessions() -> int:
    """Open in-store sessions whose time is up expire, and their payments stop (every
    minute); a terminal polling one learns it at once anyway."""
    from apps.pos.services import sessions_expire

    return sessions_expire(now=timezone.now())
