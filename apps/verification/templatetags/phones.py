from django import template

from apps.verification.phones import phone_mask as _phone_mask

register = template.Library()


@register.filter
def phone_mask(e164: str) -> str:
    """``+33 6 •• •• •• 78``: a customer's number, recognisable but not readable."""
    return _phone_mask(e164)
