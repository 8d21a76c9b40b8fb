"""Remote sales: staff create a payment from the dashboard for a customer who is not at
the counter, and send them the link to pay by SMS or email."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from apps.merchants.models import FeePlan, Merchant
from apps.payments.emails import payment_link_email_queue
from apps.payments.models import Payment
from apps.payments.services.payments import payment_create
from apps.payments.services.sms_links import payment_send_sms


@dataclass(frozen=True)
class RemoteSale:
    amount_cents: int
    plan_key: str  # a fee plan's key, e.g. "pos_3_0_0"
    first_name: str
    last_name: str
    send_by: str  # "sms" or "email"
    phone: str = ""
    email: str = ""
    reference: str = ""


SEND_ORIGINS = {"sms": Payment.Origin.POS_SMS, "email": Payment.Origin.POS_LINK}


def remote_sale_plans(*, merchant: Merchant) -> list[FeePlan]:
    """The plans staff may offer at a distance: the merchant's allowed in-store plans."""
    return [
        plan
        for plan in merchant.fee_plans.filter(kind=FeePlan.Kind.POS, allowed=True)
        if plan.installments_count > 1 or plan.is_deferred
    ]


def remote_sale_create(
    *, merchant: Merchant, livemode: bool, sale: RemoteSale, staff_email: str, now: datetime
) -> Payment:
    """Create the payment (origin ``pos_sms`` or ``pos_link``) and send its link, in one
    transaction: a link that cannot be sent (no SMS for this merchant, a landline) leaves no
    payment behind. Refusals are the API's: ``PaymentNotEligible``, ``PaymentRequestInvalid``,
    ``SmsNotEnabled``."""
    _kind, count, days, months = sale.plan_key.split("_")
    customer = {"first_name": sale.first_name, "last_name": sale.last_name}
    if sale.phone:
        customer["phone"] = sale.phone
    if sale.email:
        customer["email"] = sale.email
    data = {
        "payment": {
            "purchase_amount": sale.amount_cents,
            "installments_count": int(count),
            "deferred_days": int(days),
            "deferred_months": int(months),
            "origin": SEND_ORIGINS[sale.send_by],
        },
        "customer": customer,
    }
    if sale.reference:
        data["order"] = {"merchant_reference": sale.reference}
    with transaction.atomic():
        payment = payment_create(
            merchant=merchant, livemode=livemode, data=data, now=now, staff_member=staff_email
        )
        if sale.send_by == "sms":
            payment_send_sms(payment=payment, now=now)
        else:
            payment_link_email_queue(payment=payment, now=now)
    return payment
