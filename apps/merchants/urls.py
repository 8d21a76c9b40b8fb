from django.urls import path

from apps.merchants import views

app_name = "merchants"

urlpatterns = [
    path("register/", views.register, name="register"),
    path("dashboard/account/", views.account, name="account"),
    path("dashboard/settings/", views.settings_page, name="settings"),
    path("dashboard/team/", views.staff, name="staff"),
    path("dashboard/team/<int:membership_id>/role/", views.staff_role, name="staff-role"),
    path("dashboard/team/<int:membership_id>/remove/", views.staff_remove, name="staff-remove"),
    path(
        "dashboard/team/<int:membership_id>/resend/",
        views.staff_invitation_resend,
        name="staff-resend",
    ),
    path("dashboard/api/", views.api_keys, name="api-keys"),
    path("dashboard/api/keys/<int:key_id>/rotate/", views.api_key_rotate, name="api-key-rotate"),
    path("dashboard/api/keys/<int:key_id>/revoke/", views.api_key_revoke, name="api-key-revoke"),
]
