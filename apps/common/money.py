"""The one home of money arithmetic: cents <-> Money, basis points, splitting and rounding.

Amounts cross the API as integer cents and live in models as django-money ``Money`` (EUR).
Nothing here uses floats: cents are ints, ``Money`` amounts are ``Decimal``, and every
rounding goes through :func:`round_half_up_div`.
"""

from __future__ import annotations

from decimal import Decimal

from djmoney.money import Money

CURRENCY = "EUR"
CENTS_PER_UNIT = 100
BPS_PER_UNIT = 10_000  # 100 basis points = 1 %


def round_half_up_div(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to the nearest int, halves away from zero."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(abs(numerator), denominator)
    if remainder * 2 >= denominator:
        quotient += 1
    return quotient if numerator >= 0 else -quotient


def to_money(cents: int, currency: str = CURRENCY) -> Money:
    """Integer cents -> Money."""
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise TypeError(f"cents must be an int, not {type(cents).__name__}")
    return Money(Decimal(cents) / CENTS_PER_UNIT, currency)


def to_cents(money: Money) -> int:
    """Money -> integer cents; refuses sub-cent amounts instead of rounding them away."""
    return decimal_to_cents(money.amount)


def decimal_to_cents(amount: Decimal) -> int:
    """A Decimal amount in currency units (as stored in a money column) -> integer cents."""
    cents = amount * CENTS_PER_UNIT
    if cents != cents.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of cents")
    return int(cents)


def bps_of(cents: int, bps: int) -> int:
    """`bps` basis points of an amount in cents, rounded half up to the cent."""
    return round_half_up_div(cents * bps, BPS_PER_UNIT)


def fee_cents(amount_cents: int, *, variable_bps: int, fixed_cents: int) -> int:
    """A fee made of a percentage of the amount plus a fixed part."""
    return bps_of(amount_cents, variable_bps) + fixed_cents


def split_evenly(total_cents: int, parts: int) -> list[int]:
    """Split an amount into `parts` integer shares; the remainder goes on the first share.

    >>> split_evenly(1000, 3)
    [334, 333, 333]
    """
    if parts < 1:
        raise ValueError("parts must be at least 1")
    if total_cents < 0:
        raise ValueError("cannot split a negative amount")
    share, remainder = divmod(total_cents, parts)
    return [share + remainder] + [share] * (parts - 1)


def format_eur(cents: int) -> str:
    """Cents as a plain, locale-neutral string such as '1234.56' (for logs and CSV)."""
    sign = "-" if cents < 0 else ""
    units, rest = divmod(abs(cents), CENTS_PER_UNIT)
    return f"{sign}{units}.{rest:02d}"


def display_eur(cents: int) -> str:
    """Cents in euros as the active language writes them, for people: '1 234,56 €' in
    French, '€1,234.56' in English (a non-breaking space, so an amount never wraps)."""
    from django.utils import formats, translation

    number = formats.number_format(
        Decimal(cents) / CENTS_PER_UNIT, decimal_pos=2, use_l10n=True, force_grouping=True
    )
    if translation.get_language() == "en":
        return f"€{number}"
    return f"{number}\u00a0€"
