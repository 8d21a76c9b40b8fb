"""Refunding a payment: decide and record (one transaction), then give back to the card.

``refund_issue`` is the use case the API and the dashboard call. It works in three steps,
like every money movement that calls the processor:

1. **open** (``refund_open``, one transaction under the payment's lock): the allocation is
   computed from the payment as it is now (``allocation.allocate``), the unpaid instalments
   are reduced from the last one, the ``Refund`` and its ``CardRefund`` rows (one per card
   charge, each with its idempotency key) are written, the ledger posts the merchant's
   balance debit, the cancelled receivable and what is owed back to the card, the payment
   moves to ``paid`` when nothing is left to pay, and the merchant's IPN, the customer's email
   and the credit note are recorded. Two refunds at once queue on the payment's lock: the
   second sees what the first took, so together they never exceed the purchase amount.
2. **send** (no transaction): each card refund is made through the processor interface with
   its key; a retry repeats the same call, which the processor answers once.
3. **record** (``refund_record``, one transaction): each outcome is written, with a ledger
   posting per card refund carrying the processor's reference (what the settlement report
   matches). An answer lost (a timeout) leaves the card refund ``unknown``, asked again by
   the sweep ``refunds_send_pending``; a refusal marks the refund ``failed`` for operators:
   the money stays owed to the customer in the ledger (refunds payable) until they pay it.

A merchant whose balance does not cover a refund goes negative: nothing is refused, and later
sales make it good before the next payout (payouts pay only a positive available balance).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext_lazy as _

from apps.common.errors import DomainError, InvalidTransition
from apps.common.money import decimal_to_cents, to_cents, to_money
from apps.ledger import recipes
from apps.ledger.services import postings_create
from apps.payments.models import Charge, Instalment, Payment, PaymentState
from apps.payments.notifications import notification_schedule
from apps.payments.processor import (
    ChargeResult,
    ProcessorError,
    ProcessorUnavailable,
    card_processor,
)
from apps.payments.services.charges import IN_DOUBT, ORPHANED
from apps.payments.services.transitions import (
    payment_event_record,
    payment_lock,
    payment_transition,
)
from apps.refunds import allocation as alloc
from apps.refunds.models import REFUND_TRANSITIONS, CardRefund, Refund

logger = logging.getLogger(__name__)

S = PaymentState
REFUNDABLE_STATES = frozenset(
    {
        S.IN_PROGRESS,
        S.PAID,
        S.LATE_DUNNING,
        S.LATE_CONTACT_CUSTOMER,
        S.DEFAULT,
        S.COLLECTION_DONE,
    }
)
# Charges that paid the plan and may take money back (an early payment made in the portal
# is one charge for the instalments it paid).
PLAN_CHARGES = (
    Charge.Kind.FIRST_INSTALMENT,
    Charge.Kind.PAY_IN_FULL,
    Charge.Kind.INSTALMENT,
    Charge.Kind.EARLY_PAYMENT,
)
OPEN_CARD_REFUNDS = (CardRefund.Status.PENDING, CardRefund.Status.UNKNOWN)
# The sweep leaves younger card refunds to the request that opened them.
SEND_GRACE = timedelta(minutes=1)

INSTALMENT_STATUS = {
    Instalment.State.PENDING: alloc.OWED,
    Instalment.State.INCIDENT: alloc.OWED,
    Instalment.State.CLAIMED: alloc.WRITTEN_OFF,
    Instalment.State.COVERED: alloc.WRITTEN_OFF,
    Instalment.State.PAID: alloc.PAID,
}


class PaymentNotRefundable(DomainError):
    code = "invalid_payment_state"
    http_status = 409


@dataclass(frozen=True)
class RefundRequest:
    """What the merchant asks: ``amount`` in cents, or None for everything left."""

    amount: int | None = None
    merchant_reference: str = ""
    comment: str = ""


@dataclass(frozen=True)
class Preview:
    """A refund as it would be made now: its allocation and the schedule after it."""

    allocation: alloc.Allocation
    instalments: list[Instalment]  # unsaved copies, as they would read after the refund


# --- reading a payment's position -----------------------------------------------------------


def refundable_check(payment: Payment) -> None:
    """Raise ``PaymentNotRefundable`` unless money was taken on ``payment`` (accepted)."""
    if payment.state in REFUNDABLE_STATES:
        return
    if payment.expired_at is not None:
        message = _("This payment expired before it was paid: there is nothing to refund.")
    elif payment.state == S.STOPPED:
        message = _("This payment was cancelled before it was paid: there is nothing to refund.")
    else:
        message = _(
            "This payment has not been paid: there is nothing to refund. Cancel it instead."
        )
    raise PaymentNotRefundable(message)


def _position(
    payment: Payment, *, lock: bool
) -> tuple[alloc.Position, dict[int, Instalment], dict[str, Charge]]:
    instalments = Instalment.objects.filter(payment=payment).order_by("number")
    if lock:
        # The debit run's claim locks the instalments it takes: this waits for it, then sees
        # its charge in flight.
        instalments = instalments.select_for_update()
    rows = {row.number: row for row in instalments}
    # A charge in doubt (a debit, or an early payment covering several) may yet pay its
    # instalments: none of them is cut.
    in_flight = {
        instalment_id
        for charge in Charge.objects.filter(payment=payment, status__in=IN_DOUBT).only(
            "instalment_id", "covers"
        )
        for instalment_id in charge.instalment_ids
    }
    charges = list(
        Charge.objects.filter(
            payment=payment, status=Charge.Status.SUCCEEDED, kind__in=PLAN_CHARGES
        )
        .exclude(failure_code__startswith=ORPHANED)
        .order_by("-created_at", "-pk")
    )
    refunded = {
        charge_id: decimal_to_cents(total)
        for charge_id, total in CardRefund.objects.filter(charge__payment=payment)
        .values("charge_id")
        .annotate(total=Sum("amount"))
        .values_list("charge_id", "total")
    }
    position = alloc.Position(
        purchase=to_cents(payment.purchase_amount),
        refunded=to_cents(payment.amount_refunded),
        instalments=tuple(
            alloc.InstalmentPosition(
                number=row.number,
                status=alloc.IN_FLIGHT if row.pk in in_flight else INSTALMENT_STATUS[row.state],
                principal=to_cents(row.purchase_amount),
                fee=to_cents(row.customer_fee),
                interest=to_cents(row.customer_interest),
            )
            for row in rows.values()
        ),
        charges=tuple(
            alloc.ChargePosition(
                key=charge.idempotency_key,
                amount=to_cents(charge.amount),
                refunded=refunded.get(charge.pk, 0),
            )
            for charge in charges
        ),
    )
    return position, rows, {charge.idempotency_key: charge for charge in charges}


def _apply(rows: dict[int, Instalment], allocation: alloc.Allocation) -> list[Instalment]:
    """Take the allocation's cuts off the instalments (in memory); the ones changed."""
    changed = []
    for cut in allocation.cuts:
        row = rows[cut.number]
        row.purchase_amount = row.purchase_amount - to_money(cut.principal)
        row.customer_fee = row.customer_fee - to_money(cut.fee)
        row.customer_interest = row.customer_interest - to_money(cut.interest)
        if cut.cancelled:
            row.state = Instalment.State.PAID
            row.next_debit_at = None
        changed.append(row)
    return changed


def refund_preview(*, payment: Payment, amount: int | None) -> Preview:
    """The refund ``amount`` would make now (nothing written): raises what ``refund_open``
    would raise."""
    refundable_check(payment)
    position, rows, _charges = _position(payment, lock=False)
    allocation = alloc.allocate(position, amount=amount)
    _apply(rows, allocation)
    return Preview(allocation=allocation, instalments=list(rows.values()))


# --- deciding --------------------------------------------------------------------------------


def payment_state_after(payment: Payment, rows: list[Instalment]) -> tuple[str, str] | None:
    """The payment's new state once its instalments changed, and the event's kind."""
    states = {row.state for row in rows}
    if states == {Instalment.State.PAID} and payment.state != S.PAID:
        if payment.may_become(S.PAID):
            return S.PAID, "nothing_left_to_pay"
        return None
    late = payment.state in (S.LATE_DUNNING, S.LATE_CONTACT_CUSTOMER)
    if late and Instalment.State.INCIDENT not in states:
        return S.IN_PROGRESS, "back_on_schedule"
    return None


def refund_build(
    *,
    payment: Payment,
    allocation: alloc.Allocation,
    request: RefundRequest,
    origin: str,
    now: datetime,
    requested_by=None,
    api_key=None,
) -> Refund:
    """The Refund row an allocation makes, unsaved (``refund_open`` saves it; a preview
    shows it as it would be)."""
    return Refund(
        payment=payment,
        merchant_id=payment.merchant_id,
        livemode=payment.livemode,
        state=Refund.State.PENDING if allocation.card_parts else Refund.State.SUCCEEDED,
        amount=to_money(allocation.amount),
        full=allocation.full,
        owed_cancelled=to_money(allocation.owed_cancelled),
        written_off_cancelled=to_money(allocation.written_off_cancelled),
        to_card=to_money(allocation.to_card),
        customer_fee_refunded=to_money(allocation.fee_refunded),
        interest_refunded=to_money(allocation.interest_refunded),
        instalments=[
            {
                "number": cut.number,
                "principal": cut.principal,
                "fee": cut.fee,
                "interest": cut.interest,
                "cancelled": cut.cancelled,
            }
            for cut in allocation.cuts
        ],
        merchant_reference=(request.merchant_reference or "")[:255],
        comment=(request.comment or "")[:1000],
        origin=origin,
        requested_by=requested_by,
        api_key=api_key,
        created_at=now,
        finished_at=None if allocation.card_parts else now,
    )


def refund_open(
    *,
    payment_id: int,
    request: RefundRequest,
    origin: str,
    now: datetime,
    requested_by=None,
    api_key=None,
) -> Refund:
    """Decide a refund and record everything it changes, in one transaction (step 1)."""
    from apps.refunds.documents import refund_documents_queue

    with transaction.atomic():
        # FOR NO KEY UPDATE (see payment_lock): the debit run's claim inserts a Charge on
        # this payment while holding the instalments this then waits for.
        payment = payment_lock(payment_id=payment_id)
        refundable_check(payment)
        position, rows, charges = _position(payment, lock=True)
        allocation = alloc.allocate(position, amount=request.amount)
        changed = _apply(rows, allocation)
        for row in changed:
            row.save(
                update_fields=[
                    "purchase_amount",
                    "customer_fee",
                    "customer_interest",
                    "state",
                    "next_debit_at",
                ]
            )
        refund = refund_build(
            payment=payment,
            allocation=allocation,
            request=request,
            origin=origin,
            now=now,
            requested_by=requested_by,
            api_key=api_key,
        )
        refund.save(force_insert=True)
        CardRefund.objects.bulk_create(
            [
                CardRefund(
                    refund=refund,
                    number=number,
                    charge=charges[part.charge_key],
                    amount=to_money(part.amount),
                    idempotency_key=f"refund:{refund.public_id}:{number}",
                    created_at=now,
                )
                for number, part in enumerate(allocation.card_parts, start=1)
            ]
        )
        postings_create(
            [
                recipes.refund_issued(
                    merchant_id=payment.merchant_id,
                    livemode=payment.livemode,
                    payment_id=payment.public_id,
                    refund_id=refund.public_id,
                    receivable_cancelled_cents=allocation.owed_cancelled,
                    written_off_cancelled_cents=allocation.written_off_cancelled,
                    to_card_cents=allocation.to_card,
                    customer_fee_refunded_cents=allocation.fee_refunded,
                    interest_refunded_cents=allocation.interest_refunded,
                    effective_at=now,
                )
            ]
        )
        payment.amount_refunded = payment.amount_refunded + refund.amount
        payment.customer_fees_refunded = (
            payment.customer_fees_refunded + refund.customer_fee_refunded + refund.interest_refunded
        )
        payment.updated_at = now
        payment.save(update_fields=["amount_refunded", "customer_fees_refunded", "updated_at"])
        payment_event_record(
            payment,
            kind="refund_issued",
            now=now,
            detail={
                "refund": refund.public_id,
                "amount": allocation.amount,
                "full": allocation.full,
                "cancelled": allocation.owed_cancelled + allocation.written_off_cancelled,
                "to_card": allocation.back_to_card,
                "origin": origin,
            },
        )
        change = payment_state_after(payment, list(rows.values()))
        if change is not None:
            payment_transition(
                payment, change[0], now=now, kind=change[1], detail={"refund": refund.public_id}
            )
        notification_schedule(payment=payment, event=f"refund:{refund.public_id}", now=now)
        refund_documents_queue(
            refund=refund, payment=payment, instalments=list(rows.values()), now=now
        )
    return refund


# --- giving back to the card -----------------------------------------------------------------


def refund_send_to_card(*, refund_id: int, now: datetime) -> Refund:
    """Make the refund's open card refunds through the processor (outside any transaction,
    each with its own key: a rerun repeats the same calls) and record the outcomes."""
    parts = list(
        CardRefund.objects.filter(refund_id=refund_id, status__in=OPEN_CARD_REFUNDS)
        .select_related("charge", "refund")
        .order_by("number")
    )
    results: dict[int, ChargeResult | None] = {}
    processor = card_processor()
    for part in parts:
        try:
            results[part.pk] = processor.refund(
                charge_reference=part.charge.processor_reference,
                amount_cents=to_cents(part.amount),
                idempotency_key=part.idempotency_key,
                livemode=part.refund.livemode,
            )
        except ProcessorUnavailable:
            logger.warning("Processor unavailable for card refund %s", part.idempotency_key)
            results[part.pk] = None
        except ProcessorError as error:  # refused outright (unknown charge, key misuse)
            logger.error("Card refund %s refused: %s", part.idempotency_key, error.message)
            results[part.pk] = ChargeResult(
                reference="",
                idempotency_key=part.idempotency_key,
                status="declined",
                amount_cents=to_cents(part.amount),
                decline_code=error.code,
            )
    return refund_record(refund_id=refund_id, results=results, now=now)


def refund_record(
    *, refund_id: int, results: dict[int, ChargeResult | None], now: datetime
) -> Refund:
    """Write the card refunds' outcomes (step 3): recording again changes nothing."""
    with transaction.atomic():
        refund = Refund.objects.select_for_update().select_related("payment").get(pk=refund_id)
        payment = refund.payment
        parts = list(
            CardRefund.objects.select_for_update().filter(refund=refund).order_by("number")
        )
        postings = []
        for part in parts:
            if part.pk not in results or part.status not in OPEN_CARD_REFUNDS:
                continue
            result = results[part.pk]
            part.attempts += 1
            if result is None:
                part.status = CardRefund.Status.UNKNOWN
            elif result.succeeded:
                part.status = CardRefund.Status.SUCCEEDED
                part.processor_reference = result.reference
                part.finished_at = now
                postings.append(
                    recipes.refund_sent_to_card(
                        merchant_id=refund.merchant_id,
                        livemode=refund.livemode,
                        payment_id=payment.public_id,
                        refund_id=refund.public_id,
                        part=part.number,
                        cents=to_cents(part.amount),
                        processor_reference=result.reference,
                        effective_at=now,
                    )
                )
            else:
                part.status = CardRefund.Status.FAILED
                part.processor_reference = result.reference
                part.failure_code = result.decline_code[:40]
                part.finished_at = now
                logger.error(
                    "Card refund %s refused (%s): the customer must be paid back another way",
                    part.idempotency_key,
                    result.decline_code,
                )
            part.save(
                update_fields=[
                    "status",
                    "processor_reference",
                    "failure_code",
                    "attempts",
                    "finished_at",
                ]
            )
        postings_create(postings)
        statuses = {part.status for part in parts}
        if refund.state == Refund.State.PENDING and not statuses & set(OPEN_CARD_REFUNDS):
            to_state = (
                Refund.State.FAILED
                if CardRefund.Status.FAILED in statuses
                else Refund.State.SUCCEEDED
            )
            if to_state not in REFUND_TRANSITIONS[refund.state]:
                raise InvalidTransition("refund", refund.state, to_state)
            refund.state = to_state
            refund.finished_at = now
            refund.save(update_fields=["state", "finished_at"])
            payment_event_record(
                payment,
                kind="refund_to_card"
                if refund.state == Refund.State.SUCCEEDED
                else "refund_failed",
                now=now,
                detail={"refund": refund.public_id, "amount": to_cents(refund.back_to_card)},
            )
    return refund


def refund_issue(
    *,
    payment: Payment,
    request: RefundRequest,
    origin: str,
    now: datetime,
    requested_by=None,
    api_key=None,
) -> Refund:
    """Refund ``payment`` (the merchant's action, from the API or the dashboard)."""
    refund = refund_open(
        payment_id=payment.pk,
        request=request,
        origin=origin,
        now=now,
        requested_by=requested_by,
        api_key=api_key,
    )
    if refund.state == Refund.State.PENDING:
        refund = refund_send_to_card(refund_id=refund.pk, now=now)
    return refund


def refunds_send_pending(*, now: datetime, limit: int = 100) -> int:
    """The sweep: card refunds still open after SEND_GRACE (an answer lost, a process that
    died before calling) are made again with their keys and recorded. One failing refund is
    logged and skipped, never blocks the others. Returns how many refunds were finished."""
    refund_ids = list(
        CardRefund.objects.filter(status__in=OPEN_CARD_REFUNDS, created_at__lte=now - SEND_GRACE)
        .order_by("created_at")
        .values_list("refund_id", flat=True)[:limit]
    )
    finished = 0
    for refund_id in dict.fromkeys(refund_ids):
        try:
            refund = refund_send_to_card(refund_id=refund_id, now=now)
        except Exception:
            logger.exception("Could not send refund %s to the card", refund_id)
            continue
        finished += refund.state != Refund.State.PENDING
    return finished
