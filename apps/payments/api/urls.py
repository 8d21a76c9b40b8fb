from django.urls import path

from apps.payments.api import payment_views as p
from apps.payments.api import views

urlpatterns = [
    path("v2/payments/eligibility", views.EligibilityV2View.as_view(), name="api-eligibility-v2"),
    path("v1/payments/eligibility", views.EligibilityV1View.as_view(), name="api-eligibility-v1"),
    path("v1/payments", p.PaymentsView.as_view(), name="api-payments"),
    path("v1/payments/<str:payment_id>", p.PaymentView.as_view(), name="api-payment"),
    path(
        "v1/payments/<str:payment_id>/orders",
        p.PaymentOrdersView.as_view(),
        name="api-payment-orders",
    ),
    path(
        "v1/payments/<str:payment_id>/orders/<str:merchant_reference>/status",
        p.PaymentOrderStatusView.as_view(),
        name="api-payment-order-status",
    ),
    path(
        "v1/payments/<str:payment_id>/potential-fraud",
        p.PotentialFraudView.as_view(),
        name="api-payment-potential-fraud",
    ),
    path(
        "v1/payments/<str:payment_id>/cancel",
        p.PaymentCancelView.as_view(),
        name="api-payment-cancel",
    ),
    path(
        "v1/payments/<str:payment_id>/trigger",
        p.PaymentTriggerView.as_view(),
        name="api-payment-trigger",
    ),
    path(
        "v1/payments/<str:payment_id>/send-sms",
        p.PaymentSendSmsView.as_view(),
        name="api-payment-send-sms",
    ),
    path(
        "v1/payments/<str:payment_id>/ask-acceptance",
        p.PaymentAskAcceptanceView.as_view(),
        name="api-payment-ask-acceptance",
    ),
    path(
        "v1/payments/<str:payment_id>/charge-first-installment",
        p.PaymentChargeFirstInstallmentView.as_view(),
        name="api-payment-charge-first-installment",
    ),
    path("v1/orders", p.OrdersView.as_view(), name="api-orders"),
    path("v1/orders/<str:order_id>", p.OrderView.as_view(), name="api-order"),
    path(
        "v2/orders/<str:order_id>/shipment",
        p.OrderShipmentView.as_view(),
        name="api-order-shipment",
    ),
    path("v2/orders/<str:order_id>/status", p.OrderStatusView.as_view(), name="api-order-status"),
    path("v1/me/business-events", p.BusinessEventsView.as_view(), name="api-business-events"),
]
