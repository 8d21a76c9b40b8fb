"""Where an in-store session stands, from what its payment says (pure: no ORM).

The session follows its payment; nothing in apps.payments calls apps.pos. Whoever reads a
session (the terminal polling, the virtual terminal, the customer's page, the expiry sweep)
asks ``session_state`` and records the answer when it changed.

| the payment                                    | the session            |
|------------------------------------------------|------------------------|
| accepted (first instalment charged, or a pay-later plan accepted) | paid |
| stopped by the merchant's cancel                | cancelled              |
| stopped because its time was up                 | expired                |
| its checkout refused the credit                 | refused (may still become paid: pay in full) |
| exists (the customer chose a plan)              | customer in progress   |
| none yet, the customer opened the link          | customer in progress   |
| none yet                                        | link sent              |

Final states stay final, except ``refused`` -> ``paid``. A session past its expiry with no
charge in flight expires (the caller stops the payment first).
"""

from __future__ import annotations

from dataclasses import dataclass

STARTED = "started"
LINK_SENT = "link_sent"
CUSTOMER_IN_PROGRESS = "customer_in_progress"
PAID = "paid"
REFUSED = "refused"
CANCELLED = "cancelled"
EXPIRED = "expired"

OPEN = frozenset({STARTED, LINK_SENT, CUSTOMER_IN_PROGRESS})
FINAL = frozenset({PAID, REFUSED, CANCELLED, EXPIRED})


@dataclass(frozen=True, slots=True)
class PaymentFacts:
    """What a session's state depends on in its payment (None: no payment yet)."""

    accepted: bool = False
    cancelled: bool = False
    expired: bool = False
    refused: bool = False
    charge_in_flight: bool = False


def session_state(
    current: str,
    *,
    link_sent: bool,
    opened: bool,
    payment: PaymentFacts | None,
    time_up: bool,
) -> str:
    """The state a session should be in now (see the module's table)."""
    if current in FINAL and not (current == REFUSED and payment is not None and payment.accepted):
        return current
    if payment is not None:
        if payment.accepted:
            return PAID
        if payment.cancelled:
            return CANCELLED
        if payment.expired:
            return EXPIRED
        if payment.refused:
            return REFUSED
    if time_up and not (payment is not None and payment.charge_in_flight):
        return EXPIRED
    if payment is not None or opened:
        return CUSTOMER_IN_PROGRESS
    return LINK_SENT if link_sent else STARTED


def may_cancel(state: str) -> bool:
    """Staff may cancel a session the customer has not finished (the payment's own cancel
    then refuses while a charge is in flight)."""
    return state in OPEN or state == REFUSED
