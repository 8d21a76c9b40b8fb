from django import forms
from django.contrib.auth import authenticate, get_user_model, password_validation
from django.contrib.postgres.forms import SimpleArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _
from schwifty import IBAN

from apps.merchants.models import Country, Membership, Merchant, compact_bic, compact_iban


class RegistrationForm(forms.Form):
    legal_name = forms.CharField(label=_("Company legal name"), max_length=200)
    country = forms.ChoiceField(label=_("Country"), choices=Country.choices, initial=Country.FR)
    store_only = forms.BooleanField(
        label=_("I only sell in store"),
        required=False,
        help_text=_("No website: you will take payments with a terminal or a payment link."),
    )
    website = forms.URLField(
        label=_("Website"), required=False, assume_scheme="https", max_length=200
    )
    first_name = forms.CharField(label=_("First name"), max_length=150)
    last_name = forms.CharField(label=_("Last name"), max_length=150)
    email = forms.EmailField(label=_("Work email"), max_length=150)  # the username column
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label=_("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    accept_terms = forms.BooleanField(label=_("I accept the merchant terms of service"))

    def clean_email(self):
        email = self.cleaned_data["email"].lower()
        if get_user_model().objects.filter(username__iexact=email).exists():
            raise forms.ValidationError(_("An account already exists with this email address."))
        return email

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("store_only") and not cleaned.get("website"):
            self.add_error(
                "website", _("Give your shop's website, or tick “I only sell in store”.")
            )
        password1, password2 = cleaned.get("password1"), cleaned.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", _("The two passwords differ."))
        if password1 and not self.has_error("password2"):
            user = get_user_model()(
                username=cleaned.get("email", ""),
                email=cleaned.get("email", ""),
                first_name=cleaned.get("first_name", ""),
                last_name=cleaned.get("last_name", ""),
            )
            try:
                password_validation.validate_password(password1, user)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned


class NewKeyForm(forms.Form):
    mode = forms.ChoiceField(choices=[("test", _("Test")), ("live", _("Live"))])


def https_formfield(model_field, **kwargs):
    """URLs without a scheme are taken as https (Django 6's default), not http."""
    if isinstance(model_field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return model_field.formfield(**kwargs)


class MerchantSettingsForm(forms.ModelForm):
    """The settings page. A change of the payout IBAN needs the user's password: it is
    checked through ``authenticate`` so wrong guesses count toward the log-in rate limit."""

    excluded_categories = SimpleArrayField(
        forms.CharField(max_length=100, required=False),
        label=_("Excluded product categories"),
        required=False,
        help_text=_(
            "Separated by commas, as your shop sends them (e.g. digital, services, workshops): "
            "a basket holding one of them is not eligible."
        ),
    )
    # Longer than the column: people paste IBANs grouped by four, stored compact.
    payout_iban = forms.CharField(
        label=_("IBAN for payouts"),
        required=False,
        max_length=50,
        help_text=_("The account of a SEPA country where Tranche pays your balance."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    payout_bic = forms.CharField(
        label=_("BIC for payouts"),
        required=False,
        max_length=20,
        help_text=_("Optional: your bank's code (8 or 11 characters)."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    password = forms.CharField(
        label=_("Your password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=_("Needed only to change the IBAN: we check it is really you."),
    )

    class Meta:
        model = Merchant
        formfield_callback = https_formfield
        fields = [
            "return_url",
            "customer_cancel_url",
            "ipn_callback_url",
            "excluded_categories",
            "authorisation_policy",
            "notification_email",
            "category",
            "listed_in_directory",
            "payout_iban",
            "payout_bic",
        ]
        help_texts = {
            "return_url": _(
                "Where customers go back after paying, unless a payment says otherwise."
            ),
            "customer_cancel_url": _("Where customers go when they leave the payment page."),
            "ipn_callback_url": _("Called by Tranche when a payment is accepted (IPN)."),
            "authorisation_policy": _(
                "What the card authorisation covers at checkout: the first instalment, or the "
                "whole amount to check the balance."
            ),
            "notification_email": _(
                "Where Tranche sends news of your payments; your contact email when empty."
            ),
            "category": _("What you sell: customers filter the partner directory by category."),
            "listed_in_directory": _(
                "Customers find your shop, its website and the plans you offer in the "
                "partner directory of the Tranche app."
            ),
        }

    SECTIONS = (
        (
            _("Payment defaults"),
            (
                "return_url",
                "customer_cancel_url",
                "ipn_callback_url",
                "excluded_categories",
                "authorisation_policy",
            ),
        ),
        (_("Notifications"), ("notification_email",)),
        (_("Partner directory"), ("category", "listed_in_directory")),
        (_("Payouts"), ("payout_iban", "payout_bic", "password")),
    )

    def __init__(self, *args, request=None, editable: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request
        self.stored_iban = self.instance.payout_iban
        if self.stored_iban:
            self.initial["payout_iban"] = IBAN(self.stored_iban).formatted
        if not editable:  # read-only page: nothing to confirm
            del self.fields["password"]

    def sections(self):
        """(title, bound fields) for each part of the page."""
        return [
            (title, [self[name] for name in names if name in self.fields])
            for title, names in self.SECTIONS
        ]

    def clean_excluded_categories(self):
        categories = [c.strip().lower() for c in self.cleaned_data["excluded_categories"]]
        return sorted({c for c in categories if c})

    def clean_payout_iban(self):
        value = self.cleaned_data["payout_iban"].strip()
        if not value:
            return ""
        compact = compact_iban(value)
        if not IBAN(compact).in_sepa_zone:
            raise forms.ValidationError(
                _("Payouts are SEPA transfers: give the IBAN of an account in a SEPA country."),
                code="iban_not_sepa",
            )
        return compact

    def clean_payout_bic(self):
        value = self.cleaned_data["payout_bic"].strip()
        return compact_bic(value) if value else ""

    def clean(self):
        cleaned = super().clean()
        iban = cleaned.get("payout_iban")
        if cleaned.get("payout_bic") and iban == "":
            self.add_error("payout_bic", _("Give the IBAN too, or leave the BIC empty."))
        if iban is not None and iban != self.stored_iban:
            self._check_password(cleaned.get("password", ""))
        return cleaned

    def _check_password(self, password: str) -> None:
        if not password:
            self.add_error("password", _("Enter your password to change the IBAN for payouts."))
            return
        user = self.request.user
        confirmed = authenticate(self.request, username=user.get_username(), password=password)
        if confirmed is None or confirmed.pk != user.pk:
            self.add_error("password", _("Wrong password: the IBAN was not changed."))


class StaffInviteForm(forms.Form):
    email = forms.EmailField(
        label=_("Email"),
        max_length=150,  # the username column
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    role = forms.ChoiceField(label=_("Role"))

    def __init__(self, *args, grantable: set[str], **kwargs):
        super().__init__(*args, **kwargs)
        invitable = [Membership.Role.ADMIN, Membership.Role.STAFF]
        self.fields["role"].choices = [
            (role.value, role.label) for role in invitable if role in grantable
        ]
        self.fields["role"].initial = Membership.Role.STAFF


class StaffRoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Membership.Role.choices)
