"""A card given in the portal, through 3-D Secure: to replace the card of the customer's
plans, or to pay instalments early with (a new card, or the saved one: a payment the
customer makes is customer-initiated and needs 3-D Secure either way).

``card_setup_start`` checks the card rules (the card must last until the last instalment it
will pay), saves the card (tokenised by the caller, outside any transaction: its number and
CVC never reach this module), records a ``CardSetup`` and starts 3-D Secure; the browser goes
to the bank's page, or straight back when frictionless. ``card_setup_complete`` asks the
processor for the result (never trusting the URL) and finishes what the setup was for, once,
whatever the browser replays:

- **replace**: every open plan of the customer that used the old card gets the new one (each
  under its payment's lock, with a ``card_replaced`` event), the customer is emailed; then,
  outside the transaction, the old token is detached at the processor (when no open plan and
  no charge in flight still use it) and ``Card.detached_at`` is set;
- **pay early**: the early payment is made with this card and this authentication
  (``services/early.py``); the plans keep their card.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from apps.common.dates import business_date
from apps.common.errors import DomainError
from apps.common.money import to_cents
from apps.payments import card_rules
from apps.payments.links import absolute
from apps.payments.models import Card, Charge, Customer, Instalment, Payment
from apps.payments.processor import CardDetails, ProcessorError, card_processor
from apps.payments.services.charges import IN_DOUBT
from apps.payments.services.checkout import CardRefused, ThreeDSFailed
from apps.payments.services.transitions import payment_event_record, payment_lock
from apps.schedules import emails
from apps.schedules.models import CardSetup
from apps.schedules.services.early import (
    OPEN_STATES,
    UNPAID,
    CardNotUsable,
    DebitInProgress,
    NothingToPay,
    Numbers,
    early_payment_make,
    instalments_in_flight,
    instalments_to_pay,
    plan_payable_check,
)

logger = logging.getLogger(__name__)

AUTHENTICATED = "authenticated"
CHALLENGE = "challenge"
FAILED = "failed"


class CardSetupNotFound(DomainError):
    code = "card_setup_not_found"
    http_status = 404
    default_message = _("This card change was not found.")


class CardSetupDone(DomainError):
    code = "card_setup_done"
    http_status = 409
    default_message = _("This step is already done: your plan shows where things stand.")


class CardSetupInProgress(DomainError):
    code = "card_setup_in_progress"
    http_status = 409
    default_message = _("This card is being processed. Please wait a moment, then reload.")


class CardSetupMismatch(DomainError):
    code = "card_setup_mismatch"
    http_status = 409
    default_message = _(
        "This answer from your bank does not belong to this card. Please start again."
    )


def _plans_using(customer: Customer, card_id: int | None, *, also: Payment) -> list[Payment]:
    """The customer's open plans that are debited from ``card_id`` (and ``also``)."""
    plans = {
        payment.pk: payment
        for payment in Payment.objects.filter(
            customer=customer, livemode=customer.livemode, state__in=OPEN_STATES
        )
        .filter(card_id=card_id)
        .select_related("merchant")
    }
    if also.state in OPEN_STATES:
        plans.setdefault(also.pk, also)
    return [plans[pk] for pk in sorted(plans)]


def card_plans_to_switch(*, customer: Customer, payment: Payment) -> list[Payment]:
    """The plans a new card given on ``payment``'s page would be used for: every open plan
    of the customer on the same card (read only, for the page)."""
    return _plans_using(customer, payment.card_id, also=payment)


def _last_due_date(plans: list[Payment]):
    return (
        Instalment.objects.filter(payment__in=plans, state__in=UNPAID)
        .order_by("-due_date")
        .values_list("due_date", flat=True)
        .first()
    )


def _refusals(card: CardDetails, *, last_due_date) -> list[card_rules.Refusal]:
    return card_rules.card_refusals(
        card_rules.CardFacts(
            brand=card.brand,
            funding=card.funding,
            product=card.product,
            issuer_country=card.issuer_country,
            exp_month=card.exp_month,
            exp_year=card.exp_year,
        ),
        last_due_date=last_due_date,
        allowed_countries=frozenset(settings.CARD_ISSUER_COUNTRIES),
    )


def _card_save(customer: Customer, card: CardDetails, *, livemode: bool, now: datetime) -> Card:
    return Card.objects.create(
        customer=customer,
        livemode=livemode,
        processor_token=card.token,
        bin=card.bin,
        last4=card.last4,
        brand=card.brand,
        funding=card.funding,
        product=card.product,
        issuer_country=card.issuer_country,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        fingerprint=card.fingerprint,
        created_at=now,
    )


def card_setup_return_path(setup: CardSetup) -> str:
    """Where 3-D Secure sends the browser back (``?threeds=<reference>`` added)."""
    return reverse("portal:card-3ds", args=[setup.public_id])


def card_setup_start(
    *,
    customer: Customer,
    payment_id: int,
    card: CardDetails | None,
    purpose: str,
    now: datetime,
    numbers: Numbers | None = None,
) -> tuple[CardSetup, str]:
    """Start giving a card on one of the customer's plans: ``card`` is the new card as the
    processor tokenised it, or None to pay early with the plan's saved card. ``numbers``
    (pay early) are the instalments to pay, or ``"all"``.

    Returns the setup and where to send the browser: the bank's challenge page, or the
    return URL with ``?threeds=<reference>`` when 3-D Secure was frictionless. Raises
    ``CardRefused`` (the card rules, with the reasons), ``ThreeDSFailed``, and what an early
    payment would refuse (``services/early.py``)."""
    refusals: list[card_rules.Refusal] = []
    with transaction.atomic():
        payment = payment_lock(payment_id=payment_id)
        plan_payable_check(payment, customer=customer)
        rows = list(Instalment.objects.filter(payment=payment).order_by("number"))
        if purpose == CardSetup.Purpose.PAY_EARLY:
            chosen = instalments_to_pay(rows, numbers if numbers is not None else [])
            ids = [row.pk for row in chosen]
            if instalments_in_flight(payment, ids):
                raise DebitInProgress()
            amount = sum(to_cents(row.total_amount) for row in chosen)
            # Charged once, today: it need not last beyond that.
            last_due = business_date(now)
        elif purpose == CardSetup.Purpose.REPLACE:
            if card is None:
                raise ValueError("a replacement needs a new card")
            upcoming = [row for row in rows if row.state in UNPAID]
            if not upcoming:
                raise NothingToPay()
            ids = []
            # Authenticated for what it will next be charged.
            amount = to_cents(
                min(upcoming, key=lambda row: (row.due_date, row.number)).total_amount
            )
            plans = _plans_using(customer, payment.card_id, also=payment)
            last_due = _last_due_date(plans) or business_date(now)
        else:
            raise ValueError(f"unknown purpose {purpose!r}")
        if card is None:
            saved = payment.card
            if saved is None or saved.detached_at is not None:
                raise CardNotUsable()
        else:
            refusals = _refusals(card, last_due_date=last_due)
        if refusals:  # recorded, then refused once this transaction has committed
            payment_event_record(
                payment,
                kind="card_refused",
                now=now,
                detail={"codes": [refusal.code for refusal in refusals], "bin": card.bin},
            )
            setup = None
        else:
            if card is not None:
                saved = _card_save(customer, card, livemode=payment.livemode, now=now)
                payment_event_record(
                    payment,
                    kind="card_added",
                    now=now,
                    detail={
                        "card": saved.public_id,
                        "brand": saved.brand,
                        "last4": saved.last4,
                        "purpose": purpose,
                    },
                )
            setup = CardSetup.objects.create(
                customer=customer,
                payment=payment,
                card=saved,
                purpose=purpose,
                instalment_ids=ids,
                amount_cents=amount,
                created_at=now,
            )
    if setup is None:
        raise CardRefused(refusals)
    return_path = card_setup_return_path(setup)
    try:
        started = card_processor().three_ds_start(
            token=saved.processor_token,
            amount_cents=amount,
            return_url=absolute(return_path),
            livemode=payment.livemode,
        )
    except ProcessorError:
        CardSetup.objects.filter(pk=setup.pk).update(
            status=CardSetup.Status.FAILED, completed_at=now
        )
        raise
    failed = started.status == FAILED
    setup.three_ds_reference = started.reference
    fields = {"three_ds_reference": started.reference}
    if failed:
        setup.status = CardSetup.Status.FAILED
        setup.completed_at = now
        fields |= {"status": setup.status, "completed_at": now}
    CardSetup.objects.filter(pk=setup.pk, status=CardSetup.Status.STARTED).update(**fields)
    if failed:
        raise ThreeDSFailed()
    if started.status == CHALLENGE:
        return setup, started.challenge_url
    return setup, f"{return_path}?threeds={started.reference}"


def card_setup_complete(
    *, setup_id: int, customer: Customer, reference: str, now: datetime
) -> CardSetup:
    """The browser is back from 3-D Secure: finish what the setup was for, once.

    Raises ``CardSetupNotFound`` (another customer's), ``CardSetupMismatch`` (a reference
    that is not this setup's), ``CardSetupDone`` / ``CardSetupInProgress`` (a replay),
    ``ThreeDSFailed``, and for an early payment what ``early_payment_make`` raises (the
    setup is done either way: a new attempt starts a new one)."""
    with transaction.atomic():
        setup = _setup_locked(setup_id, customer=customer)
        if not reference or reference != setup.three_ds_reference:
            raise CardSetupMismatch()
    status = card_processor().three_ds_result(reference=reference)
    replaced: list[Payment] = []
    old_card_id = None
    with transaction.atomic():
        setup = _setup_locked(setup_id, customer=customer)
        if status != AUTHENTICATED:
            setup.status = CardSetup.Status.FAILED
            setup.completed_at = now
            setup.save(update_fields=["status", "completed_at"])
            payment_event_record(
                setup.payment,
                kind="three_ds_failed",
                now=now,
                detail={"setup": setup.public_id, "status": status},
            )
        else:
            Card.objects.filter(pk=setup.card_id).update(three_ds_authenticated_at=now)
            if setup.purpose == CardSetup.Purpose.REPLACE:
                replaced, old_card_id = _replace(setup, now=now)
                setup.status = CardSetup.Status.DONE
                setup.completed_at = now
            else:
                # Claimed for the payment below: a replayed return stops here.
                setup.status = CardSetup.Status.AUTHENTICATED
            setup.save(update_fields=["status", "completed_at"])
    if status != AUTHENTICATED:
        raise ThreeDSFailed()
    if setup.purpose == CardSetup.Purpose.REPLACE:
        old_card = Card.objects.filter(pk=old_card_id).first() if replaced else None
        if old_card is not None:
            card_detach_if_unused(card=old_card, now=now)
        return setup
    numbers = list(
        Instalment.objects.filter(pk__in=setup.instalment_ids)
        .order_by("number")
        .values_list("number", flat=True)
    )
    try:
        early_payment_make(
            customer=customer,
            payment_id=setup.payment_id,
            numbers=numbers,
            card_id=setup.card_id,
            three_ds_reference=reference,
            now=now,
            amount_cents=setup.amount_cents,
        )
    finally:
        CardSetup.objects.filter(pk=setup.pk).update(status=CardSetup.Status.DONE, completed_at=now)
        setup.status = CardSetup.Status.DONE
        setup.completed_at = now
    return setup


def _setup_locked(setup_id: int, *, customer: Customer) -> CardSetup:
    setup = (
        CardSetup.objects.select_for_update(of=("self",))
        .select_related("payment", "card")
        .filter(pk=setup_id)
        .first()
    )
    if setup is None or setup.customer_id != customer.pk:
        raise CardSetupNotFound()
    if setup.status == CardSetup.Status.DONE:
        raise CardSetupDone()
    if setup.status == CardSetup.Status.AUTHENTICATED:
        raise CardSetupInProgress()
    if setup.status == CardSetup.Status.FAILED:
        raise ThreeDSFailed()
    return setup


def _replace(setup: CardSetup, *, now: datetime) -> tuple[list[Payment], int | None]:
    """Give the setup's card to every open plan of the customer on the old card (the plan it
    started from, and the others on the same card), each under its payment's lock; email the
    customer. Returns the plans changed and the old card's id."""
    start = Payment.objects.get(pk=setup.payment_id)
    old_card_id = start.card_id
    candidates = sorted(
        {payment.pk for payment in _plans_using(setup.customer, old_card_id, also=start)}
    )
    replaced = []
    for payment_id in candidates:  # in id order, like every writer of many payments
        payment = payment_lock(payment_id=payment_id)
        if payment.state not in OPEN_STATES or payment.card_id == setup.card_id:
            continue
        if payment.card_id != old_card_id:
            continue  # moved to another card meanwhile
        payment_event_record(
            payment,
            kind="card_replaced",
            now=now,
            detail={
                "old": payment.card.public_id if payment.card_id else None,
                "new": setup.card.public_id,
                "setup": setup.public_id,
            },
        )
        payment.card_id = setup.card_id
        payment.updated_at = now
        payment.save(update_fields=["card", "updated_at"])
        replaced.append(payment)
    if replaced:
        _card_changed_email(setup, replaced, old_card_id=old_card_id, now=now)
    return replaced, old_card_id


def _card_changed_email(
    setup: CardSetup, replaced: list[Payment], *, old_card_id: int | None, now: datetime
) -> None:
    from apps.common.emails import emails_queue_many

    payments = list(
        Payment.objects.filter(pk__in=[payment.pk for payment in replaced])
        .select_related("merchant", "customer", "card")
        .order_by("pk")
    )
    first = next((p for p in payments if p.pk == setup.payment_id), payments[0])
    old_card = Card.objects.filter(pk=old_card_id).first()
    context = emails.BatchContext.load(
        [first], Instalment.objects.filter(payment=first).order_by("number")
    )
    spec = emails.card_changed(
        context,
        payment=first,
        plans=payments,
        old_card=old_card,
        new_card=setup.card,
        key=f"cardsetup:{setup.public_id}:card_changed",
    )
    if spec.to:
        emails_queue_many([spec], now=now)


def card_detach_if_unused(*, card: Card, now: datetime) -> bool:
    """Detach ``card``'s token at the processor (outside any transaction) and record it, when
    no open plan is debited from it and no charge on it is in flight (a debit claimed before
    the change: detaching now would decline it). Returns whether it is detached now; a
    processor failure is logged and leaves it attached."""
    if card.detached_at is not None:
        return True
    if Payment.objects.filter(card=card, state__in=OPEN_STATES).exists():
        return False
    if Charge.objects.filter(card=card, status__in=IN_DOUBT).exists():
        logger.warning("Card %s has a charge in flight: not detached now", card.public_id)
        return False
    try:
        card_processor().detach(token=card.processor_token, livemode=card.livemode)
    except ProcessorError:
        logger.exception("Could not detach card %s at the processor", card.public_id)
        return False
    Card.objects.filter(pk=card.pk, detached_at__isnull=True).update(detached_at=now)
    card.detached_at = now
    return True
