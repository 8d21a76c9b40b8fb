from django.urls import path

from apps.payments.api import export_views

urlpatterns = [
    path("v1/data-exports", export_views.DataExportsView.as_view(), name="api-data-exports"),
    path(
        "v1/data-exports/<str:export_id>",
        export_views.DataExportView.as_view(),
        name="api-data-export",
    ),
]
