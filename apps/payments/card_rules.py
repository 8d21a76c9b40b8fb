"""Which cards and customers may pay in instalments (product.md "Who may pay"): pure, no ORM,
no clock. The facts come from the processor (its BIN data and the card's expiry); the dates
and the allowed countries are parameters.

==================================  ==========================================================
refusal code                        rule
==================================  ==========================================================
``invalid_number``                  the number is not 12 to 19 digits passing the Luhn check
``brand_not_accepted``              brands other than CB, Visa, Mastercard (and Maestro, below)
``prepaid_card``                    funding is prepaid
``systematic_authorisation_card``   Visa Electron or Maestro (product, or the Maestro brand)
``virtual_card``                    a virtual (one-time) card
``issuer_country_not_allowed``      issued outside the allowed countries (or country unknown)
``expires_too_soon``                not valid through the last instalment's due date
``too_young``                       under the minimum age on the day
==================================  ==========================================================

A card is valid through the last day of its expiry month, so a card expiring in the month of
the last due date is accepted. Someone born on 29 February has their birthday on 1 March in
years without one (the reading of French civil law: the age is reached once the day has
fully passed, and 28 February has not reached 29 February).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from apps.common.dates import days_in_month

ACCEPTED_BRANDS = frozenset({"cb", "visa", "mastercard"})
SYSTEMATIC_AUTHORISATION_PRODUCTS = frozenset({"electron", "maestro"})
MIN_NUMBER_LENGTH = 12
MAX_NUMBER_LENGTH = 19
# Characters people type between the groups of digits.
_SEPARATORS = str.maketrans("", "", " -\u00a0")


@dataclass(frozen=True)
class CardFacts:
    """What the rules need to know about a card (from the processor's ``CardDetails``)."""

    brand: str
    funding: str
    product: str
    issuer_country: str
    exp_month: int
    exp_year: int

    def __post_init__(self) -> None:
        if not 1 <= self.exp_month <= 12:
            raise ValueError(f"exp_month must be 1 to 12, not {self.exp_month}")


@dataclass(frozen=True)
class Refusal:
    """Why a card or a customer cannot pay in instalments: a stable code and a message for
    the customer (lazy: rendered in the language of the page that shows it)."""

    code: str
    message: str | Promise


INVALID_NUMBER = Refusal(
    "invalid_number", _("This card number is not valid. Please check it and try again.")
)
BRAND_NOT_ACCEPTED = Refusal(
    "brand_not_accepted",
    _(
        "Only CB, Visa and Mastercard cards can be used to pay in instalments. "
        "Please use another card."
    ),
)
PREPAID_CARD = Refusal(
    "prepaid_card",
    _("Prepaid cards cannot be used to pay in instalments. Please use another card."),
)
SYSTEMATIC_AUTHORISATION_CARD = Refusal(
    "systematic_authorisation_card",
    _(
        "Visa Electron and Maestro cards cannot be used to pay in instalments. "
        "Please use another card."
    ),
)
VIRTUAL_CARD = Refusal(
    "virtual_card",
    _("Virtual cards cannot be used to pay in instalments. Please use another card."),
)
ISSUER_COUNTRY_NOT_ALLOWED = Refusal(
    "issuer_country_not_allowed",
    _(
        "Cards issued in this country cannot be used to pay in instalments. "
        "Please use a card issued in a country where we offer payment in instalments."
    ),
)
EXPIRES_TOO_SOON = Refusal(
    "expires_too_soon",
    _(
        "This card expires before the last instalment is due. "
        "Please use a card that is valid for longer."
    ),
)


def normalise_number(number: str) -> str:
    """A card number as typed (``4970 1000 0000 0006``) without its separators."""
    return number.translate(_SEPARATORS)


def luhn_valid(number: str) -> bool:
    """Whether ``number`` (ASCII digits only) passes the Luhn mod-10 check."""
    if not number or not (number.isascii() and number.isdigit()):
        return False
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def number_refusal(number: str) -> Refusal | None:
    """``invalid_number`` unless the number (separators allowed) is 12 to 19 ASCII digits
    passing the Luhn check."""
    digits = normalise_number(number)
    if not MIN_NUMBER_LENGTH <= len(digits) <= MAX_NUMBER_LENGTH or not luhn_valid(digits):
        return INVALID_NUMBER
    return None


def brand_from_number(number: str) -> str:
    """The card scheme the number's leading digits belong to (what a form shows as typed).

    CB cards are co-badged Visa or Mastercard: only the BIN table can tell they are CB.
    """
    digits = normalise_number(number)
    if not digits or not (digits.isascii() and digits.isdigit()):
        return "other"
    two = int(digits[:2]) if len(digits) >= 2 else -1
    four = int(digits[:4]) if len(digits) >= 4 else -1
    if two in (34, 37):
        return "amex"
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "mastercard"
    if two == 50 or 56 <= two <= 69:
        return "maestro"
    if digits[0] == "4":
        return "visa"
    return "other"


def card_valid_through(*, exp_month: int, exp_year: int) -> date:
    """The last day a card can be used: the last day of its expiry month."""
    return date(exp_year, exp_month, days_in_month(exp_year, exp_month))


def card_refusals(
    card: CardFacts, *, last_due_date: date, allowed_countries: frozenset[str]
) -> list[Refusal]:
    """Every rule the card fails, in the order of the table above (empty: accepted)."""
    refusals = []
    brand, product = card.brand.lower(), card.product.lower()
    # Maestro is refused for being a systematic-authorisation card, said once, below.
    if brand not in ACCEPTED_BRANDS and brand != "maestro":
        refusals.append(BRAND_NOT_ACCEPTED)
    if card.funding.lower() == "prepaid":
        refusals.append(PREPAID_CARD)
    if product in SYSTEMATIC_AUTHORISATION_PRODUCTS or brand == "maestro":
        refusals.append(SYSTEMATIC_AUTHORISATION_CARD)
    if product == "virtual":
        refusals.append(VIRTUAL_CARD)
    if card.issuer_country.upper() not in allowed_countries:
        refusals.append(ISSUER_COUNTRY_NOT_ALLOWED)
    if card_valid_through(exp_month=card.exp_month, exp_year=card.exp_year) < last_due_date:
        refusals.append(EXPIRES_TOO_SOON)
    return refusals


def age_on(birth_date: date, *, today: date) -> int:
    """Whole years lived on ``today``; born on 29 February, a year is complete on 1 March
    in years without a 29 February (28 February sorts before the birthday)."""
    had_birthday = (today.month, today.day) >= (birth_date.month, birth_date.day)
    return today.year - birth_date.year - (0 if had_birthday else 1)


def age_refusal(birth_date: date, *, today: date, minimum_age: int) -> Refusal | None:
    """``too_young`` when the customer is under ``minimum_age`` on ``today``."""
    if age_on(birth_date, today=today) >= minimum_age:
        return None
    return Refusal(
        "too_young",
        format_lazy(
            _("You must be {age} or older to pay in instalments."),
            age=minimum_age,
        ),
    )
