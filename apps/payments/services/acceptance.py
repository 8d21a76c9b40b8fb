"""Accepting a payment: what happens, in one transaction, once its checkout charge went through.

- a split plan's first instalment is paid: the payment reads ``in_progress`` (``paid`` when it
  had only that one instalment);
- the instalments left are due to be debited on their dates (``next_debit_at``);
- a pay-later plan charges nothing at checkout (the card was checked by 3-D Secure): it reads
  ``in_progress`` (contract section 11: plugins accept only ``in_progress`` or ``paid``);
- a customer refused credit who pays the whole purchase at once (p1x) pays no customer fee and
  no interest: the instalments' fees are waived (the old values are kept in the event) and every
  instalment is paid; the payment reads ``paid``. The merchant fee stays as priced.

The ledger posting (merchant credited the basket minus its fee, the receivable for the rest),
the merchant's notification and the emails are recorded in the same transaction, so either all
of it happened or none of it did; the notification and emails go out after commit.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings

from apps.common.dates import debit_time
from apps.common.money import to_cents, to_money
from apps.ledger import recipes
from apps.ledger.services import posting_create
from apps.payments.emails import payment_confirmation_emails_queue
from apps.payments.models import Charge, Checkout, Instalment, Payment, PaymentState
from apps.payments.notifications import notification_schedule
from apps.payments.services.transitions import payment_event_record, payment_transition


def payment_accept(*, payment: Payment, charge: Charge | None, now: datetime) -> Payment:
    """Accept a payment the caller has locked, after ``charge`` succeeded (None: pay later).

    Call inside the caller's transaction."""
    instalments = list(payment.instalments.order_by("number"))
    first = instalments[0]
    if charge is not None and charge.kind == Charge.Kind.PAY_IN_FULL:
        _waive_customer_costs(payment, instalments, now=now)
        paid = instalments
    elif charge is not None:
        paid = [first]
    else:
        paid = []
    for instalment in paid:
        instalment.state = Instalment.State.PAID
        instalment.paid_at = now
        instalment.save(update_fields=["state", "paid_at"])
    for instalment in instalments:
        if instalment.state == Instalment.State.PENDING:
            # The debit run charges it on its date (apps.schedules).
            instalment.next_debit_at = debit_time(instalment.due_date, hour=settings.DEBIT_HOUR)
            instalment.save(update_fields=["next_debit_at"])
    fully_paid = len(paid) == len(instalments)
    payment.accepted_at = now
    payment.paid_in_full_fallback = charge is not None and charge.kind == Charge.Kind.PAY_IN_FULL
    if charge is not None:
        payment.card_id = charge.card_id
    else:
        payment.card_id = payment.checkout.card_id
    payment_transition(
        payment,
        PaymentState.PAID if fully_paid else PaymentState.IN_PROGRESS,
        now=now,
        kind="accepted",
        detail={"charge": charge.idempotency_key if charge else None},
        extra_fields=("accepted_at", "paid_in_full_fallback", "card"),
    )
    posting_create(_captured_posting(payment, paid, charge, now=now))
    Checkout.objects.filter(payment=payment).update(step=Checkout.Step.DONE, updated_at=now)
    notification_schedule(payment=payment, event="accepted", now=now)
    payment_confirmation_emails_queue(payment=payment, now=now)
    return payment


def _waive_customer_costs(payment: Payment, instalments: list[Instalment], *, now) -> None:
    waived = {
        "customer_fee": to_cents(payment.customer_fee),
        "customer_interest": to_cents(payment.customer_interest),
    }
    zero = to_money(0)
    for instalment in instalments:
        instalment.customer_fee = zero
        instalment.customer_interest = zero
        instalment.save(update_fields=["customer_fee", "customer_interest"])
    payment.customer_fee = zero
    payment.customer_interest = zero
    payment.save(update_fields=["customer_fee", "customer_interest"])
    payment_event_record(payment, kind="changed_to_pay_in_full", now=now, detail=waived)


def _captured_posting(payment: Payment, paid: list[Instalment], charge: Charge | None, *, now):
    return recipes.payment_captured(
        merchant_id=payment.merchant_id,
        livemode=payment.livemode,
        payment_id=payment.public_id,
        purchase_cents=to_cents(payment.purchase_amount),
        first_principal_cents=sum(to_cents(i.purchase_amount) for i in paid),
        customer_fee_cents=sum(to_cents(i.customer_fee) for i in paid),
        interest_cents=sum(to_cents(i.customer_interest) for i in paid),
        merchant_fee_cents=to_cents(payment.merchant_fee),
        processor_reference=charge.processor_reference if charge else "",
        effective_at=now,
    )
