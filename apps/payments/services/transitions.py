"""The one way a payment's state changes: along PAYMENT_TRANSITIONS, with an event row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apps.common.errors import InvalidTransition
from apps.payments.models import PAYMENT_TRANSITIONS, Payment, PaymentEvent


def payment_lock(*, payment_id: int) -> Payment:
    """The payment row, locked until the end of the caller's transaction.

    ``FOR NO KEY UPDATE``: writers of the payment queue behind each other, but a row
    inserted elsewhere that points at the payment (a charge the debit run claims while
    holding the instalments) is not blocked, so the two never wait for each other."""
    return Payment.objects.select_for_update(no_key=True).get(pk=payment_id)


def payment_transition(
    payment: Payment,
    to_state: str,
    *,
    now: datetime,
    kind: str = "state_changed",
    detail: dict[str, Any] | None = None,
    extra_fields: tuple[str, ...] = (),
) -> Payment:
    """Move a payment the caller has locked (``payment_lock``) to ``to_state``.

    Refuses a change PAYMENT_TRANSITIONS does not allow with ``InvalidTransition``; saves
    the state, ``updated_at`` and ``extra_fields`` only; appends a PaymentEvent.
    """
    if to_state not in PAYMENT_TRANSITIONS[payment.state]:
        raise InvalidTransition("payment", payment.state, to_state)
    from_state = payment.state
    payment.state = to_state
    payment.updated_at = now
    payment.save(update_fields=["state", "updated_at", *extra_fields])
    payment_event_record(
        payment, kind=kind, now=now, from_state=from_state, to_state=to_state, detail=detail
    )
    return payment


def payment_event_record(
    payment: Payment,
    *,
    kind: str,
    now: datetime,
    from_state: str = "",
    to_state: str = "",
    detail: dict[str, Any] | None = None,
) -> PaymentEvent:
    """Append something that happened to a payment to its history."""
    return PaymentEvent.objects.create(
        payment=payment,
        kind=kind,
        from_state=from_state,
        to_state=to_state,
        detail=detail or {},
        created_at=now,
    )


def payments_transition_many(
    changes: list[tuple[Payment, str, str, dict[str, Any]]], *, now: datetime
) -> list[PaymentEvent]:
    """Move many payments the caller has locked, in a few statements: one UPDATE per target
    state and one INSERT for every event. ``changes`` are (payment, to_state, event kind,
    detail); each must be allowed by PAYMENT_TRANSITIONS (``InvalidTransition`` otherwise).
    Returns the events, unsaved: the caller writes them with its own (one bulk insert)."""
    by_state: dict[str, list[int]] = {}
    events = []
    for payment, to_state, kind, detail in changes:
        if to_state not in PAYMENT_TRANSITIONS[payment.state]:
            raise InvalidTransition("payment", payment.state, to_state)
        events.append(
            PaymentEvent(
                payment_id=payment.pk,
                kind=kind,
                from_state=payment.state,
                to_state=to_state,
                detail=detail,
                created_at=now,
            )
        )
        payment.state = to_state
        payment.updated_at = now
        by_state.setdefault(to_state, []).append(payment.pk)
    for to_state, ids in by_state.items():
        Payment.objects.filter(pk__in=ids).update(state=to_state, updated_at=now)
    return events
