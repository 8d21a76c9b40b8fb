"""``POST /v1/payments/{id}/refund`` (contract section 6): partial with ``amount``, complete
without it; ``dry_run`` answers the payment as the refund would leave it, changing nothing."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from apps.common.api.fields import StrictBooleanField
from apps.common.money import to_cents
from apps.payments import selectors
from apps.payments.api.payment_serializers import (
    PaymentSerializer,
    payment_to_json,
    text,
    validated,
)
from apps.payments.api.payment_views import PAYMENTS, PaymentsAPIView
from apps.refunds import services
from apps.refunds.allocation import RefundAmountInvalid
from apps.refunds.models import Refund
from apps.refunds.previews import preview_payment


@extend_schema_field(
    {
        "type": "integer",
        "minimum": 1,
        "description": "Cents to refund, at most what is left to refund. Leave it out to "
        "refund everything left, customer fees included.",
    }
)
class AmountField(serializers.Field):
    """Any JSON value: the service checks it against what is left to refund, so that every
    refusal (not a whole number of cents, zero, too much) names the maximum."""

    def to_internal_value(self, data):
        return data


class RefundCreateSerializer(serializers.Serializer):
    amount = AmountField(required=False, allow_null=True)
    merchant_reference = text(255)
    comment = text(1000)
    dry_run = StrictBooleanField(
        required=False,
        help_text="true: answer the payment as this refund would leave it (its `refunds` "
        "end with the refund it would make, without an id), and change nothing.",
    )


class PaymentRefundView(PaymentsAPIView):
    @extend_schema(
        operation_id="payments_refund",
        request=RefundCreateSerializer,
        responses=PaymentSerializer,
        tags=PAYMENTS,
        examples=[
            OpenApiExample(
                "Partial", value={"amount": 5000, "merchant_reference": "R-1"}, request_only=True
            ),
            OpenApiExample("Everything left", value={"comment": "Returned"}, request_only=True),
        ],
    )
    def post(self, request, payment_id: str):
        """Refund a payment: `amount` cents, or everything left without it (customer fees
        included). The refund first cancels what the customer still owes, from the last
        instalment, and gives the rest back to the card. Answers the payment with its
        `refunds`. An amount that is not a whole number of cents, zero or negative, or more
        than what is left is a 400 naming `amount` and the `maximum`; a payment that was
        never paid is a 409."""
        data = validated(RefundCreateSerializer, request.data)
        payment = self.payment_for_update(payment_id)
        if "amount" in data and data["amount"] is None:
            services.refundable_check(payment)
            raise RefundAmountInvalid(
                _("Leave amount out to refund everything left; null is not an amount."),
                maximum=to_cents(payment.refundable_amount),
            )
        refund_request = services.RefundRequest(
            amount=data.get("amount"),
            merchant_reference=data.get("merchant_reference") or "",
            comment=data.get("comment") or "",
        )
        if data.get("dry_run"):
            preview = services.refund_preview(payment=payment, amount=refund_request.amount)
            body = payment_to_json(
                preview_payment(
                    selectors.payment_with_details(payment=payment),
                    preview,
                    request=refund_request,
                    now=timezone.now(),
                )
            )
            return Response(body | {"dry_run": True})
        services.refund_issue(
            payment=payment,
            request=refund_request,
            origin=Refund.Origin.API,
            api_key=request.auth,
            now=timezone.now(),
        )
        return Response(self.payment_json(payment))
