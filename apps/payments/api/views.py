"""Eligibility: which plans a purchase may be paid with (contract section 4)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions
from rest_framework.response import Response

from apps.common.api.throttling import APIKeyRateThrottle, PublicRateThrottle
from apps.common.api.views import BaseAPIView
from apps.common.dates import business_date
from apps.merchants.api.authentication import (
    APIKeyAuthentication,
    IsMerchant,
    MerchantIdAuthentication,
)
from apps.payments.api.bodies import read_v1_body, read_v2_body
from apps.payments.api.serializers import (
    POS_ORIGINS,
    EligibilitySerializer,
    EligibilityV1RequestSerializer,
    EligibilityV2RequestSerializer,
    eligibility_to_json,
    request_language,
)
from apps.payments.eligibility import IN_STORE, ONLINE, PlanQuery
from apps.payments.selectors import eligibility_check


class EligibilityView(BaseAPIView):
    """Shared by both versions: a read-only POST, answered for any merchant status (an
    inactive merchant's plans are "not eligible", with the reason)."""

    authentication_classes = [APIKeyAuthentication]
    permission_classes = [IsMerchant]
    throttle_classes = [APIKeyRateThrottle]
    idempotent = False

    def answer(self, body: dict, queries: list[PlanQuery] | None) -> list[dict]:
        answers = eligibility_check(
            merchant=self.request.user,
            purchase_amount=body["purchase_amount"],
            queries=queries,
            purchase_date=business_date(timezone.now()),
            channel=IN_STORE if body["origin"] in POS_ORIGINS else ONLINE,
            billing_country=body["billing_country"],
            shipping_country=body["shipping_country"],
            cart_categories=body["cart_categories"],
        )
        language = request_language(body["locale"])
        return [eligibility_to_json(answer, language=language) for answer in answers]


class EligibilityV2View(EligibilityView):
    """Check a purchase against plans: one answer per query, in order. Without `queries`
    (or with null), every plan the purchase is eligible for (discovery). Browsers may call
    it with the public `Alma-Merchant-Auth <merchant id>` (CORS allowed)."""

    authentication_classes = [MerchantIdAuthentication, APIKeyAuthentication]
    throttle_classes = [APIKeyRateThrottle, PublicRateThrottle]

    @extend_schema(
        operation_id="eligibility_v2",
        request=EligibilityV2RequestSerializer,
        responses=EligibilitySerializer(many=True),
        tags=["eligibility"],
        examples=[
            OpenApiExample(
                "Two plans",
                request_only=True,
                value={
                    "purchase_amount": 45000,
                    "queries": [{"installments_count": 3}, {"installments_count": 4}],
                    "billing_address": {"country": "FR"},
                    "locale": "fr",
                },
            )
        ],
    )
    def post(self, request):
        body = read_v2_body(request.data)
        queries = body["queries"]
        if queries is not None:
            queries = [
                PlanQuery(
                    purchase_amount=query["purchase_amount"] or body["purchase_amount"],
                    installments_count=query["installments_count"],
                    deferred_days=query["deferred_days"],
                    deferred_months=query["deferred_months"],
                )
                for query in queries
            ]
        return Response(self.answer(body, queries))


class EligibilityV1View(EligibilityView):
    """Version 1 (still used by Alma's Python client): the payment-creation payload; one
    `installments_count` gives one answer object, a list gives a list. An inactive merchant
    gets 400, as Alma answers."""

    @extend_schema(
        operation_id="eligibility_v1",
        request=EligibilityV1RequestSerializer,
        responses={
            200: {
                "oneOf": [
                    {"$ref": "#/components/schemas/Eligibility"},
                    {"type": "array", "items": {"$ref": "#/components/schemas/Eligibility"}},
                ],
                "description": "One object for one installments_count, a list for a list.",
            }
        },
        tags=["eligibility"],
    )
    def post(self, request):
        body = read_v1_body(request.data)
        if not request.user.is_active:
            raise exceptions.ValidationError(
                {"merchant": ["This merchant account is not active: it cannot take payments."]},
                code="merchant_cant_create_payments",
            )
        queries = None
        if body["installments_counts"] is not None:
            queries = [
                PlanQuery(
                    purchase_amount=body["purchase_amount"],
                    installments_count=count,
                    deferred_days=body["deferred_days"],
                    deferred_months=body["deferred_months"],
                )
                for count in body["installments_counts"]
            ]
        answers = self.answer(body, queries)
        return Response(answers if body["as_list"] else answers[0])
