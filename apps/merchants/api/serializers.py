"""Shapes of the merchant endpoints (Alma's Merchant and FeePlan objects)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.common.money import to_cents
from apps.merchants.models import FeePlan, Merchant


@extend_schema_field(OpenApiTypes.INT)
class CentsField(serializers.Field):
    """A MoneyField read as integer cents."""

    def to_representation(self, value) -> int:
        return to_cents(value)


class FeePlanSerializer(serializers.ModelSerializer):
    merchant = serializers.CharField(source="merchant.public_id")
    min_purchase_amount = CentsField()
    max_purchase_amount = CentsField()
    merchant_fee_fixed = CentsField()
    customer_fee_fixed = CentsField()
    deferred_trigger_bypass_scoring = serializers.SerializerMethodField()
    first_installment_ratio = serializers.SerializerMethodField()

    class Meta:
        model = FeePlan
        fields = [
            "kind",
            "installments_count",
            "deferred_days",
            "deferred_months",
            "allowed",
            "available_online",
            "available_in_pos",
            "min_purchase_amount",
            "max_purchase_amount",
            "merchant_fee_variable",
            "merchant_fee_fixed",
            "customer_fee_variable",
            "customer_fee_fixed",
            "customer_lending_rate",
            "deferred_trigger_limit_days",
            "deferred_trigger_bypass_scoring",
            "first_installment_ratio",
            "merchant",
        ]

    def get_deferred_trigger_bypass_scoring(self, plan) -> bool:
        return False

    def get_first_installment_ratio(self, plan) -> int | None:
        return None


class MerchantSerializer(serializers.ModelSerializer):
    """``GET /v1/me``: who the key belongs to and what it may do."""

    id = serializers.CharField(source="public_id")
    name = serializers.CharField(source="legal_name")
    state = serializers.CharField(source="status")
    legal_validation_state = serializers.SerializerMethodField()
    manually_reviewed = serializers.SerializerMethodField()
    can_create_payments = serializers.BooleanField(source="is_active")
    can_pay_in = serializers.BooleanField(source="is_active")
    can_pay_out = serializers.BooleanField(source="is_active")
    can_refund = serializers.BooleanField(source="is_active")
    accepted_tos = serializers.SerializerMethodField()
    is_store_only = serializers.BooleanField(source="store_only")

    class Meta:
        model = Merchant
        fields = [
            "id",
            "name",
            "website",
            "country",
            "state",
            "legal_validation_state",
            "manually_reviewed",
            "can_create_payments",
            "can_pay_in",
            "can_pay_out",
            "can_refund",
            "accepted_tos",
            "is_store_only",
            "return_url",
            "customer_cancel_url",
            "ipn_callback_url",
        ]

    def get_legal_validation_state(self, merchant) -> str:
        return "validated" if merchant.activated_at else "pending"

    def get_manually_reviewed(self, merchant) -> bool:
        return merchant.activated_at is not None

    def get_accepted_tos(self, merchant) -> bool:
        return True  # registration requires accepting the terms


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
        return "validated" if merchant.activated_at else "pending"

    def get_address(self, merchant) -> dict:
        return {"country": merchant.country}


class ExtendedMerchantSerializer(MerchantSerializer):
    """``GET /v1/me/extended-data``: the merchant with its legal entity and fee plans.

    Takes the merchant's fee plans in ``context["fee_plans"]`` (read once by the view).
    """

    legal_entity = LegalEntitySerializer(source="*")
    fee_plans = serializers.SerializerMethodField()
    minimum_purchase_amount = serializers.SerializerMethodField()
    maximum_purchase_amount = serializers.SerializerMethodField()
    maximum_purchase_exposure = serializers.SerializerMethodField()
    cms_allow_inpage = serializers.SerializerMethodField()
    cms_insurance = serializers.SerializerMethodField()
    payout_label = serializers.CharField(source="legal_name")
    use_stonly_onboarding = serializers.SerializerMethodField()
    onboarding_information = serializers.SerializerMethodField()

    class Meta(MerchantSerializer.Meta):
        fields = [
            *MerchantSerializer.Meta.fields,
            "legal_entity",
            "fee_plans",
            "minimum_purchase_amount",
            "maximum_purchase_amount",
            "maximum_purchase_exposure",
            "cms_allow_inpage",
            "cms_insurance",
            "payout_label",
            "use_stonly_onboarding",
            "onboarding_information",
        ]

    @extend_schema_field(FeePlanSerializer(many=True))
    def get_fee_plans(self, merchant) -> list:
        return FeePlanSerializer(self.context["fee_plans"], many=True).data

    def _allowed_bounds(self, merchant) -> tuple[int, int]:
        plans = [plan for plan in self.context["fee_plans"] if plan.allowed]
        if not plans:
            return 0, 0
        return (
            min(to_cents(plan.min_purchase_amount) for plan in plans),
            max(to_cents(plan.max_purchase_amount) for plan in plans),
        )

    def get_minimum_purchase_amount(self, merchant) -> int:
        return self._allowed_bounds(merchant)[0]

    def get_maximum_purchase_amount(self, merchant) -> int:
        return self._allowed_bounds(merchant)[1]

    def get_maximum_purchase_exposure(self, merchant) -> int:
        return self._allowed_bounds(merchant)[1]

    def get_cms_allow_inpage(self, merchant) -> bool:
        return False

    def get_cms_insurance(self, merchant) -> bool:
        return False

    def get_use_stonly_onboarding(self, merchant) -> bool:
        return False

    def get_onboarding_information(self, merchant) -> dict:
        return {}


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
