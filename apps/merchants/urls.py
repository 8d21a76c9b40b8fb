from django.urls import path

from apps.merchants import views

app_name = "merchants"

urlpatterns = [
    path("register/", views.register, name="register"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/settings/", views.settings_page, name="settings"),
    path("dashboard/api/", views.api_keys, name="api-keys"),
    path("dashboard/api/keys/<int:key_id>/rotate/", views.api_key_rotate, name="api-key-rotate"),
    path("dashboard/api/keys/<int:key_id>/revoke/", views.api_key_revoke, name="api-key-revoke"),
]
