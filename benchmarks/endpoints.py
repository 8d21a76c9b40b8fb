"""Reference endpoints served only when TRANCHE_BENCHMARK_ENDPOINTS=1 (config/urls.py).

They go through the same middleware stack as the real API, so the difference with
``GET /v1/me`` or ``POST /v2/payments/eligibility`` is what the endpoint itself costs:
authentication, the API key lookup, the permission check, the rate limit, parsing and
validating the request, the work and the serializer.
"""

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET
from rest_framework.response import Response
from rest_framework.views import APIView


class ConstantView(APIView):
    """A bare DRF view: no authentication, permission or throttle; the project's renderer."""

    authentication_classes = []
    permission_classes = []
    throttle_classes = []
    schema = None  # never in the OpenAPI schema

    def get(self, request):
        return Response({"ok": True})


@require_GET
def django_constant(request):
    """A bare Django view, without DRF at all: a second reference line."""
    return JsonResponse({"ok": True})


urlpatterns = [
    path("_bench/constant", ConstantView.as_view(), name="bench-constant"),
    path("_bench/django", django_constant, name="bench-django"),
]
