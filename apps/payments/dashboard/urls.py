from django.urls import path

from apps.merchants.access import mode_switch
from apps.payments.dashboard import exports, home, payments

app_name = "dashboard"

urlpatterns = [
    path("dashboard/", home.home, name="home"),
    path("dashboard/mode/", mode_switch, name="mode"),
    path("dashboard/payments/", payments.payment_list, name="payments"),
    path("dashboard/payments/new/", payments.remote_sale, name="remote-sale"),
    path("dashboard/payments/<str:payment_id>/", payments.payment_detail, name="payment"),
    path(
        "dashboard/payments/<str:payment_id>/notifications/<int:notification_id>/resend/",
        payments.notification_resend,
        name="notification-resend",
    ),
    path("dashboard/exports/", exports.export_list, name="exports"),
    path("dashboard/exports/<str:export_id>/", exports.export_detail, name="export"),
    path(
        "dashboard/exports/<str:export_id>/<str:file_format>/",
        exports.export_download,
        name="export-download",
    ),
]
