"""The merchant API's error format, in one place.

Every error body has a top-level ``error_code`` and a human-readable ``message`` (Alma's
Python client shows ``message``; its PHP client reads it too); 400 validation errors add
``errors: [{field, error_code, message, value?}]``, 404s add ``object_type`` and ``value``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from apps.common.api.middleware import is_api_path
from apps.common.errors import DomainError
from apps.common.request_id import current_request_id

logger = logging.getLogger(__name__)

# DRF's per-field error codes -> the contract's vocabulary.
FIELD_CODES = {
    "required": "missing_field",
    "null": "invalid_value",
    "blank": "invalid_value",
    "invalid": "invalid_type",
    "not_a_list": "invalid_type",
    "not_a_dict": "invalid_type",
    "parse_error": "invalid_type",
    "invalid_choice": "invalid_value",
    "unknown": "invalid_value",
    "min_value": "invalid_value",
    "max_value": "invalid_value",
    "max_string_length": "invalid_value",
    "max_digits": "invalid_value",
    "max_decimal_places": "invalid_value",
    "date": "invalid_value",
    "datetime": "invalid_value",
    "empty": "too_short",
    "min_length": "too_short",
    "max_length": "too_long",
    "unique": "unique_violated",
}
CONTRACT_FIELD_CODES = {
    "missing_field",
    "invalid_type",
    "invalid_value",
    "too_short",
    "too_long",
    "too_many_requests",
    "unique_violated",
    "merchant_cant_create_payments",
    "incompatible_parameters",
    "unauthorized",
    "generic_error",
}
NON_FIELD = "non_field_errors"
_MISSING = object()


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error_code": code, "message": message, **extra}


def _field_code(code: str | None) -> str:
    if code in CONTRACT_FIELD_CODES:
        return code
    return FIELD_CODES.get(code or "", "generic_error")


def _value_at(data: Any, path: list[str]) -> Any:
    for part in path:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
    return data


def flatten_validation_errors(detail: Any, data: Any = None) -> list[dict[str, Any]]:
    """DRF's nested ValidationError detail -> a flat list with dotted field names."""
    errors: list[dict[str, Any]] = []

    def walk(node: Any, path: list[str]) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, path if key == NON_FIELD else [*path, str(key)])
        elif isinstance(node, list):
            if all(isinstance(item, exceptions.ErrorDetail) for item in node):
                for item in node:
                    walk(item, path)
            else:
                for index, child in enumerate(node):
                    if child:
                        walk(child, [*path, str(index)])
        else:
            entry: dict[str, Any] = {
                "field": ".".join(path) or NON_FIELD,
                "error_code": _field_code(getattr(node, "code", None)),
                "message": str(node),
            }
            value = _value_at(data, path) if path else _MISSING
            if value is not _MISSING and (value is None or isinstance(value, str | int | float)):
                entry["value"] = value
            errors.append(entry)

    walk(detail, [])
    return errors


def validation_error_response(errors: list[dict[str, Any]]) -> Response:
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return Response(
        error_body("validation_error", f"Invalid request. {summary}", errors=errors),
        status=status.HTTP_400_BAD_REQUEST,
    )


def _request_data(context: dict[str, Any]) -> Any:
    """What the client sent, to echo offending values: the body, or the query string."""
    request = context.get("request")
    if request is None:
        return None
    if request.method in ("GET", "HEAD", "DELETE"):
        return request.query_params.dict()
    try:
        return request.data
    except Exception:  # the body itself was the problem
        return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: every exception raised in an API view becomes a JSON error."""
    headers: dict[str, str] = {}
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, DomainError):
        response = Response(error_body(exc.code, exc.message, **exc.extra), status=exc.http_status)
    elif isinstance(exc, exceptions.ValidationError):
        errors = flatten_validation_errors(exc.detail, _request_data(context))
        response = validation_error_response(errors)
    elif isinstance(exc, RequestDataTooBig):
        response = Response(error_body("request_too_large", "Request body too large."), status=400)
    elif isinstance(exc, exceptions.ParseError):
        code = exc.get_codes()
        code = code if isinstance(code, str) and code != "parse_error" else "invalid_json"
        response = Response(error_body(code, str(exc.detail)), status=400)
    elif isinstance(exc, exceptions.AuthenticationFailed | exceptions.NotAuthenticated):
        # Key failures all read "Invalid API key." (never whether the key exists); a
        # credential of the wrong kind says which one the endpoint needs.
        custom = str(exc.detail) != str(exc.default_detail)
        message = str(exc.detail) if custom else "Invalid API key."
        response = Response(error_body("unauthorized", message), status=401)
        headers["WWW-Authenticate"] = 'Alma-Auth realm="api"'
    elif isinstance(exc, exceptions.PermissionDenied):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "forbidden"
        response = Response(error_body(code, str(exc.detail)), status=403)
    elif isinstance(exc, exceptions.NotFound):
        request = context.get("request")
        path = request.path if request is not None else ""
        response = Response(
            error_body("not_found", "Not found.", object_type="endpoint", value=path), status=404
        )
    elif isinstance(exc, exceptions.MethodNotAllowed):
        response = Response(error_body("method_not_allowed", str(exc.detail)), status=405)
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        response = Response(
            error_body(
                "unsupported_media_type", "Send a JSON body (Content-Type: application/json)."
            ),
            status=415,
        )
    elif isinstance(exc, exceptions.NotAcceptable):
        response = Response(error_body("not_acceptable", "This API only answers JSON."), status=406)
    elif isinstance(exc, exceptions.Throttled):
        wait = max(1, int(exc.wait or 1))
        headers["Retry-After"] = str(wait)
        response = Response(
            error_body("too_many_requests", f"Too many requests; retry in {wait} seconds."),
            status=429,
        )
    elif isinstance(exc, exceptions.APIException):
        response = Response(error_body(exc.default_code, str(exc.detail)), status=exc.status_code)
    else:
        logger.exception("Unhandled error in the merchant API")
        response = Response(
            error_body(
                "server_error",
                f"Internal error. Quote request id {current_request_id()} to support.",
            ),
            status=500,
        )
    for name, value in headers.items():
        response[name] = value
    set_rollback()
    return response


def server_error(request):
    """Django's handler500: JSON under the API root, the plain page elsewhere."""
    from django.http import JsonResponse
    from django.views.defaults import server_error as page

    if not is_api_path(request.path_info):
        return page(request)
    body = error_body(
        "server_error", f"Internal error. Quote request id {current_request_id()} to support."
    )
    return JsonResponse(body, status=500)


def bad_request(request, exception):
    """Django's handler400 (e.g. a hostile Host header): JSON under the API root."""
    from django.http import JsonResponse
    from django.views.defaults import bad_request as page

    if not is_api_path(request.path_info):
        return page(request, exception)
    return JsonResponse(error_body("bad_request", "Bad request."), status=400)
