from django.urls import path

from apps.common import views

app_name = "common"

urlpatterns = [
    path("dev/outbox", views.dev_outbox, name="dev-outbox"),
    path("dev/outbox/email/<int:email_id>", views.dev_outbox_email, name="dev-outbox-email"),
]
