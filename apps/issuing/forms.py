"""The card pages' forms. The funding card's form is the portal's own ``CardForm``
(``apps.schedules.portal.views.card``): numbers are typed there and only there."""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.common.money import decimal_to_cents

# "150", "150,00", "150.5", "1 250 €": euros with at most two decimals.
AMOUNT = re.compile(r"^(\d{1,7})(?:[.,](\d{1,2}))?$")
IGNORED_IN_AMOUNT = re.compile(r"[\s\u00a0\u202f€]")

# A few merchant category codes (ISO 18245) to try the card with in the sandbox.
SANDBOX_CATEGORIES = (
    ("5311", _("Department store")),
    ("5732", _("Electronics")),
    ("5651", _("Clothing")),
    ("5812", _("Restaurant")),
    ("4511", _("Airline")),
    ("7995", _("Gambling (always declined)")),
    ("6011", _("Cash machine (always declined)")),
)


def euros_to_cents(raw: str) -> int | None:
    """An amount typed in euros as cents, exactly (never a float); None when it is not one."""
    match = AMOUNT.match(IGNORED_IN_AMOUNT.sub("", raw or ""))
    if match is None:
        return None
    whole, fraction = match.groups()
    return decimal_to_cents(Decimal(f"{whole}.{(fraction or '').ljust(2, '0')}"))


class SandboxPurchaseForm(forms.Form):
    """A purchase at a shop with the customer's card, as the sandbox network would send it."""

    shop = forms.CharField(label=_("Shop"), max_length=100, initial="Fnac Paris")
    amount = forms.CharField(
        label=_("Amount (€)"), max_length=20, help_text=_("For example 150 or 150,00.")
    )
    category = forms.ChoiceField(
        label=_("Kind of shop"), choices=SANDBOX_CATEGORIES, initial="5311", required=False
    )

    def clean_amount(self) -> int:
        cents = euros_to_cents(self.cleaned_data["amount"])
        if cents is None or cents <= 0:
            raise forms.ValidationError(_("Enter an amount in euros, e.g. 150,00."))
        return cents

    def clean_category(self) -> str:
        return self.cleaned_data.get("category") or "5311"
