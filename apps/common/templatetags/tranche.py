from decimal import Decimal

from django import template
from django.template.defaultfilters import floatformat

register = template.Library()


@register.filter
def percent_from_bps(bps: int) -> str:
    """Basis points as a localised percentage: 350 -> '3,50 %' in French."""
    return f"{floatformat(Decimal(bps) / 100, 2)} %"


@register.filter
def eur(value) -> str:
    """A Money (or integer cents) in euros for the current language: '1 234,56 €' in French,
    '€1,234.56' in English."""
    from django.utils import translation
    from djmoney.money import Money

    amount = value.amount if isinstance(value, Money) else Decimal(value) / 100
    number = floatformat(amount, "2g")
    if translation.get_language() == "en":
        return f"€{number}"
    return f"{number}\u00a0€"
