from django.urls import path

from apps.merchants.api import views

urlpatterns = [
    path("v1/me", views.MeView.as_view(), name="api-me"),
    path("v1/me/extended-data", views.MeExtendedView.as_view(), name="api-me-extended"),
    path("v1/me/fee-plans", views.FeePlansView.as_view(), name="api-me-fee-plans"),
]
