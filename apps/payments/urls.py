from django.urls import path

from apps.payments import checkout_views, sandbox_views, views

app_name = "payments"

urlpatterns = [
    path("widget/demo", views.widget_demo, name="widget-demo"),
    path("widget/demo/cart", views.widget_demo_cart, name="widget-demo-cart"),
    path("checkout/<str:payment_id>", checkout_views.checkout, name="checkout"),
    path(
        "checkout/<str:payment_id>/3ds",
        checkout_views.three_ds_return,
        name="checkout-3ds-return",
    ),
    path(
        "checkout/<str:payment_id>/bank",
        checkout_views.bank_return,
        name="checkout-bank-return",
    ),
    path(
        "checkout/<str:payment_id>/explanation",
        checkout_views.explanation,
        name="checkout-explanation",
    ),
    path("sandbox/acs/<str:reference>", sandbox_views.acs, name="sandbox-acs"),
]
