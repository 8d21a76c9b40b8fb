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

    def answer(self, data: dict, queries: list[PlanQuery] | None) -> list[dict]:
        answers = eligibility_check(
            merchant=self.request.user,
            purchase_amount=data["purchase_amount"],
            queries=queries,
            purchase_date=business_date(timezone.now()),
            channel=IN_STORE if data.get("origin") in POS_ORIGINS else ONLINE,
            billing_country=(data.get("billing_address") or {}).get("country"),
            shipping_country=(data.get("shipping_address") or {}).get("country"),
            cart_categories=_cart_categories(data.get("cart")),
        )
        language = request_language(data.get("locale"))
        return [eligibility_to_json(answer, language=language) for answer in answers]


def _first_given(query: dict, *names: str) -> int:
    for name in names:
        if query.get(name) is not None:
            return query[name]
    return 0


def _cart_categories(cart: dict | None) -> list[str]:
    items = (cart or {}).get("items") or []
    return [category for item in items for category in (item.get("categories") or [])]


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
        body = EligibilityV2RequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        queries = data.get("queries")
        if queries is not None:
            queries = [
                PlanQuery(
                    purchase_amount=query.get("purchase_amount") or data["purchase_amount"],
                    installments_count=query["installments_count"],
                    deferred_days=query.get("deferred_days") or 0,
                    deferred_months=_first_given(query, "deferred_months", "deferred_month"),
                )
                for query in queries
            ]
        return Response(self.answer(data, queries))


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
        body = EligibilityV1RequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data["payment"]
        if not request.user.is_active:
            raise exceptions.ValidationError(
                {"merchant": ["This merchant account is not active: it cannot take payments."]},
                code="merchant_cant_create_payments",
            )
        counts, as_list = data.get("installments_count", (None, True))
        queries = None
        if counts is not None:
            queries = [
                PlanQuery(
                    purchase_amount=data["purchase_amount"],
                    installments_count=count,
                    deferred_days=data.get("deferred_days") or 0,
                    deferred_months=data.get("deferred_months") or 0,
                )
                for count in counts
            ]
        answers = self.answer(data, queries)
        return Response(answers if as_list else answers[0])
