"""The dashboard's refund form: everything left, or an amount in euros, with the merchant's
reference and comment."""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.common.money import display_eur, format_eur
from apps.payments.dashboard.forms import euros_to_cents

# Euros as people type them: "12,50", "12.50", "1 234,5", "€12", "-3" (refused later, with
# its own message). At most two decimals: a third one would be a sub-cent amount.
EUROS = re.compile(r"^(?P<sign>-?)(?P<units>\d{1,10})(?:[.,](?P<cents>\d{1,2}))?$")
IGNORED = str.maketrans("", "", " \u00a0\u202f€")


def parse_euros(text: str) -> Decimal | None:
    """An amount in euros typed by a person, as a Decimal; None when it is not one."""
    match = EUROS.match(text.translate(IGNORED))
    if match is None:
        return None
    value = Decimal(f"{match['units']}.{match['cents'] or '0'}")
    return -value if match["sign"] else value


class RefundForm(forms.Form):
    """What the merchant asks: ``full`` (everything left) or an ``amount`` in euros, cleaned to
    cents between one cent and ``maximum``. A full refund may carry the amount its preview
    showed, so the confirmation refunds exactly what was shown."""

    full = forms.BooleanField(required=False, widget=forms.HiddenInput)
    amount = forms.CharField(label=_("Amount to refund (€)"), required=False, max_length=30)
    merchant_reference = forms.CharField(label=_("Your reference"), required=False, max_length=255)
    comment = forms.CharField(
        label=_("Comment"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, data=None, *, maximum: int, **kwargs):
        super().__init__(data, **kwargs)
        self.maximum = maximum
        amount = self.fields["amount"]
        amount.help_text = _("At most %(maximum)s.") % {"maximum": display_eur(maximum)}
        amount.widget.attrs.update({"inputmode": "decimal", "autocomplete": "off"})
        self.fields["merchant_reference"].help_text = _(
            "Your return or credit note number, for your records (optional)."
        )

    def clean_amount(self) -> int | None:
        text = (self.cleaned_data.get("amount") or "").strip()
        if not text:
            if self.cleaned_data.get("full"):
                return None
            raise forms.ValidationError(
                _("Enter the amount to refund, at most %(maximum)s."),
                code="required",
                params={"maximum": display_eur(self.maximum)},
            )
        value = parse_euros(text)
        if value is None:
            raise forms.ValidationError(
                _("Enter an amount in euros with at most two decimals, at most %(maximum)s."),
                code="invalid",
                params={"maximum": display_eur(self.maximum)},
            )
        cents = euros_to_cents(value)
        if cents <= 0:
            raise forms.ValidationError(
                _("Enter an amount more than zero, at most %(maximum)s."),
                code="min_value",
                params={"maximum": display_eur(self.maximum)},
            )
        if cents > self.maximum:
            raise forms.ValidationError(
                _("This is more than what is left to refund: at most %(maximum)s."),
                code="max_value",
                params={"maximum": display_eur(self.maximum)},
            )
        return cents

    def request_data(self, *, amount: int) -> dict[str, str]:
        """The confirmation's hidden fields: the cleaned request, with the previewed amount."""
        data = self.cleaned_data
        return {
            "full": "1" if data.get("full") else "",
            "amount": format_eur(amount),
            "merchant_reference": data.get("merchant_reference") or "",
            "comment": data.get("comment") or "",
        }
