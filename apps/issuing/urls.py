from django.urls import path

from apps.issuing import views, webhooks

app_name = "issuing"

urlpatterns = [
    # The issuer's signed messages (purchases to decide, reversals, clearings, refunds).
    path("issuing/webhooks", webhooks.issuer_webhook, name="webhook"),
    # The customer's card, in the portal.
    path("portal/card/", views.card_home, name="card"),
    path("portal/card/funding", views.funding_card, name="funding"),
    path(
        "portal/card/funding/<str:setup_id>/3ds", views.funding_three_ds_return, name="funding-3ds"
    ),
    path("portal/card/request", views.card_request, name="request"),
    path("portal/card/details", views.card_details, name="details"),
    path("portal/card/freeze", views.card_freeze, name="freeze"),
    path("portal/card/unfreeze", views.card_unfreeze, name="unfreeze"),
    path("portal/card/replace", views.card_replace, name="replace"),
    # Test mode only: a purchase at a shop, through the sandbox issuer.
    path("portal/card/sandbox-purchase", views.sandbox_purchase, name="sandbox-purchase"),
]
