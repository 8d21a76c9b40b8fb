"""Secret-key authentication for the merchant API, and the merchant permission."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from apps.common.ids import is_well_formed, with_prefix
from apps.merchants.models import Merchant
from apps.merchants.selectors import api_key_for_secret, merchant_by_public_id
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
        if scheme.lower() == MerchantIdAuthentication.scheme:
            raise exceptions.AuthenticationFailed(
                "A merchant id (Alma-Merchant-Auth) only opens POST /v2/payments/eligibility; "
                "this endpoint needs a secret API key (Alma-Auth)."
            )
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


class MerchantIdAuthentication(authentication.BaseAuthentication):
    """``Authorization: Alma-Merchant-Auth <merchant id>``: the public credential a browser
    widget uses. It proves nothing (the merchant id is public), so only read-only endpoints
    with public answers accept it (v2 eligibility); ``request.auth`` stays None there and
    any other scheme falls through to the next authentication class.
    """

    scheme = "alma-merchant-auth"

    def authenticate(self, request):
        scheme, _, merchant_id = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
        if scheme.lower() != self.scheme:
            return None
        merchant_id = with_prefix("merchant", merchant_id.strip())
        merchant = (
            merchant_by_public_id(merchant_id) if is_well_formed("merchant", merchant_id) else None
        )
        if merchant is None:
            raise exceptions.AuthenticationFailed("Unknown merchant id.")
        return merchant, None

    def authenticate_header(self, request) -> str:
        return 'Alma-Merchant-Auth realm="api"'


class IsMerchant(permissions.BasePermission):
    """Any merchant, whatever its status: for answers that explain an inactive account
    themselves (eligibility says "not eligible: merchant not active")."""

    def has_permission(self, request, view) -> bool:
        if not isinstance(request.user, Merchant):
            raise exceptions.NotAuthenticated()
        return True


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
