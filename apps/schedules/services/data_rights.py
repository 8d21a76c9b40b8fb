"""A customer's data rights from the portal (GDPR): a correction, the deletion of their
data, and a person's review of a credit decision (art. 16, 17 and 22).

Deletion is honoured at once when the customer has nothing open with Tranche: no plan being
repaid (in progress, late, or in default: a debt still owed) and no payment still waiting at
checkout. Then, in one transaction, the profile is blanked (names, phone, birth date; the
email becomes ``erased-<customer id>@invalid``, which keeps the one-customer-per-email rule),
so are the details given at each checkout (names, email, phone, birth date, address, browser
id, IP address), and the request is recorded (a support request, done) with a
``customer_erased`` event on every payment. After commit the cards' tokens are detached at
the processor. What the law makes Tranche keep stays: payments, instalments, receipts, credit
notes and the ledger for 10 years (French commercial code, art. L123-22); the merchant's own
copy of the order (``Payment.customer_data``, the addresses it sent) is the merchant's data;
deny-list entries stay 5 years (anti-money-laundering and fraud prevention).

Otherwise the request is refused with what is open, and when the customer can ask again;
they may still send it to support (an open ticket).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import transaction
from django.db.models import Max, Prefetch, QuerySet
from django.utils.translation import gettext_lazy as _

from apps.common.errors import DomainError
from apps.payments.models import (
    Card,
    Checkout,
    CreditDecision,
    Customer,
    DecisionReview,
    Instalment,
    Payment,
    PaymentState,
)
from apps.payments.processor import ProcessorError, ProcessorUnavailable, card_processor
from apps.payments.services.reviews import review_request
from apps.payments.services.transitions import payment_event_record
from apps.schedules.models import SupportRequest
from apps.schedules.services.support import support_request_create

logger = logging.getLogger(__name__)

S = PaymentState
# A plan still being repaid: a payment in default is a debt still owed.
OPEN_PLAN_STATES = (S.IN_PROGRESS, S.LATE_DUNNING, S.LATE_CONTACT_CUSTOMER, S.DEFAULT)
# A payment the customer may still pay at checkout (until it expires).
WAITING_STATES = (S.NOT_READY, S.NOT_STARTED, S.SCORED_YES, S.SCORED_MAYBE, S.SCORED_NO)
UNPAID_INSTALMENT_STATES = (
    Instalment.State.PENDING,
    Instalment.State.INCIDENT,
    Instalment.State.CLAIMED,
)
# How long what deletion keeps is kept (said on the pages and in the privacy policy).
ACCOUNTING_RETENTION_YEARS = 10  # French commercial code, art. L123-22
DENY_LIST_RETENTION_YEARS = 5  # anti-money-laundering (French monetary and financial code)
# The same request sent again this soon (a double click, a reload) is the same request.
SAME_REQUEST_WINDOW = timedelta(minutes=10)
MESSAGE_MAX_CHARS = 5000


class EmptyMessage(DomainError):
    code = "message_required"
    default_message = _("Please tell us what to correct.")


class AlreadyErased(DomainError):
    code = "customer_already_erased"
    http_status = 409
    default_message = _("Your data has already been deleted.")


class PaymentNotFound(DomainError):
    code = "payment_not_found"
    http_status = 404
    default_message = _("No such payment.")


@dataclass(frozen=True)
class DeletionBlockers:
    """What keeps a customer's data from being deleted now."""

    open_plans: list[Payment] = field(default_factory=list)
    waiting: list[Payment] = field(default_factory=list)
    # The last due date of what is still owed on the open plans, and when the last waiting
    # payment expires: the customer may ask again after both.
    last_due_date: date | None = None
    waiting_until: datetime | None = None

    def __bool__(self) -> bool:
        return bool(self.open_plans or self.waiting)


class DeletionNotPossible(DomainError):
    code = "deletion_not_possible"
    http_status = 409
    default_message = _(
        "We cannot delete your data while you have a plan to repay or a payment in progress."
    )

    def __init__(self, blockers: DeletionBlockers):
        super().__init__()
        self.blockers = blockers


# --- correction ---------------------------------------------------------------------------


def correction_request(*, customer: Customer, message: str, now: datetime) -> SupportRequest:
    """The customer asks for their data to be corrected: a ticket for support (and its two
    emails). The same message sent again within minutes is the same request."""
    message = (message or "").strip()[:MESSAGE_MAX_CHARS]
    if not message:
        raise EmptyMessage()
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        same = _recent_same(locked, SupportRequest.Kind.CORRECTION, message, now)
        if same is not None:
            return same
        return support_request_create(
            kind=SupportRequest.Kind.CORRECTION,
            livemode=locked.livemode,
            now=now,
            customer=locked,
            name=_full_name(locked),
            message=message,
        )


# --- deletion -----------------------------------------------------------------------------


def deletion_blockers(customer: Customer, *, now: datetime) -> DeletionBlockers:
    """What keeps the customer's data from being deleted now (nothing: falsy)."""
    return _blockers(list(Payment.objects.filter(customer=customer)), now=now)


def deletion_request(
    *, customer: Customer, now: datetime, message: str = "", send_anyway: bool = False
) -> SupportRequest:
    """The customer asks for their data to be deleted.

    With nothing open, it is done now (see the module's docstring) and the returned request
    is ``done``. Otherwise ``DeletionNotPossible`` (with what is open), unless
    ``send_anyway``: then an open ticket goes to support. ``AlreadyErased`` if done before.
    """
    message = (message or "").strip()[:MESSAGE_MAX_CHARS]
    with transaction.atomic():
        # The payments first (so none moves while this decides: a checkout paid, an
        # expiry), then the customer: the order the checkout takes them in.
        payments = list(
            Payment.objects.select_for_update(no_key=True)
            .filter(customer_id=customer.pk)
            .order_by("pk")
        )
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        if locked.erased_at is not None:
            raise AlreadyErased()
        blockers = _blockers(payments, now=now)
        if blockers:
            if not send_anyway:
                raise DeletionNotPossible(blockers)
            same = _recent_same(locked, SupportRequest.Kind.DELETION, message, now)
            if same is not None:
                return same
            return support_request_create(
                kind=SupportRequest.Kind.DELETION,
                livemode=locked.livemode,
                now=now,
                customer=locked,
                name=_full_name(locked),
                message=message,
            )
        request = _erase(locked, payments, message=message, now=now)
    return request


def _erase(
    customer: Customer, payments: list[Payment], *, message: str, now: datetime
) -> SupportRequest:
    """Blank what identifies the customer; keep what the law keeps (caller's transaction,
    customer and payments locked)."""
    email = customer.email  # where the acknowledgement goes, once
    Customer.objects.filter(pk=customer.pk).update(
        first_name="",
        last_name="",
        phone="",
        phone_verified_at=None,
        birth_date=None,
        address={},
        email=f"erased-{customer.public_id}@invalid",
        erased_at=now,
        updated_at=now,
    )
    # Their Tranche card (apps.issuing, through the reverse relation) stops at once: every
    # purchase is declined (card_inactive); the issuer keeps its own records.
    customer.virtual_cards.filter(state__in=("active", "frozen")).update(
        state="closed", closed_at=now
    )
    Checkout.objects.filter(payment__customer=customer).update(
        first_name="",
        last_name="",
        email="",
        phone="",
        birth_date=None,
        address={},
        device_id="",
        ip_address=None,
        updated_at=now,
    )
    request = support_request_create(
        kind=SupportRequest.Kind.DELETION,
        status=SupportRequest.Status.DONE,
        livemode=customer.livemode,
        now=now,
        customer=customer,
        email=email,
        message=message,
    )
    for payment in payments:
        payment_event_record(
            payment, kind="customer_erased", now=now, detail={"request": request.public_id}
        )
    customer_id = customer.pk
    transaction.on_commit(
        lambda: erased_cards_detach(now=now, customer_id=customer_id), robust=True
    )
    return request


def erased_cards_detach(*, now: datetime, customer_id: int | None = None, limit: int = 200) -> int:
    """Detach at the processor the cards of erased customers still attached (one customer's,
    or a sweep over all): a detached token can never be charged again. Outside any
    transaction; safe to run twice and at once (detaching twice is harmless, the row is
    marked once). Returns how many were marked; a processor outage leaves the card for the
    next run."""
    cards = Card.objects.filter(customer__erased_at__isnull=False, detached_at__isnull=True)
    if customer_id is not None:
        cards = cards.filter(customer_id=customer_id)
    processor = card_processor()
    detached = 0
    for pk, token, livemode in cards.order_by("pk").values_list(
        "pk", "processor_token", "livemode"
    )[:limit]:
        try:
            processor.detach(token=token, livemode=livemode)
        except ProcessorUnavailable:
            logger.warning("Card %s of an erased customer not detached yet: processor down", pk)
            continue
        except ProcessorError as error:
            # The processor does not know the token (any more): nothing left to charge.
            logger.warning("Card %s of an erased customer: %s", pk, error.code)
        detached += Card.objects.filter(pk=pk, detached_at__isnull=True).update(detached_at=now)
    return detached


def _blockers(payments: list[Payment], *, now: datetime) -> DeletionBlockers:
    open_plans = [payment for payment in payments if payment.state in OPEN_PLAN_STATES]
    waiting = [
        payment
        for payment in payments
        if payment.state in WAITING_STATES
        and payment.expired_at is None
        and payment.expires_at > now
    ]
    last_due_date = None
    if open_plans:
        last_due_date = Instalment.objects.filter(
            payment__in=open_plans, state__in=UNPAID_INSTALMENT_STATES
        ).aggregate(last=Max("due_date"))["last"]
    waiting_until = max((payment.expires_at for payment in waiting), default=None)
    return DeletionBlockers(
        open_plans=open_plans,
        waiting=waiting,
        last_due_date=last_due_date,
        waiting_until=waiting_until,
    )


# --- decisions ----------------------------------------------------------------------------


def customer_decisions(customer: Customer) -> QuerySet[Payment]:
    """The customer's payments that were decided (accepted or refused), newest first, with
    their decisions and reviews."""
    return (
        Payment.objects.filter(
            customer=customer, livemode=customer.livemode, decisions__isnull=False
        )
        .distinct()
        .select_related("merchant")
        .prefetch_related(
            Prefetch("decisions", queryset=CreditDecision.objects.order_by("created_at", "pk")),
            Prefetch("reviews", queryset=DecisionReview.objects.order_by("created_at", "pk")),
        )
        .order_by("-created_at", "-pk")
    )


def contest_decision(
    *, customer: Customer, payment_id: str, message: str, now: datetime
) -> DecisionReview:
    """The customer asks a person to review the decision on one of their payments
    (accepted or refused): ``PaymentNotFound`` for anyone else's."""
    payment = Payment.objects.filter(
        customer=customer, livemode=customer.livemode, public_id=payment_id
    ).first()
    if payment is None:
        raise PaymentNotFound()
    return review_request(payment=payment, message=(message or "").strip()[:2000], now=now)


# --- helpers ------------------------------------------------------------------------------


def _full_name(customer: Customer) -> str:
    return " ".join(part for part in (customer.first_name, customer.last_name) if part)


def _recent_same(
    customer: Customer, kind: str, message: str, now: datetime
) -> SupportRequest | None:
    return (
        SupportRequest.objects.filter(
            customer=customer,
            kind=kind,
            status=SupportRequest.Status.OPEN,
            message=message,
            created_at__gte=now - SAME_REQUEST_WINDOW,
        )
        .order_by("-created_at")
        .first()
    )
