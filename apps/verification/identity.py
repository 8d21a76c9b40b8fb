"""Identity-document checks: a document photo and a selfie, judged by the identity provider.

A check is started for a ``purpose`` and a ``subject`` chosen by the caller (verification knows
nothing of payments) with the names and birth date the document must show. Its life:

    waiting_files -> submitted -> approved | rejected | retake | provider_error
    retake, provider_error -> submitted (new photos; at most MAX_SUBMISSIONS in all)

Photos are checked and cleaned (``identity_files.photo_check``), stored sealed, then handed to
the provider outside any transaction. The verdict arrives by webhook or by pulling it
(``identity_check_refresh``), both recorded by ``identity_result_record``, which is idempotent.
The provider's verdict is kept as evidence; an approved document that shows another name or
birth date than expected is stored as rejected (``identity_mismatch``). The photos are deleted
``VERIFICATION_EVIDENCE_RETENTION_DAYS`` after the decision by ``identity_evidence_delete_expired``.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction

from apps.common.ids import with_prefix
from apps.verification.errors import (
    IdentityCheckDecided,
    IdentityCheckInProgress,
    IdentityCheckNotFound,
    IdentityProviderUnavailable,
    IdentityResultUnknown,
    IdentityWebhookRefused,
    TooManyIdentitySubmissions,
)
from apps.verification.identity_files import (
    identity_file_delete,
    identity_file_store,
    photo_check,
)
from apps.verification.identity_provider import (
    IdentityResult,
    IdentitySubmission,
    identity_provider,
    webhook_signature_valid,
)
from apps.verification.models import IDENTITY_CHECK_ID_PREFIX, IdentityCheck
from apps.verification.names import name_tokens

logger = logging.getLogger(__name__)

Status = IdentityCheck.Status
MAX_SUBMISSIONS = 4
# Checks that may still receive photos or a verdict: starting again returns them.
OPEN_STATUSES = (Status.WAITING_FILES, Status.SUBMITTED, Status.RETAKE, Status.PROVIDER_ERROR)
ACCEPTS_PHOTOS = (Status.WAITING_FILES, Status.RETAKE, Status.PROVIDER_ERROR)
DECIDED_STATUSES = (Status.APPROVED, Status.REJECTED)
MISMATCH = "identity_mismatch"


# Spellings that differ between a document and what a customer types: hyphens and apostrophes
# (Jean-Pierre, Jean Pierre; O'Neil, ONeil) and letters NFKD does not decompose.
def identity_check_start(
    *,
    livemode: bool,
    purpose: str,
    subject: str,
    first_name: str,
    last_name: str,
    birth_date: date | None,
    now: datetime,
) -> IdentityCheck:
    """A check waiting for the photos of the person named. An open check for the same purpose
    and subject (waiting for photos, being checked, to retake, or after a provider outage) is
    returned instead of a second one, so a reloaded page or two tabs share one check and its
    submission limit. A decided check is never reopened: a new one is started."""
    first_name, last_name = first_name.strip(), last_name.strip()
    if not first_name or not last_name:
        raise ValueError("an identity check needs the first and last names to expect")
    with transaction.atomic():
        # Two requests starting at once must not both create one: serialise on the subject.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                [f"identitycheck:{int(livemode)}:{purpose}:{subject}"],
            )
        existing = (
            IdentityCheck.objects.filter(
                livemode=livemode, purpose=purpose, subject=subject, status__in=OPEN_STATUSES
            )
            .order_by("-created_at")
            .first()
        )
        if existing is not None:
            return existing
        return IdentityCheck.objects.create(
            livemode=livemode,
            purpose=purpose,
            subject=subject,
            expected_first_name=first_name[:100],
            expected_last_name=last_name[:100],
            expected_birth_date=birth_date,
            created_at=now,
        )


def identity_check_get(*, check_id: str) -> IdentityCheck:
    """The check with this public id (given with or without its ``idcheck_`` prefix)."""
    try:
        return IdentityCheck.objects.get(public_id=with_prefix(IDENTITY_CHECK_ID_PREFIX, check_id))
    except IdentityCheck.DoesNotExist as exc:
        raise IdentityCheckNotFound(check_id) from exc


def identity_check_submit(*, check_id: str, document, selfie, now: datetime) -> IdentityCheck:
    """Check and store the two photos (uploaded files), mark the check submitted and hand the
    photos to the provider (outside any transaction). Returns the submitted check; the verdict
    comes later (webhook, or ``identity_check_refresh``).

    Raises ``UploadRefused`` (naming the field) for a photo we do not take,
    ``IdentityCheckDecided`` / ``IdentityCheckInProgress`` when the check takes no photos now,
    ``TooManyIdentitySubmissions`` after ``MAX_SUBMISSIONS`` sends, and
    ``IdentityProviderUnavailable`` when the provider failed (the check is then
    ``provider_error`` and new photos may be sent).
    """
    check = identity_check_get(check_id=check_id)
    _refuse_submission(check)
    document_photo = photo_check(document, field="document")
    selfie_photo = photo_check(selfie, field="selfie")
    stored = {
        "document": identity_file_store(check=check, which="document", photo=document_photo),
        "selfie": identity_file_store(check=check, which="selfie", photo=selfie_photo),
    }
    try:
        with transaction.atomic():
            check = _check_locked(check.public_id)
            _refuse_submission(check)
            replaced = [] if check.files_deleted_at else _stored_names(check)
            check.document_file.name = stored["document"]
            check.document_content_type = document_photo.content_type
            check.selfie_file.name = stored["selfie"]
            check.selfie_content_type = selfie_photo.content_type
            check.status = Status.SUBMITTED
            check.submissions += 1
            check.submitted_at = now
            check.provider_reference = ""
            check.result_code = ""
            check.names_match = None
            check.birth_date_match = None
            # Deleted after the retention period even if no verdict ever comes; a verdict
            # restarts the period from its own date.
            check.files_delete_after = now + timedelta(
                days=settings.VERIFICATION_EVIDENCE_RETENTION_DAYS
            )
            check.files_deleted_at = None
            check.save(
                update_fields=[
                    "document_file",
                    "document_content_type",
                    "selfie_file",
                    "selfie_content_type",
                    "status",
                    "submissions",
                    "submitted_at",
                    "provider_reference",
                    "result_code",
                    "names_match",
                    "birth_date_match",
                    "files_delete_after",
                    "files_deleted_at",
                ]
            )
            # The photos of a retake are replaced, not kept: evidence is the last verdict's.
            transaction.on_commit(partial(_files_delete, replaced), robust=True)
    except BaseException:
        _files_delete(list(stored.values()))
        raise

    attempt = check.submissions
    submission = IdentitySubmission(
        client_reference=f"{check.public_id}:{attempt}",
        livemode=check.livemode,
        document=document_photo.content,
        document_content_type=document_photo.content_type,
        selfie=selfie_photo.content,
        selfie_content_type=selfie_photo.content_type,
        first_name=check.expected_first_name,
        last_name=check.expected_last_name,
        birth_date=check.expected_birth_date,
    )
    try:
        reference = identity_provider().submit(submission)
    except IdentityProviderUnavailable as exc:
        logger.warning("identity check %s: provider unavailable: %s", check.public_id, exc.extra)
        _provider_failed(check_id=check.public_id, attempt=attempt, now=now)
        raise
    except Exception as exc:
        logger.exception("identity check %s: the provider failed unexpectedly", check.public_id)
        _provider_failed(check_id=check.public_id, attempt=attempt, now=now)
        raise IdentityProviderUnavailable(detail=f"{type(exc).__name__}: {exc}") from exc

    with transaction.atomic():
        check = _check_locked(check.public_id)
        # An answer that came back before this line already stored the same reference.
        if check.submissions == attempt and not check.provider_reference:
            check.provider_reference = reference[:100]
            check.save(update_fields=["provider_reference"])
    return check


def identity_attempts_left(check: IdentityCheck) -> int:
    """How many more times photos may be sent for this check."""
    return max(MAX_SUBMISSIONS - check.submissions, 0)


def identity_check_refresh(*, check_id: str, now: datetime) -> IdentityCheck:
    """The check, with the provider's verdict pulled and recorded if it is being checked and
    the provider has decided. Cheap and harmless on every poll of the waiting page: a check
    that is not waiting for a verdict is returned as it is, and so is one whose provider
    cannot answer right now."""
    check = identity_check_get(check_id=check_id)
    if check.status != Status.SUBMITTED or not check.provider_reference:
        return check
    try:
        result = identity_provider().result(reference=check.provider_reference)
    except IdentityProviderUnavailable as exc:
        logger.info("identity check %s: result not available: %s", check.public_id, exc.extra)
        return check
    if result is None:
        return check
    return identity_result_record(
        provider_reference=check.provider_reference, result=result, now=now
    )


def identity_result_record(
    *, provider_reference: str, result: IdentityResult, now: datetime
) -> IdentityCheck:
    """Record the provider's verdict on the submission ``provider_reference`` names.

    Idempotent: once the check has left ``submitted`` (decided, or asked to retake), a
    replayed or late verdict changes nothing and the check is returned as it is. An answer
    that beats the storing of the reference is matched by its ``client_reference`` (check id
    and attempt). Raises ``IdentityResultUnknown`` for a reference no check waits for (for
    instance an older attempt's, replaced by new photos).
    """
    with transaction.atomic():
        check = _check_for_result(provider_reference=provider_reference, result=result)
        if check.status != Status.SUBMITTED:
            return check
        names_match, birth_date_match = _identity_match(check=check, result=result)
        evidence = {**result.as_dict(), "recorded_at": now.isoformat()}
        check.provider_reference = provider_reference[:100]
        check.provider_result = evidence
        check.names_match = names_match
        check.birth_date_match = birth_date_match
        if result.status == "approved" and (names_match is not True or birth_date_match is False):
            check.status, check.result_code = Status.REJECTED, MISMATCH
        elif result.status == "approved":
            check.status, check.result_code = Status.APPROVED, result.reason_code or "clear"
        elif result.status == "rejected":
            check.status, check.result_code = Status.REJECTED, result.reason_code or "rejected"
        else:
            check.status, check.result_code = Status.RETAKE, result.reason_code or "retake"
        retention = timedelta(days=settings.VERIFICATION_EVIDENCE_RETENTION_DAYS)
        if check.status in DECIDED_STATUSES:
            check.decided_at = now
        # A retake that is never followed by new photos must not keep these ones forever.
        check.files_delete_after = now + retention
        check.save(
            update_fields=[
                "provider_reference",
                "provider_result",
                "names_match",
                "birth_date_match",
                "status",
                "result_code",
                "decided_at",
                "files_delete_after",
            ]
        )
    logger.info("identity check %s: %s (%s)", check.public_id, check.status, check.result_code)
    return check


def identity_webhook_receive(*, body: bytes, signature: str, now: datetime) -> IdentityCheck:
    """A call on the provider's webhook: check its signature (HMAC-SHA256 of the body with the
    provider's webhook secret, compared in constant time), read the verdict and record it.

    Raises ``IdentityWebhookRefused`` (400) for a bad signature or an unreadable body, and
    ``IdentityResultUnknown`` for a verdict no check waits for.
    """
    provider = identity_provider()
    if not webhook_signature_valid(
        secret=provider.webhook_secret(), body=body, signature=signature
    ):
        raise IdentityWebhookRefused("The signature of this notification is not valid.")
    try:
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise ValueError("the body is not a JSON object")
        result = provider.webhook_result(payload)
    except (ValueError, KeyError, TypeError) as exc:
        raise IdentityWebhookRefused(
            "The body of this notification cannot be read.", detail=str(exc)[:200]
        ) from exc
    return identity_result_record(provider_reference=result.reference, result=result, now=now)


def identity_evidence_delete_expired(*, now: datetime, limit: int = 200) -> int:
    """Delete the photos of checks whose retention ended on or before ``now`` (at most
    ``limit`` checks); returns how many checks had their photos deleted. Rows are claimed with
    SKIP LOCKED, so two sweeps at once share the work and a rerun finds nothing left."""
    with transaction.atomic():
        expired = list(
            IdentityCheck.objects.select_for_update(skip_locked=True)
            .filter(files_deleted_at__isnull=True, files_delete_after__lte=now)
            .order_by("files_delete_after")[:limit]
        )
        for check in expired:
            # Deleted while the row is held: a crash before commit leaves names that point
            # to nothing, which the next sweep clears; never a file nobody knows about.
            _files_delete(_stored_names(check))
            check.document_file.name = ""
            check.selfie_file.name = ""
            check.files_deleted_at = now
            check.save(update_fields=["document_file", "selfie_file", "files_deleted_at"])
    if expired:
        logger.info("identity evidence: photos of %d checks deleted", len(expired))
    return len(expired)


# --- helpers ---------------------------------------------------------------------------


def _refuse_submission(check: IdentityCheck) -> None:
    if check.status in DECIDED_STATUSES:
        raise IdentityCheckDecided()
    if check.status == Status.SUBMITTED:
        raise IdentityCheckInProgress()
    if check.status not in ACCEPTS_PHOTOS:  # a status added later without a rule here
        raise IdentityCheckDecided()
    if check.submissions >= MAX_SUBMISSIONS:
        raise TooManyIdentitySubmissions()


def _check_locked(public_id: str) -> IdentityCheck:
    try:
        return IdentityCheck.objects.select_for_update().get(public_id=public_id)
    except IdentityCheck.DoesNotExist as exc:
        raise IdentityCheckNotFound(public_id) from exc


def _check_for_result(*, provider_reference: str, result: IdentityResult) -> IdentityCheck:
    """The locked check a verdict belongs to: by the provider's reference, or by the attempt
    named in ``client_reference`` when the reference is not stored yet."""
    if provider_reference:
        check = (
            IdentityCheck.objects.select_for_update()
            .filter(provider_reference=provider_reference)
            .first()
        )
        if check is not None:
            return check
    check_id, _, attempt = result.client_reference.rpartition(":")
    if check_id and attempt.isdigit():
        check = (
            IdentityCheck.objects.select_for_update()
            .filter(
                public_id=check_id,
                submissions=int(attempt),
                status=Status.SUBMITTED,
                provider_reference="",
            )
            .first()
        )
        if check is not None:
            return check
    raise IdentityResultUnknown(provider_reference=provider_reference)


def _provider_failed(*, check_id: str, attempt: int, now: datetime) -> None:
    retention = timedelta(days=settings.VERIFICATION_EVIDENCE_RETENTION_DAYS)
    with transaction.atomic():
        check = _check_locked(check_id)
        if check.status == Status.SUBMITTED and check.submissions == attempt:
            check.status = Status.PROVIDER_ERROR
            check.result_code = IdentityProviderUnavailable.code
            # Kept for a new try, but not forever if the customer leaves.
            check.files_delete_after = now + retention
            check.save(update_fields=["status", "result_code", "files_delete_after"])


def _identity_match(
    *, check: IdentityCheck, result: IdentityResult
) -> tuple[bool | None, bool | None]:
    """Whether the document shows the expected names and birth date. None when there is
    nothing to compare (a verdict that read no names; no birth date expected)."""
    names_match = None
    if result.first_name or result.last_name:
        names_match = _first_names_match(
            expected=check.expected_first_name, shown=result.first_name
        ) and _name_key(check.expected_last_name) == _name_key(result.last_name)
    if result.status == "approved" and names_match is None:
        names_match = False  # an approval that names nobody proves nothing
    birth_date_match = None
    if check.expected_birth_date is not None and (
        result.birth_date is not None or result.status == "approved"
    ):
        birth_date_match = result.birth_date == check.expected_birth_date
    return names_match, birth_date_match


def _first_names_match(*, expected: str, shown: str) -> bool:
    """Equal, or the expected first name(s) open the document's list of given names (a card
    reads "Marie Claire Anne", the customer typed "Marie" or "Marie-Claire")."""
    expected_tokens, shown_tokens = name_tokens(expected), name_tokens(shown)
    if not expected_tokens or not shown_tokens:
        return False
    return "".join(expected_tokens) == "".join(shown_tokens) or (
        shown_tokens[: len(expected_tokens)] == expected_tokens
    )


def _name_key(name: str) -> str:
    """Separators dropped too: "O'Neil", "ONeil" and "o neil" are one name."""
    return "".join(name_tokens(name))


def _stored_names(check: IdentityCheck) -> list[str]:
    return [name for name in (check.document_file.name, check.selfie_file.name) if name]


def _files_delete(names: list[str]) -> None:
    for name in names:
        identity_file_delete(name)
