from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from apps.merchants.api.base import MerchantAPIView
from apps.merchants.api.serializers import (
    KIND_PATTERN,
    ONLY_PATTERN,
    ExtendedMerchantSerializer,
    FeePlanQuerySerializer,
    FeePlanSerializer,
    MerchantSerializer,
)
from apps.merchants.selectors import fee_plans_list


class MeView(MerchantAPIView):
    """The merchant that owns the API key, and what it may do."""

    @extend_schema(operation_id="me", responses=MerchantSerializer, tags=["merchant"])
    def get(self, request):
        return Response(MerchantSerializer(self.merchant).data)


class MeExtendedView(MerchantAPIView):
    """The merchant with its legal entity and every fee plan (what plugins read to check a
    key and to configure their payment options)."""

    @extend_schema(
        operation_id="me_extended", responses=ExtendedMerchantSerializer, tags=["merchant"]
    )
    def get(self, request):
        plans = fee_plans_list(merchant=self.merchant)
        serializer = ExtendedMerchantSerializer(self.merchant, context={"fee_plans": plans})
        return Response(serializer.data)


class FeePlansView(MerchantAPIView):
    """The merchant's fee plans, allowed or not: instalments, deferral, purchase limits in
    cents, fees and lending rate in basis points."""

    @extend_schema(
        operation_id="me_fee_plans",
        parameters=[
            OpenApiParameter(
                "kind",
                str,
                description="general, pos, or both comma-joined; absent: both",
                pattern=KIND_PATTERN,
            ),
            OpenApiParameter(
                "only",
                str,
                description="all, or instalment counts such as 3,4,10",
                pattern=ONLY_PATTERN,
            ),
            OpenApiParameter(
                "deferred",
                str,
                description="true includes pay-later plans; absent: false",
                enum=["true", "false"],
            ),
        ],
        responses=FeePlanSerializer(many=True),
        tags=["merchant"],
    )
    def get(self, request):
        query = FeePlanQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        plans = fee_plans_list(
            merchant=self.merchant,
            kinds=query.validated_data.get("kind"),
            installments_counts=query.validated_data.get("only"),
            include_deferred=query.validated_data.get("deferred", False),
        )
        return Response(FeePlanSerializer(plans, many=True).data)
