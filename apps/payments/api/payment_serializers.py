"""Shapes of the payment and order endpoints (contract sections 3 and 8).

Requests are checked for shape only, strictly where a wrong type would hurt (amounts and
counts are JSON integers, strings are length-capped, URLs are http(s), emails and phone
numbers are real ones, dates are YYYY-MM-DD) and loosely elsewhere: unknown keys are
ignored everywhere, as Alma's plugins send extra ones. Free-form objects the merchant owns
(``custom_data``, ``cart``, order ``data``...) are stored and echoed as sent.

Responses are built by ``payment_to_json`` / ``order_to_json``, the one place a Payment or
an Order becomes JSON (the checkout, notifications and refunds reuse them); the response
serializers below declare that shape for the OpenAPI schema, and the tests hold the two
together.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from django.conf import settings
from django.core.validators import EmailValidator
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.common.api.fields import StrictBooleanField, StrictCharField, StrictIntegerField
from apps.common.dates import business_date, date_to_timestamp
from apps.common.money import round_half_up_div, to_cents
from apps.payments import links
from apps.payments.api.serializers import (
    COUNTRY_CODES,
    MAX_DEFERRED_DAYS,
    MAX_DEFERRED_MONTHS,
    ONLINE_ORIGINS,
    POS_ORIGINS,
    installments_count_field,
    purchase_amount_field,
)
from apps.payments.models import Charge, Instalment, Order, Payment, PaymentState
from apps.payments.postponement import (
    OPEN_PAYMENT_STATES,
    UNPAID_STATES,
    PostponeFacts,
    can_postpone,
    next_unpaid_due_date,
)
from apps.payments.services.charges import IN_DOUBT
from apps.verification.phones import phone_e164

MAX_URL_LENGTH = 1000
MAX_NAME_LENGTH = 100
MAX_TEXT_LENGTH = 500
MAX_JSON_CHARS = 32_000  # per free-form object (custom_data, cart...): far above any plugin's
MAX_ORDERS = 50
MAX_EXPIRES_AFTER = 43_200  # minutes: 30 days
LOCALE = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{1,8})*$")
BIRTH_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
STATES = [value for value, _label in PaymentState.choices]
STATE_LIST_PATTERN = r"^({s})(,({s}))*$".format(s="|".join(STATES))
# French VAT on Tranche's merchant fee: the fee a plan states includes it.
VAT_RATE_PERCENT = 20


# --- request fields ---------------------------------------------------------------------


def text(max_length: int = MAX_TEXT_LENGTH, **kwargs) -> StrictCharField:
    return StrictCharField(
        max_length=max_length, required=False, allow_null=True, allow_blank=True, **kwargs
    )


# Scheme, a host, then anything without spaces or control characters (explicit ranges, so
# Python and the schema's ECMAScript regex agree): what a redirect or a callback needs.
# Whether the host is reachable (or private) is checked when calling it.
# No brackets in the host: IPv6 literals are not accepted (urlsplit refuses unbalanced ones).
HTTP_URL = re.compile(r"^https?://[^\x00-\x20\x7f-\x9f/?#\[\]]+([/?#][^\x00-\x20\x7f-\x9f]*)?$")


@extend_schema_field(
    {
        "type": "string",
        "maxLength": MAX_URL_LENGTH,
        "nullable": True,
        "pattern": f"^$|{HTTP_URL.pattern}",
        "description": "An absolute http(s) URL; empty or null: not given.",
    }
)
class HttpUrlField(StrictCharField):
    """An absolute http(s) URL; empty or null means "not given"."""

    default_error_messages = {"invalid_value": _("Enter an absolute http:// or https:// URL.")}

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(
            max_length=MAX_URL_LENGTH,
            allow_null=True,
            allow_blank=True,
            trim_whitespace=False,
            **kwargs,
        )

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value and not HTTP_URL.fullmatch(value):
            self.fail("invalid_value")
        return value


@extend_schema_field({"type": "string", "format": "email", "maxLength": 254, "nullable": True})
class StrictEmailField(StrictCharField):
    default_error_messages = {"invalid_value": _("Enter a valid email address.")}
    _validate = EmailValidator()

    def __init__(self, **kwargs):
        super().__init__(
            max_length=254, required=False, allow_null=True, allow_blank=True, **kwargs
        )

    def to_internal_value(self, data):
        value = super().to_internal_value(data).strip()
        if value:
            try:
                self._validate(value)
            except Exception:
                self.fail("invalid_value")
        return value


@extend_schema_field(
    {
        "type": "string",
        "nullable": True,
        "maxLength": 30,
        # The pattern shows the canonical form (E.164): any valid number is accepted, national
        # ones ("06 12 34 56 78") read as French, and stored in E.164.
        "pattern": r"^$|^\+336[0-2]\d{7}$",
        "description": "A phone number; national numbers are read as French. Stored in E.164.",
    }
)
class PhoneField(StrictCharField):
    default_error_messages = {"invalid_value": _("Enter a valid phone number, e.g. +33612345678.")}

    def __init__(self, **kwargs):
        super().__init__(max_length=30, required=False, allow_null=True, allow_blank=True, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data).strip()
        if not value:
            return value
        number = phone_e164(value)
        if number is None:
            self.fail("invalid_value")
        return number


@extend_schema_field(
    {
        "type": "string",
        "nullable": True,
        "enum": ["", *sorted(COUNTRY_CODES)],
        "description": "ISO 3166-1 alpha-2 (any case); empty or null: not given.",
    }
)
class StrictCountryField(StrictCharField):
    default_error_messages = {
        "unknown": _("Unknown country: expected an ISO 3166-1 alpha-2 code such as FR.")
    }

    def __init__(self, **kwargs):
        super().__init__(required=False, allow_null=True, allow_blank=True, max_length=2, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data).strip().upper()
        if value and value not in COUNTRY_CODES:
            self.fail("unknown")
        return value


@extend_schema_field(
    {
        "type": "string",
        "nullable": True,
        # Any real date as YYYY-MM-DD from 1900 is accepted; the pattern (days 01-28) only
        # admits real dates, so that every value it allows is one the API takes.
        "pattern": r"^$|^(19|20)\d\d-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])$",
        "example": "1990-05-17",
    }
)
class BirthDateField(StrictCharField):
    default_error_messages = {"date": _("Enter a date as YYYY-MM-DD.")}

    def __init__(self, **kwargs):
        super().__init__(required=False, allow_null=True, allow_blank=True, max_length=10, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not value:
            return None
        if not BIRTH_DATE.match(value):
            self.fail("date")
        try:
            day = date.fromisoformat(value)
        except ValueError:
            self.fail("date")
        if day.year < 1900:
            self.fail("date")
        return value


@extend_schema_field({"type": "object", "additionalProperties": {}, "nullable": True})
class JSONObjectField(serializers.Field):
    """A free-form JSON object the merchant owns, stored and echoed as sent."""

    default_error_messages = {
        "not_a_dict": _("Expected a JSON object."),
        "too_long": _("This object is too large (at most {max} characters of JSON)."),
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(allow_null=True, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("not_a_dict")
        if len(json.dumps(data, separators=(",", ":"))) > MAX_JSON_CHARS:
            self.fail("too_long", max=MAX_JSON_CHARS)
        return data

    def to_representation(self, value):
        return value


@extend_schema_field(
    {"oneOf": [{"type": "string", "maxLength": 100}, {"type": "integer"}], "nullable": True}
)
class ReferenceField(serializers.Field):
    """A shop's id of something (a cart, an order): a string or an integer."""

    default_error_messages = {"invalid": _("Must be a string or an integer.")}

    def __init__(self, **kwargs):
        super().__init__(required=False, allow_null=True, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, str | int):
            self.fail("invalid")
        if isinstance(data, str) and len(data) > MAX_NAME_LENGTH:
            raise serializers.ValidationError(
                f"Ensure this field has no more than {MAX_NAME_LENGTH} characters.",
                code="max_length",
            )
        return data

    def to_representation(self, value):
        return value


@extend_schema_field(
    {"type": "string", "nullable": True, "maxLength": 35, "pattern": f"^$|{LOCALE.pattern}"}
)
class LocaleField(StrictCharField):
    """A language, or language and region: fr, en, fr_FR, en-GB."""

    default_error_messages = {"invalid_value": _("Expected a locale such as fr, en or fr_FR.")}

    def __init__(self, **kwargs):
        super().__init__(required=False, allow_null=True, allow_blank=True, max_length=35, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value and not LOCALE.fullmatch(value):
            self.fail("invalid_value")
        return value


class QueryTextField(serializers.RegexField):
    """A query string value, as sent (no trimming); NUL characters are refused."""

    def __init__(self, **kwargs):
        super().__init__(
            r"^[^\x00]*$", required=False, allow_blank=True, trim_whitespace=False, **kwargs
        )


# --- validating -------------------------------------------------------------------------

_shapes: dict[type[serializers.Serializer], serializers.Serializer] = {}


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """``data`` checked by ``serializer_class``: its validated data, or DRF's
    ValidationError with the same nested detail ``is_valid(raise_exception=True)`` gives.

    DRF builds a serializer's fields per instance by deep-copying every declared field, which
    for a payment's body (some 60 fields, nested) costs several times the validation itself.
    A serializer is also a field, and validating through ``run_validation`` keeps nothing
    on it; these bodies use no context. So each process builds each shape once and reuses it.
    """
    shape = _shapes.get(serializer_class)
    if shape is None:
        shape = _shapes.setdefault(serializer_class, serializer_class())
    return shape.run_validation(data)


# --- request bodies ---------------------------------------------------------------------


class PaymentAddressSerializer(serializers.Serializer):
    first_name = text(MAX_NAME_LENGTH)
    last_name = text(MAX_NAME_LENGTH)
    company = text(200)
    line1 = text()
    line2 = text()
    postal_code = text(20)
    city = text(200)
    country = StrictCountryField()
    county_sublocality = text(200)
    state_province = text(200)
    email = StrictEmailField()
    phone = PhoneField()


class PaymentCartItemSerializer(serializers.Serializer):
    sku = text(200)
    vendor = text(200)
    title = text()
    variant_title = text()
    quantity = StrictIntegerField(min_value=0, max_value=1_000_000, required=False, allow_null=True)
    unit_price = StrictIntegerField(
        min_value=-(10**9), max_value=10**9, required=False, allow_null=True
    )
    line_price = StrictIntegerField(
        min_value=-(10**9), max_value=10**9, required=False, allow_null=True
    )
    is_gift = StrictBooleanField(required=False, allow_null=True)
    categories = serializers.ListField(
        child=StrictCharField(max_length=200), required=False, allow_null=True, max_length=50
    )
    url = text(2000)
    picture_url = text(2000)
    requires_shipping = StrictBooleanField(required=False, allow_null=True)
    taxes_included = StrictBooleanField(required=False, allow_null=True)


class PaymentCartDiscountSerializer(serializers.Serializer):
    title = text()
    amount = StrictIntegerField(min_value=0, max_value=10**9, required=False, allow_null=True)


class PaymentCartSerializer(serializers.Serializer):
    """The cart, checked where it is typed and stored as sent."""

    items = serializers.ListField(
        child=PaymentCartItemSerializer(), required=False, allow_null=True, max_length=500
    )
    discounts = serializers.ListField(
        child=PaymentCartDiscountSerializer(), required=False, allow_null=True, max_length=100
    )

    def to_internal_value(self, data):
        super().to_internal_value(data)
        if len(json.dumps(data, separators=(",", ":"))) > 4 * MAX_JSON_CHARS:
            raise serializers.ValidationError("This cart is too large.", code="max_length")
        return data


class PaymentInputSerializer(serializers.Serializer):
    purchase_amount = purchase_amount_field(help_text="Cents, fees not included.")
    installments_count = installments_count_field(required=False, help_text="Default 3.")
    deferred_days = StrictIntegerField(
        min_value=0, max_value=MAX_DEFERRED_DAYS, required=False, allow_null=True
    )
    deferred_months = StrictIntegerField(
        min_value=0, max_value=MAX_DEFERRED_MONTHS, required=False, allow_null=True
    )
    return_url = HttpUrlField(help_text="Default: the merchant's. Returned with ?pid=.")
    customer_cancel_url = HttpUrlField()
    failure_return_url = HttpUrlField()
    ipn_callback_url = HttpUrlField()
    custom_data = JSONObjectField(help_text="Yours: stored and returned as sent.")
    locale = LocaleField(help_text="fr, en, fr_FR, en-GB...")
    origin = serializers.ChoiceField(
        choices=ONLINE_ORIGINS + POS_ORIGINS, required=False, allow_null=True
    )
    expires_after = StrictIntegerField(
        min_value=1,
        max_value=MAX_EXPIRES_AFTER,
        required=False,
        allow_null=True,
        help_text="Minutes; default: the merchant's setting.",
    )
    capture_method = serializers.ChoiceField(
        choices=["automatic"],
        required=False,
        allow_null=True,
        help_text="Only automatic: deferred capture is not offered.",
    )
    deferred = serializers.ChoiceField(
        choices=["trigger"],
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="trigger: the plan starts when you call /trigger (pay on shipment).",
    )
    deferred_description = text()
    shipping_address = PaymentAddressSerializer(required=False, allow_null=True)
    billing_address = PaymentAddressSerializer(required=False, allow_null=True)
    shipping_info = JSONObjectField()
    cart = PaymentCartSerializer(required=False, allow_null=True)


class CustomerInputSerializer(serializers.Serializer):
    first_name = text(MAX_NAME_LENGTH)
    last_name = text(MAX_NAME_LENGTH)
    email = StrictEmailField()
    phone = PhoneField()
    birth_date = BirthDateField()
    addresses = serializers.ListField(
        child=PaymentAddressSerializer(), required=False, allow_null=True, max_length=10
    )
    country = StrictCountryField()
    county_sublocality = text(200)
    state_province = text(200)
    is_business = StrictBooleanField(required=False, allow_null=True)
    business_name = text(200)
    business_id_number = text(MAX_NAME_LENGTH)
    metadata = JSONObjectField()


class OrderInputSerializer(serializers.Serializer):
    merchant_reference = text(200)
    merchant_url = HttpUrlField()
    customer_url = HttpUrlField()
    comment = text(2000)
    data = JSONObjectField()


class PaymentCreateSerializer(serializers.Serializer):
    payment = PaymentInputSerializer()
    customer = CustomerInputSerializer(required=False, allow_null=True)
    order = OrderInputSerializer(required=False, allow_null=True)
    orders = serializers.ListField(
        child=OrderInputSerializer(), required=False, allow_null=True, max_length=MAX_ORDERS
    )
    website_customer_details = JSONObjectField(help_text="Risk data; stored.")


class PaymentEditFieldsSerializer(serializers.Serializer):
    custom_data = JSONObjectField(help_text="Replaces the stored custom_data.")
    return_url = HttpUrlField()
    customer_cancel_url = HttpUrlField()
    failure_return_url = HttpUrlField()
    ipn_callback_url = HttpUrlField()
    locale = LocaleField()
    shipping_address = PaymentAddressSerializer(required=False, allow_null=True)
    billing_address = PaymentAddressSerializer(required=False, allow_null=True)
    cart = PaymentCartSerializer(required=False, allow_null=True)
    purchase_amount = purchase_amount_field(
        required=False, help_text="Fixed at creation: only the same value is accepted."
    )
    installments_count = installments_count_field(required=False)
    deferred_days = StrictIntegerField(min_value=0, max_value=MAX_DEFERRED_DAYS, required=False)
    deferred_months = StrictIntegerField(min_value=0, max_value=MAX_DEFERRED_MONTHS, required=False)


class CustomerEditSerializer(serializers.Serializer):
    first_name = text(MAX_NAME_LENGTH)
    last_name = text(MAX_NAME_LENGTH)
    email = StrictEmailField()
    phone = PhoneField()


class PaymentEditSerializer(serializers.Serializer):
    payment = PaymentEditFieldsSerializer(required=False)
    customer = CustomerEditSerializer(
        required=False, allow_null=True, help_text="Until the payment is accepted."
    )


class PaymentOrdersSerializer(serializers.Serializer):
    """One order (Alma's PHP client) or a list (its Python client); neither is no order
    (PUT adds nothing, POST removes them all)."""

    order = OrderInputSerializer(required=False, allow_null=True)
    orders = serializers.ListField(
        child=OrderInputSerializer(), required=False, allow_null=True, max_length=MAX_ORDERS
    )


def order_list(data: dict) -> list[dict]:
    """The orders of a validated PaymentOrdersSerializer body, ``order`` first."""
    return ([data["order"]] if data.get("order") else []) + list(data.get("orders") or [])


class OrderEditSerializer(OrderInputSerializer):
    """The order's fields to change; those absent stay as they are."""


class PotentialFraudSerializer(serializers.Serializer):
    reason = text(MAX_TEXT_LENGTH, help_text="amount_mismatch, state_error, or your own words.")


class OrderStatusSerializer(serializers.Serializer):
    status = StrictCharField(
        max_length=100, trim_whitespace=False, help_text="Your order status, in your words."
    )
    is_shipped = StrictBooleanField(required=False, allow_null=True)


class OrderShipmentSerializer(serializers.Serializer):
    carrier = text(200)
    tracking_number = text(200)
    tracking_url = HttpUrlField()


class BusinessEventSerializer(serializers.Serializer):
    event_type = StrictCharField(
        max_length=40, trim_whitespace=False, help_text="cart_initiated, order_confirmed..."
    )
    cart_id = ReferenceField()
    order_id = ReferenceField()
    alma_payment_id = text(MAX_NAME_LENGTH)
    is_alma_p1x = StrictBooleanField(required=False, allow_null=True)
    is_alma_bnpl = StrictBooleanField(required=False, allow_null=True)
    was_bnpl_eligible = StrictBooleanField(required=False, allow_null=True)


class PaymentListQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(
        min_value=1, max_value=100, required=False, help_text="Default 20, at most 100."
    )
    starting_after = QueryTextField(
        max_length=100, help_text="The id of the last item of the previous page."
    )
    state = serializers.RegexField(
        STATE_LIST_PATTERN, required=False, help_text="Comma-joined states, e.g. paid,in_progress."
    )


class OrderListQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(
        min_value=1, max_value=100, required=False, help_text="Default 20, at most 100."
    )
    starting_after = QueryTextField(max_length=100)
    merchant_reference = QueryTextField(max_length=200)


# --- responses: declared for the schema; payment_to_json builds them -----------------------


class InstalmentSerializer(serializers.Serializer):
    id = serializers.CharField()
    due_date = serializers.IntegerField(help_text="UNIX timestamp, noon Europe/Paris.")
    purchase_amount = serializers.IntegerField()
    original_purchase_amount = serializers.IntegerField()
    customer_fee = serializers.IntegerField()
    customer_interest = serializers.IntegerField()
    total_amount = serializers.IntegerField()
    # Plain strings: an enum named "state" would clash with the merchant's in the schema.
    state = serializers.CharField(help_text=", ".join(Instalment.State.values))
    date_paid = serializers.IntegerField(allow_null=True)
    customer_can_postpone = serializers.BooleanField()
    is_check = serializers.BooleanField()
    time_delta_from_start = serializers.DictField(
        child=serializers.IntegerField(), allow_null=True, help_text="Pay-later plans."
    )


class AddressSerializer(serializers.Serializer):
    first_name = serializers.CharField(allow_null=True)
    last_name = serializers.CharField(allow_null=True)
    company = serializers.CharField(allow_null=True)
    line1 = serializers.CharField(allow_null=True)
    line2 = serializers.CharField(allow_null=True)
    postal_code = serializers.CharField(allow_null=True)
    city = serializers.CharField(allow_null=True)
    country = serializers.CharField(allow_null=True)
    county_sublocality = serializers.CharField(allow_null=True)
    state_province = serializers.CharField(allow_null=True)
    email = serializers.CharField(allow_null=True)
    phone = serializers.CharField(allow_null=True)
    title = serializers.CharField(allow_null=True)
    created = serializers.IntegerField()


ADDRESS_FIELDS = tuple(PaymentAddressSerializer().fields)


class CustomerSerializer(serializers.Serializer):
    id = serializers.CharField()
    created = serializers.IntegerField()
    first_name = serializers.CharField(allow_null=True)
    last_name = serializers.CharField(allow_null=True)
    email = serializers.CharField(allow_null=True)
    phone = serializers.CharField(allow_null=True)
    birth_date = serializers.CharField(allow_null=True)
    addresses = AddressSerializer(many=True)
    country = serializers.CharField(allow_null=True)
    county_sublocality = serializers.CharField(allow_null=True)
    state_province = serializers.CharField(allow_null=True)
    is_business = serializers.BooleanField()
    business_name = serializers.CharField(allow_null=True)
    business_id_number = serializers.CharField(allow_null=True)
    metadata = serializers.DictField()


class OrderSerializer(serializers.Serializer):
    id = serializers.CharField()
    payment = serializers.CharField(help_text="The payment's id.")
    merchant_reference = serializers.CharField(allow_null=True)
    merchant_url = serializers.CharField(allow_null=True)
    customer_url = serializers.CharField(allow_null=True)
    comment = serializers.CharField(allow_null=True)
    data = serializers.DictField()
    status = serializers.CharField(allow_null=True)
    is_shipped = serializers.BooleanField(allow_null=True)
    carrier = serializers.CharField(allow_null=True)
    tracking_number = serializers.CharField(allow_null=True)
    tracking_url = serializers.CharField(allow_null=True)
    created = serializers.IntegerField()
    updated = serializers.IntegerField()


class MerchantFeeSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Cents, French VAT (20 %) included.")
    total_excluding_tax = serializers.IntegerField()
    tax = serializers.IntegerField()


class FeesSerializer(serializers.Serializer):
    merchant = MerchantFeeSerializer()


class RefundSerializer(serializers.Serializer):
    id = serializers.CharField(allow_null=True, help_text="refund_...; null in a dry run.")
    created = serializers.IntegerField()
    amount = serializers.IntegerField(help_text="The purchase amount refunded, in cents.")
    merchant_reference = serializers.CharField(allow_null=True)
    comment = serializers.CharField(allow_null=True)
    payment = serializers.CharField()
    state = serializers.ChoiceField(
        choices=["pending", "succeeded", "failed"],
        help_text="pending while the money is on its way back to the card.",
    )
    from_payment_cancellation = serializers.BooleanField()
    payment_refund_amount = serializers.IntegerField(
        help_text="Cents back to the customer's card (customer fees included)."
    )
    rebate_amount = serializers.IntegerField(
        help_text="Cents cancelled from what the customer still owed."
    )
    customer_fees_refunded = serializers.IntegerField()
    amount_customer_fees = serializers.IntegerField(help_text="Deprecated.")
    amount_customer_fees_with_vat = serializers.IntegerField(help_text="Deprecated.")
    amount_customer_fees_vat = serializers.IntegerField(help_text="Deprecated.")


class PaymentSerializer(serializers.Serializer):
    id = serializers.CharField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    state = serializers.CharField(help_text=", ".join(STATES))
    processing_status = serializers.CharField()
    url = serializers.CharField(help_text="The hosted payment page.")
    purchase_amount = serializers.IntegerField()
    customer_fee = serializers.IntegerField()
    customer_interest = serializers.IntegerField()
    merchant_target_fee = serializers.IntegerField(help_text="Cents, VAT included.")
    fees = FeesSerializer()
    annual_interest_rate = serializers.IntegerField(help_text="APR in basis points.")
    installments_count = serializers.IntegerField()
    deferred_days = serializers.IntegerField()
    deferred_months = serializers.IntegerField()
    kind = serializers.CharField(help_text="P{n}X, or PAY_LATER.")
    payment_plan = InstalmentSerializer(many=True)
    amount_left_to_pay = serializers.IntegerField()
    return_url = serializers.CharField(allow_null=True)
    customer_cancel_url = serializers.CharField(allow_null=True)
    failure_return_url = serializers.CharField(allow_null=True)
    ipn_callback_url = serializers.CharField(allow_null=True)
    custom_data = serializers.DictField()
    locale = serializers.CharField()
    origin = serializers.CharField()
    integration_origin = serializers.CharField(allow_null=True)
    customer = CustomerSerializer()
    shipping_address = AddressSerializer(allow_null=True)
    billing_address = AddressSerializer(allow_null=True)
    cart = serializers.DictField(allow_null=True)
    orders = OrderSerializer(many=True)
    refunds = RefundSerializer(many=True)
    amount_already_refunded = serializers.IntegerField()
    customer_fees_refunded = serializers.IntegerField()
    is_completely_refunded = serializers.BooleanField()
    is_deferred_capture = serializers.BooleanField()
    expired_at = serializers.IntegerField(allow_null=True)
    deferred_trigger = serializers.BooleanField()
    deferred_trigger_description = serializers.CharField(allow_null=True)
    deferred_trigger_applied = serializers.IntegerField(allow_null=True)
    merchant_id = serializers.CharField()
    merchant_name = serializers.CharField()
    cancelation_reason = serializers.CharField(allow_null=True)
    seller = serializers.DictField(allow_null=True)
    country_of_service = serializers.CharField()
    transaction_country = serializers.CharField()


class PaymentPageSerializer(serializers.Serializer):
    data = PaymentSerializer(many=True)
    has_more = serializers.BooleanField()


class OrderPageSerializer(serializers.Serializer):
    data = OrderSerializer(many=True)
    has_more = serializers.BooleanField()


class EmptySerializer(serializers.Serializer):
    """``{}``."""


# --- building the JSON ------------------------------------------------------------------


def _ts(moment) -> int | None:
    return None if moment is None else int(moment.timestamp())


LEFT_TO_PAY_STATES = frozenset({"pending", "incident", "claimed"})
NOTHING_LEFT_STATES = frozenset(
    {PaymentState.STOPPED, PaymentState.PAID, PaymentState.COLLECTION_DONE}
)


def processing_status(payment: Payment) -> str:
    """Where the money stands: ``awaiting_authorization`` until the customer's card is
    charged at checkout, ``captured`` after, ``canceled`` if it stopped before that."""
    if payment.accepted_at is not None:
        return "captured"
    if payment.state == PaymentState.STOPPED:
        return "canceled"
    return "awaiting_authorization"


def merchant_fee_json(fee_cents: int) -> dict[str, int]:
    """The merchant fee with its French VAT (20 %, included in the fee a plan states)."""
    excluding = round_half_up_div(fee_cents * 100, 100 + VAT_RATE_PERCENT)
    return {"total": fee_cents, "total_excluding_tax": excluding, "tax": fee_cents - excluding}


def instalment_to_json(
    instalment: Instalment, *, time_delta: dict | None, customer_can_postpone: bool = False
) -> dict[str, Any]:
    principal = to_cents(instalment.purchase_amount)
    fee = to_cents(instalment.customer_fee)
    interest = to_cents(instalment.customer_interest)
    return {
        "id": instalment.public_id,
        "due_date": date_to_timestamp(instalment.due_date),
        "purchase_amount": principal,
        "original_purchase_amount": to_cents(instalment.original_purchase_amount),
        "customer_fee": fee,
        "customer_interest": interest,
        "total_amount": principal + fee + interest,
        "state": instalment.state,
        "date_paid": _ts(instalment.paid_at),
        "customer_can_postpone": customer_can_postpone,
        "is_check": False,
        "time_delta_from_start": time_delta,
    }


def address_to_json(address: dict | None, *, created: int) -> dict[str, Any] | None:
    if address is None:
        return None
    body = {name: address.get(name) or None for name in ADDRESS_FIELDS}
    body["title"] = None
    body["created"] = created
    return body


def order_to_json(order: Order, *, payment_id: str | None = None) -> dict[str, Any]:
    """An Order as Alma's clients read it (``payment`` is the payment's id)."""
    return {
        "id": order.public_id,
        "payment": payment_id or order.payment.public_id,
        "merchant_reference": order.merchant_reference,
        "merchant_url": order.merchant_url,
        "customer_url": order.customer_url,
        "comment": order.comment,
        "data": order.data or {},
        "status": order.status,
        "is_shipped": order.is_shipped,
        "carrier": order.carrier,
        "tracking_number": order.tracking_number,
        "tracking_url": order.tracking_url,
        "created": int(order.created_at.timestamp()),
        "updated": int(order.updated_at.timestamp()),
    }


def _customer_to_json(payment: Payment, created: int) -> dict[str, Any]:
    # Only what this payment's merchant sent: never what the customer or another
    # merchant wrote on the shared Customer row.
    data = payment.customer_data or {}
    return {
        "id": payment.customer.public_id,
        "created": created,
        "first_name": data.get("first_name") or None,
        "last_name": data.get("last_name") or None,
        "email": data.get("email") or None,
        "phone": data.get("phone") or None,
        "birth_date": data.get("birth_date") or None,
        "addresses": [address_to_json(a, created=created) for a in data.get("addresses") or []],
        "country": data.get("country") or None,
        "county_sublocality": data.get("county_sublocality") or None,
        "state_province": data.get("state_province") or None,
        "is_business": bool(data.get("is_business")),
        "business_name": data.get("business_name") or None,
        "business_id_number": data.get("business_id_number") or None,
        "metadata": data.get("metadata") or {},
    }


def _instalments(payment: Payment) -> list[Instalment]:
    rows = getattr(payment, "instalment_rows", None)
    if rows is None:
        rows = list(payment.instalments.order_by("number"))
    return rows


def _orders(payment: Payment) -> list[Order]:
    rows = getattr(payment, "current_orders", None)
    if rows is None:
        rows = list(payment.orders.filter(detached_at__isnull=True).order_by("created_at", "id"))
    return rows


def _refunds(payment: Payment) -> list:
    rows = getattr(payment, "refund_rows", None)
    if rows is None:
        # apps.refunds keeps them (``payment.refunds``); most payments have none.
        if not payment.amount_refunded:
            return []
        rows = list(payment.refunds.order_by("created_at", "pk"))
    # A dry run's refund (no pk yet) comes after those made, even at the same instant.
    return sorted(rows, key=lambda row: (row.created_at, row.pk is None, row.pk or 0))


def refund_to_json(refund, *, payment_id: str) -> dict[str, Any]:
    """A refund (``apps.refunds.models.Refund``) as Alma's clients read it (contract 6):
    ``amount`` is the purchase amount refunded, ``rebate_amount`` what it cancelled of what
    the customer still owed, ``payment_refund_amount`` what went back to the card (customer
    fees included on a complete refund). An id of null: the refund a ``dry_run`` would make."""
    fees = to_cents(refund.customer_fee_refunded) + to_cents(refund.interest_refunded)
    return {
        "id": refund.public_id or None,
        "created": int(refund.created_at.timestamp()),
        "amount": to_cents(refund.amount),
        "merchant_reference": refund.merchant_reference or None,
        "comment": refund.comment or None,
        "payment": payment_id,
        "state": refund.state,
        "from_payment_cancellation": False,
        "payment_refund_amount": to_cents(refund.to_card) + fees,
        "rebate_amount": to_cents(refund.owed_cancelled) + to_cents(refund.written_off_cancelled),
        "customer_fees_refunded": fees,
        "amount_customer_fees": fees,
        "amount_customer_fees_with_vat": fees,
        "amount_customer_fees_vat": 0,
    }


def _postponable(payment: Payment, rows: list[Instalment]) -> set[int]:
    """The instalments the customer may postpone today (``apps.payments.postponement``),
    from the rows loaded with the payment.

    Whether a debit is in flight is only asked (one query) when an unpaid instalment has no
    next debit, the sign that the debit run may have claimed it; the card's expiry is used
    when the card was loaded with the payment (the API's selectors do not load it)."""
    if payment.state not in OPEN_PAYMENT_STATES:
        return set()
    unpaid = [row for row in rows if row.state in UNPAID_STATES]
    if not unpaid:
        return set()
    in_flight: set[int] = set()
    if any(row.next_debit_at is None for row in unpaid):
        for instalment_id, covers in Charge.objects.filter(
            payment_id=payment.pk, status__in=IN_DOUBT
        ).values_list("instalment_id", "covers"):
            in_flight.update([instalment_id] if instalment_id else [], covers or ())
    card = payment.card if Payment.card.is_cached(payment) else None
    today = business_date(timezone.now())
    return {
        row.pk
        for row in unpaid
        if can_postpone(
            PostponeFacts(
                instalment_state=row.state,
                due_date=row.due_date,
                postponements=row.postponements,
                payment_state=payment.state,
                next_unpaid_due_date=next_unpaid_due_date(rows, row.number),
                in_flight=row.pk in in_flight,
                card_expiry=(card.exp_year, card.exp_month) if card is not None else None,
            ),
            today=today,
            max_days=settings.POSTPONE_MAX_DAYS,
            per_instalment=settings.POSTPONEMENTS_PER_INSTALMENT,
        )
    }


def payment_to_json(payment: Payment) -> dict[str, Any]:
    """A Payment as Alma's clients read it (contract 3.2): every amount an int in cents,
    never null; dates as UNIX timestamps; URLs with ``pid``.

    Reads ``payment.instalment_rows`` and ``payment.current_orders`` when the selector or
    the service attached them (no query), else queries them; ``customer`` and ``merchant``
    should be loaded with the payment (``select_related``).
    """
    pid = payment.public_id
    created = int(payment.created_at.timestamp())
    merchant = payment.merchant
    time_delta = (
        {"days": payment.deferred_days, "months": payment.deferred_months}
        if payment.deferred_days or payment.deferred_months
        else None
    )
    rows = _instalments(payment)
    postponable = _postponable(payment, rows)
    plan = [
        instalment_to_json(i, time_delta=time_delta, customer_can_postpone=i.pk in postponable)
        for i in rows
    ]
    if payment.state in NOTHING_LEFT_STATES:
        left_to_pay = 0
    else:
        left_to_pay = sum(
            item["total_amount"] for item in plan if item["state"] in LEFT_TO_PAY_STATES
        )
    merchant_fee = to_cents(payment.merchant_fee)
    return {
        "id": pid,
        "created": created,
        "updated": int(payment.updated_at.timestamp()),
        "state": payment.state,
        "processing_status": processing_status(payment),
        "url": links.checkout_url(pid),
        "purchase_amount": to_cents(payment.purchase_amount),
        "customer_fee": to_cents(payment.customer_fee),
        "customer_interest": to_cents(payment.customer_interest),
        "merchant_target_fee": merchant_fee,
        "fees": {"merchant": merchant_fee_json(merchant_fee)},
        "annual_interest_rate": payment.annual_interest_rate,
        "installments_count": payment.installments_count,
        "deferred_days": payment.deferred_days,
        "deferred_months": payment.deferred_months,
        "kind": payment.kind,
        "payment_plan": plan,
        "amount_left_to_pay": left_to_pay,
        "return_url": links.with_pid(payment.return_url, pid) or None,
        "customer_cancel_url": links.with_pid(payment.customer_cancel_url, pid) or None,
        "failure_return_url": links.with_pid(payment.failure_return_url, pid) or None,
        "ipn_callback_url": links.with_pid(payment.ipn_callback_url, pid) or None,
        "custom_data": payment.custom_data or {},
        "locale": payment.locale or "fr",
        "origin": payment.origin,
        "integration_origin": None,
        "customer": _customer_to_json(payment, created),
        "shipping_address": address_to_json(payment.shipping_address, created=created),
        "billing_address": address_to_json(payment.billing_address, created=created),
        "cart": payment.cart,
        "orders": [order_to_json(o, payment_id=pid) for o in _orders(payment)],
        "refunds": [refund_to_json(r, payment_id=pid) for r in _refunds(payment)],
        "amount_already_refunded": to_cents(payment.amount_refunded),
        "customer_fees_refunded": to_cents(payment.customer_fees_refunded),
        "is_completely_refunded": payment.is_completely_refunded,
        "is_deferred_capture": False,
        "expired_at": _ts(payment.expired_at),
        "deferred_trigger": payment.deferred_trigger,
        "deferred_trigger_description": payment.deferred_trigger_description or None,
        "deferred_trigger_applied": _ts(payment.deferred_trigger_applied_at),
        "merchant_id": merchant.public_id,
        "merchant_name": merchant.legal_name,
        "cancelation_reason": None,
        "seller": None,
        "country_of_service": "FR",
        "transaction_country": "FR",
    }
