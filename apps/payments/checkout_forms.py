"""Forms of the hosted checkout. Card fields are never rendered back with their values."""

from __future__ import annotations

import re
from datetime import date

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.payments import card_rules
from apps.payments.api.serializers import COUNTRY_CODES
from apps.verification.errors import InvalidPhone
from apps.verification.phones import phone_normalise

EXPIRY = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*$")


class PhoneField(forms.CharField):
    def clean(self, value):
        value = super().clean(value)
        try:
            return phone_normalise(value)
        except InvalidPhone as error:
            raise forms.ValidationError(error.message, code="invalid_phone") from error


class DetailsForm(forms.Form):
    """Who pays, their acceptance of the terms and their card, on one page."""

    first_name = forms.CharField(label=_("First name"), max_length=100)
    last_name = forms.CharField(label=_("Last name"), max_length=100)
    email = forms.EmailField(label=_("Email"), max_length=254)
    phone = PhoneField(
        label=_("Mobile phone"), max_length=30, help_text=_("We will send you a code by SMS.")
    )
    birth_date = forms.DateField(
        label=_("Date of birth"), widget=forms.DateInput(attrs={"type": "date"})
    )
    line1 = forms.CharField(label=_("Address"), max_length=200)
    postal_code = forms.CharField(label=_("Postal code"), max_length=20)
    city = forms.CharField(label=_("City"), max_length=100)
    country = forms.CharField(label=_("Country"), max_length=2, initial="FR")
    card_number = forms.CharField(label=_("Card number"), max_length=30, strip=True)
    card_expiry = forms.CharField(label=_("Expiry (MM/YY)"), max_length=7)
    card_cvc = forms.CharField(label=_("Security code (CVC)"), max_length=4)
    accept_terms = forms.BooleanField(
        label=_("I have read and accept the terms of the payment plan."),
        error_messages={"required": _("Please accept the terms to continue.")},
    )

    def clean_birth_date(self) -> date:
        born = self.cleaned_data["birth_date"]
        if born.year < 1900:
            raise forms.ValidationError(_("Please check your date of birth."), code="invalid")
        return born

    def clean_country(self) -> str:
        country = self.cleaned_data["country"].strip().upper()
        if country not in COUNTRY_CODES:
            raise forms.ValidationError(_("Unknown country code."), code="invalid")
        return country

    def clean_card_number(self) -> str:
        number = card_rules.normalise_number(self.cleaned_data["card_number"])
        refusal = card_rules.number_refusal(number)
        if refusal is not None:
            raise forms.ValidationError(refusal.message, code=refusal.code)
        return number

    def clean_card_expiry(self) -> tuple[int, int]:
        match = EXPIRY.match(self.cleaned_data["card_expiry"])
        if not match or not 1 <= int(match.group(1)) <= 12:
            raise forms.ValidationError(_("Enter the expiry date as MM/YY."), code="invalid")
        year = int(match.group(2))
        return int(match.group(1)), year + 2000 if year < 100 else year

    def clean_card_cvc(self) -> str:
        cvc = self.cleaned_data["card_cvc"].strip()
        if not re.fullmatch(r"\d{3,4}", cvc):
            raise forms.ValidationError(
                _("The security code is the 3 digits on the back of the card."), code="invalid"
            )
        return cvc


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code received by SMS"),
        min_length=6,
        max_length=6,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "pattern": "[0-9]{6}"}
        ),
    )

    def clean_code(self) -> str:
        code = self.cleaned_data["code"].strip()
        if not code.isdigit():
            raise forms.ValidationError(_("The code has 6 digits."), code="invalid")
        return code


class PhoneChangeForm(forms.Form):
    phone = PhoneField(label=_("Mobile phone"), max_length=30)


class IdentityPhotosForm(forms.Form):
    """The document photo and the selfie. Only presence is checked here: what the files are
    is checked by verification (by their content, never their name or declared type)."""

    document = forms.FileField(
        label=_("Photo of your identity card, passport or residence permit (front)"),
        # On a phone, ``capture`` opens the camera (the back one for the document).
        widget=forms.FileInput(attrs={"accept": "image/jpeg,image/png", "capture": "environment"}),
    )
    selfie = forms.FileField(
        label=_("A photo of your face (selfie)"),
        widget=forms.FileInput(attrs={"accept": "image/jpeg,image/png", "capture": "user"}),
    )


class BankConsentForm(forms.Form):
    consent = forms.BooleanField(
        label=_(
            "I agree to share, read-only, the last 3 months of transactions of my bank account "
            "with Tranche, for this credit decision only."
        ),
        error_messages={"required": _("Please tick the box to agree, or choose another option.")},
    )


class ReviewRequestForm(forms.Form):
    message = forms.CharField(
        label=_("Anything you want the person reviewing your request to know (optional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
