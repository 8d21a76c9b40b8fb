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
    """A Money (or integer cents) in euros for the current language (money.display_eur)."""
    from djmoney.money import Money

    from apps.common.money import display_eur, to_cents

    return display_eur(to_cents(value) if isinstance(value, Money) else int(value))
