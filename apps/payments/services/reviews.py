"""Human review of credit decisions: the operators' queue and their approve / refuse.

Two ways in: a payment left waiting on more information past DECISION_REVIEW_AFTER_MINUTES
(queued by a periodic task), and a customer who contests a decision (GDPR art. 22, from the
refusal page). The operator's decision is recorded on the review and as a CreditDecision made
by ``operator``; if the payment can still be paid, its state follows (``scored_yes`` lets the
customer come back and pay the first instalment; ``scored_no`` offers to pay in full) and the
customer is told by email.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from apps.common.emails import email_queue
from apps.common.errors import DomainError
from apps.payments.emails import email_language
from apps.payments.links import absolute, explanation_url
from apps.payments.models import (
    PAYABLE_STATES,
    Checkout,
    CreditDecision,
    DecisionReview,
    Payment,
)
from apps.payments.models import PaymentState as S
from apps.payments.services.charges import IN_DOUBT
from apps.payments.services.transitions import (
    payment_event_record,
    payment_lock,
    payment_transition,
)

WAITING_STEPS = (
    Checkout.Step.PHONE,
    Checkout.Step.MORE_INFO,
    Checkout.Step.IDENTITY,
    Checkout.Step.BANK,
)
OPERATOR_RULES_VERSION = "operator"


class ReviewAlreadyDecided(DomainError):
    code = "review_already_decided"
    http_status = 409
    default_message = _("This review was already decided.")


class ChargeUnderWay(DomainError):
    code = "review_charge_under_way"
    http_status = 409
    default_message = _(
        "A payment by the customer is being processed: decide once its result is known."
    )


class NothingToReview(DomainError):
    code = "nothing_to_review"
    http_status = 404
    default_message = _("There is no decision on this payment to review.")


def reviews_queue_waiting(*, now: datetime, limit: int = 500) -> int:
    """Queue for review the payments waiting on more information for too long (safe to run
    twice and at once: one open review per payment and kind, enforced by the database)."""
    cutoff = now - timedelta(minutes=settings.DECISION_REVIEW_AFTER_MINUTES)
    latest_decision = (
        CreditDecision.objects.filter(payment_id=OuterRef("payment_id"))
        .order_by("-created_at", "-id")
        .values("pk")[:1]
    )
    already = DecisionReview.objects.filter(
        payment_id=OuterRef("payment_id"), kind=DecisionReview.Kind.WAITING
    )
    waiting = (
        Checkout.objects.filter(
            step__in=WAITING_STEPS,
            updated_at__lt=cutoff,
            payment__state=S.SCORED_MAYBE,
            payment__expired_at__isnull=True,
        )
        .exclude(Exists(already))  # queued once: an operator's answer is not asked again
        .annotate(decision_id=Subquery(latest_decision))
        .filter(decision_id__isnull=False)
        .values_list("payment_id", "decision_id")[:limit]
    )
    reviews = [
        DecisionReview(
            payment_id=payment_id,
            decision_id=decision_id,
            kind=DecisionReview.Kind.WAITING,
            created_at=now,
        )
        for payment_id, decision_id in waiting
    ]
    # A review queued meanwhile by another run is skipped by the partial unique index.
    created = DecisionReview.objects.bulk_create(reviews, ignore_conflicts=True)
    return len(created)


def review_request(*, payment: Payment, message: str, now: datetime) -> DecisionReview:
    """The customer asks a person to look at the decision again (and for its reasons).
    Asking twice keeps the first open request (its message is kept, the new one added)."""
    with transaction.atomic():
        payment = payment_lock(payment_id=payment.pk)
        decision = (
            payment.decisions.exclude(made_by="operator").order_by("-created_at", "-id").first()
        )
        if decision is None:
            raise NothingToReview()
        review = payment.reviews.filter(kind=DecisionReview.Kind.CONTESTED, status="open").first()
        if review is not None:
            if message:
                review.customer_message = "\n\n".join(
                    part for part in (review.customer_message, message) if part
                )[:10_000]
                review.save(update_fields=["customer_message"])
            return review
        review = DecisionReview.objects.create(
            payment=payment,
            decision=decision,
            kind=DecisionReview.Kind.CONTESTED,
            customer_message=message,
            created_at=now,
        )
        payment_event_record(payment, kind="decision_contested", now=now)
    return review


def review_decide(
    *, review_id: int, approve: bool, note: str, operator, now: datetime
) -> DecisionReview:
    """An operator approves or refuses. Recorded on the review and as a decision made by
    ``operator``; a payment still payable moves to ``scored_yes`` or ``scored_no`` and the
    customer gets an email; the other open reviews of the payment are closed with it."""
    with transaction.atomic():
        review = DecisionReview.objects.select_related("payment").get(pk=review_id)
        payment = payment_lock(payment_id=review.payment_id)
        review = DecisionReview.objects.select_for_update().get(pk=review_id)
        if review.status != DecisionReview.Status.OPEN:
            raise ReviewAlreadyDecided()
        if payment.charges.filter(status__in=IN_DOUBT).exists():
            raise ChargeUnderWay()
        outcome = "yes" if approve else "no"
        decision = CreditDecision.objects.create(
            payment=payment,
            outcome=outcome,
            score=0,
            reasons=[
                {
                    "code": "operator_approved" if approve else "operator_refused",
                    "message": note,
                    "points": 0,
                    "category": "operator",
                }
            ],
            rules_version=OPERATOR_RULES_VERSION,
            made_by="operator",
            created_at=now,
        )
        status = DecisionReview.Status.APPROVED if approve else DecisionReview.Status.REFUSED
        DecisionReview.objects.filter(payment=payment, status="open").update(
            status=status, operator_note=note, decided_by=operator, decided_at=now
        )
        review.refresh_from_db()
        payable = payment.state in PAYABLE_STATES and payment.expired_at is None
        if payable:
            target = S.SCORED_YES if approve else S.SCORED_NO
            payment_transition(
                payment, target, now=now, kind="reviewed", detail={"decision": decision.pk}
            )
            checkout = Checkout.objects.select_for_update().filter(payment=payment).first()
            if checkout is not None:
                _checkout_follows(checkout, approve=approve, now=now)
            _customer_told(payment, checkout, approve=approve, review=review, now=now)
        else:
            payment_event_record(
                payment, kind="reviewed", now=now, detail={"decision": decision.pk}
            )
    return review


def _checkout_follows(checkout: Checkout, *, approve: bool, now: datetime) -> None:
    """Where the customer resumes. Without a card yet (or after a declined one) they give
    one, and the rules decide again on it. Otherwise an approval is paid on at once when
    their bank authenticated the first instalment, or after a new 3-D Secure for it (they
    had chosen to pay in full); a refusal offers to pay in full."""
    Step = Checkout.Step
    if checkout.step in (Step.DETAILS, Step.CARD, Step.DONE) or checkout.card_id is None:
        return
    fields = ["step", "refusal_code", "pay_in_full", "three_ds_reference", "updated_at"]
    if not approve:
        checkout.step, checkout.refusal_code = Step.REFUSED, "no"
    elif checkout.pay_in_full or checkout.three_ds_completed_at is None:
        checkout.step, checkout.refusal_code = Step.THREE_DS, ""
        checkout.pay_in_full, checkout.three_ds_reference = False, ""
    else:
        checkout.step, checkout.refusal_code = Step.DECISION, ""
    checkout.updated_at = now
    checkout.save(update_fields=fields)


def _customer_told(payment, checkout, *, approve: bool, review, now: datetime) -> None:
    email = (checkout.email if checkout else "") or (payment.customer_data or {}).get("email")
    if not email:
        return
    language = (checkout.language if checkout else "") or email_language(payment.locale)
    email_queue(
        key=f"review:{review.pk}:customer",
        to=email,
        subject=_("Your payment in instalments: our answer")
        if approve
        else _("Your payment in instalments: we cannot accept it"),
        template="emails/review_decided_customer",
        context={
            "approved": approve,
            "merchant_name": payment.merchant.legal_name,
            "checkout_url": absolute(reverse("payments:checkout", args=[payment.public_id])),
            "explanation_url": explanation_url(payment.public_id),
        },
        language=language,
        now=now,
    )
