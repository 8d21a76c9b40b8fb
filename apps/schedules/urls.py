from django.urls import path

from apps.schedules import views

app_name = "schedules"

urlpatterns = [
    path("plan/<str:payment_id>", views.plan, name="plan"),
    path("plan/<str:payment_id>/receipts/<str:number>.pdf", views.receipt, name="receipt"),
    path(
        "dashboard/payments/<str:payment_id>/receipts/<str:number>.pdf",
        views.dashboard_receipt,
        name="dashboard-receipt",
    ),
]
