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
