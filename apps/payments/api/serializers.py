"""Shapes of the eligibility endpoints (contract section 4).

The request serializers are the documented schema; bodies.py reads requests (faster) and
schemathesis checks that the two agree.
Requests are checked strictly where it matters (amounts and counts are JSON integers, known
countries) and loosely elsewhere, as Alma's clients need: unknown keys, typos such as
``deferred_month`` and nulls where a value is optional are ignored.
"""

from __future__ import annotations

import functools
from datetime import date
from typing import Any

import pycountry
from django.conf import settings
from django.utils import formats, translation
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.common.api.fields import StrictCharField, StrictIntegerField
from apps.common.dates import date_to_timestamp
from apps.payments.eligibility import Eligibility

MAX_PURCHASE_AMOUNT = 10**9  # cents: ten million euros, far above any plan's maximum
MAX_QUERIES = 20
MAX_DEFERRED_DAYS = 365
MAX_DEFERRED_MONTHS = 12
ONLINE_ORIGINS = ("online", "online_in_page")
POS_ORIGINS = ("pos", "pos_device", "pos_link", "pos_sms")
SUPPORTED_LANGUAGES = frozenset(code for code, _name in settings.LANGUAGES)
COUNTRY_CODES = frozenset(country.alpha_2 for country in pycountry.countries)


def purchase_amount_field(**kwargs) -> StrictIntegerField:
    return StrictIntegerField(min_value=1, max_value=MAX_PURCHASE_AMOUNT, **kwargs)


def installments_count_field(**kwargs) -> StrictIntegerField:
    return StrictIntegerField(min_value=1, max_value=12, **kwargs)


@extend_schema_field(
    {
        "type": "string",
        "nullable": True,
        "enum": ["", *sorted(COUNTRY_CODES)],
        "description": "ISO 3166-1 alpha-2 (any case); empty or null: not given.",
    }
)
class CountryField(serializers.CharField):
    """An ISO 3166-1 alpha-2 code, any case; empty or null means "not given" (bodies.py)."""

    def __init__(self, **kwargs):
        super().__init__(required=False, allow_null=True, allow_blank=True, **kwargs)


class AddressSerializer(serializers.Serializer):
    country = CountryField()


class CartItemSerializer(serializers.Serializer):
    categories = serializers.ListField(
        child=StrictCharField(max_length=200), required=False, allow_null=True, max_length=50
    )


class CartSerializer(serializers.Serializer):
    items = serializers.ListField(
        child=CartItemSerializer(), required=False, allow_null=True, max_length=500
    )


class PurchaseContextSerializer(serializers.Serializer):
    """What both versions accept around the amount and the plans."""

    billing_address = AddressSerializer(required=False, allow_null=True)
    shipping_address = AddressSerializer(required=False, allow_null=True)
    locale = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=35)
    origin = serializers.ChoiceField(
        choices=ONLINE_ORIGINS + POS_ORIGINS, required=False, allow_null=True
    )
    cart = CartSerializer(required=False, allow_null=True)


class EligibilityQuerySerializer(serializers.Serializer):
    installments_count = installments_count_field()
    deferred_days = StrictIntegerField(
        min_value=0, max_value=MAX_DEFERRED_DAYS, required=False, allow_null=True
    )
    deferred_months = StrictIntegerField(
        min_value=0, max_value=MAX_DEFERRED_MONTHS, required=False, allow_null=True
    )
    deferred_month = StrictIntegerField(
        min_value=0,
        max_value=MAX_DEFERRED_MONTHS,
        required=False,
        allow_null=True,
        help_text="Read as deferred_months when that is absent (Alma's Magento plugin sends it).",
    )
    purchase_amount = purchase_amount_field(
        required=False, allow_null=True, help_text="Overrides the request's amount."
    )


class EligibilityV2RequestSerializer(PurchaseContextSerializer):
    purchase_amount = purchase_amount_field(help_text="Cents.")
    queries = serializers.ListField(
        child=EligibilityQuerySerializer(),
        required=False,
        allow_null=True,
        max_length=MAX_QUERIES,
        help_text="Plans to check, answered in order. Absent or null: every eligible plan.",
    )


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": 1, "maximum": 12},
            {
                "type": "array",
                "items": {"type": "integer", "minimum": 1, "maximum": 12},
                "minItems": 1,
                "maxItems": 12,
            },
        ]
    }
)
class InstallmentsCountField(serializers.Field):
    """v1's ``installments_count``: one count (one answer) or a list (a list of answers)."""


class EligibilityV1PaymentSerializer(PurchaseContextSerializer):
    purchase_amount = purchase_amount_field(help_text="Cents.")
    installments_count = InstallmentsCountField(
        required=False,
        help_text="One count for one answer, a list for a list; absent: every eligible plan.",
    )
    deferred_days = StrictIntegerField(
        min_value=0, max_value=MAX_DEFERRED_DAYS, required=False, allow_null=True
    )
    deferred_months = StrictIntegerField(
        min_value=0, max_value=MAX_DEFERRED_MONTHS, required=False, allow_null=True
    )


class EligibilityV1RequestSerializer(serializers.Serializer):
    payment = EligibilityV1PaymentSerializer()


# --- responses (declared for the schema; views build the dicts directly, for speed) -----


class PlanInstalmentSerializer(serializers.Serializer):
    due_date = serializers.IntegerField(help_text="UNIX timestamp, noon Europe/Paris.")
    total_amount = serializers.IntegerField()
    customer_fee = serializers.IntegerField()
    customer_interest = serializers.IntegerField()
    purchase_amount = serializers.IntegerField()
    localized_due_date = serializers.CharField(help_text="In the request's locale.")
    time_delta_from_start = serializers.DictField(allow_null=True)


class EligibilitySerializer(serializers.Serializer):
    eligible = serializers.BooleanField()
    installments_count = serializers.IntegerField()
    deferred_days = serializers.IntegerField()
    deferred_months = serializers.IntegerField()
    purchase_amount = serializers.IntegerField()
    payment_plan = PlanInstalmentSerializer(many=True, required=False)
    customer_fee = serializers.IntegerField(required=False)
    customer_interest = serializers.IntegerField(required=False)
    customer_total_cost_amount = serializers.IntegerField(required=False)
    customer_total_cost_bps = serializers.IntegerField(required=False)
    annual_interest_rate = serializers.IntegerField(
        required=False, help_text="APR (TAEG) in basis points."
    )
    modulated_first_installment = serializers.BooleanField(required=False)
    reasons = serializers.DictField(child=serializers.CharField(), required=False)
    constraints = serializers.DictField(required=False)


def eligibility_to_json(answer: Eligibility, *, language: str) -> dict[str, Any]:
    """An answer as Alma's clients read it: ints never null, dates localised."""
    query = answer.query
    body: dict[str, Any] = {
        "eligible": answer.eligible,
        "installments_count": query.installments_count,
        "deferred_days": query.deferred_days,
        "deferred_months": query.deferred_months,
        "purchase_amount": query.purchase_amount,
    }
    plan = answer.plan
    if plan is None:
        body["reasons"] = answer.reasons
        body["constraints"] = answer.constraints
        return body
    body["payment_plan"] = [
        {
            "due_date": date_to_timestamp(instalment.due_date),
            "total_amount": instalment.total_amount,
            "customer_fee": instalment.customer_fee,
            "customer_interest": instalment.customer_interest,
            "purchase_amount": instalment.purchase_amount,
            "localized_due_date": localized_due_date(
                instalment.due_date, today=plan.purchase_date, language=language
            ),
            "time_delta_from_start": None,
        }
        for instalment in plan.instalments
    ]
    body["customer_fee"] = plan.customer_fee
    body["customer_interest"] = plan.customer_interest
    body["customer_total_cost_amount"] = plan.customer_total_cost_amount
    body["customer_total_cost_bps"] = plan.customer_total_cost_bps
    body["annual_interest_rate"] = answer.annual_interest_rate
    body["modulated_first_installment"] = False
    return body


def localized_due_date(day: date, *, today: date, language: str) -> str:
    """ "aujourd'hui" / "today", else the long date in `language` ("5 octobre 2026")."""
    if day == today:
        return _today_word(language)
    return _long_date(day, language)


@functools.lru_cache(maxsize=8)
def _today_word(language: str) -> str:
    with translation.override(language):
        return str(_("today"))


@functools.lru_cache(maxsize=4096)
def _long_date(day: date, language: str) -> str:
    # Plans share a few hundred dates a day: format each once per language.
    with translation.override(language):
        return formats.date_format(day, "DATE_FORMAT")


def request_language(locale: str | None) -> str:
    """The language of a request's ``locale`` ("fr", "fr_FR", "en-GB"): one Tranche
    speaks, else French (Tranche's first language)."""
    if locale:
        language = locale.replace("-", "_").split("_", 1)[0].lower()
        if language in SUPPORTED_LANGUAGES:
            return language
    return settings.LANGUAGE_CODE
