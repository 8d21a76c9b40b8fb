"""The base of every merchant API view: JSON only, idempotent POST/PUT."""

from __future__ import annotations

import json
import logging

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder
from rest_framework.views import APIView

from apps.common.idempotency import (
    MAX_KEY_LENGTH,
    idempotency_claim,
    idempotency_complete,
    idempotency_release,
    request_fingerprint,
)

logger = logging.getLogger(__name__)

IDEMPOTENT_METHODS = {"POST", "PUT"}
HEADER = "Idempotency-Key"


class _Replay(Exception):
    def __init__(self, status: int, body: object):
        self.status = status
        self.body = body


class BaseAPIView(APIView):
    """Authentication, permissions and throttling come from subclasses; this adds
    Idempotency-Key support, which needs to know who is calling (``request.auth``'s
    ``idempotency_scope``). A read-only POST sets ``idempotent = False``: repeating it is
    harmless, so an Idempotency-Key header is accepted and ignored."""

    idempotent = True

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self._idempotency_record_id = None
        key = request.headers.get(HEADER)
        if not self.idempotent or request.method not in IDEMPOTENT_METHODS or key is None:
            return
        if not hasattr(self, request.method.lower()):
            return  # DRF answers 405 next; nothing to remember
        if not key.strip() or len(key) > MAX_KEY_LENGTH:
            raise exceptions.ValidationError(
                {HEADER: [f"Must be 1 to {MAX_KEY_LENGTH} characters."]}, code="invalid"
            )
        claim = idempotency_claim(
            scope=request.auth.idempotency_scope,
            key=key,
            fingerprint=request_fingerprint(request.method, request.get_full_path(), request.data),
            now=timezone.now(),
        )
        if claim.record_id is None:
            raise _Replay(claim.replay_status, claim.replay_body)
        self._idempotency_record_id = claim.record_id

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            response = Response(json.loads(exc.body), status=exc.status)
            response["Idempotent-Replayed"] = "true"
            return response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        record_id = getattr(self, "_idempotency_record_id", None)
        if record_id is not None:
            self._idempotency_record_id = None
            try:
                idempotency_complete(
                    record_id=record_id,
                    status=response.status_code,
                    body=json.dumps(response.data, cls=JSONEncoder),
                    now=timezone.now(),
                )
            except Exception:
                logger.exception("Could not record an idempotent response; releasing its key")
                idempotency_release(record_id=record_id)
        return response


class EndpointNotFoundView(APIView):
    """Any path under the API root that no endpoint serves: a JSON 404, whatever the method."""

    authentication_classes = []
    permission_classes = []
    schema = None

    def initial(self, request, *args, **kwargs):
        raise exceptions.NotFound()
