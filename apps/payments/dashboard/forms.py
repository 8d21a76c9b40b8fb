"""The dashboard's payment forms: the list's filters and a remote sale."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.common.money import decimal_to_cents
from apps.payments.models import Payment, PaymentState
from apps.payments.selectors import SORTS, PaymentFilters

PLAN_CHOICES = [
    *[(str(count), _("%(count)s instalments") % {"count": count}) for count in range(2, 13)],
    ("1", _("Pay now")),
    ("later", _("Pay later")),
]
ORIGIN_CHOICES = [
    ("online", _("Online")),
    ("pos", _("In store")),
    ("pos_device", _("In store (terminal)")),
    ("pos_sms", _("In store (SMS)")),
    ("pos_link", _("In store (link)")),
]
SORT_CHOICES = [
    ("-created", _("Newest first")),
    ("created", _("Oldest first")),
    ("-amount", _("Largest amount first")),
    ("amount", _("Smallest amount first")),
]
MAX_SEARCH = 200
INPUT_TYPES = {
    "q": "search",
    "created_from": "date",
    "created_to": "date",
    "amount_min": "number",
    "amount_max": "number",
}


def euros_to_cents(value: Decimal) -> int:
    return decimal_to_cents(value.quantize(Decimal("0.01")))


class PaymentFilterForm(forms.Form):
    """The list's GET parameters. A value that does not parse is dropped and named in
    ``ignored`` (the list shows what it could not use), never an error page."""

    q = forms.CharField(label=_("Search"), required=False, max_length=MAX_SEARCH)
    state = forms.MultipleChoiceField(
        label=_("State"), required=False, choices=PaymentState.choices
    )
    plan = forms.MultipleChoiceField(label=_("Plan"), required=False, choices=PLAN_CHOICES)
    origin = forms.ChoiceField(label=_("Channel"), required=False, choices=ORIGIN_CHOICES)
    created_from = forms.DateField(label=_("From"), required=False)
    created_to = forms.DateField(label=_("To"), required=False)
    amount_min = forms.DecimalField(
        label=_("Minimum amount (€)"), required=False, min_value=0, max_digits=12, decimal_places=2
    )
    amount_max = forms.DecimalField(
        label=_("Maximum amount (€)"), required=False, min_value=0, max_digits=12, decimal_places=2
    )
    sort = forms.ChoiceField(label=_("Sort"), required=False, choices=SORT_CHOICES)

    def __init__(self, data=None):
        super().__init__(data)
        for name in ("created_from", "created_to"):
            self.fields[name].widget = forms.DateInput(attrs={"type": "date"})
        self.fields["q"].widget.attrs.update(
            {
                "type": "search",
                "placeholder": _("Payment id, order, name, email or phone"),
            }
        )
        for name in ("amount_min", "amount_max"):
            self.fields[name].widget.attrs.update({"step": "0.01", "inputmode": "decimal"})

    def controls(self) -> list[dict]:
        """The list's filter inputs, described for the template (a hand-written form: the
        widgets' own templates cost more than the rest of the page's rows)."""
        data = self.data if self.is_bound else {}
        controls = []
        for name, field in self.fields.items():
            if name == "sort":
                continue
            control = {"name": name, "id": f"id_{name}", "label": field.label}
            if isinstance(field, forms.ChoiceField):
                chosen = set(data.getlist(name)) if hasattr(data, "getlist") else set()
                control["options"] = [
                    (value, label, value in chosen) for value, label in field.choices
                ]
            else:
                control["type"] = INPUT_TYPES.get(name, "text")
                control["value"] = data.get(name, "")
                control["attrs"] = field.widget.attrs
            controls.append(control)
        return controls

    def filters(self) -> tuple[PaymentFilters, list[str]]:
        """The filters to apply, and the labels of the fields that were ignored."""
        self.is_valid()
        data = self.cleaned_data
        ignored = [str(self.fields[name].label) for name in self.errors]
        created_from = data.get("created_from")
        created_to = data.get("created_to")
        if created_from and created_to and created_from > created_to:
            created_from, created_to = created_to, created_from
        amount_min = data.get("amount_min")
        amount_max = data.get("amount_max")
        if amount_min is not None and amount_max is not None and amount_min > amount_max:
            amount_min, amount_max = amount_max, amount_min
        filters = PaymentFilters(
            search=(data.get("q") or "").strip(),
            states=tuple(data.get("state") or ()),
            plans=tuple(data.get("plan") or ()),
            origin=data.get("origin") or "",
            created_from=_day_start(created_from) if created_from else None,
            created_before=_day_start(created_to + timedelta(days=1)) if created_to else None,
            amount_min_cents=euros_to_cents(amount_min) if amount_min is not None else None,
            amount_max_cents=euros_to_cents(amount_max) if amount_max is not None else None,
            sort=data.get("sort") if data.get("sort") in SORTS else "-created",
        )
        return filters, ignored


def _day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


class RemoteSaleForm(forms.Form):
    """A payment staff create for a customer who is not in front of them, and the link
    sent to the customer by SMS or email."""

    SEND_BY = [("sms", _("By SMS")), ("email", _("By email"))]

    amount = forms.DecimalField(
        label=_("Amount (€)"), min_value=Decimal("0.01"), max_digits=12, decimal_places=2
    )
    plan = forms.ChoiceField(label=_("Plan"))
    first_name = forms.CharField(label=_("Customer's first name"), max_length=100)
    last_name = forms.CharField(label=_("Customer's last name"), max_length=100)
    send_by = forms.ChoiceField(
        label=_("Send the payment link"), choices=SEND_BY, widget=forms.RadioSelect
    )
    phone = forms.CharField(label=_("Mobile phone"), required=False, max_length=40)
    email = forms.EmailField(label=_("Email"), required=False)
    reference = forms.CharField(label=_("Order reference"), required=False, max_length=200)

    def __init__(self, *args, plans: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].choices = plans
        self.fields["amount"].widget.attrs.update({"step": "0.01", "inputmode": "decimal"})
        self.fields["phone"].widget.attrs.update({"type": "tel", "autocomplete": "off"})

    def clean_amount(self):
        try:
            return euros_to_cents(self.cleaned_data["amount"])
        except (InvalidOperation, ValueError) as exc:
            raise forms.ValidationError(_("Enter an amount in euros, like 249.90.")) from exc

    def clean(self):
        data = super().clean()
        send_by = data.get("send_by")
        if send_by == "sms" and not data.get("phone"):
            self.add_error("phone", _("Give the customer's mobile phone to send an SMS."))
        if send_by == "email" and not data.get("email"):
            self.add_error("email", _("Give the customer's email to send the link by email."))
        return data


ORIGIN_BY_SEND = {"sms": Payment.Origin.POS_SMS, "email": Payment.Origin.POS_LINK}
