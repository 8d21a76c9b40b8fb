"""Template helpers for the refunds shown on other apps' pages (the dashboard's payment)."""

from django import template

from apps.refunds.services import REFUNDABLE_STATES

register = template.Library()


@register.filter
def refundable(payment) -> bool:
    """Whether money was taken on ``payment``, so that a refund may be asked for."""
    return payment.state in REFUNDABLE_STATES
