"""Creating a Tranche account with a mobile number, and completing its profile.

Signing up is signing in's twin (``signin.py``): the same ``SignInCode`` rows (``purpose``
SIGN_UP), keyed hashes, limits per number and per address, expiry, attempts and resend
delay. Unlike a sign-in code, a sign-up code is sent to any valid mobile number of the
European Union: whoever proves they hold the number gets an account. A number that exactly
one customer of that mode already verified signs that customer in (no duplicate account);
otherwise a new customer is created with the verified number and nothing else.

The profile (name, birth date, email, postal address) is what the card's eligibility
reads (``apps.issuing.services.cards.profile_complete``). A new email is saved only once the
customer types the code sent to it (``email_check_*``): payments find their customer by
email, so an email nobody proved would hand its owner's future plans to whoever typed it.
The page answers the same whether or not another customer has the email (its owner gets a
notice instead of a code): nobody learns from it who is a customer.
"""

from __future__ import annotations

import gettext as gettext_module
from dataclasses import dataclass
from datetime import date, datetime

import phonenumbers
import pycountry
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from apps.common.dates import business_date
from apps.common.errors import DomainError
from apps.payments.models import Customer
from apps.schedules.models import SignInCode
from apps.schedules.portal.signin import (
    SignInCodeExpired,
    SignInNotFound,
    advisory_lock,
    code_resend,
    code_start,
    code_verify,
    customer_find,
    email_taken,
    sign_in_get,
)

MAX_PHONE_INPUT_LENGTH = 40
# The member states of the European Union, and the French overseas departments (part of
# the Union, with their own numbering plans).
EU_COUNTRIES = frozenset(
    {
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
        "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
    }
)  # fmt: skip
FRENCH_OVERSEAS = frozenset({"GP", "MQ", "GF", "RE", "YT"})
PHONE_REGIONS = EU_COUNTRIES | FRENCH_OVERSEAS
DEFAULT_COUNTRY = "FR"
OLDEST_BIRTH_DATE = date(1900, 1, 1)


# --- errors ---------------------------------------------------------------------------


class InvalidSignUpPhone(DomainError):
    """A number we cannot send a sign-up code to; ``reason`` says why (``invalid``,
    ``foreign``, ``not_mobile``)."""

    code = "sign_up_phone_invalid"
    http_status = 400
    default_message = _(
        "This phone number is not valid. Type a mobile number, e.g. 06 12 34 56 78."
    )

    def __init__(self, message=None, *, reason: str = "invalid"):
        super().__init__(message, reason=reason)
        self.reason = reason


class ProfileInvalid(DomainError):
    """The profile form's values, refused; ``errors`` maps each field to its message."""

    code = "profile_invalid"
    http_status = 400
    default_message = _("Please correct the fields shown.")

    def __init__(self, errors: dict[str, str]):
        super().__init__(None, errors=errors)
        self.errors = errors


# --- phone ----------------------------------------------------------------------------


def sign_up_phone_normalise(raw: str) -> str:
    """The E.164 form of a mobile number of the European Union (French by default, as
    typed in France: ``06 12 34 56 78``). Raises ``InvalidSignUpPhone`` saying what is wrong:
    malformed, from outside the Union, or a landline (which cannot receive a code)."""
    text = (raw or "").strip()
    if not text or len(text) > MAX_PHONE_INPUT_LENGTH:
        raise InvalidSignUpPhone()
    try:
        number = phonenumbers.parse(text, DEFAULT_COUNTRY)
    except phonenumbers.NumberParseException:
        raise InvalidSignUpPhone() from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidSignUpPhone()
    if phonenumbers.region_code_for_number(number) not in PHONE_REGIONS:
        raise InvalidSignUpPhone(
            _(
                "Tranche accounts are for mobile numbers of the European Union; this number is "
                "from another country."
            ),
            reason="foreign",
        )
    if phonenumbers.number_type(number) != phonenumbers.PhoneNumberType.MOBILE:
        raise InvalidSignUpPhone(
            _("This number is not a mobile: it cannot receive a code by SMS."),
            reason="not_mobile",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --- sign-up by code ------------------------------------------------------------------


def sign_up_start(
    *,
    phone: str,
    livemode: bool,
    language: str,
    now: datetime,
    ip_address: str | None = None,
) -> SignInCode:
    """Send a sign-up code by SMS to ``phone`` (any EU mobile number) in ``livemode``.
    Raises ``InvalidSignUpPhone``, ``signin.TooManyCodes`` or
    ``signin.TooManyCodesFromAddress`` (the limits count sign-in and sign-up codes alike)."""
    destination = sign_up_phone_normalise(phone)
    return code_start(
        channel=SignInCode.Channel.SMS,
        destination=destination,
        livemode=livemode,
        language=language,
        now=now,
        ip_address=ip_address,
        purpose=SignInCode.Purpose.SIGN_UP,
    )


def sign_up_get(*, sign_in_id: str) -> SignInCode:
    """The sign-up this browser started. Raises ``signin.SignInNotFound``."""
    return sign_in_get(sign_in_id=sign_in_id, purpose=SignInCode.Purpose.SIGN_UP)


def sign_up_resend(
    *, sign_in_id: str, language: str, now: datetime, ip_address: str | None = None
) -> SignInCode:
    """A new sign-up code to the same number. Raises ``signin.SignInResendTooSoon`` and the
    limits of ``sign_up_start``."""
    previous = sign_up_get(sign_in_id=sign_in_id)
    return code_resend(previous=previous, language=language, now=now, ip_address=ip_address)


def sign_up_verify(
    *, sign_in_id: str, code: str, now: datetime, ip_address: str | None = None
) -> Customer:
    """The customer a right sign-up code signs in: the one customer of that mode who already
    verified the number, or a new customer with the number verified now. Raises what
    ``signin.sign_in_verify`` raises for a wrong, expired, used or locked code.

    Safe to run twice: the customer is recorded on the code row, so a double submit (or a
    retry) signs the same customer in; two sign-ups of one number at the same moment take
    turns and the second finds the customer the first created."""
    code_verify(
        sign_in_id=sign_in_id,
        code=code,
        now=now,
        ip_address=ip_address,
        purpose=SignInCode.Purpose.SIGN_UP,
    )
    with transaction.atomic():
        row = (
            SignInCode.objects.select_for_update(of=("self",))
            .select_related("customer")
            .filter(public_id=sign_in_id, purpose=SignInCode.Purpose.SIGN_UP)
            .first()
        )
        if row is None:  # pragma: no cover - verified just above; rows are never deleted
            raise SignInNotFound()
        if row.customer is not None and row.customer.erased_at is None:
            return row.customer
        advisory_lock(f"signup:phone:{int(row.livemode)}:{row.destination}")
        customer = customer_find(
            channel=SignInCode.Channel.SMS, destination=row.destination, livemode=row.livemode
        )
        if customer is None:
            customer = Customer.objects.create(
                livemode=row.livemode,
                phone=row.destination,
                phone_verified_at=now,
                email="",
                created_at=now,
                updated_at=now,
            )
        row.customer = customer
        row.save(update_fields=["customer"])
    return customer


# --- profile --------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """What the profile page asks for (strings stripped by the form)."""

    first_name: str
    last_name: str
    birth_date: date
    email: str
    line1: str
    line2: str
    postal_code: str
    city: str
    country: str


def profile_update(*, customer: Customer, profile: Profile, now: datetime) -> Customer:
    """Save the customer's name, birth date and postal address; the email only when it is
    the one the customer already has (a new one waits for its code: ``email_to_confirm``
    and ``email_check_start``).

    Raises ``ProfileInvalid`` (a birth date in the future, a country Tranche does not
    serve)."""
    errors: dict[str, str] = {}
    if profile.birth_date > business_date(now):
        errors["birth_date"] = str(_("The birth date cannot be in the future."))
    elif profile.birth_date < OLDEST_BIRTH_DATE:
        errors["birth_date"] = str(_("Check the year of your birth date."))
    if profile.country not in EU_COUNTRIES:
        errors["country"] = str(_("Choose a country of the European Union."))
    if errors:
        raise ProfileInvalid(errors)
    address = {
        "line1": profile.line1,
        "line2": profile.line2,
        "postal_code": profile.postal_code,
        "city": profile.city,
        "country": profile.country,
    }
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        locked.first_name = profile.first_name
        locked.last_name = profile.last_name
        locked.birth_date = profile.birth_date
        locked.address = address
        locked.updated_at = now
        locked.save(
            update_fields=["first_name", "last_name", "birth_date", "address", "updated_at"]
        )
    return locked


def email_to_confirm(*, customer: Customer, email: str) -> str:
    """The email (lower-cased) the customer must confirm by code, or "" when ``email`` is
    the one they have already."""
    typed = email.strip().lower()
    return "" if typed == customer.email.lower() else typed


# --- confirming a new email -----------------------------------------------------------


def email_check_start(
    *,
    customer: Customer,
    email: str,
    language: str,
    now: datetime,
    ip_address: str | None = None,
) -> SignInCode:
    """Send a code to ``email`` (lower-cased) to confirm it is the customer's, under the
    limits of the sign-in codes. When another customer of the mode has the email, no code is
    sent (the row holds none that matches) and its owner gets a notice at most once an
    hour: the caller answers the same either way. Raises ``signin.TooManyCodes`` or
    ``signin.TooManyCodesFromAddress``."""
    return code_start(
        channel=SignInCode.Channel.EMAIL,
        destination=email.strip().lower(),
        livemode=customer.livemode,
        language=language,
        now=now,
        ip_address=ip_address,
        purpose=SignInCode.Purpose.EMAIL,
        requester=customer,
    )


def email_check_get(*, customer: Customer, check_id: str) -> SignInCode:
    """The email check ``customer`` started. Raises ``signin.SignInNotFound`` (also for
    another customer's)."""
    row = sign_in_get(sign_in_id=check_id, purpose=SignInCode.Purpose.EMAIL)
    if row.customer_id != customer.pk:
        raise SignInNotFound()
    return row


def email_check_resend(
    *,
    customer: Customer,
    check_id: str,
    language: str,
    now: datetime,
    ip_address: str | None = None,
) -> SignInCode:
    """A new code to the same email. Raises ``signin.SignInResendTooSoon`` and the limits
    of ``email_check_start``."""
    previous = email_check_get(customer=customer, check_id=check_id)
    return code_resend(previous=previous, language=language, now=now, ip_address=ip_address)


def email_check_verify(
    *,
    customer: Customer,
    check_id: str,
    code: str,
    now: datetime,
    ip_address: str | None = None,
) -> Customer:
    """Save the email a right code confirms on ``customer``. Raises what
    ``signin.code_verify`` raises for a wrong, expired, used or locked code, and
    ``signin.SignInCodeExpired`` (nothing saved) when another customer took the email since
    the code was sent. Safe to run twice (a double submit saves the same email)."""
    email_check_get(customer=customer, check_id=check_id)
    row = code_verify(
        sign_in_id=check_id,
        code=code,
        now=now,
        ip_address=ip_address,
        purpose=SignInCode.Purpose.EMAIL,
    )
    email = row.destination
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        if locked.email == email:
            return locked
        # Serialise the email's owners: the unique constraint holds anyway, this refuses
        # cleanly instead of with an integrity error.
        advisory_lock(f"customer:email:{int(locked.livemode)}:{email}")
        if email_taken(email=email, livemode=locked.livemode, requester=locked):
            raise SignInCodeExpired()
        locked.email = email
        locked.updated_at = now
        locked.save(update_fields=["email", "updated_at"])
    return locked


def country_choices(language: str | None = None) -> list[tuple[str, str]]:
    """The countries of the European Union as (code, name in ``language``), France first,
    then by name."""
    language = language or translation.get_language() or "en"
    names = gettext_module.translation(
        "iso3166-1",
        pycountry.LOCALES_DIR,
        languages=[language.split("-")[0]],
        fallback=True,
    )
    choices = [
        (code, names.gettext(pycountry.countries.get(alpha_2=code).name)) for code in EU_COUNTRIES
    ]
    choices.sort(key=lambda choice: (choice[0] != DEFAULT_COUNTRY, choice[1]))
    return choices
