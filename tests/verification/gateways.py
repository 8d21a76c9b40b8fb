"""An SMS provider for tests: the sandbox's behaviour, plus a record of what it was handed."""

from __future__ import annotations

from apps.verification.sms import OutboxSmsGateway

PATH = "tests.verification.gateways.RecordingSmsGateway"


class RecordingSmsGateway(OutboxSmsGateway):
    handed: list[dict[str, str]] = []

    def send(self, *, phone: str, text: str, key: str = "") -> str:
        self.handed.append({"phone": phone, "text": text, "key": key})
        return super().send(phone=phone, text=text, key=key)


class DyingSmsGateway:
    """The worker process dies while the provider is being called."""

    def send(self, *, phone: str, text: str, key: str = "") -> str:
        raise SystemExit("worker killed")


class BrokenSmsGateway:
    """A gateway with a bug: not a provider failure, an unexpected exception."""

    def send(self, *, phone: str, text: str, key: str = "") -> str:
        raise KeyError("bug")
