"""Secret-key authentication for the merchant API, and the merchant permission."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from apps.merchants.models import Merchant
from apps.merchants.selectors import api_key_for_secret
from apps.merchants.services import api_key_touch

SCHEMES = {"alma-auth", "bearer"}


class APIKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Alma-Auth <secret key>`` (Alma's clients) or ``Bearer <secret key>``.

    Every failure says only "invalid API key": never whether the key exists, was revoked
    or belongs to the other mode. On success ``request.user`` is the merchant and
    ``request.auth`` the key, whose ``livemode`` scopes every query.
    """

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            raise exceptions.NotAuthenticated()
        scheme, _, secret = header.strip().partition(" ")
        if scheme.lower() not in SCHEMES or not secret.strip():
            raise exceptions.AuthenticationFailed()
        now = timezone.now()
        key = api_key_for_secret(secret.strip(), now=now)
        if key is None:
            raise exceptions.AuthenticationFailed()
        api_key_touch(key=key, now=now)
        return key.merchant, key

    def authenticate_header(self, request) -> str:
        return 'Alma-Auth realm="api"'


class IsActiveMerchant(permissions.BasePermission):
    """Only an active merchant's keys work; pending and suspended ones get 403 saying so."""

    messages = {
        Merchant.Status.PENDING: (
            "merchant_pending",
            "This merchant account is pending activation; the API opens once Tranche "
            "has activated it.",
        ),
        Merchant.Status.SUSPENDED: (
            "merchant_suspended",
            "This merchant account is suspended; contact Tranche support.",
        ),
    }

    def has_permission(self, request, view) -> bool:
        merchant = request.user
        if request.auth is None or merchant is None:
            raise exceptions.NotAuthenticated()
        if merchant.status != Merchant.Status.ACTIVE:
            code, message = self.messages[merchant.status]
            raise exceptions.PermissionDenied(message, code=code)
        return True
