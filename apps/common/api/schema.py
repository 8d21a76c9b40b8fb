"""OpenAPI: the error responses every merchant endpoint may give, in the one error format."""

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error_code", "message"],
    "properties": {
        "error_code": {"type": "string"},
        "message": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "error_code", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "error_code": {"type": "string"},
                    "message": {"type": "string"},
                    "value": {},
                },
            },
        },
        "object_type": {"type": "string"},
        "value": {"type": "string"},
    },
}
ERRORS = {
    "400": "Malformed JSON or invalid fields (`validation_error` lists each field).",
    "401": "Missing or invalid API key.",
    "403": "The merchant account is pending or suspended.",
    "404": "Unknown object or endpoint.",
    "405": "Method not allowed on this endpoint.",
    "429": "Too many requests for this API key; see the Retry-After header.",
}
WRITE_ERRORS = {
    "409": "A request with the same Idempotency-Key is still running.",
    "415": "The body is not JSON.",
    "422": "The Idempotency-Key was already used with a different request.",
}


def add_error_responses(result, generator, request, public):
    """drf-spectacular post-processing hook."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        if not path.startswith(("/v1/", "/v2/")) or path == "/v1/schema":
            continue
        for method, operation in operations.items():
            errors = dict(ERRORS)
            if method in {"post", "put"}:
                errors.update(WRITE_ERRORS)
            for status, description in errors.items():
                operation["responses"].setdefault(
                    status, {"description": description, "content": reference}
                )
    return result
