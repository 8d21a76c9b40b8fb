"""Calls to the card processor that move money at checkout, and their repair.

Every charge is a row first: ``charge_open`` commits a ``pending`` Charge with the idempotency
key the call will carry, under the payment's lock, so two tabs (or a replayed form) cannot both
charge: the second sees the first one in flight or done. ``charge_execute`` then calls the
processor outside any transaction, and ``charge_record`` writes the outcome and, for a success,
accepts the payment in the same transaction as its ledger posting.

A timeout leaves the charge ``unknown``: the processor is asked by idempotency key before
anything else happens, at once and then by the ``settle_charges_in_doubt`` sweep, which also
finds charges left ``pending`` by a process that died between the call and the record.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from apps.common.errors import DomainError
from apps.common.money import to_cents, to_money
from apps.payments.models import PAYABLE_STATES, Charge, Payment, PaymentState
from apps.payments.processor import (
    ChargeResult,
    ProcessorUnavailable,
    UnknownCharge,
    card_processor,
)
from apps.payments.services.acceptance import payment_accept
from apps.payments.services.transitions import payment_event_record, payment_lock

logger = logging.getLogger(__name__)

ORPHANED = "orphaned"
# A checkout charge is only made once the payment is scored; stopped ones are orphans.
ACCEPTABLE_STATES = (PaymentState.SCORED_YES, PaymentState.SCORED_NO, PaymentState.SCORED_MAYBE)
IN_DOUBT = (Charge.Status.PENDING, Charge.Status.UNKNOWN)
CHECKOUT_KINDS = (Charge.Kind.FIRST_INSTALMENT, Charge.Kind.PAY_IN_FULL)
# A pending charge younger than this may still be waiting for the processor's answer.
IN_FLIGHT_GRACE = timedelta(minutes=2)


class PaymentNotPayable(DomainError):
    code = "payment_not_payable"
    http_status = 409
    default_message = "This payment can no longer be paid."


class PaymentAlreadyPaid(DomainError):
    code = "payment_already_paid"
    http_status = 409
    default_message = "This payment has already been paid."


class ChargeInProgress(DomainError):
    code = "charge_in_progress"
    http_status = 409
    default_message = "A payment for this purchase is already being processed."


def payment_payable_check(payment: Payment, *, now: datetime) -> None:
    """Raise unless the customer may still pay ``payment`` at checkout."""
    if payment.expired_at is not None or payment.expires_at <= now:
        raise PaymentNotPayable("This payment has expired.")
    if payment.state not in PAYABLE_STATES:
        raise PaymentNotPayable()


def charge_open(
    *,
    payment_id: int,
    kind: str,
    amount_cents: int,
    three_ds_reference: str,
    now: datetime,
) -> Charge:
    """Record the checkout charge about to be made (committed before the processor call)."""
    with transaction.atomic():
        payment = payment_lock(payment_id=payment_id)
        charges = Charge.objects.filter(payment=payment, kind__in=CHECKOUT_KINDS)
        if charges.filter(status=Charge.Status.SUCCEEDED).exists():
            raise PaymentAlreadyPaid()
        if charges.filter(status__in=IN_DOUBT).exists():
            raise ChargeInProgress()
        payment_payable_check(payment, now=now)
        attempt = charges.count() + 1
        instalment = None
        if kind == Charge.Kind.FIRST_INSTALMENT:
            instalment = payment.instalments.get(number=1)
            key = f"instalment:{instalment.public_id}:attempt:{attempt}"
        else:
            key = f"payment:{payment.public_id}:in_full:attempt:{attempt}"
        try:
            with transaction.atomic():
                charge = Charge.objects.create(
                    payment=payment,
                    instalment=instalment,
                    card=payment.checkout.card,
                    kind=kind,
                    attempt=attempt,
                    idempotency_key=key,
                    amount=to_money(amount_cents),
                    created_at=now,
                )
        except IntegrityError as error:  # the same attempt opened elsewhere
            raise ChargeInProgress() from error
        payment_event_record(
            payment,
            kind="charge_started",
            now=now,
            detail={"charge": key, "amount": amount_cents, "3ds": three_ds_reference},
        )
    return charge


def charge_execute(*, charge: Charge, three_ds_reference: str) -> ChargeResult | None:
    """Call the processor (never inside a transaction). None: the outcome is unknown."""
    processor = card_processor()
    try:
        return processor.charge(
            token=charge.card.processor_token,
            amount_cents=to_cents(charge.amount),
            idempotency_key=charge.idempotency_key,
            livemode=charge.payment.livemode,
            three_ds_reference=three_ds_reference,
        )
    except ProcessorUnavailable:
        logger.warning("Processor unavailable for charge %s; asking by key", charge.idempotency_key)
    return charge_status_ask(charge=charge)


def charge_status_ask(
    *, charge: Charge, unknown_means_not_sent: bool = False
) -> ChargeResult | None:
    """What the processor says became of the charge; None while it cannot say.

    A key the processor does not know may belong to a call still on its way: it reads as
    "never sent" (a failure) only when ``unknown_means_not_sent``, which the sweep passes
    for charges older than IN_FLIGHT_GRACE, far beyond any call's timeout."""
    try:
        return card_processor().charge_status(idempotency_key=charge.idempotency_key)
    except UnknownCharge:
        if not unknown_means_not_sent:
            return None
        return ChargeResult(
            reference="",
            idempotency_key=charge.idempotency_key,
            status="declined",
            amount_cents=0,
            decline_code="not_received",
        )
    except ProcessorUnavailable:
        return None


def charge_record(*, charge_id: int, result: ChargeResult | None, now: datetime) -> Charge:
    """Write a charge's outcome; a success accepts the payment (ledger, IPN, emails) at once.

    Recording the same outcome twice changes nothing, so the sweep and the customer's own
    request may both arrive here. A success on a payment that can no longer be accepted
    (stopped meanwhile) is recorded as ``succeeded`` with failure code ``orphaned``: the
    caller refunds it (``charge_refund_orphan``)."""
    with transaction.atomic():
        payment = payment_lock(
            payment_id=Charge.objects.values("payment_id").get(pk=charge_id)["payment_id"]
        )
        charge = Charge.objects.select_for_update().get(pk=charge_id)
        if charge.status not in IN_DOUBT:
            if result is not None and result.succeeded and charge.status == Charge.Status.FAILED:
                logger.error(
                    "Charge %s was recorded as failed but the processor says it succeeded "
                    "(%s): an operator must refund or accept it",
                    charge.idempotency_key,
                    result.reference,
                )
            return charge
        if result is None:
            charge.status = Charge.Status.UNKNOWN
            charge.save(update_fields=["status"])
            return charge
        charge.finished_at = now
        charge.processor_reference = result.reference
        if result.succeeded:
            charge.status = Charge.Status.SUCCEEDED
            if payment.state in ACCEPTABLE_STATES:
                charge.save(update_fields=["status", "finished_at", "processor_reference"])
                payment_accept(payment=payment, charge=charge, now=now)
            else:
                charge.failure_code = ORPHANED
                charge.save(
                    update_fields=["status", "finished_at", "processor_reference", "failure_code"]
                )
                payment_event_record(
                    payment,
                    kind="charge_orphaned",
                    now=now,
                    detail={"charge": charge.idempotency_key, "state": payment.state},
                )
        else:
            charge.status = Charge.Status.FAILED
            charge.failure_code = result.decline_code[:40]
            charge.save(
                update_fields=["status", "finished_at", "processor_reference", "failure_code"]
            )
            payment_event_record(
                payment,
                kind="charge_failed",
                now=now,
                detail={"charge": charge.idempotency_key, "code": result.decline_code},
            )
    return charge


def charge_refund_orphan(*, charge: Charge, now: datetime) -> None:
    """Give back a charge that went through for a payment stopped meanwhile (expired or
    cancelled while the charge was in doubt): refunded in full, outside any transaction,
    with a key derived from the charge, so a rerun refunds once."""
    if charge.failure_code != ORPHANED or charge.status != Charge.Status.SUCCEEDED:
        return
    result = card_processor().refund(
        charge_reference=charge.processor_reference,
        amount_cents=to_cents(charge.amount),
        idempotency_key=f"{charge.idempotency_key}:refund",
        livemode=charge.payment.livemode,
    )
    with transaction.atomic():
        payment = payment_lock(payment_id=charge.payment_id)
        Charge.objects.filter(pk=charge.pk).update(failure_code=f"{ORPHANED}_refunded")
        payment_event_record(
            payment,
            kind="charge_refunded",
            now=now,
            detail={"charge": charge.idempotency_key, "refund": result.reference},
        )


def charges_settle_in_doubt(*, now: datetime, limit: int = 100) -> int:
    """Ask the processor about checkout charges left pending or unknown, and record what it
    says: a charge that went through is never lost, and never made again. One failing row
    is logged and skipped, never blocks the others."""
    settled = 0
    cutoff = now - IN_FLIGHT_GRACE
    candidates = list(
        Charge.objects.filter(status__in=IN_DOUBT, kind__in=CHECKOUT_KINDS, created_at__lte=cutoff)
        .select_related("payment", "card")
        .order_by("created_at")[:limit]
    )
    orphans = list(
        Charge.objects.filter(status=Charge.Status.SUCCEEDED, failure_code=ORPHANED).select_related(
            "payment"
        )[:limit]
    )
    for charge in candidates:
        try:
            result = charge_status_ask(charge=charge, unknown_means_not_sent=True)
            if result is not None:
                charge = charge_record(charge_id=charge.pk, result=result, now=now)
                settled += 1
                if charge.failure_code == ORPHANED:
                    orphans.append(charge)
        except Exception:
            logger.exception("Could not settle charge %s", charge.idempotency_key)
    for charge in orphans:
        try:
            charge_refund_orphan(charge=charge, now=now)
        except Exception:
            logger.exception("Could not refund orphaned charge %s", charge.idempotency_key)
    return settled
