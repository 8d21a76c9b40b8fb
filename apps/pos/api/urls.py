from django.urls import path

from apps.pos.api import views

urlpatterns = [
    path("v1/pos/sessions", views.SessionsView.as_view(), name="api-pos-sessions"),
    path("v1/pos/sessions/<str:session_id>", views.SessionView.as_view(), name="api-pos-session"),
    path(
        "v1/pos/sessions/<str:session_id>/cancel",
        views.SessionCancelView.as_view(),
        name="api-pos-session-cancel",
    ),
    path(
        "v1/pos/sessions/<str:session_id>/tickets",
        views.SessionTicketsView.as_view(),
        name="api-pos-session-tickets",
    ),
    path(
        "v1/pos/sessions/<str:session_id>/tickets/<str:kind>",
        views.SessionTicketView.as_view(),
        name="api-pos-session-ticket",
    ),
    path("v1/pos/terminal", views.TerminalView.as_view(), name="api-pos-terminal"),
]
