"""Terminal authentication for the terminal API, its permission and its rate limit.

A terminal calls with its own secret (``Authorization: Terminal tk_test_...``, or
``Bearer tk_...``). On success ``request.user`` is the terminal's merchant and
``request.auth`` the terminal, whose ``livemode`` scopes every query and whose
``idempotency_scope`` keeps its Idempotency-Keys apart from any other caller's.
"""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from apps.common.api.throttling import FixedWindowThrottle
from apps.common.dates import business_date
from apps.common.errors import DomainError
from apps.merchants.models import Merchant
from apps.pos import services
from apps.pos.models import Terminal

SCHEMES = {"terminal", "bearer"}
REALM = 'Terminal realm="pos"'


class InvalidTerminalCredentials(DomainError, exceptions.AuthenticationFailed):
    """No secret, or one no terminal has. Says nothing of whether a terminal exists."""

    code = "invalid_terminal_credentials"
    http_status = 401
    default_message = gettext_lazy(
        "Invalid terminal credentials: send the terminal's secret as "
        "'Authorization: Terminal tk_...'."
    )


class TerminalRevoked(DomainError, exceptions.AuthenticationFailed):
    """The secret is right but the merchant revoked the terminal: it is told so, and how
    to get going again, rather than a bare 401 it would retry forever."""

    code = "terminal_revoked"
    http_status = 401
    default_message = gettext_lazy(
        "This terminal was revoked; register it again from the dashboard."
    )


class TerminalAuthentication(authentication.BaseAuthentication):
    """``Authorization: Terminal <tk_...>`` or ``Bearer <tk_...>``.

    The errors are domain errors as well as DRF authentication failures: DRF then marks the
    request unauthenticated, and the API's exception handler answers their own code."""

    def authenticate(self, request):
        scheme, _sep, secret = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
        secret = secret.strip()
        if scheme.lower() not in SCHEMES or not secret:
            raise InvalidTerminalCredentials()
        terminal = services.terminal_for_secret(secret)
        if terminal is None:
            raise InvalidTerminalCredentials()
        if terminal.revoked_at is not None:
            raise TerminalRevoked(
                _("This terminal was revoked on %(date)s; register it again from the dashboard.")
                % {"date": business_date(terminal.revoked_at).isoformat()}
            )
        services.terminal_touch(terminal=terminal, now=timezone.now())
        return terminal.merchant, terminal

    def authenticate_header(self, request) -> str:
        return REALM


class IsPosTerminal(permissions.BasePermission):
    """A registered terminal of a merchant who may sell in store (France, active); any
    other merchant gets 403 ``pos_not_available`` saying why."""

    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, Terminal) or not isinstance(request.user, Merchant):
            raise InvalidTerminalCredentials()
        services.pos_check_available(request.user)
        return True


class TerminalRateThrottle(FixedWindowThrottle):
    """The merchant API's limit (``API_RATE_LIMIT``), counted per terminal."""

    def identity(self, request) -> str | None:
        return None if request.auth is None else f"terminal:{request.auth.pk}"


class TerminalAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apps.pos.api.authentication.TerminalAuthentication"
    name = "Terminal"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Terminal tk_test_…` or `Bearer tk_test_…` (tk_live_… for live): "
            "the terminal's own secret, shown once when it is registered in the dashboard.",
        }
