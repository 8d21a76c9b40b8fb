"""Paying instalments early from the portal: one instalment, or everything left, in one
charge of a card the customer authenticated (3-D Secure) for it.

Like every money movement it works in three steps:

1. **open** (``early_payment_open``, one transaction): under the payment's lock, the plan's
   instalments are locked too (the debit run's claim locks the instalments it takes with
   ``SKIP LOCKED``: waiting here, then seeing its charge in flight, is what keeps one
   instalment from being charged twice). What is asked must be unpaid and not already being
   charged; its ``next_debit_at`` is cleared, so the debit run leaves it alone while this
   charge is in flight, and a ``pending`` Charge (kind ``early_payment``, ``covers`` = the
   instalments) is committed with the key ``early:<payment>:<n>``.
2. **charge** (no transaction): the processor charges the card, customer-initiated, with the
   3-D Secure reference; an answer lost is asked for by key at once.
3. **record**: ``debit_results_record`` (the debit run's own recording) pays the instalments,
   posts each to the ledger, writes one receipt for the charge, moves the payment (paid off,
   back on schedule) and sends what follows; a refusal gives the instalments their next
   debit back (no dunning, no fee); an unknown outcome stays ``unknown`` for the debit run's
   in-doubt sweep.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from apps.common.errors import DomainError
from apps.common.money import to_cents, to_money
from apps.payments.models import Card, Charge, Customer, Instalment, Payment, PaymentState
from apps.payments.processor import (
    ChargeResult,
    ProcessorError,
    ProcessorUnavailable,
    card_processor,
)
from apps.payments.services.charges import IN_DOUBT, ORPHANED, charge_status_ask
from apps.payments.services.transitions import payment_event_record, payment_lock
from apps.schedules.services.recording import DebitOutcome, debit_results_record

logger = logging.getLogger(__name__)

S = PaymentState
# Plans whose instalments the customer may pay early (the portal's OPEN_STATES).
OPEN_STATES = (S.IN_PROGRESS, S.LATE_DUNNING, S.LATE_CONTACT_CUSTOMER)
UNPAID = (Instalment.State.PENDING, Instalment.State.INCIDENT)
ALL = "all"

Numbers = list[int] | Literal["all"]


class PlanNotFound(DomainError):
    code = "plan_not_found"
    http_status = 404
    default_message = _("This plan was not found.")


class PlanNotOpen(DomainError):
    code = "plan_not_open"
    http_status = 409
    default_message = _(
        "Nothing can be paid on this plan from your space any more. Please contact us if you "
        "want to pay what is left."
    )


class InstalmentNotPayable(DomainError):
    code = "instalment_not_payable"
    http_status = 409
    default_message = _("This instalment is already paid or no longer to be paid.")


class NothingToPay(DomainError):
    code = "nothing_to_pay"
    http_status = 409
    default_message = _("There is nothing left to pay on this plan.")


class DebitInProgress(DomainError):
    code = "debit_in_progress"
    http_status = 409
    default_message = _("A debit is being processed, try again in a few minutes.")


class AmountChanged(DomainError):
    code = "amount_changed"
    http_status = 409
    default_message = _(
        "What is left to pay has changed since this page was shown. Please check the amount "
        "and confirm again."
    )


class CardNotUsable(DomainError):
    code = "card_not_usable"
    http_status = 409
    default_message = _("This card can no longer be used. Please use another card.")


class EarlyPaymentDeclined(DomainError):
    code = "early_payment_declined"
    http_status = 402


class EarlyPaymentNotApplied(DomainError):
    code = "early_payment_not_applied"
    http_status = 409
    default_message = _(
        "Your plan changed while the payment was being made: it could not be applied and is "
        "being refunded to your card."
    )


class EarlyPaymentInDoubt(DomainError):
    code = "early_payment_in_doubt"
    http_status = 202
    default_message = _(
        "We are checking with your bank whether the payment went through: you will not be "
        "charged twice. Your plan shows the result in a few minutes."
    )


# Why a bank said no, as the customer reads it.
DECLINE_REASONS: dict[str, Promise] = {
    "insufficient_funds": _("insufficient funds"),
    "do_not_honor": _("refused by your bank"),
    "expired_card": _("the card has expired"),
    "authentication_required": _("3-D Secure was not completed"),
    "token_detached": _("this card was replaced"),
    "not_received": _("the payment did not reach your bank"),
}


def decline_message(code: str) -> str:
    reason = DECLINE_REASONS.get(code) or _("refused by your bank")
    return str(
        _("Your bank declined the payment (%(reason)s). Nothing was charged.") % {"reason": reason}
    )


@dataclass(frozen=True)
class EarlyPreview:
    """What paying ``numbers`` early would charge now."""

    payment: Payment
    instalments: list[Instalment]
    amount_cents: int


def plan_payable_check(payment: Payment, *, customer: Customer) -> None:
    """Raise unless ``payment`` is ``customer``'s and open (something may be paid on it)."""
    if payment.customer_id != customer.pk or payment.livemode != customer.livemode:
        raise PlanNotFound()
    if payment.state not in OPEN_STATES or payment.accepted_at is None:
        raise PlanNotOpen()


def instalments_to_pay(rows: list[Instalment], numbers: Numbers) -> list[Instalment]:
    """The instalments asked for, in number order; refused unless each is unpaid."""
    if numbers == ALL:
        chosen = [row for row in rows if row.state in UNPAID]
    else:
        by_number = {row.number: row for row in rows}
        wanted = sorted(set(numbers))
        if not wanted:
            raise NothingToPay()
        if any(number not in by_number for number in wanted):
            raise InstalmentNotPayable(_("This plan has no such instalment."))
        chosen = [by_number[number] for number in wanted]
        if any(row.state not in UNPAID for row in chosen):
            raise InstalmentNotPayable()
    if not chosen:
        raise NothingToPay()
    return chosen


def instalments_in_flight(payment: Payment, ids: list[int]) -> bool:
    """Whether a charge in doubt (a debit, another early payment) may pay one of ``ids``."""
    return (
        Charge.objects.filter(payment=payment, status__in=IN_DOUBT)
        .filter(Q(instalment_id__in=ids) | Q(covers__overlap=ids))
        .exists()
    )


def early_payment_preview(
    *, customer: Customer, payment: Payment, numbers: Numbers
) -> EarlyPreview:
    """What ``early_payment_open`` would charge now (nothing written, nothing locked); raises
    what it would raise."""
    plan_payable_check(payment, customer=customer)
    rows = list(Instalment.objects.filter(payment=payment).order_by("number"))
    chosen = instalments_to_pay(rows, numbers)
    if instalments_in_flight(payment, [row.pk for row in chosen]):
        raise DebitInProgress()
    return EarlyPreview(
        payment=payment,
        instalments=chosen,
        amount_cents=sum(to_cents(row.total_amount) for row in chosen),
    )


def early_payment_open(
    *,
    customer: Customer,
    payment_id: int,
    numbers: Numbers,
    card_id: int,
    three_ds_reference: str,
    now: datetime,
    amount_cents: int | None = None,
) -> Charge:
    """Record the early payment about to be made (step 1, committed before the processor is
    called). ``amount_cents``, when given, is the total the customer confirmed: anything else
    is refused (``AmountChanged``)."""
    with transaction.atomic():
        payment = payment_lock(payment_id=payment_id)
        plan_payable_check(payment, customer=customer)
        # The debit run's claim holds the instalments it takes: wait for it, then see its
        # charge below.
        rows = list(
            Instalment.objects.filter(payment=payment).order_by("number").select_for_update()
        )
        chosen = instalments_to_pay(rows, numbers)
        ids = [row.pk for row in chosen]
        if instalments_in_flight(payment, ids):
            raise DebitInProgress()
        total = sum(to_cents(row.total_amount) for row in chosen)
        if amount_cents is not None and amount_cents != total:
            raise AmountChanged()
        card = Card.objects.filter(
            pk=card_id, customer=customer, livemode=payment.livemode, detached_at__isnull=True
        ).first()
        if card is None:
            raise CardNotUsable()
        Instalment.objects.filter(pk__in=ids).update(next_debit_at=None)
        count = Charge.objects.filter(payment=payment, kind=Charge.Kind.EARLY_PAYMENT).count()
        key = f"early:{payment.public_id}:{count + 1}"
        try:
            with transaction.atomic():
                charge = Charge.objects.create(
                    payment=payment,
                    instalment=None,
                    covers=ids,
                    card=card,
                    kind=Charge.Kind.EARLY_PAYMENT,
                    idempotency_key=key,
                    amount=to_money(total),
                    created_at=now,
                )
        except IntegrityError as error:  # cannot happen under the lock; never charge twice
            raise DebitInProgress() from error
        payment_event_record(
            payment,
            kind="early_payment_started",
            now=now,
            detail={
                "charge": key,
                "amount": total,
                "numbers": [row.number for row in chosen],
                "card": card.public_id,
                "3ds": three_ds_reference,
            },
        )
    charge.payment = payment
    return charge


def early_payment_execute(*, charge: Charge, three_ds_reference: str) -> ChargeResult | None:
    """Charge the card (step 2, never inside a transaction). None: the outcome is unknown."""
    try:
        return card_processor().charge(
            token=charge.card.processor_token,
            amount_cents=to_cents(charge.amount),
            idempotency_key=charge.idempotency_key,
            livemode=charge.payment.livemode,
            three_ds_reference=three_ds_reference,
        )
    except ProcessorUnavailable:
        logger.warning("Processor unavailable for %s; asking by key", charge.idempotency_key)
        return charge_status_ask(charge=charge)
    except ProcessorError as error:
        # Refused outright (an unknown token, a malformed call): nothing was charged.
        logger.error("Early payment %s refused: %s", charge.idempotency_key, error.message)
        return ChargeResult(
            reference="",
            idempotency_key=charge.idempotency_key,
            status="declined",
            amount_cents=to_cents(charge.amount),
            decline_code=error.code,
        )


def early_payment_make(
    *,
    customer: Customer,
    payment_id: int,
    numbers: Numbers,
    card_id: int,
    three_ds_reference: str,
    now: datetime,
    amount_cents: int | None = None,
) -> Charge:
    """Pay instalments early: open, charge, record. Returns the recorded charge; raises
    ``EarlyPaymentDeclined`` when the bank said no (nothing paid, the plan as before) and
    ``EarlyPaymentInDoubt`` when its answer is not known yet (the debit run's sweep records
    it once it is)."""
    charge = early_payment_open(
        customer=customer,
        payment_id=payment_id,
        numbers=numbers,
        card_id=card_id,
        three_ds_reference=three_ds_reference,
        now=now,
        amount_cents=amount_cents,
    )
    result = early_payment_execute(charge=charge, three_ds_reference=three_ds_reference)
    debit_results_record([DebitOutcome(charge_id=charge.pk, result=result)], now=now)
    charge = Charge.objects.select_related("payment", "card").get(pk=charge.pk)
    if charge.status == Charge.Status.FAILED:
        raise EarlyPaymentDeclined(decline_message(charge.failure_code))
    if charge.status != Charge.Status.SUCCEEDED:
        raise EarlyPaymentInDoubt()
    if charge.failure_code.startswith(ORPHANED):  # refunded by charges_settle_in_doubt
        raise EarlyPaymentNotApplied()
    return charge
