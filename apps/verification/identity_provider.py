"""The identity-document provider, as Tranche uses it: one small interface, chosen by a setting.

``settings.IDENTITY_PROVIDER`` names the implementation; ``apps.verification.identity_sandbox``
is the default in development and tests and behaves like a real provider (outcomes chosen by
the test photos in ``docs/test-files/identity/``). A real adapter implements the same methods.

How a check runs with any provider:
- ``submit`` hands over the cleaned photos and the names the customer gave; it answers at once
  with the provider's reference, not with a verdict (raises ``IdentityProviderUnavailable`` on a
  timeout or a 5xx: nothing was taken, the customer may send again);
- the verdict comes later, pushed to our webhook (a JSON body signed with HMAC-SHA256 of the
  provider's webhook secret, header ``X-Identity-Signature: sha256=<hex>``) and also available by
  pulling ``result(reference=...)``; both are recorded by the same service, which is idempotent;
- no call is made inside an open database transaction.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from apps.verification.errors import IdentityProviderUnavailable

__all__ = [
    "RESULT_STATUSES",
    "SIGNATURE_HEADER",
    "IdentityProvider",
    "IdentityProviderUnavailable",
    "IdentityResult",
    "IdentitySubmission",
    "identity_provider",
    "webhook_signature",
    "webhook_signature_valid",
]

RESULT_STATUSES = ("approved", "rejected", "retake")
SIGNATURE_HEADER = "X-Identity-Signature"
SIGNATURE_SCHEME = "sha256="


@dataclass(frozen=True)
class IdentitySubmission:
    """What we send: the cleaned photos and who the customer says they are.

    ``client_reference`` names this attempt on our side (``<check id>:<attempt>``); the
    provider gives it back with its answer, so an answer that arrives before we stored the
    provider's reference still finds its check, and one for an older attempt finds none.
    """

    client_reference: str
    livemode: bool
    document: bytes
    document_content_type: str
    selfie: bytes
    selfie_content_type: str
    first_name: str
    last_name: str
    birth_date: date | None


@dataclass(frozen=True)
class IdentityResult:
    """The provider's verdict on one submission and what it read on the document.

    ``status`` is approved, rejected or retake (photos unusable: blurred, glare, cut off);
    ``reason_code`` says why (``clear``, ``document_forged``, ``face_mismatch``,
    ``document_unreadable``...); ``checks`` is the provider's own list of checks and outcomes.
    """

    reference: str
    status: str
    reason_code: str = ""
    first_name: str = ""
    last_name: str = ""
    birth_date: date | None = None
    document_type: str = ""
    checks: dict[str, str] = field(default_factory=dict)
    client_reference: str = ""

    def __post_init__(self) -> None:
        if self.status not in RESULT_STATUSES:
            raise ValueError(f"unknown identity result status {self.status!r}")
        if not self.reference:
            raise ValueError("an identity result needs the provider's reference")

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (the webhook body, and the evidence we keep)."""
        return {
            "reference": self.reference,
            "client_reference": self.client_reference,
            "status": self.status,
            "reason_code": self.reason_code,
            "document": {
                "type": self.document_type,
                "first_name": self.first_name,
                "last_name": self.last_name,
                "birth_date": self.birth_date.isoformat() if self.birth_date else None,
            },
            "checks": dict(self.checks),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IdentityResult:
        """The inverse of ``as_dict``; raises ValueError (or KeyError, TypeError) on a body
        that does not have that shape."""
        document = data.get("document") or {}
        if not isinstance(document, dict):
            raise ValueError("document must be an object")
        checks = data.get("checks") or {}
        if not isinstance(checks, dict):
            raise ValueError("checks must be an object")
        birth_date = document.get("birth_date")
        return cls(
            reference=_text(data["reference"], 100),
            client_reference=_text(data.get("client_reference") or "", 100),
            status=_text(data["status"], 20),
            reason_code=_text(data.get("reason_code") or "", 40),
            document_type=_text(document.get("type") or "", 40),
            first_name=_text(document.get("first_name") or "", 100),
            last_name=_text(document.get("last_name") or "", 100),
            birth_date=date.fromisoformat(birth_date) if birth_date else None,
            checks={_text(key, 40): _text(value, 40) for key, value in checks.items()},
        )


def _text(value: Any, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"expected a string of at most {limit} characters")
    return value


class IdentityProvider(Protocol):
    def submit(self, submission: IdentitySubmission) -> str:
        """Hand the photos over; returns the provider's reference at once (the verdict comes
        later). Raises ``IdentityProviderUnavailable`` on a timeout or a failure."""

    def result(self, *, reference: str) -> IdentityResult | None:
        """The verdict for ``reference``, or None while it is still being checked. Raises
        ``IdentityProviderUnavailable`` when the provider cannot say."""

    def webhook_secret(self) -> bytes:
        """The secret the provider signs its webhook calls with."""

    def webhook_result(self, payload: dict[str, Any]) -> IdentityResult:
        """The verdict in a webhook body (already parsed from JSON, signature checked);
        raises ValueError, KeyError or TypeError when it has not the provider's shape."""


def identity_provider() -> IdentityProvider:
    return import_string(settings.IDENTITY_PROVIDER)()


def webhook_signature(*, secret: bytes, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=`` and the hex HMAC-SHA256."""
    return SIGNATURE_SCHEME + hmac.new(secret, body, hashlib.sha256).hexdigest()


def webhook_signature_valid(*, secret: bytes, body: bytes, signature: str) -> bool:
    """Whether ``signature`` is the provider's for ``body`` (compared in constant time)."""
    expected = webhook_signature(secret=secret, body=body)
    return hmac.compare_digest(expected.encode(), (signature or "").strip().encode())
