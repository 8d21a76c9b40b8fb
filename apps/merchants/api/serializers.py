"""Shapes of the merchant endpoints (Alma's Merchant and FeePlan objects)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.common.money import to_cents
from apps.merchants.models import Merchant


@extend_schema_field(OpenApiTypes.INT)
class CentsField(serializers.Field):
    """A MoneyField read as integer cents."""

    def to_representation(self, value) -> int:
        return to_cents(value)


class FeePlanSerializer(serializers.Serializer):
    """A fee plan as Alma's clients read it: ints in cents and basis points, never null."""

    kind = serializers.CharField()
    installments_count = serializers.IntegerField()
    deferred_days = serializers.IntegerField()
    deferred_months = serializers.IntegerField()
    allowed = serializers.BooleanField()
    available_online = serializers.BooleanField()
    available_in_pos = serializers.BooleanField()
    min_purchase_amount = CentsField()
    max_purchase_amount = CentsField()
    merchant_fee_variable = serializers.IntegerField()
    merchant_fee_fixed = CentsField()
    customer_fee_variable = serializers.IntegerField()
    customer_fee_fixed = CentsField()
    customer_lending_rate = serializers.IntegerField()
    deferred_trigger_limit_days = serializers.IntegerField(allow_null=True)
    deferred_trigger_bypass_scoring = serializers.SerializerMethodField()
    first_installment_ratio = serializers.SerializerMethodField()
    merchant = serializers.CharField(source="merchant.public_id")

    def get_deferred_trigger_bypass_scoring(self, plan) -> bool:
        return False

    def get_first_installment_ratio(self, plan) -> int | None:
        return None


class MerchantSerializer(serializers.Serializer):
    """``GET /v1/me``: who the key belongs to and what it may do.

    The declared fields document the shape (OpenAPI); ``to_representation`` builds the same
    dict directly, because binding 16 DRF fields per request costs more than the rest of
    the request once the key lookup is cached. tests/merchants/test_me_api.py checks that
    both agree.
    """

    id = serializers.CharField()
    name = serializers.CharField()
    website = serializers.CharField()
    country = serializers.CharField()
    state = serializers.ChoiceField(choices=Merchant.Status.values)
    legal_validation_state = serializers.ChoiceField(choices=["pending", "validated"])
    manually_reviewed = serializers.BooleanField()
    can_create_payments = serializers.BooleanField()
    can_pay_in = serializers.BooleanField()
    can_pay_out = serializers.BooleanField()
    can_refund = serializers.BooleanField()
    accepted_tos = serializers.BooleanField()
    is_store_only = serializers.BooleanField()
    return_url = serializers.CharField()
    customer_cancel_url = serializers.CharField()
    ipn_callback_url = serializers.CharField()

    def to_representation(self, merchant: Merchant) -> dict:
        active = merchant.is_active
        return {
            "id": merchant.public_id,
            "name": merchant.legal_name,
            "website": merchant.website,
            "country": merchant.country,
            "state": merchant.status,
            "legal_validation_state": merchant.legal_validation_state,
            "manually_reviewed": merchant.activated_at is not None,
            "can_create_payments": active,
            "can_pay_in": active,
            "can_pay_out": active,
            "can_refund": active,
            "accepted_tos": True,  # registration requires accepting the terms
            "is_store_only": merchant.store_only,
            "return_url": merchant.return_url,
            "customer_cancel_url": merchant.customer_cancel_url,
            "ipn_callback_url": merchant.ipn_callback_url,
        }


class LegalEntitySerializer(serializers.Serializer):
    id = serializers.SerializerMethodField()
    type = serializers.SerializerMethodField()
    business_name = serializers.CharField(source="legal_name")
    vat_number = serializers.SerializerMethodField()
    business_tax_id = serializers.SerializerMethodField()
    validation_status = serializers.SerializerMethodField()
    address = serializers.SerializerMethodField()

    def get_id(self, merchant) -> str:
        return merchant.public_id.replace("merchant_", "legal_entity_", 1)

    def get_type(self, merchant) -> str:
        return "company"

    def get_vat_number(self, merchant) -> str | None:
        return None

    def get_business_tax_id(self, merchant) -> str | None:
        return None

    def get_validation_status(self, merchant) -> str:
        return merchant.legal_validation_state

    def get_address(self, merchant) -> dict:
        return {"country": merchant.country}


class ExtendedMerchantSerializer(MerchantSerializer):
    """``GET /v1/me/extended-data``: the merchant with its legal entity and fee plans.

    Takes the merchant's fee plans in ``context["fee_plans"]`` (read once by the view).
    """

    legal_entity = LegalEntitySerializer()
    fee_plans = FeePlanSerializer(many=True)
    minimum_purchase_amount = serializers.IntegerField()
    maximum_purchase_amount = serializers.IntegerField()
    maximum_purchase_exposure = serializers.IntegerField()
    cms_allow_inpage = serializers.BooleanField()
    cms_insurance = serializers.BooleanField()
    payout_label = serializers.CharField()
    use_stonly_onboarding = serializers.BooleanField()
    onboarding_information = serializers.DictField()
    adyen_merchant_account = serializers.CharField(allow_null=True)

    def to_representation(self, merchant: Merchant) -> dict:
        plans = self.context["fee_plans"]
        allowed = [plan for plan in plans if plan.allowed]
        lowest = min((to_cents(p.min_purchase_amount) for p in allowed), default=0)
        highest = max((to_cents(p.max_purchase_amount) for p in allowed), default=0)
        return {
            **super().to_representation(merchant),
            "legal_entity": LegalEntitySerializer(merchant).data,
            "fee_plans": FeePlanSerializer(plans, many=True).data,
            "minimum_purchase_amount": lowest,
            "maximum_purchase_amount": highest,
            "maximum_purchase_exposure": highest,
            "cms_allow_inpage": False,
            "cms_insurance": False,
            "payout_label": merchant.legal_name,
            "use_stonly_onboarding": False,
            "onboarding_information": {},
            "adyen_merchant_account": None,
        }


KIND_PATTERN = r"^((general|pos)(,(general|pos))*)?$"
ONLY_PATTERN = r"^(all|([1-9]|1[0-2])(,([1-9]|1[0-2]))*)?$"


class FeePlanQuerySerializer(serializers.Serializer):
    """``?kind=general|pos[,..]&only=all|3,4&deferred=true|false`` (comma-joined lists;
    an empty value is the same as no value)."""

    kind = serializers.RegexField(
        KIND_PATTERN,
        required=False,
        error_messages={"invalid": "Must be general, pos, or both separated by a comma."},
    )
    only = serializers.RegexField(
        ONLY_PATTERN,
        required=False,
        error_messages={
            "invalid": "Must be all, or instalment counts from 1 to 12 separated by commas."
        },
    )
    deferred = serializers.ChoiceField(
        ["true", "false"],
        required=False,
        error_messages={"invalid_choice": "Must be true or false."},
    )

    def validate_kind(self, value: str) -> list[str]:
        return value.split(",")

    def validate_only(self, value: str) -> list[int] | None:
        return None if value == "all" else [int(part) for part in value.split(",")]

    def validate_deferred(self, value: str) -> bool:
        return value == "true"
