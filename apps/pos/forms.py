"""The dashboard's in-store forms: a sale on the virtual terminal, a terminal to register."""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.common.money import decimal_to_cents

# "300", "300,5", "300.50", "1 250,00", "1250 €": euros with at most two decimals.
AMOUNT = re.compile(r"^(\d{1,7})(?:[.,](\d{1,2}))?$")
IGNORED_IN_AMOUNT = re.compile(r"[\s\u00a0\u202f€]")


def euros_to_cents(raw: str) -> int | None:
    """The amount typed in euros as cents, exactly (a Decimal, never a float), or None when
    it does not read as an amount."""
    text = IGNORED_IN_AMOUNT.sub("", raw or "")
    match = AMOUNT.match(text)
    if match is None:
        return None
    whole, fraction = match.groups()
    return decimal_to_cents(Decimal(f"{whole}.{(fraction or '').ljust(2, '0')}"))


class VirtualTerminalForm(forms.Form):
    """A sale at the counter: the amount, the customer's mobile, an optional reference, and
    the one-time token that makes a double submit start one session."""

    amount = forms.CharField(
        label=_("Amount (€)"),
        max_length=20,
        help_text=_("The total of the purchase, e.g. 300 or 300,00."),
    )
    phone = forms.CharField(
        label=_("Customer's mobile phone"),
        max_length=40,
        help_text=_("The customer receives the payment link by SMS on this number."),
    )
    reference = forms.CharField(label=_("Reference (optional)"), required=False, max_length=100)
    token = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["amount"].widget.attrs.update(
            {"inputmode": "decimal", "autocomplete": "off", "placeholder": "300,00"}
        )
        self.fields["phone"].widget.attrs.update(
            {"type": "tel", "autocomplete": "off", "placeholder": "06 12 34 56 78"}
        )

    def clean_amount(self) -> int:
        cents = euros_to_cents(self.cleaned_data["amount"])
        if not cents:
            raise forms.ValidationError(_("Type an amount in euros, e.g. 300 or 300,00."))
        return cents


class TerminalRegisterForm(forms.Form):
    """A terminal to register: its name on the dashboard, its shop and serial number."""

    name = forms.CharField(
        label=_("Name"), max_length=100, help_text=_("How staff call it, e.g. Till 1.")
    )
    shop = forms.CharField(label=_("Shop"), required=False, max_length=150)
    serial_number = forms.CharField(label=_("Serial number"), required=False, max_length=64)
    token = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(_("Give the terminal a name."))
        return name
