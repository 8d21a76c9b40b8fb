"""Fee plans written in the API's shape (integer cents and basis points), as in
``data/default_fee_plans.json`` and the operator's ``create_merchant --fee-plans FILE``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rest_framework import serializers

from apps.common.api.errors import flatten_validation_errors
from apps.common.api.fields import StrictBooleanField, StrictIntegerField
from apps.common.errors import DomainError
from apps.common.money import to_money

DEFAULT_FEE_PLANS_FILE = Path(__file__).parent / "data" / "default_fee_plans.json"
MAX_BPS = 10_000
MAX_CENTS = 100_000_000  # 1,000,000 EUR: far above any basket, far below the columns' limit


class InvalidFeePlans(DomainError):
    code = "invalid_fee_plans"


class FeePlanSpecSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["general", "pos"], default="general")
    installments_count = StrictIntegerField(min_value=1, max_value=12)
    deferred_days = StrictIntegerField(min_value=0, max_value=90, default=0)
    deferred_months = StrictIntegerField(min_value=0, max_value=3, default=0)
    allowed = StrictBooleanField(default=True)
    available_online = StrictBooleanField(required=False)
    available_in_pos = StrictBooleanField(required=False)
    min_purchase_amount = StrictIntegerField(min_value=0, max_value=MAX_CENTS, default=5000)
    max_purchase_amount = StrictIntegerField(min_value=1, max_value=MAX_CENTS, default=200000)
    merchant_fee_variable = StrictIntegerField(min_value=0, max_value=MAX_BPS, default=0)
    merchant_fee_fixed = StrictIntegerField(min_value=0, max_value=MAX_CENTS, default=0)
    customer_fee_variable = StrictIntegerField(min_value=0, max_value=MAX_BPS, default=0)
    customer_fee_fixed = StrictIntegerField(min_value=0, max_value=MAX_CENTS, default=0)
    customer_lending_rate = StrictIntegerField(min_value=0, max_value=MAX_BPS, default=0)
    deferred_trigger_limit_days = StrictIntegerField(
        min_value=1, max_value=365, required=False, allow_null=True
    )

    def validate(self, attrs):
        if attrs["min_purchase_amount"] > attrs["max_purchase_amount"]:
            raise serializers.ValidationError(
                {"min_purchase_amount": "Must not exceed max_purchase_amount."}
            )
        if attrs["deferred_days"] and attrs["deferred_months"]:
            raise serializers.ValidationError(
                {"deferred_days": "Give deferred_days or deferred_months, not both."},
                code="incompatible_parameters",
            )
        if (attrs["deferred_days"] or attrs["deferred_months"]) and attrs[
            "installments_count"
        ] != 1:
            raise serializers.ValidationError(
                {"installments_count": "A deferred (pay later) plan has one instalment."},
                code="incompatible_parameters",
            )
        attrs.setdefault("available_online", attrs["kind"] == "general")
        attrs.setdefault("available_in_pos", attrs["kind"] == "pos")
        return attrs


def parse_fee_plan_specs(data: Any) -> list[dict[str, Any]]:
    """Validate a list of fee plans in API shape; return model field values (Money inside)."""
    if not isinstance(data, list):
        raise InvalidFeePlans("Fee plans must be a JSON list of objects.")
    serializer = FeePlanSpecSerializer(data=data, many=True)
    if not serializer.is_valid():
        errors = flatten_validation_errors(serializer.errors, data)
        summary = "; ".join(f"plan {e['field']}: {e['message']}" for e in errors)
        raise InvalidFeePlans(f"Invalid fee plans: {summary}")
    identities = [
        (p["kind"], p["installments_count"], p["deferred_days"], p["deferred_months"])
        for p in serializer.validated_data
    ]
    if len(set(identities)) != len(identities):
        raise InvalidFeePlans("Two fee plans have the same kind, instalments and deferral.")
    money_fields = (
        "min_purchase_amount",
        "max_purchase_amount",
        "merchant_fee_fixed",
        "customer_fee_fixed",
    )
    return [
        {key: to_money(value) if key in money_fields else value for key, value in plan.items()}
        for plan in serializer.validated_data
    ]


def load_fee_plan_specs(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InvalidFeePlans(f"Cannot read fee plans from {path}: {exc}") from exc
    return parse_fee_plan_specs(data)
