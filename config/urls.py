from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularRedocView

from apps.common.api.views import EndpointNotFoundView

api_patterns = [
    path("", include("apps.merchants.api.urls")),
    path("", include("apps.payments.api.urls")),
    path("", include("apps.payments.api.export_urls")),
    path("", include("apps.refunds.api.urls")),
    path("", include("apps.pos.api.urls")),
]

urlpatterns = [
    *api_patterns,
    path("v1/schema", SpectacularJSONAPIView.as_view(), name="api-schema"),
    path("docs", SpectacularRedocView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^v[12](/.*)?$", EndpointNotFoundView.as_view(), name="api-not-found"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("apps.merchants.urls")),
    path("", include("apps.payments.dashboard.urls")),
    path("", include("apps.ledger.urls")),
    path("", include("apps.payments.urls")),
    path("", include("apps.verification.urls")),
    path("", include("apps.common.urls")),
    path("", include("apps.schedules.urls")),
    path("", include("apps.schedules.portal.urls")),
    path("", include("apps.refunds.urls")),
    path("", include("apps.pos.urls")),
    path("", include("apps.issuing.urls")),
    path("", RedirectView.as_view(pattern_name="dashboard:home", permanent=False)),
]

if settings.BENCHMARK_ENDPOINTS:
    from benchmarks.endpoints import urlpatterns as benchmark_patterns

    urlpatterns = benchmark_patterns + urlpatterns

handler400 = "apps.common.api.errors.bad_request"
handler500 = "apps.common.api.errors.server_error"
