from django.urls import path

from apps.verification import views

app_name = "verification"

urlpatterns = [
    path("dev/sms", views.sms_outbox, name="sms-outbox"),
]
