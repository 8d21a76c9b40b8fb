"""SMS gateways: the interface, the sandbox outbox and one HTTP provider adapter.

``settings.SMS_GATEWAY`` names the class in use. Gateways are called only by the outbox task,
outside any database transaction, and translate every failure of the provider into
``SmsRejected`` (for good) or ``SmsProviderUnavailable`` (try again later).
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from apps.common.ids import random_base62
from apps.verification.errors import SmsProviderUnavailable, SmsRejected


class SmsGateway(Protocol):
    def send(self, *, phone: str, text: str, key: str = "") -> str:
        """Hand one message to the provider; returns the provider's reference for it.

        ``key`` is the outbox key: providers that deduplicate on a client reference get it,
        so a message handed over twice (a task run twice) reaches the phone once.
        """
        ...


def sms_gateway() -> SmsGateway:
    return import_string(settings.SMS_GATEWAY)()


class OutboxSmsGateway:
    """The sandbox provider: delivers nowhere; the outbox row is what the dev page and tests
    read. Like a real provider it can refuse a message or be down, chosen by test numbers."""

    REJECTED_NUMBER = "+33699999901"
    UNAVAILABLE_NUMBER = "+33699999902"

    def send(self, *, phone: str, text: str, key: str = "") -> str:
        if phone == self.REJECTED_NUMBER:
            raise SmsRejected(detail="sandbox: number refused by the provider")
        if phone == self.UNAVAILABLE_NUMBER:
            raise SmsProviderUnavailable(detail="sandbox: provider unavailable")
        return f"outbox_{random_base62(24)}"


class HttpJsonSmsGateway:
    """A generic HTTP provider that takes ``POST {to, text, sender, reference}`` as JSON with
    a bearer token and answers ``{"id": ...}``. Configured from the environment:
    ``SMS_HTTP_URL``, ``SMS_HTTP_TOKEN``, ``SMS_HTTP_SENDER`` (the name shown on the phone).
    """

    TIMEOUT_SECONDS = 5.0

    def __init__(
        self,
        *,
        url: str | None = None,
        token: str | None = None,
        sender: str | None = None,
        transport: Any = None,
    ):
        self.url = url if url is not None else os.environ.get("SMS_HTTP_URL", "")
        self.token = token if token is not None else os.environ.get("SMS_HTTP_TOKEN", "")
        self.sender = sender if sender is not None else os.environ.get("SMS_HTTP_SENDER", "Tranche")
        # Tests pass an httpx transport standing in for the provider's server.
        self.transport = transport

    def send(self, *, phone: str, text: str, key: str = "") -> str:
        # httpx comes with the development tools; production installs it with this adapter.
        import httpx

        if not self.url or not self.token:
            raise SmsProviderUnavailable(detail="SMS_HTTP_URL and SMS_HTTP_TOKEN are not set")
        try:
            with httpx.Client(timeout=self.TIMEOUT_SECONDS, transport=self.transport) as client:
                response = client.post(
                    self.url,
                    json={"to": phone, "text": text, "sender": self.sender, "reference": key},
                    headers={"Authorization": f"Bearer {self.token}"},
                )
        except httpx.HTTPError as exc:
            raise SmsProviderUnavailable(detail=f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise SmsProviderUnavailable(detail=f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise SmsRejected(detail=f"HTTP {response.status_code}: {response.text[:200]}")
        try:
            reference = str(response.json()["id"])
        except (ValueError, KeyError, TypeError):
            # It answered 2xx, so the message was taken: not worth sending twice for want of
            # a reference.
            return "unknown"
        return reference[:100]
