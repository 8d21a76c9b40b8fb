"""Plain words for a payment's history (its PaymentEvent rows) on the dashboard."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.payments.models import PaymentEvent, PaymentState

EVENT_LABELS = {
    "created": gettext_lazy("Payment created"),
    "updated": gettext_lazy("Payment updated"),
    "scored": gettext_lazy("Credit decision"),
    "reviewed": gettext_lazy("Decision reviewed by Tranche"),
    "decision_contested": gettext_lazy("Decision contested by the customer"),
    "phone_verified": gettext_lazy("Phone number verified"),
    "identity_check_started": gettext_lazy("Identity check started"),
    "identity_checked": gettext_lazy("Identity checked"),
    "bank_check_started": gettext_lazy("Bank check started"),
    "bank_checked": gettext_lazy("Bank data checked"),
    "card_added": gettext_lazy("Card added"),
    "card_refused": gettext_lazy("Card refused"),
    "three_ds_failed": gettext_lazy("3-D Secure failed"),
    "charge_started": gettext_lazy("Card charge started"),
    "charge_failed": gettext_lazy("Card charge failed"),
    "charge_refunded": gettext_lazy("Card charge refunded"),
    "charge_orphaned": gettext_lazy("Card charge left unconfirmed"),
    "changed_to_pay_in_full": gettext_lazy("Customer chose to pay in full"),
    "confirmation_email_skipped": gettext_lazy("No confirmation email (no customer email)"),
    "notification_resent": gettext_lazy("Notification sent again"),
    "notification_skipped": gettext_lazy("Notification skipped"),
    "notification_dropped": gettext_lazy("Notification dropped (out of date)"),
    "orders_added": gettext_lazy("Orders added"),
    "orders_replaced": gettext_lazy("Orders replaced"),
    "order_status": gettext_lazy("Order status changed"),
    "order_shipped": gettext_lazy("Order shipped"),
    "payment_link_sms": gettext_lazy("Payment link sent by SMS"),
    "payment_link_email": gettext_lazy("Payment link sent by email"),
    "potential_fraud": gettext_lazy("Reported as potential fraud"),
    "trigger_applied": gettext_lazy("Deferred payment triggered"),
    "refund_issued": gettext_lazy("Refund made"),
    "refund_to_card": gettext_lazy("Refund sent back to the card"),
    "refund_failed": gettext_lazy("Card refund refused by the processor"),
    "nothing_left_to_pay": gettext_lazy("Nothing left to pay after a refund"),
    "back_on_schedule": gettext_lazy("Back on schedule"),
}


def event_label(event: PaymentEvent) -> str:
    """What happened, in the active language: a known kind's words, else a state change,
    else the kind itself made readable."""
    label = EVENT_LABELS.get(event.kind)
    if event.to_state and event.from_state and event.from_state != event.to_state:
        change = _("%(from)s → %(to)s") % {
            "from": _state(event.from_state),
            "to": _state(event.to_state),
        }
        return f"{label} ({change})" if label else change
    return str(label) if label else event.kind.replace("_", " ").capitalize()


def _state(value: str) -> str:
    try:
        return str(PaymentState(value).label)
    except ValueError:
        return value
