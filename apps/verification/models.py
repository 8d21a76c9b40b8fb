"""Phone checks (one-time codes sent by SMS) and the SMS outbox.

Verification knows nothing of payments: a check names what it protects with a free
``purpose`` and ``subject`` chosen by the caller.
"""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.common.ids import new_public_id

PHONE_CHECK_ID_PREFIX = "phonecheck"


def new_phone_check_id() -> str:
    return new_public_id(PHONE_CHECK_ID_PREFIX)


class PhoneCheck(models.Model):
    """One request to prove that a customer holds a phone: a 6-digit code sent by SMS.

    The state is read from the timestamps: pending, then verified (``verified_at``) or locked
    after too many wrong codes (``locked_at``); a pending check past ``expires_at`` is expired
    until a resend gives it a new code. Only an HMAC of the code is kept; the plain code is
    kept in ``test_code`` for test-mode checks only, so the test checkout can show it.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for the code")
        VERIFIED = "verified", _("Verified")
        LOCKED = "locked", _("Locked")
        EXPIRED = "expired", _("Expired")

    public_id = models.CharField(max_length=50, unique=True, default=new_phone_check_id)
    phone = models.CharField(max_length=20)
    livemode = models.BooleanField()
    purpose = models.CharField(max_length=40)
    subject = models.CharField(max_length=100, blank=True)
    # The language the SMS is written in, kept so a resend speaks the same one.
    language = models.CharField(max_length=8)
    # Where the request came from, for the per-address limit (null when not from a browser).
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    code_hash = models.CharField(max_length=64)
    test_code = models.CharField(max_length=6, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    sends = models.PositiveSmallIntegerField(default=0)
    last_sent_at = models.DateTimeField()
    verified_at = models.DateTimeField(null=True, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(livemode=False) | models.Q(test_code=""),
                name="phonecheck_no_plain_code_in_live",
            ),
            models.CheckConstraint(
                condition=models.Q(verified_at__isnull=True) | models.Q(locked_at__isnull=True),
                name="phonecheck_not_verified_and_locked",
            ),
        ]
        indexes = [
            # Counting the checks started lately for one number (the per-number limit).
            models.Index(fields=["phone", "livemode", "created_at"], name="phonecheck_phone_idx"),
            models.Index(fields=["purpose", "subject"], name="phonecheck_subject_idx"),
            models.Index(
                fields=["ip_address", "created_at"],
                condition=models.Q(ip_address__isnull=False),
                name="phonecheck_ip_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.public_id

    def status_at(self, now: datetime) -> str:
        if self.verified_at is not None:
            return self.Status.VERIFIED
        if self.locked_at is not None:
            return self.Status.LOCKED
        if now >= self.expires_at:
            return self.Status.EXPIRED
        return self.Status.PENDING


class SmsMessage(models.Model):
    """The SMS outbox: a message is recorded in the transaction that decides to send it and
    sent after commit by a task. ``key`` names the message (``phonecheck:<id>:send:1``), so
    deciding twice records it once and a rerun of the task never sends it twice.

    Test-mode messages are never handed to a provider: they stay here, for the dev page and
    for tests, as ``not_sent_test_mode``. In live mode the secret part of a message (a
    one-time code) is never stored in the clear: ``text`` shows it masked, and the full text
    waits sealed (encrypted) in ``sealed_text`` until the provider has it, then is erased.
    A live message goes queued -> sending (claimed by a worker, committed before the provider
    is called) -> sent or failed; a provider outage puts it back to queued for another try.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        NOT_SENT_TEST_MODE = "not_sent_test_mode", _("Not sent (test mode)")
        FAILED = "failed", _("Failed")

    key = models.CharField(max_length=200, unique=True)
    phone = models.CharField(max_length=20)
    text = models.TextField()
    sealed_text = models.TextField(blank=True)
    livemode = models.BooleanField()
    status = models.CharField(max_length=20, choices=Status.choices)
    created_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    provider_reference = models.CharField(max_length=100, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    status__in=["queued", "sending", "sent", "not_sent_test_mode", "failed"]
                ),
                name="smsmessage_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(livemode=True)
                | models.Q(status="not_sent_test_mode", provider_reference=""),
                name="smsmessage_test_mode_never_sent",
            ),
            models.CheckConstraint(
                condition=models.Q(livemode=True) | models.Q(sealed_text=""),
                name="smsmessage_test_mode_not_sealed",
            ),
        ]
        indexes = [
            models.Index(fields=["-created_at"], name="smsmessage_latest_idx"),
            models.Index(
                fields=["created_at"],
                condition=models.Q(status__in=["queued", "sending"]),
                name="smsmessage_pending_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.key


IDENTITY_CHECK_ID_PREFIX = "idcheck"
BANK_CHECK_ID_PREFIX = "bankcheck"


def new_identity_check_id() -> str:
    return new_public_id(IDENTITY_CHECK_ID_PREFIX)


def new_bank_check_id() -> str:
    return new_public_id(BANK_CHECK_ID_PREFIX)


def identity_file_path(instance, filename: str) -> str:
    """Files are stored under a random name: nothing of the customer's file name is kept."""
    return f"identity/{instance.public_id}/{new_public_id('file')}.bin"


class IdentityCheck(models.Model):
    """One identity-document check: a document photo and a selfie sent to the ID provider.

    The files are stored encrypted (sealed bytes) under random names and deleted after the
    retention period (``files_delete_after``); the provider's answer is kept as evidence
    (``provider_result``), with our own match of the names and birth date the document shows
    against the ones the caller expects. The caller names what the check is for with
    ``purpose`` and ``subject`` (verification knows nothing of payments).
    """

    class Status(models.TextChoices):
        WAITING_FILES = "waiting_files", _("Waiting for the photos")
        SUBMITTED = "submitted", _("Being checked")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        RETAKE = "retake", _("New photos needed")
        PROVIDER_ERROR = "provider_error", _("Provider unavailable")

    public_id = models.CharField(max_length=50, unique=True, default=new_identity_check_id)
    livemode = models.BooleanField()
    purpose = models.CharField(max_length=40)
    subject = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.WAITING_FILES)
    # Who the document must show.
    expected_first_name = models.CharField(max_length=100)
    expected_last_name = models.CharField(max_length=100)
    expected_birth_date = models.DateField(null=True, blank=True)
    # The photos, encrypted at rest; content types as we sniffed them, not as sent.
    document_file = models.FileField(upload_to=identity_file_path, blank=True, max_length=200)
    document_content_type = models.CharField(max_length=40, blank=True)
    selfie_file = models.FileField(upload_to=identity_file_path, blank=True, max_length=200)
    selfie_content_type = models.CharField(max_length=40, blank=True)
    submissions = models.PositiveSmallIntegerField(default=0)
    # The provider's answer and our match, kept as evidence.
    provider_reference = models.CharField(max_length=100, blank=True)
    provider_result = models.JSONField(default=dict, blank=True)
    result_code = models.CharField(max_length=40, blank=True)
    names_match = models.BooleanField(null=True)
    birth_date_match = models.BooleanField(null=True)
    created_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    files_delete_after = models.DateTimeField(null=True, blank=True)
    files_deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("identity check")
        verbose_name_plural = _("identity checks")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    status__in=[
                        "waiting_files",
                        "submitted",
                        "approved",
                        "rejected",
                        "retake",
                        "provider_error",
                    ]
                ),
                name="identitycheck_status_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["purpose", "subject"], name="identitycheck_subject_idx"),
            # Webhooks and pulls find a check by the provider's reference.
            models.Index(
                fields=["provider_reference"],
                condition=~models.Q(provider_reference=""),
                name="identitycheck_provider_ref_idx",
            ),
            models.Index(fields=["-created_at"], name="identitycheck_latest_idx"),
            # The retention sweep: files still stored whose time is up.
            models.Index(
                fields=["files_delete_after"],
                condition=models.Q(files_deleted_at__isnull=True),
                name="identitycheck_retention_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.public_id


class BankCheck(models.Model):
    """One read-only look at a customer's bank account through the aggregator: consent, the
    connection, 3 months of transactions (kept as evidence until the retention date) and our
    own analysis of them (income, fixed charges, credit repayments, overdraft days, gambling,
    repayment capacity), shown to operators and read by the caller's decision."""

    class Status(models.TextChoices):
        STARTED = "started", _("Waiting for the bank")
        ANALYSED = "analysed", _("Analysed")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled by the customer")

    public_id = models.CharField(max_length=50, unique=True, default=new_bank_check_id)
    livemode = models.BooleanField()
    purpose = models.CharField(max_length=40)
    subject = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.STARTED)
    provider_reference = models.CharField(max_length=100, blank=True)
    bank_name = models.CharField(max_length=100, blank=True)
    account_holder = models.CharField(max_length=200, blank=True)
    consent_at = models.DateTimeField()
    created_at = models.DateTimeField()
    analysed_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    # Evidence and analysis.
    transactions = models.JSONField(default=list, blank=True)
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    analysis = models.JSONField(default=dict, blank=True)
    monthly_income_cents = models.BigIntegerField(null=True, blank=True)
    repayment_capacity_cents = models.BigIntegerField(null=True, blank=True)
    evidence_delete_after = models.DateTimeField(null=True, blank=True)
    evidence_deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("bank-data check")
        verbose_name_plural = _("bank-data checks")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["started", "analysed", "failed", "cancelled"]),
                name="bankcheck_status_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["purpose", "subject"], name="bankcheck_subject_idx"),
            models.Index(fields=["-created_at"], name="bankcheck_latest_idx"),
            models.Index(
                fields=["evidence_delete_after"],
                condition=models.Q(evidence_deleted_at__isnull=True),
                name="bankcheck_retention_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.public_id


class SandboxBankConnection(models.Model):
    """The sandbox aggregator's own record of a connection (what a real aggregator keeps on
    its side): shared by every process, unlike a per-process cache."""

    reference = models.CharField(max_length=100, unique=True)
    livemode = models.BooleanField()
    return_url = models.URLField(max_length=1000)
    status = models.CharField(max_length=20, default="pending")
    profile = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.reference
