"""The merchant dashboard's payouts pages."""

from django.urls import path

from apps.ledger import views

app_name = "ledger"
urlpatterns = [
    path("dashboard/payouts/", views.payout_list, name="payouts"),
    path("dashboard/payouts/<str:payout_id>/", views.payout_detail, name="payout"),
    path(
        "dashboard/payouts/<str:payout_id>/<str:file_format>/",
        views.payout_download,
        name="payout-download",
    ),
]
