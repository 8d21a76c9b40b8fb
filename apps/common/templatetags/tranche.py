from decimal import Decimal

from django import template
from django.template.defaultfilters import floatformat

register = template.Library()


@register.filter
def percent_from_bps(bps: int) -> str:
    """Basis points as a localised percentage: 350 -> '3,50 %' in French."""
    return f"{floatformat(Decimal(bps) / 100, 2)} %"
