from django.urls import path

from apps.refunds.api.views import PaymentRefundView

urlpatterns = [
    path(
        "v1/payments/<str:payment_id>/refund",
        PaymentRefundView.as_view(),
        name="api-payment-refund",
    ),
]
