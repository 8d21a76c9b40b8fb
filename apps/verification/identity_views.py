"""Pages of identity checks that are not the customer's: the provider's webhook, and the
operators' view of a stored photo (decrypted on the fly, never cached)."""

from __future__ import annotations

import logging

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from apps.verification import identity
from apps.verification.errors import (
    IdentityCheckNotFound,
    IdentityFileGone,
    IdentityResultUnknown,
    IdentityWebhookRefused,
)
from apps.verification.identity_files import PHOTO_FIELDS, identity_file_open
from apps.verification.identity_provider import SIGNATURE_HEADER

logger = logging.getLogger(__name__)

EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png"}


@csrf_exempt
@require_POST
def identity_webhook(request):
    """The identity provider's call with a verdict. 200 once recorded (or already recorded,
    or for an attempt we no longer wait for, so the provider stops sending it); 400 for a
    call not signed by the provider."""
    try:
        check = identity.identity_webhook_receive(
            body=request.body,
            signature=request.headers.get(SIGNATURE_HEADER, ""),
            now=timezone.now(),
        )
    except IdentityWebhookRefused as exc:
        logger.warning("identity webhook refused: %s %s", exc.message, exc.extra)
        return JsonResponse({"error": {"code": exc.code, "message": exc.message}}, status=400)
    except IdentityResultUnknown as exc:
        logger.warning("identity webhook for no waiting check: %s", exc.extra)
        return JsonResponse({"received": True, "recorded": False})
    return JsonResponse({"received": True, "recorded": True, "check": check.public_id})


@staff_member_required
@never_cache
@require_GET
def identity_file(request, check_id: str, which: str):
    """One photo of a check, decrypted, for an operator allowed to view identity checks.
    Served inline with headers that keep a browser from treating it as anything but a picture."""
    if not request.user.has_perm("verification.view_identitycheck"):
        raise PermissionDenied
    if which not in PHOTO_FIELDS:
        raise Http404
    try:
        check = identity.identity_check_get(check_id=check_id)
        content, content_type = identity_file_open(check, which)
    except (IdentityCheckNotFound, IdentityFileGone) as exc:
        raise Http404 from exc
    logger.info(
        "identity photo %s of %s shown to operator %s", which, check.public_id, request.user.pk
    )
    response = HttpResponse(content, content_type=content_type)
    extension = EXTENSIONS.get(content_type, "bin")
    response["Content-Disposition"] = f'inline; filename="{check.public_id}-{which}.{extension}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Referrer-Policy"] = "no-referrer"
    return response
