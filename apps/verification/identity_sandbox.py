"""The sandbox identity provider: an outside party that lives in our process.

It behaves like a real provider, not like a mock that always says yes: ``submit`` answers at
once with a reference and no verdict; the verdict comes asynchronously, pushed as a signed
webhook body by a django-q task (``apps.verification.tasks.identity_sandbox_answer``) handed to
the same service the HTTP webhook uses, and can also be pulled with ``result`` once the
processing time (``PROCESSING_SECONDS``) has passed.

The outcome is chosen by what the document photo shows, never by its file name: the test photos
in ``docs/test-files/identity/`` are plain colours (see ``make.py`` there), and the colour that
covers most of the cleaned photo picks the scenario in ``SCENARIO_COLOURS``. Any other photo is
approved, the names and birth date the customer gave read back from the "document".

The sandbox keeps no records of its own: its pull answer is derived again from the stored check
(the same photo gives the same verdict), and it keeps its own clock (``timezone.now()``).
"""

from __future__ import annotations

import io
import json
import logging
from datetime import date, timedelta
from typing import Any

from django.utils import timezone
from django.utils.crypto import salted_hmac
from PIL import Image, ImageStat

from apps.common.ids import new_public_id
from apps.verification.identity_provider import (
    IdentityProviderUnavailable,
    IdentityResult,
    IdentitySubmission,
    webhook_signature,
)

logger = logging.getLogger(__name__)

REFERENCE_PREFIX = "idsbx"
ANSWER_TASK = "apps.verification.tasks.identity_sandbox_answer"
# How long the sandbox "looks at" the photos before ``result`` answers. Tests move the clock
# past it with time-machine (or set it to 0).
PROCESSING_SECONDS = 2
# The background colour of each test document (docs/test-files/identity/make.py draws them).
SCENARIO_COLOURS: dict[str, tuple[int, int, int]] = {
    "approved": (46, 160, 67),
    "rejected": (200, 40, 40),
    "retake": (240, 180, 0),
    "other_person": (40, 90, 200),
    "timeout": (130, 50, 160),
}
# A JPEG round trip moves a flat colour by a few units; a real photo is far from all of them.
COLOUR_TOLERANCE = 40
# Who the document of the "other person" test photo shows.
OTHER_PERSON = {"first_name": "Camille", "last_name": "Durand", "birth_date": date(1979, 3, 14)}
CLEAR_CHECKS = {
    "document_authenticity": "clear",
    "document_expiry": "clear",
    "image_quality": "clear",
    "face_match": "clear",
    "liveness": "clear",
}


class UnknownReference(LookupError):
    """The sandbox never received a submission with this reference."""


def sandbox_scenario(photo: bytes) -> str:
    """The test scenario a document photo stands for: the scenario whose colour the median
    pixel of the photo is closest to, within ``COLOUR_TOLERANCE``; ``approved`` otherwise."""
    with Image.open(io.BytesIO(photo)) as image:
        small = image.convert("RGB").resize((64, 40))
    median = ImageStat.Stat(small).median
    best, distance = "approved", float(COLOUR_TOLERANCE)
    for scenario, colour in SCENARIO_COLOURS.items():
        gap = max(abs(channel - target) for channel, target in zip(median, colour, strict=True))
        if gap <= distance:
            best, distance = scenario, gap
    return best


def sandbox_result(
    *,
    reference: str,
    client_reference: str,
    scenario: str,
    first_name: str,
    last_name: str,
    birth_date: date | None,
) -> IdentityResult:
    """The verdict the sandbox gives for ``scenario`` (``timeout`` has none: submit fails)."""
    common = {"reference": reference, "client_reference": client_reference}
    if scenario == "rejected":
        return IdentityResult(
            **common,
            status="rejected",
            reason_code="document_forged",
            document_type="identity_card",
            checks={**CLEAR_CHECKS, "document_authenticity": "failed"},
        )
    if scenario == "retake":
        return IdentityResult(
            **common,
            status="retake",
            reason_code="document_unreadable",
            checks={"image_quality": "failed"},
        )
    if scenario == "other_person":
        return IdentityResult(
            **common,
            status="approved",
            reason_code="clear",
            document_type="identity_card",
            checks=dict(CLEAR_CHECKS),
            **OTHER_PERSON,
        )
    return IdentityResult(
        **common,
        status="approved",
        reason_code="clear",
        document_type="identity_card",
        checks=dict(CLEAR_CHECKS),
        first_name=first_name,
        last_name=last_name,
        birth_date=birth_date,
    )


def sandbox_webhook_secret() -> bytes:
    """The sandbox's webhook secret, derived from SECRET_KEY (a real provider gives one)."""
    return salted_hmac(
        "apps.verification.identity_sandbox.webhook", "webhook-secret", algorithm="sha256"
    ).digest()


def sandbox_webhook_deliver(payload: dict[str, Any]) -> tuple[bytes, str]:
    """The body and signature the sandbox's webhook call carries for ``payload``."""
    body = json.dumps(payload, sort_keys=True).encode()
    return body, webhook_signature(secret=sandbox_webhook_secret(), body=body)


class SandboxIdentityProvider:
    """``apps.verification.identity_provider.IdentityProvider`` for development and tests."""

    def submit(self, submission: IdentitySubmission) -> str:
        scenario = sandbox_scenario(submission.document)
        if scenario == "timeout":
            raise IdentityProviderUnavailable(detail="sandbox: the provider timed out")
        reference = new_public_id(REFERENCE_PREFIX)
        result = sandbox_result(
            reference=reference,
            client_reference=submission.client_reference,
            scenario=scenario,
            first_name=submission.first_name,
            last_name=submission.last_name,
            birth_date=submission.birth_date,
        )
        self._answer_later(result)
        return reference

    def result(self, *, reference: str) -> IdentityResult | None:
        # Imported here: the sandbox reads our stored check like a provider reads its own
        # copy of the photos, and the services import this module's interface.
        from apps.verification.identity_files import identity_file_open
        from apps.verification.models import IdentityCheck

        check = IdentityCheck.objects.filter(provider_reference=reference).first()
        if not reference or check is None or check.submitted_at is None:
            raise UnknownReference(reference)
        if timezone.now() < check.submitted_at + timedelta(seconds=PROCESSING_SECONDS):
            return None
        document, _content_type = identity_file_open(check, "document")
        return sandbox_result(
            reference=reference,
            client_reference=f"{check.public_id}:{check.submissions}",
            scenario=sandbox_scenario(document),
            first_name=check.expected_first_name,
            last_name=check.expected_last_name,
            birth_date=check.expected_birth_date,
        )

    def webhook_secret(self) -> bytes:
        return sandbox_webhook_secret()

    def webhook_result(self, payload: dict[str, Any]) -> IdentityResult:
        return IdentityResult.from_dict(payload)

    def _answer_later(self, result: IdentityResult) -> None:
        from django_q.tasks import async_task

        try:
            async_task(
                ANSWER_TASK, result.as_dict(), task_name=f"identity-sandbox:{result.reference}"
            )
        except Exception:  # the broker is down: the pull (``result``) still answers
            logger.warning("identity sandbox: the answer of %s was not queued", result.reference)
