"""The project's URLs plus one POST endpoint with a visible side effect, to test the
machinery every write endpoint shares (JSON parsing, validation errors, idempotency)
before the issues that add real write endpoints."""

import threading

from django.urls import path
from django.utils import timezone
from rest_framework import serializers
from rest_framework.response import Response

from apps.common.api.fields import StrictIntegerField
from apps.merchants.api.base import MerchantAPIView
from apps.merchants.models import MerchantEvent
from config.urls import urlpatterns as project_urlpatterns

# Tests may set this to hold requests inside the handler (to overlap concurrent requests).
handler_gate = threading.Event()
handler_gate.set()


class EffectInput(serializers.Serializer):
    amount = StrictIntegerField(min_value=1, max_value=10**9)
    note = serializers.CharField(max_length=20, required=False)


class EffectView(MerchantAPIView):
    def post(self, request):
        data = EffectInput(data=request.data)
        data.is_valid(raise_exception=True)
        handler_gate.wait(timeout=10)
        event = MerchantEvent.objects.create(
            merchant=self.merchant,
            kind="test_effect",
            detail=f"{self.request.auth.mode}:{data.validated_data['amount']}",
            created_at=timezone.now(),
        )
        return Response({"effect": event.pk, "amount": data.validated_data["amount"]}, status=201)

    put = post


class CrashView(MerchantAPIView):
    def get(self, request):
        raise RuntimeError("secret internal detail")


urlpatterns = [
    path("v1/_test/effects", EffectView.as_view()),
    path("v1/_test/crash", CrashView.as_view()),
    *project_urlpatterns,
]
