"""Phone numbers: normalising what a customer types to E.164, and masking it for display."""

from __future__ import annotations

import phonenumbers

from apps.verification.errors import InvalidPhone

# A code can only reach a phone that receives SMS. Some plans (US, Canada...) do not tell
# mobile and fixed lines apart: those numbers get the benefit of the doubt.
SMS_CAPABLE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)
MASK = "•"
MAX_INPUT_LENGTH = 40


def phone_normalise(raw: str, *, default_region: str = "FR") -> str:
    """The E.164 form (``+33612345678``) of a mobile number typed in any usual way.

    Raises ``InvalidPhone`` for text that is not a number, a number that cannot exist, or a
    number the numbering plan says is not a mobile (a landline cannot receive a code).
    """
    text = (raw or "").strip()
    if not text or len(text) > MAX_INPUT_LENGTH:
        raise InvalidPhone()
    try:
        number = phonenumbers.parse(text, default_region.upper())
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone() from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone()
    if phonenumbers.number_type(number) not in SMS_CAPABLE_TYPES:
        raise InvalidPhone()
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_e164(raw: str, region: str = "FR") -> str | None:
    """A phone number as a shop sends it ("06 12 34 56 78", "+32 ...") in E.164, or None
    when it is not a valid number (any line type: unlike ``phone_normalise``)."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_mask(e164: str) -> str:
    """``+33 6 •• •• •• 78``: enough for the customer to recognise their number, not enough to
    reveal it to whoever looks at the screen."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return _mask_digits(e164, keep_first=3)
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    country_prefix = f"+{number.country_code}"
    if not formatted.startswith(country_prefix):
        return _mask_digits(formatted, keep_first=len(country_prefix))
    national = formatted[len(country_prefix) :]
    return country_prefix + _mask_digits(national, keep_first=1)


def _mask_digits(text: str, *, keep_first: int, keep_last: int = 2) -> str:
    """Replace every digit but the first ``keep_first`` and last ``keep_last`` by a dot,
    keeping spaces and punctuation where they are."""
    digit_positions = [index for index, char in enumerate(text) if char.isdigit()]
    hidden = set(digit_positions[keep_first : max(keep_first, len(digit_positions) - keep_last)])
    return "".join(MASK if index in hidden else char for index, char in enumerate(text))
