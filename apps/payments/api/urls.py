from django.urls import path

from apps.payments.api import views

urlpatterns = [
    path("v2/payments/eligibility", views.EligibilityV2View.as_view(), name="api-eligibility-v2"),
    path("v1/payments/eligibility", views.EligibilityV1View.as_view(), name="api-eligibility-v1"),
]
