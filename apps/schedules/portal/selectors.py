"""What a signed-in customer may read: only their own plans, in their own mode.

Every portal page reads payments through these, so another customer's plan, receipt or
action URL is a 404 whatever id it names.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from apps.payments.models import Customer, Instalment, Payment, PaymentState

S = PaymentState
# Plans the customer can act on (pay early, postpone, change card).
OPEN_STATES = (S.IN_PROGRESS, S.LATE_DUNNING, S.LATE_CONTACT_CUSTOMER)


def customer_plans(customer: Customer) -> QuerySet[Payment]:
    """The customer's plans (accepted payments), at every merchant, newest first."""
    return (
        Payment.objects.filter(
            customer=customer, livemode=customer.livemode, accepted_at__isnull=False
        )
        .select_related("merchant", "card")
        .order_by("-accepted_at", "-id")
    )


def customer_plan(customer: Customer, payment_id: str) -> Payment:
    """One of the customer's plans by its public id; Http404 for anyone else's."""
    payment = customer_plans(customer).filter(public_id=payment_id).first()
    if payment is None:
        raise Http404
    return payment


def plan_instalment(payment: Payment, number: int) -> Instalment:
    instalment = payment.instalments.filter(number=number).first()
    if instalment is None:
        raise Http404
    return instalment
