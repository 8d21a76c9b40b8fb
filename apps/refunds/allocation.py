"""Where a refund goes: pure arithmetic over a payment's position, in integer cents.

The rules (product.md "Refunds"):

1. The merchant refunds against the purchase amount: any number of refunds, together never
   more than the purchase amount.
2. A refund first cancels what the customer still owes, starting with the last instalment and
   moving backwards. An instalment whose purchase amount is cancelled entirely is owed no more:
   its fee and interest go with it (interest on a loan that no longer runs is not earned). A
   reduced instalment keeps its fee and interest, and is debited for less on its date.
3. What exceeds the amount still owed goes back to the customer's card, through the card
   charges that paid, newest first, each up to what it charged less what was refunded on it.
4. A complete refund (nothing left to refund after it) also gives back the customer fees and
   interest the customer paid: the customer ends up having paid nothing.

While an instalment is being debited (a charge in flight, usually for a few seconds) a refund
is refused for a moment: the instalment can be neither cancelled nor refunded until the
charge is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy as _

from apps.common.errors import DomainError

# What an instalment is, as far as a refund is concerned.
OWED = "owed"  # pending or late: the customer still owes it (the receivable)
WRITTEN_OFF = "written_off"  # claimed or covered: owed, but written off as a credit loss
PAID = "paid"  # paid (or already cancelled by refunds)
IN_FLIGHT = "in_flight"  # owed, with a debit being made right now


@dataclass(frozen=True)
class InstalmentPosition:
    number: int
    status: str  # OWED, WRITTEN_OFF, PAID or IN_FLIGHT
    principal: int
    fee: int = 0
    interest: int = 0


@dataclass(frozen=True)
class ChargePosition:
    """A card charge that paid part of the plan, with what may still be refunded on it."""

    key: str  # the charge's idempotency key: names it
    amount: int
    refunded: int = 0  # by earlier refunds (confirmed or on their way)

    @property
    def refundable(self) -> int:
        return self.amount - self.refunded


@dataclass(frozen=True)
class Position:
    """A payment as a refund sees it. ``charges`` newest first."""

    purchase: int
    refunded: int  # purchase amount refunded so far
    instalments: tuple[InstalmentPosition, ...]
    charges: tuple[ChargePosition, ...] = ()

    @property
    def refundable(self) -> int:
        return self.purchase - self.refunded


@dataclass(frozen=True)
class InstalmentCut:
    """What a refund takes off one instalment."""

    number: int
    principal: int
    fee: int = 0
    interest: int = 0
    written_off: bool = False
    cancelled: bool = False  # nothing left to pay on it


@dataclass(frozen=True)
class CardPart:
    charge_key: str
    amount: int


@dataclass(frozen=True)
class Allocation:
    amount: int
    full: bool
    cuts: tuple[InstalmentCut, ...]
    to_card: int  # purchase amount back to the card
    fee_refunded: int
    interest_refunded: int
    card_parts: tuple[CardPart, ...] = field(default=())

    @property
    def owed_cancelled(self) -> int:
        return sum(cut.principal for cut in self.cuts if not cut.written_off)

    @property
    def written_off_cancelled(self) -> int:
        return sum(cut.principal for cut in self.cuts if cut.written_off)

    @property
    def back_to_card(self) -> int:
        return self.to_card + self.fee_refunded + self.interest_refunded


# --- errors -------------------------------------------------------------------------------


class RefundAmountInvalid(DomainError):
    """Not a positive number of cents within what is left to refund: a 400 naming the field
    and the maximum."""

    code = "validation_error"
    http_status = 400

    def __init__(self, message, *, maximum: int):
        super().__init__(
            message,
            errors=[
                {
                    "field": "amount",
                    "error_code": "invalid_value",
                    "message": str(message),
                    "maximum": maximum,
                }
            ],
            maximum=maximum,
        )


class RefundWaitForDebit(DomainError):
    code = "refund_blocked_by_debit"
    http_status = 409
    default_message = _(
        "An instalment of this payment is being debited right now; try the refund again in a "
        "few minutes."
    )


class RefundCannotReachCard(DomainError):
    """The card charges cannot take what must go back (a bug or a processor's mismatch):
    nothing is done and the error is logged for the operators."""

    code = "refund_cannot_reach_card"
    http_status = 409
    default_message = _(
        "This refund cannot be sent back to the customer's card; our team has been told."
    )


def _eur(cents: int) -> str:
    from apps.common.money import display_eur

    return display_eur(cents)


def check_amount(position: Position, amount: object) -> int:
    """The amount to refund (``None``: everything left), or ``RefundAmountInvalid``."""
    maximum = position.refundable
    if maximum <= 0:
        raise RefundAmountInvalid(
            _("This payment is already completely refunded: nothing is left to refund."),
            maximum=0,
        )
    if amount is None:
        return maximum
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise RefundAmountInvalid(
            _("The amount must be a whole number of cents, at most %(maximum)s cents.")
            % {"maximum": maximum},
            maximum=maximum,
        )
    if amount <= 0:
        raise RefundAmountInvalid(
            _("The amount must be more than zero, at most %(maximum)s cents (%(eur)s).")
            % {"maximum": maximum, "eur": _eur(maximum)},
            maximum=maximum,
        )
    if amount > maximum:
        raise RefundAmountInvalid(
            _(
                "The amount is more than what is left to refund: at most %(maximum)s cents "
                "(%(eur)s)."
            )
            % {"maximum": maximum, "eur": _eur(maximum)},
            maximum=maximum,
        )
    return amount


def allocate(position: Position, *, amount: int | None) -> Allocation:
    """Where a refund of ``amount`` cents (``None``: everything left) goes."""
    amount = check_amount(position, amount)
    if any(row.status == IN_FLIGHT for row in position.instalments):
        raise RefundWaitForDebit()
    full = amount == position.refundable
    left = amount
    cuts: list[InstalmentCut] = []
    for row in sorted(position.instalments, key=lambda r: r.number, reverse=True):
        if row.status not in (OWED, WRITTEN_OFF):
            continue
        if left == 0 and not full:
            break
        take = min(left, row.principal)
        cancelled = take == row.principal
        cuts.append(
            InstalmentCut(
                number=row.number,
                principal=take,
                fee=row.fee if cancelled else 0,
                interest=row.interest if cancelled else 0,
                written_off=row.status == WRITTEN_OFF,
                cancelled=cancelled,
            )
        )
        left -= take
    to_card = left
    fee_back = interest_back = 0
    if full:
        paid = [row for row in position.instalments if row.status == PAID]
        fee_back = sum(row.fee for row in paid)
        interest_back = sum(row.interest for row in paid)
    back = to_card + fee_back + interest_back
    parts = []
    for charge in position.charges:
        if back == 0:
            break
        take = min(back, charge.refundable)
        if take > 0:
            parts.append(CardPart(charge_key=charge.key, amount=take))
            back -= take
    if back > 0:
        raise RefundCannotReachCard()
    return Allocation(
        amount=amount,
        full=full,
        cuts=tuple(cuts),
        to_card=to_card,
        fee_refunded=fee_back,
        interest_refunded=interest_back,
        card_parts=tuple(parts),
    )
