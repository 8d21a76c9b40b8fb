"""Domain errors: a stable code, a message safe to show, and the HTTP status they map to.

Services raise subclasses defined next to them; the API maps them to a response once, in
``apps.common.api.errors.exception_handler``; pages show ``message``.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "error"
    http_status = 400
    default_message = "The request could not be carried out."

    def __init__(self, message: str | None = None, **extra: Any):
        self.message = str(message or self.default_message)
        self.extra = extra
        super().__init__(self.message)


class NotFound(DomainError):
    code = "not_found"
    http_status = 404
    default_message = "Not found."

    def __init__(self, object_type: str, value: str):
        super().__init__(
            f"No {object_type} with id {value!r}.", object_type=object_type, value=value
        )


class InvalidTransition(DomainError):
    code = "invalid_transition"
    http_status = 409

    def __init__(self, thing: str, current: str, target: str):
        super().__init__(f"A {thing} cannot go from {current} to {target}.")
        self.current = current
        self.target = target


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    http_status = 422
    default_message = (
        "This Idempotency-Key was already used with a different request; use a new key."
    )


class IdempotentRequestInFlight(DomainError):
    code = "idempotent_request_in_progress"
    http_status = 409
    default_message = (
        "A request with this Idempotency-Key is still being processed; retry in a moment."
    )
