"""The merchant API's two in-store calls that Alma's official client names
``ask_acceptance`` and ``charge_first_installment`` (api-contract.md section 2 #24 and
section 10 leave their meaning open; this is what Tranche does).

In store, the customer accepts the payment on their own phone: they open the payment's
link, give their details and card, and answer their bank (3-D Secure).

- ``payment_ask_acceptance``: ask the customer to accept, i.e. text them the payment's link,
  once. A payment whose customer was already asked (a link SMS sent by the API or the
  dashboard, or an in-store session's short link) is not texted again.
- ``payment_charge_first_instalment``: the customer said yes; charge the first instalment
  now if the checkout has not done it yet (normally it charges at once after the yes; this
  finishes a checkout that was cut short between the yes and the charge), and answer the
  accepted payment. Before the customer's yes it is a 409 ``payment_not_accepted``.

Both only serve in-store payments (origins ``pos``, ``pos_device``, ``pos_link``,
``pos_sms``); any other is a 409 ``not_a_pos_payment``.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from apps.common.errors import DomainError
from apps.payments.models import PAYABLE_STATES, Charge, Checkout, Payment, PaymentEvent
from apps.payments.services.charges import IN_DOUBT, ChargeInProgress
from apps.payments.services.checkout import checkout_pay, yes_for_current_card
from apps.payments.services.sms_links import payment_send_sms
from apps.payments.services.transitions import payment_lock

POS_ORIGINS = frozenset(
    {
        Payment.Origin.POS,
        Payment.Origin.POS_DEVICE,
        Payment.Origin.POS_LINK,
        Payment.Origin.POS_SMS,
    }
)
# Events saying the customer already has the payment's link on their phone.
ASKED_EVENTS = ("payment_link_sms", "pos_session")


class NotAPosPayment(DomainError):
    code = "not_a_pos_payment"
    http_status = 409
    default_message = _(
        "This payment was not created for an in-store sale (its origin is not pos, "
        "pos_device, pos_link or pos_sms): the customer accepts it on the checkout page."
    )


class PaymentNotAccepted(DomainError):
    code = "payment_not_accepted"
    http_status = 409
    default_message = _("The customer has not accepted this payment on their phone yet.")


def _pos_check(payment: Payment) -> None:
    if payment.origin not in POS_ORIGINS:
        raise NotAPosPayment()


def payment_ask_acceptance(*, payment: Payment, now: datetime) -> Payment:
    """Text the customer the payment's link so they accept it on their phone, unless they
    were asked already or the payment can no longer be paid (then nothing is sent: asking
    again is harmless). Errors as ``payment_send_sms``: SMS links not enabled (403), no
    valid customer phone (400). Returns the payment (reread)."""
    _pos_check(payment)
    with transaction.atomic():
        # Under the payment's lock, so two concurrent asks send one SMS; the SMS itself
        # goes through the outbox, after commit.
        locked = payment_lock(payment_id=payment.pk)
        payable = (
            locked.state in PAYABLE_STATES and locked.expired_at is None and locked.expires_at > now
        )
        asked = PaymentEvent.objects.filter(payment=locked, kind__in=ASKED_EVENTS).exists()
        if payable and not asked:
            payment_send_sms(payment=locked, now=now)
    return Payment.objects.get(pk=payment.pk)


def payment_charge_first_instalment(*, payment: Payment, now: datetime) -> Payment:
    """The accepted payment: as it is when already accepted (first instalment charged, or a
    pay-later plan accepted); else, when the customer's checkout holds a yes for their
    current card after 3-D Secure, the first instalment is charged now (``checkout_pay``,
    which calls the processor outside any transaction: do not call this inside one).

    ``PaymentNotAccepted`` (409) before the customer's yes; ``ChargeDeclined`` (402) when
    their bank declines; ``ChargeInProgress`` (409) while a charge is in flight."""
    _pos_check(payment)
    current = Payment.objects.get(pk=payment.pk)
    if current.accepted_at is not None:
        return current
    if Charge.objects.filter(payment=current, status__in=IN_DOUBT).exists():
        raise ChargeInProgress()
    checkout = Checkout.objects.filter(payment=current).first()
    if (
        checkout is None
        or checkout.step != Checkout.Step.DECISION
        or checkout.pay_in_full
        or not yes_for_current_card(current, checkout)
    ):
        raise PaymentNotAccepted()
    try:
        return checkout_pay(payment_id=current.pk, now=now)
    except DomainError:
        # The checkout's own charge may have won the race since the reads above: the
        # payment is then accepted, and that is the answer (never a second charge).
        current = Payment.objects.get(pk=payment.pk)
        if current.accepted_at is not None:
            return current
        raise
