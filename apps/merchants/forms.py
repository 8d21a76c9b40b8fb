from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.postgres.forms import SimpleArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.merchants.models import Country, Merchant


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
    excluded_categories = SimpleArrayField(
        forms.CharField(max_length=100, required=False),
        label=_("Excluded product categories"),
        required=False,
        help_text=_(
            "Separated by commas, as your shop sends them (e.g. digital, services, workshops): "
            "a basket holding one of them is not eligible."
        ),
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
        }

    def clean_excluded_categories(self):
        categories = [c.strip().lower() for c in self.cleaned_data["excluded_categories"]]
        return sorted({c for c in categories if c})
