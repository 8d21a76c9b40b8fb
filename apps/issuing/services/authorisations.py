"""Purchases made with a Tranche card: decided in real time, each one a 3x plan at most once.

The issuer asks at every purchase (``authorisation_request``). In three steps, as every
money movement here:

1. **open**, in one transaction under the card's lock: a request seen before gets its first
   answer (the issuer's reference is unique); the rules (``apps.issuing.rules``) decline it
   or it is recorded ``pending`` with its plan (a card-programme payment, origin ``card``,
   3 instalments on the funding card) and the first third's charge, committed before any
   call;
2. **charge** the first third to the funding card, outside any transaction (merchant-
   initiated under the mandate given with 3-D Secure when the card was added; its key is
   the charge's, so a retry moves money once);
3. **record**: the charge's outcome accepts the plan (ledger, receipts, emails: the
   checkout's own ``charge_record``), then the purchase is approved; a declined charge
   declines it and stops the plan; an outcome the processor cannot tell yet (a timeout,
   not asked again: it spent the network's deadline) declines it too, and stops the plan,
   so a charge that did go through is refunded by the in-doubt sweep (never a plan for a
   declined purchase).

The issuer's other messages: a **reversal** (the shop cancelled, or the network gave up
waiting for Tranche's answer) refunds the plan in full; one that arrives before its request
is kept, so the late request is declined; one that arrives while the purchase is being
decided is noted and applied when the decision is recorded. A **clearing** settles the
purchase (a smaller final amount refunds the difference). A **refund** from the shop reduces
the plan through ``apps.refunds``, like a merchant's refund. Every refund is decided once per
message reference under the authorisation's lock (``_refund``), then sent to the card.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Sum, Value
from django.db.models.functions import Concat
from django.utils.translation import gettext_lazy as _

from apps.common.dates import add_months, business_date
from apps.common.errors import DomainError
from apps.common.money import decimal_to_cents, to_cents, to_money
from apps.issuing import rules
from apps.issuing.models import CardAuthorisation, VirtualCard
from apps.issuing.services.programme import programme_merchant
from apps.payments.card_rules import card_valid_through
from apps.payments.models import (
    Charge,
    Checkout,
    CreditDecision,
    Instalment,
    Payment,
    PaymentState,
)
from apps.payments.processor import ChargeResult, ProcessorUnavailable, card_processor
from apps.payments.services.charges import charge_open, charge_record, charge_status_ask
from apps.payments.services.payments import PaymentNotEligible, payment_create
from apps.payments.services.transitions import payment_lock, payment_transition
from apps.refunds.models import Refund
from apps.refunds.services import RefundRequest, refund_open, refund_send_to_card

logger = logging.getLogger(__name__)

S = PaymentState
A = CardAuthorisation.State
INSTALMENTS = 3
# Plans that still owe something, counted against the card's limit (a plan being decided
# counts in full).
OWING_STATES = (
    S.SCORED_YES,
    S.IN_PROGRESS,
    S.LATE_DUNNING,
    S.LATE_CONTACT_CUSTOMER,
    S.DEFAULT,
)
LATE_STATES = (S.LATE_DUNNING, S.LATE_CONTACT_CUSTOMER, S.DEFAULT)
UNPAID = (Instalment.State.PENDING, Instalment.State.INCIDENT)
# A replayed request waits this long for the first one's decision.
REPLAY_WAIT = timedelta(seconds=3)
REPLAY_POLL_SECONDS = 0.05
# A purchase still "being decided" after this was left by a process that died.
PENDING_GRACE = timedelta(minutes=2)


class NotDecidedYet(Exception):
    """A message about a purchase Tranche has not finished deciding: the issuer retries."""


class PurchaseNotApproved(DomainError):
    code = "purchase_not_approved"
    http_status = 422
    default_message = _("This purchase was not approved: there is nothing to refund.")


@dataclass(frozen=True)
class PurchaseRequest:
    reference: str
    card_token: str
    amount_cents: int
    currency: str
    merchant_name: str
    merchant_category: str
    merchant_country: str
    livemode: bool


# --- the request -------------------------------------------------------------------------


def authorisation_request(*, request: PurchaseRequest, now: datetime) -> CardAuthorisation:
    """Decide a purchase; the same reference always gets the same answer."""
    try:
        authorisation, charge = _open(request, now=now)
    except IntegrityError:
        # A reversal of this purchase was recorded while it was being opened (all of it,
        # plan included, rolled back): opened again, it finds the reversal.
        authorisation, charge = _open(request, now=now)
    if charge is None:
        if authorisation.state == A.PENDING:
            return _wait_for_decision(authorisation, now=now)
        return authorisation
    result = _charge_execute(charge)
    return _finish(authorisation_id=authorisation.pk, charge_id=charge.pk, result=result, now=now)


def _open(request: PurchaseRequest, *, now: datetime):
    # Created outside the transaction below: its own, once, before any card is locked.
    merchant = programme_merchant(now=now)
    with transaction.atomic():
        card = (
            VirtualCard.objects.select_for_update(of=("self",))
            .select_related("customer", "funding_card")
            .filter(issuer_token=request.card_token, livemode=request.livemode)
            .first()
        )
        existing = (
            CardAuthorisation.objects.select_for_update()
            .filter(livemode=request.livemode, issuer_reference=request.reference)
            .first()
        )
        if existing is not None:
            return _replayed(existing, request, now=now), None
        if card is None:
            # Nothing to lock: a concurrent twin may insert first; its row is the answer.
            return _declined_unknown(request, now=now), None
        row = CardAuthorisation(
            livemode=request.livemode,
            issuer_reference=request.reference,
            card=card,
            amount=to_money(max(request.amount_cents, 0)),
            merchant_name=request.merchant_name[:200],
            merchant_category=request.merchant_category[:4],
            merchant_country=request.merchant_country[:2].upper(),
            requested_at=now,
            created_at=now,
        )
        code = rules.purchase_decline(_facts(card, request, now))
        if code is None:
            try:
                payment = _plan_create(merchant, card, request, now=now)
            except PaymentNotEligible:
                code = rules.NOT_ELIGIBLE
        if code is not None:
            row.state = A.DECLINED
            row.decline_code = code
            row.decided_at = now
            row.save(force_insert=True)
            return row, None
        row.state = A.PENDING
        row.payment = payment
        # The card's lock orders twins of this request: the first inserts, the others
        # find its row above, so this insert cannot meet the unique reference.
        row.save(force_insert=True)
        first = payment.instalment_rows[0]
        charge = charge_open(
            payment_id=payment.pk,
            kind=Charge.Kind.FIRST_INSTALMENT,
            amount_cents=to_cents(first.total_amount),
            three_ds_reference="",
            now=now,
        )
    return row, charge


def _declined_unknown(request: PurchaseRequest, *, now: datetime) -> CardAuthorisation:
    """A purchase with a card Tranche does not know, declined once by reference."""
    row = CardAuthorisation(
        livemode=request.livemode,
        issuer_reference=request.reference,
        card=None,
        amount=to_money(max(request.amount_cents, 0)),
        merchant_name=request.merchant_name[:200],
        merchant_category=request.merchant_category[:4],
        merchant_country=request.merchant_country[:2].upper(),
        state=A.DECLINED,
        decline_code=rules.CARD_UNKNOWN,
        requested_at=now,
        decided_at=now,
        created_at=now,
    )
    try:
        with transaction.atomic():
            row.save(force_insert=True)
    except IntegrityError:  # its twin (or a reversal) was recorded meanwhile
        existing = CardAuthorisation.objects.select_for_update().get(
            livemode=request.livemode, issuer_reference=request.reference
        )
        return _replayed(existing, request, now=now)
    return row


def _replayed(existing: CardAuthorisation, request: PurchaseRequest, *, now) -> CardAuthorisation:
    if existing.requested_at is None:
        # The reversal came first: the purchase was cancelled before it was asked about.
        existing.requested_at = now
        existing.decided_at = now
        existing.decline_code = rules.ALREADY_REVERSED
        existing.amount = to_money(max(request.amount_cents, 0))
        existing.merchant_name = request.merchant_name[:200]
        existing.merchant_category = request.merchant_category[:4]
        existing.merchant_country = request.merchant_country[:2].upper()
        existing.save(
            update_fields=[
                "requested_at",
                "decided_at",
                "decline_code",
                "amount",
                "merchant_name",
                "merchant_category",
                "merchant_country",
            ]
        )
    return existing


def _facts(card: VirtualCard, request: PurchaseRequest, now: datetime) -> rules.PurchaseFacts:
    customer = card.customer
    owing = (
        Instalment.objects.filter(
            payment__customer=customer,
            payment__livemode=card.livemode,
            payment__origin=Payment.Origin.CARD,
            payment__state__in=OWING_STATES,
            state__in=UNPAID,
        ).aggregate(total=Sum("purchase_amount"))["total"]
        or 0
    )
    owing_cents = decimal_to_cents(owing) if owing else 0
    approved_last_day = CardAuthorisation.objects.filter(
        card__customer=customer,
        state__in=(A.APPROVED, A.PENDING),
        requested_at__gt=now - timedelta(days=1),
    ).count()
    late = Payment.objects.filter(
        customer=customer, livemode=card.livemode, state__in=LATE_STATES
    ).exists()
    funding = card.funding_card
    last_due = add_months(business_date(now), INSTALMENTS - 1)
    usable = (
        funding.detached_at is None
        and card_valid_through(exp_month=funding.exp_month, exp_year=funding.exp_year) >= last_due
    )
    return rules.PurchaseFacts(
        card_state=card.state,
        amount_cents=request.amount_cents,
        currency=request.currency.upper(),
        merchant_category=request.merchant_category,
        available_cents=to_cents(card.limit) - owing_cents,
        approved_last_day=approved_last_day,
        customer_late=late,
        funding_card_usable=usable,
    )


def _plan_create(merchant, card: VirtualCard, request: PurchaseRequest, *, now) -> Payment:
    """The purchase's plan: a programme payment on the funding card, scored yes."""
    customer = card.customer
    payment = payment_create(
        merchant=merchant,
        livemode=card.livemode,
        data={
            "payment": {
                "purchase_amount": request.amount_cents,
                "installments_count": INSTALMENTS,
                "origin": Payment.Origin.CARD,
                "locale": "fr",
                "custom_data": {
                    "card_purchase": {
                        "shop": request.merchant_name[:200],
                        "category": request.merchant_category[:4],
                        "country": request.merchant_country[:2].upper(),
                        "issuer_reference": request.reference,
                        "card": card.public_id,
                    }
                },
            },
            "customer": {
                "email": customer.email,
                "first_name": customer.first_name,
                "last_name": customer.last_name,
                "phone": customer.phone,
            },
            "order": {"merchant_reference": request.reference},
        },
        now=now,
    )
    if payment.customer_id != customer.pk:  # never: the card requires the profile's email
        Payment.objects.filter(pk=payment.pk).update(customer=customer)
        payment.customer = customer
    Checkout.objects.create(
        payment=payment,
        step=Checkout.Step.DECISION,
        first_name=customer.first_name,
        last_name=customer.last_name,
        email=customer.email,
        phone=customer.phone,
        birth_date=customer.birth_date,
        address=customer.address or {},
        card=card.funding_card,
        phone_verified_at=customer.phone_verified_at,
        language="fr",
        created_at=now,
        updated_at=now,
    )
    CreditDecision.objects.create(
        payment=payment,
        outcome=CreditDecision.Outcome.YES,
        reasons=[],
        features={"card": card.public_id, "limit": to_cents(card.limit)},
        rules_version=rules.RULES_VERSION,
        made_by="card",
        created_at=now,
    )
    locked = payment_lock(payment_id=payment.pk)
    payment_transition(
        locked, S.SCORED_YES, now=now, kind="scored", detail={"card": card.public_id}
    )
    payment.state = locked.state
    return payment


def _charge_execute(charge: Charge) -> ChargeResult | None:
    """The first third, on the funding card; None when the outcome is unknown.

    A processor that timed out has spent the network's deadline: no second call to ask
    what became of the charge (the checkout asks at once, a card purchase cannot wait). The
    purchase is declined in doubt and the in-doubt sweep refunds a charge that went through.
    """
    try:
        return card_processor().charge(
            token=charge.card.processor_token,
            amount_cents=to_cents(charge.amount),
            idempotency_key=charge.idempotency_key,
            livemode=charge.payment.livemode,
            merchant_initiated=True,
        )
    except ProcessorUnavailable:
        logger.warning("Processor unavailable for card purchase charge %s", charge.idempotency_key)
    return None


def _finish(
    *, authorisation_id: int, charge_id: int, result: ChargeResult | None, now: datetime
) -> CardAuthorisation:
    charge = charge_record(charge_id=charge_id, result=result, now=now)
    undo = False
    with transaction.atomic():
        row = CardAuthorisation.objects.select_for_update().get(pk=authorisation_id)
        if row.state != A.PENDING:
            return row
        payment = payment_lock(payment_id=row.payment_id)
        accepted = charge.status == Charge.Status.SUCCEEDED and payment.state in (
            S.IN_PROGRESS,
            S.PAID,
        )
        row.decided_at = now
        if accepted and row.reversed_at is None:
            row.state = A.APPROVED
        elif accepted:
            # Reversed while it was being decided: the plan is refunded in full below.
            row.state = A.REVERSED
            undo = True
        else:
            row.state = A.DECLINED if row.reversed_at is None else A.REVERSED
            row.decline_code = (
                rules.FUNDING_CARD_DECLINED
                if charge.status == Charge.Status.FAILED
                else rules.FUNDING_CHARGE_IN_DOUBT
            )
            if payment.state in (S.SCORED_YES, S.SCORED_MAYBE, S.SCORED_NO):
                # A charge that went through after all is orphaned and refunded by the sweep.
                payment_transition(
                    payment,
                    S.STOPPED,
                    now=now,
                    kind="card_purchase_declined",
                    detail={"code": row.decline_code},
                )
        row.save(update_fields=["state", "decided_at", "decline_code"])
    if undo:
        _reversal_refund(row, now=now)
    return row


def _wait_for_decision(row: CardAuthorisation, *, now: datetime) -> CardAuthorisation:
    """A replay of a purchase being decided: its answer when it comes. Past REPLAY_WAIT the
    replay is declined, and the first request's outcome is reversed when recorded (the
    network takes the last answer it got)."""
    deadline = time.monotonic() + REPLAY_WAIT.total_seconds()
    while time.monotonic() < deadline:
        time.sleep(REPLAY_POLL_SECONDS)
        row.refresh_from_db()
        if row.state != A.PENDING:
            return row
    with transaction.atomic():
        row = CardAuthorisation.objects.select_for_update().get(pk=row.pk)
        if row.state == A.PENDING and row.reversed_at is None:
            row.reversed_at = now
            row.save(update_fields=["reversed_at"])
    if row.state == A.PENDING:
        # Answered as declined; the row keeps deciding and ends reversed.
        row.decline_code = rules.STILL_DECIDING
    return row


# --- the issuer's other messages ---------------------------------------------------------


def authorisation_reverse(
    *, livemode: bool, reference: str, card_token: str, amount_cents: int, now: datetime
) -> CardAuthorisation:
    """The purchase is cancelled at the network: refund its plan in full (once)."""
    refund = False
    with transaction.atomic():
        row = (
            CardAuthorisation.objects.select_for_update()
            .filter(livemode=livemode, issuer_reference=reference)
            .first()
        )
        if row is None:
            # Before its request: kept, so the request is declined when it arrives.
            card = VirtualCard.objects.filter(issuer_token=card_token, livemode=livemode).first()
            row = CardAuthorisation(
                livemode=livemode,
                issuer_reference=reference,
                card=card,
                amount=to_money(max(amount_cents, 0)),
                state=A.REVERSED,
                reversed_at=now,
                created_at=now,
            )
            try:
                with transaction.atomic():
                    row.save(force_insert=True)
            except IntegrityError:  # its request arrived meanwhile: the issuer retries
                raise NotDecidedYet() from None
            return row
        if row.reversed_at is not None or row.state in (A.DECLINED, A.REVERSED):
            if row.reversed_at is None:
                row.reversed_at = now
                row.save(update_fields=["reversed_at"])
            refund = row.state == A.REVERSED  # a replay finishes a refund left undone
        else:
            row.reversed_at = now
            if row.state == A.APPROVED:
                if row.cleared_at is not None:
                    logger.warning("Reversal of cleared card purchase %s ignored", reference)
                    row.reversed_at = None
                    return row
                row.state = A.REVERSED
                refund = True
            row.save(update_fields=["reversed_at", "state"])
    if refund:
        _reversal_refund(row, now=now)
    return row


def _reversal_refund(row: CardAuthorisation, *, now: datetime) -> Refund | None:
    """The full refund a reversed purchase's plan is owed: only if the plan was accepted
    (a declined purchase's plan was stopped before any money moved) and something is left;
    once, by its reference, however often it is asked (a replayed reversal, the sweep)."""
    if row.payment_id is None:
        return None
    payment = Payment.objects.get(pk=row.payment_id)
    if payment.accepted_at is None or payment.amount_refunded >= payment.purchase_amount:
        return None
    return _refund(row, amount_cents=None, reference=f"reversal:{row.issuer_reference}", now=now)


def authorisation_clear(
    *, livemode: bool, reference: str, amount_cents: int, now: datetime
) -> CardAuthorisation:
    """The purchase is settled at its final amount: a smaller one refunds the difference."""
    with transaction.atomic():
        row = _decided(livemode, reference)
        first = row.cleared_at is None
        if first:
            row.cleared_at = now
            row.cleared_amount = to_money(max(amount_cents, 0))
            row.save(update_fields=["cleared_at", "cleared_amount"])
    # The first clearing's amount counts; a replay only finishes its refund (a process that
    # died after recording the clearing left it undone; the refund's reference makes it once).
    amount_cents = to_cents(row.cleared_amount)
    authorised = to_cents(row.amount)
    if row.state != A.APPROVED:
        if first:
            logger.error(
                "Card purchase %s cleared but %s: an operator must look", reference, row.state
            )
    elif amount_cents > authorised:
        logger.error(
            "Card purchase %s cleared at %d cents, above the %d authorised: an operator must look",
            reference,
            amount_cents,
            authorised,
        )
    elif amount_cents < authorised:
        _refund(
            row,
            amount_cents=authorised - amount_cents,
            reference=f"clearing:{reference}",
            now=now,
        )
    return row


def authorisation_refund(
    *, livemode: bool, reference: str, refund_reference: str, amount_cents: int, now: datetime
) -> Refund | None:
    """The shop refunded (part of) the purchase: the plan is reduced by that much, once per
    refund reference. Raises ``PurchaseNotApproved`` for a purchase that made no plan, and
    the refunds' errors (``RefundAmountInvalid``...) for a refund the plan cannot take."""
    with transaction.atomic():
        row = _decided(livemode, reference)
    if row.state != A.APPROVED or row.payment_id is None:
        logger.error(
            "Refund %s for card purchase %s that is %s", refund_reference, reference, row.state
        )
        raise PurchaseNotApproved()
    return _refund(row, amount_cents=amount_cents, reference=f"refund:{refund_reference}", now=now)


def _decided(livemode: bool, reference: str) -> CardAuthorisation:
    row = (
        CardAuthorisation.objects.select_for_update()
        .filter(livemode=livemode, issuer_reference=reference)
        .first()
    )
    if row is None or row.state == A.PENDING:
        raise NotDecidedYet()
    return row


def _refund(
    row: CardAuthorisation, *, amount_cents: int | None, reference: str, now: datetime
) -> Refund | None:
    """Refund the purchase's plan (``amount_cents``, or all that is left), once per
    ``reference``: decided under the authorisation's lock (the same message twice, even at
    once, finds the first one's refund), then sent to the card outside any transaction (a
    replay sends what is still open; the refunds' sweep does too)."""
    if row.payment_id is None:
        return None
    with transaction.atomic():
        CardAuthorisation.objects.select_for_update().filter(pk=row.pk).first()
        refund = (
            Refund.objects.filter(payment_id=row.payment_id, merchant_reference=reference)
            .order_by("pk")
            .first()
        )
        if refund is None:
            refund = refund_open(
                payment_id=row.payment_id,
                request=RefundRequest(amount=amount_cents, merchant_reference=reference),
                origin=Refund.Origin.CARD,
                now=now,
            )
            CardAuthorisation.objects.filter(pk=row.pk).update(
                refunded_amount=F("refunded_amount") + refund.amount.amount
            )
    if refund.state == Refund.State.PENDING:
        refund = refund_send_to_card(refund_id=refund.pk, now=now)
    return refund


# --- the sweep ---------------------------------------------------------------------------


def authorisations_settle_pending(*, now: datetime, limit: int = 100) -> int:
    """Purchases left being decided by a process that died between its charge and its
    record: ask the processor what became of the charge, and record it. Then reversed
    purchases whose plan's refund was left undone (``_reversals_refund_owed``)."""
    settled = 0
    rows = list(
        CardAuthorisation.objects.filter(
            state=A.PENDING, created_at__lte=now - PENDING_GRACE
        ).order_by("created_at")[:limit]
    )
    for row in rows:
        charge = (
            Charge.objects.filter(payment_id=row.payment_id, kind=Charge.Kind.FIRST_INSTALMENT)
            .select_related("card", "payment")
            .order_by("-attempt")
            .first()
        )
        try:
            if charge is None:
                result = None
            elif charge.status in (Charge.Status.PENDING, Charge.Status.UNKNOWN):
                result = charge_status_ask(charge=charge, unknown_means_not_sent=True)
            else:
                result = None  # already recorded: _finish reads the charge as it stands
            if charge is not None:
                _finish(authorisation_id=row.pk, charge_id=charge.pk, result=result, now=now)
                settled += 1
        except Exception:
            logger.exception("Could not settle card purchase %s", row.issuer_reference)
    settled += _reversals_refund_owed(now=now, limit=limit)
    return settled


def _reversals_refund_owed(*, now: datetime, limit: int) -> int:
    """Reversed purchases whose accepted plan has no reversal refund yet (its refund failed,
    or the process died after recording the reversal): refunded now."""
    owed = list(
        CardAuthorisation.objects.filter(
            state=A.REVERSED,
            payment__accepted_at__isnull=False,
            reversed_at__lte=now - PENDING_GRACE,
        )
        .exclude(
            Exists(
                Refund.objects.filter(
                    payment_id=OuterRef("payment_id"),
                    merchant_reference=Concat(Value("reversal:"), OuterRef("issuer_reference")),
                )
            )
        )
        .order_by("reversed_at")[:limit]
    )
    done = 0
    for row in owed:
        try:
            if _reversal_refund(row, now=now) is not None:
                done += 1
        except Exception:
            logger.exception("Could not refund reversed card purchase %s", row.issuer_reference)
    return done
