from django.urls import path

from apps.pos import dashboard, simulator, views

app_name = "pos"

urlpatterns = [
    # The customer's short link (the SMS).
    path("p/<str:code>", views.customer, name="customer"),
    # The dashboard: virtual terminal and terminals.
    path("dashboard/terminal/", dashboard.virtual_terminal, name="virtual-terminal"),
    path(
        "dashboard/terminal/sessions/<str:session_id>/",
        dashboard.session_detail,
        name="session",
    ),
    path(
        "dashboard/terminal/sessions/<str:session_id>/status",
        dashboard.session_status,
        name="session-status",
    ),
    path(
        "dashboard/terminal/sessions/<str:session_id>/cancel/",
        dashboard.session_cancel,
        name="session-cancel",
    ),
    path(
        "dashboard/terminal/sessions/<str:session_id>/tickets/<str:kind>.pdf",
        dashboard.ticket_pdf,
        name="session-ticket-pdf",
    ),
    path("dashboard/terminals/", dashboard.terminal_list, name="terminals"),
    path(
        "dashboard/terminals/<str:terminal_id>/revoke/",
        dashboard.terminal_revoke,
        name="terminal-revoke",
    ),
    # The simulated terminal (development and tests).
    path("pos/simulator/", simulator.simulator, name="simulator"),
]
