"""The dashboard's refund pages (the API's route is in apps.refunds.api.urls)."""

from django.urls import path

from apps.refunds import views

app_name = "refunds"

urlpatterns = [
    path("dashboard/payments/<str:payment_id>/refund/", views.refund, name="refund"),
]
