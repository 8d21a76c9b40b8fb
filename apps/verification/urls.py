from django.urls import path

from apps.verification import bank_views, identity_views, views

app_name = "verification"

urlpatterns = [
    path("webhooks/identity", identity_views.identity_webhook, name="identity-webhook"),
    path(
        "staff/identity/<str:check_id>/<str:which>",
        identity_views.identity_file,
        name="identity-file",
    ),
    path("dev/sms", views.sms_outbox, name="sms-outbox"),
    path("sandbox/bank/<str:reference>", bank_views.sandbox_bank, name="sandbox-bank"),
]
