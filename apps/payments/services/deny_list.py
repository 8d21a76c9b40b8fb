"""The internal deny list: who Tranche will not lend to again.

Fed by merchants' fraud flags (``potential_fraud_flag``), by payments in default (the
schedules' default handling calls ``deny_list_add_for_payment`` with ``source=default``) and by
operators in the admin. An entry names an email, a phone, a card (the processor's fingerprint)
or a device; the decision refuses a checkout matching any live entry of its mode.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from apps.payments.models import Checkout, DenyListEntry, Payment
from apps.payments.services.scoring import deny_list_values


def deny_list_add_for_payment(*, payment: Payment, source: str, note: str, now: datetime) -> int:
    """List what identifies the payment's customer (email, phone, card, device); entries
    already listed are kept as they are. Returns how many were added."""
    checkout = Checkout.objects.select_related("card").filter(payment=payment).first()
    customer = payment.customer
    card = (checkout.card if checkout else None) or payment.card
    pairs = deny_list_values(
        email=(checkout.email if checkout else "") or customer.email,
        phone=(checkout.phone if checkout else "") or customer.phone,
        card_fingerprint=card.fingerprint if card else "",
        device_id=checkout.device_id if checkout else "",
    )
    entries = [
        DenyListEntry(
            livemode=payment.livemode,
            kind=kind,
            value=value,
            source=source,
            payment=payment,
            note=note[:500],
            created_at=now,
        )
        for kind, value in pairs
    ]
    # One live entry per value: the partial unique index skips the ones already there.
    return len(DenyListEntry.objects.bulk_create(entries, ignore_conflicts=True))


def deny_list_remove(*, entry_id: int, now: datetime) -> DenyListEntry:
    """Take an entry off the list; its row stays, as the record of why it was there."""
    with transaction.atomic():
        entry = DenyListEntry.objects.select_for_update().get(pk=entry_id)
        if entry.removed_at is None:
            entry.removed_at = now
            entry.save(update_fields=["removed_at"])
    return entry
