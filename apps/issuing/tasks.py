"""django-q2 entry points of the customer's card (thin, idempotent)."""

from __future__ import annotations

from django.utils import timezone


def deliver_sandbox_issuer_messages() -> int:
    from apps.issuing.issuer_sandbox import deliver_due

    return deliver_due()


def settle_pending_authorisations() -> int:
    from apps.issuing.services.authorisations import authorisations_settle_pending

    return authorisations_settle_pending(now=timezone.now())
