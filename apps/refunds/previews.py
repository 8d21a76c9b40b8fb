"""A payment as a refund would leave it, in memory only (the API's ``dry_run``)."""

from __future__ import annotations

import copy
from datetime import datetime

from apps.payments.models import Payment
from apps.refunds.models import Refund
from apps.refunds.services import Preview, RefundRequest, payment_state_after, refund_build


def preview_payment(
    payment: Payment, preview: Preview, *, request: RefundRequest, now: datetime
) -> Payment:
    """A copy of ``payment`` (read with its details) as the refund would leave it: its
    instalments, totals and state, and its refunds ending with the one it would make (no
    id)."""
    after = copy.copy(payment)
    refund = refund_build(
        payment=payment,
        allocation=preview.allocation,
        request=request,
        origin=Refund.Origin.API,
        now=now,
    )
    refund.public_id = ""
    after.refund_rows = [*payment.refunds.order_by("created_at", "pk"), refund]
    after.instalment_rows = preview.instalments
    after.amount_refunded = payment.amount_refunded + refund.amount
    after.customer_fees_refunded = (
        payment.customer_fees_refunded + refund.customer_fee_refunded + refund.interest_refunded
    )
    change = payment_state_after(payment, preview.instalments)
    if change is not None:
        after.state = change[0]
    return after
