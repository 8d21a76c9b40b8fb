"""Named posting recipes: one per business event that moves money. Pure functions.

Each takes the event's amounts in integer cents, refuses amounts the event cannot have, and
returns a :class:`PostingSpec` whose (source, idempotency key) names the event, so posting it
twice posts once. Legs of zero are left out where the event allows a part to be zero.

Where the money sits:
- the customer's card pays into **processor clearing** (until the processor settles to the
  **bank**); refunds to cards leave from it, through **refunds payable** (what a refund owes
  back to the customer until the processor confirms the card refund);
- what the customer still owes is the payment's **customer receivable** (principal only:
  interest is earned when it is collected, so cancelling future instalments never touches
  unearned interest);
- the merchant is owed the basket minus its fee on its **merchant balance**, the day the first
  instalment is captured; payouts move it to **payouts in transit**, then out of the bank.
"""

from __future__ import annotations

from datetime import date, datetime

from .models import AccountKind as K
from .postings import (
    AccountRef,
    InvalidLegAmount,
    LegSpec,
    PostingSpec,
    credit,
    debit,
)


def _positive(name: str, cents: int) -> None:
    if isinstance(cents, bool) or not isinstance(cents, int) or cents <= 0:
        raise InvalidLegAmount(f"{name} must be a positive number of cents, not {cents!r}.")


def _not_negative(name: str, cents: int) -> None:
    if isinstance(cents, bool) or not isinstance(cents, int) or cents < 0:
        raise InvalidLegAmount(f"{name} cannot be negative ({cents!r}).")


def _nonzero(legs: list[LegSpec]) -> tuple[LegSpec, ...]:
    return tuple(leg for leg in legs if leg.cents != 0)


def _merchant(kind: K, merchant_id: int) -> AccountRef:
    return AccountRef(kind, merchant_id)


def _receivable(merchant_id: int, payment_id: str) -> AccountRef:
    return AccountRef(K.CUSTOMER_RECEIVABLE, merchant_id, payment_id)


def payment_captured(
    *,
    merchant_id: int,
    livemode: bool,
    payment_id: str,
    purchase_cents: int,
    first_principal_cents: int,
    customer_fee_cents: int,
    interest_cents: int,
    merchant_fee_cents: int,
    processor_reference: str,
    effective_at: datetime,
) -> PostingSpec:
    """The first instalment is captured and the merchant is credited the basket minus its fee.

    The card pays the first instalment's principal, the customer fee and its interest; the
    rest of the principal becomes the customer's receivable. A pay-later payment captures
    nothing yet (``first_principal_cents`` 0, no processor reference): the whole principal is
    receivable, and the merchant is credited all the same.
    """
    _positive("purchase_cents", purchase_cents)
    _not_negative("first_principal_cents", first_principal_cents)
    _not_negative("customer_fee_cents", customer_fee_cents)
    _not_negative("interest_cents", interest_cents)
    _not_negative("merchant_fee_cents", merchant_fee_cents)
    if first_principal_cents > purchase_cents:
        raise InvalidLegAmount("The first instalment's principal exceeds the purchase.")
    if merchant_fee_cents > purchase_cents:
        raise InvalidLegAmount("The merchant fee exceeds the purchase.")
    captured = first_principal_cents + customer_fee_cents + interest_cents
    if captured and not processor_reference:
        raise InvalidLegAmount("A captured amount needs the processor's reference.")
    legs = [
        debit(_merchant(K.PROCESSOR_CLEARING, merchant_id), captured),
        debit(_receivable(merchant_id, payment_id), purchase_cents - first_principal_cents),
        credit(_merchant(K.MERCHANT_BALANCE, merchant_id), purchase_cents - merchant_fee_cents),
        credit(_merchant(K.MERCHANT_FEE_REVENUE, merchant_id), merchant_fee_cents),
        credit(_merchant(K.CUSTOMER_FEE_REVENUE, merchant_id), customer_fee_cents),
        credit(_merchant(K.INTEREST_REVENUE, merchant_id), interest_cents),
    ]
    return PostingSpec(
        kind="payment_captured",
        source="payment",
        idempotency_key=f"{payment_id}:captured",
        livemode=livemode,
        effective_at=effective_at,
        legs=_nonzero(legs),
        merchant_id=merchant_id,
        reference=payment_id,
        processor_reference=processor_reference,
    )


def instalment_collected(
    *,
    merchant_id: int,
    livemode: bool,
    payment_id: str,
    instalment_id: str,
    principal_cents: int,
    interest_cents: int = 0,
    customer_fee_cents: int = 0,
    processor_reference: str,
    effective_at: datetime,
) -> PostingSpec:
    """A later instalment is paid by card (on its date, early, or after an incident)."""
    _not_negative("principal_cents", principal_cents)
    _not_negative("interest_cents", interest_cents)
    _not_negative("customer_fee_cents", customer_fee_cents)
    total = principal_cents + interest_cents + customer_fee_cents
    _positive("the instalment's total", total)
    if not processor_reference:
        raise InvalidLegAmount("A collected instalment needs the processor's reference.")
    legs = [
        debit(_merchant(K.PROCESSOR_CLEARING, merchant_id), total),
        credit(_receivable(merchant_id, payment_id), principal_cents),
        credit(_merchant(K.INTEREST_REVENUE, merchant_id), interest_cents),
        credit(_merchant(K.CUSTOMER_FEE_REVENUE, merchant_id), customer_fee_cents),
    ]
    return PostingSpec(
        kind="instalment_collected",
        source="instalment",
        idempotency_key=f"{instalment_id}:collected",
        livemode=livemode,
        effective_at=effective_at,
        legs=_nonzero(legs),
        merchant_id=merchant_id,
        reference=payment_id,
        processor_reference=processor_reference,
    )


def refund_issued(
    *,
    merchant_id: int,
    livemode: bool,
    payment_id: str,
    refund_id: str,
    receivable_cancelled_cents: int,
    to_card_cents: int,
    written_off_cancelled_cents: int = 0,
    customer_fee_refunded_cents: int = 0,
    interest_refunded_cents: int = 0,
    effective_at: datetime,
) -> PostingSpec:
    """A refund is decided: the merchant's balance is debited by the refunded amount.

    The refunded amount first cancels what the customer still owes: the receivable
    (``receivable_cancelled``), or for a payment in default the part already written off,
    which reduces the credit loss (``written_off_cancelled``). The rest is owed back to the
    customer's card (``to_card``). A full refund also gives back the customer fee and the
    interest already paid, which Tranche had earned: they leave its revenue. What goes back
    to the card waits in **refunds payable** until the processor confirms each card refund
    (``refund_sent_to_card``).
    """
    for name, cents in (
        ("receivable_cancelled_cents", receivable_cancelled_cents),
        ("written_off_cancelled_cents", written_off_cancelled_cents),
        ("to_card_cents", to_card_cents),
        ("customer_fee_refunded_cents", customer_fee_refunded_cents),
        ("interest_refunded_cents", interest_refunded_cents),
    ):
        _not_negative(name, cents)
    refunded = receivable_cancelled_cents + written_off_cancelled_cents + to_card_cents
    _positive("the refunded amount", refunded)
    back_to_card = to_card_cents + customer_fee_refunded_cents + interest_refunded_cents
    legs = [
        debit(_merchant(K.MERCHANT_BALANCE, merchant_id), refunded),
        debit(_merchant(K.CUSTOMER_FEE_REVENUE, merchant_id), customer_fee_refunded_cents),
        debit(_merchant(K.INTEREST_REVENUE, merchant_id), interest_refunded_cents),
        credit(_receivable(merchant_id, payment_id), receivable_cancelled_cents),
        credit(_merchant(K.CREDIT_LOSSES, merchant_id), written_off_cancelled_cents),
        credit(_merchant(K.REFUNDS_PAYABLE, merchant_id), back_to_card),
    ]
    return PostingSpec(
        kind="refund_issued",
        source="refund",
        idempotency_key=f"{refund_id}:issued",
        livemode=livemode,
        effective_at=effective_at,
        legs=_nonzero(legs),
        merchant_id=merchant_id,
        reference=payment_id,
        memo=refund_id,
    )


def refund_sent_to_card(
    *,
    merchant_id: int,
    livemode: bool,
    payment_id: str,
    refund_id: str,
    part: int,
    cents: int,
    processor_reference: str,
    effective_at: datetime,
) -> PostingSpec:
    """The processor refunded part ``part`` of a refund to the card it charged: the money
    owed back leaves through processor clearing (one posting per card refund, so the
    settlement report matches each by its reference)."""
    _positive("cents", cents)
    if not processor_reference:
        raise InvalidLegAmount("Money back to a card needs the processor's refund reference.")
    return PostingSpec(
        kind="refund_to_card",
        source="refund",
        idempotency_key=f"{refund_id}:card:{part}",
        livemode=livemode,
        effective_at=effective_at,
        legs=(
            debit(_merchant(K.REFUNDS_PAYABLE, merchant_id), cents),
            credit(_merchant(K.PROCESSOR_CLEARING, merchant_id), cents),
        ),
        merchant_id=merchant_id,
        reference=payment_id,
        processor_reference=processor_reference,
        memo=refund_id,
    )


def receivable_written_off(
    *, merchant_id: int, livemode: bool, payment_id: str, cents: int, effective_at: datetime
) -> PostingSpec:
    """A defaulted payment's outstanding principal becomes a credit loss (merchant untouched)."""
    _positive("cents", cents)
    return PostingSpec(
        kind="receivable_written_off",
        source="payment",
        idempotency_key=f"{payment_id}:written_off",
        livemode=livemode,
        effective_at=effective_at,
        legs=(
            debit(_merchant(K.CREDIT_LOSSES, merchant_id), cents),
            credit(_receivable(merchant_id, payment_id), cents),
        ),
        merchant_id=merchant_id,
        reference=payment_id,
    )


def written_off_recovered(
    *,
    merchant_id: int,
    livemode: bool,
    payment_id: str,
    collection_id: str,
    cents: int,
    processor_reference: str,
    effective_at: datetime,
) -> PostingSpec:
    """Money collected on a payment already written off reduces the credit loss."""
    _positive("cents", cents)
    return PostingSpec(
        kind="written_off_recovered",
        source="collection",
        idempotency_key=f"{collection_id}:recovered",
        livemode=livemode,
        effective_at=effective_at,
        legs=(
            debit(_merchant(K.PROCESSOR_CLEARING, merchant_id), cents),
            credit(_merchant(K.CREDIT_LOSSES, merchant_id), cents),
        ),
        merchant_id=merchant_id,
        reference=payment_id,
        processor_reference=processor_reference,
    )


def _move(
    kind: str,
    *,
    source: str,
    reference: str,
    merchant_id: int,
    livemode: bool,
    cents: int,
    to: AccountRef,
    away_from: AccountRef,
    effective_at: datetime,
) -> PostingSpec:
    """A two-leg posting moving a positive amount between two of a merchant's accounts;
    the event (the kind's last word: sent, paid, held...) ends the idempotency key."""
    _positive("cents", cents)
    return PostingSpec(
        kind=kind,
        source=source,
        idempotency_key=f"{reference}:{kind.rsplit('_', 1)[-1]}",
        livemode=livemode,
        effective_at=effective_at,
        legs=(debit(to, cents), credit(away_from, cents)),
        merchant_id=merchant_id,
        reference=reference,
    )


def payout_sent(
    *, merchant_id: int, livemode: bool, payout_id: str, cents: int, effective_at: datetime
) -> PostingSpec:
    """A payout leaves the merchant's balance for the SEPA transfer."""
    return _move(
        "payout_sent",
        source="payout",
        reference=payout_id,
        merchant_id=merchant_id,
        livemode=livemode,
        cents=cents,
        to=_merchant(K.MERCHANT_BALANCE, merchant_id),
        away_from=_merchant(K.PAYOUTS_IN_TRANSIT, merchant_id),
        effective_at=effective_at,
    )


def payout_paid(
    *, merchant_id: int, livemode: bool, payout_id: str, cents: int, effective_at: datetime
) -> PostingSpec:
    """The bank carried out the transfer: the money has left Tranche's bank account."""
    return _move(
        "payout_paid",
        source="payout",
        reference=payout_id,
        merchant_id=merchant_id,
        livemode=livemode,
        cents=cents,
        to=_merchant(K.PAYOUTS_IN_TRANSIT, merchant_id),
        away_from=AccountRef(K.BANK),
        effective_at=effective_at,
    )


def payout_failed(
    *, merchant_id: int, livemode: bool, payout_id: str, cents: int, effective_at: datetime
) -> PostingSpec:
    """The transfer was rejected or returned: the money goes back to the merchant's balance."""
    return _move(
        "payout_failed",
        source="payout",
        reference=payout_id,
        merchant_id=merchant_id,
        livemode=livemode,
        cents=cents,
        to=_merchant(K.PAYOUTS_IN_TRANSIT, merchant_id),
        away_from=_merchant(K.MERCHANT_BALANCE, merchant_id),
        effective_at=effective_at,
    )


def processor_settled(
    *,
    livemode: bool,
    settlement_date: date,
    cents_by_merchant: dict[int, int],
    processor_reference: str,
    effective_at: datetime,
) -> PostingSpec:
    """The processor paid a day's net card movements into Tranche's bank account.

    ``cents_by_merchant`` is the net settled per merchant (negative when refunds exceeded
    charges that day); merchants with a net of zero are left out.
    """
    for merchant_id, cents in cents_by_merchant.items():
        if isinstance(cents, bool) or not isinstance(cents, int):
            raise InvalidLegAmount(
                f"Merchant {merchant_id}'s net must be integer cents: {cents!r}."
            )
    legs = [
        credit(_merchant(K.PROCESSOR_CLEARING, merchant_id), cents)
        for merchant_id, cents in sorted(cents_by_merchant.items())
    ]
    total = sum(cents_by_merchant.values())
    legs.append(debit(AccountRef(K.BANK), total))
    return PostingSpec(
        kind="processor_settled",
        source="settlement",
        idempotency_key=f"{settlement_date.isoformat()}:{processor_reference}",
        livemode=livemode,
        effective_at=effective_at,
        legs=_nonzero(legs),
        processor_reference=processor_reference,
    )


def reserve_held(
    *, merchant_id: int, livemode: bool, reserve_id: str, cents: int, effective_at: datetime
) -> PostingSpec:
    """An operator holds part of a merchant's balance back (risk reserve)."""
    return _move(
        "reserve_held",
        source="reserve",
        reference=reserve_id,
        merchant_id=merchant_id,
        livemode=livemode,
        cents=cents,
        to=_merchant(K.MERCHANT_BALANCE, merchant_id),
        away_from=_merchant(K.MERCHANT_RESERVE, merchant_id),
        effective_at=effective_at,
    )


def reserve_released(
    *, merchant_id: int, livemode: bool, reserve_id: str, cents: int, effective_at: datetime
) -> PostingSpec:
    """A held reserve goes back to the merchant's balance."""
    return _move(
        "reserve_released",
        source="reserve",
        reference=reserve_id,
        merchant_id=merchant_id,
        livemode=livemode,
        cents=cents,
        to=_merchant(K.MERCHANT_RESERVE, merchant_id),
        away_from=_merchant(K.MERCHANT_BALANCE, merchant_id),
        effective_at=effective_at,
    )
