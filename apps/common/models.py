from django.db import models


class IdempotencyRecord(models.Model):
    """The first response to a POST/PUT sent with an ``Idempotency-Key`` header.

    ``scope`` names who sent it (merchant and mode), so two merchants, or one merchant's
    test and live keys, never share keys. A row is ``in_progress`` while the first request
    runs; a concurrent request with the same key gets 409 instead of running twice.
    """

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"

    scope = models.CharField(max_length=80)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    # The JSON text as first sent, so a replay is byte-for-byte the same body.
    response_body = models.TextField(blank=True)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_unique_scope_key"),
            models.CheckConstraint(
                condition=models.Q(status__in=["in_progress", "completed"]),
                name="idempotency_status_valid",
            ),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.scope} {self.key} ({self.status})"


class OutgoingEmail(models.Model):
    """The email outbox: a message is recorded in the transaction that decides to send it,
    and a task sends it after commit. ``key`` names the message (``payment:<id>:confirmation``),
    so deciding twice records it once and a rerun of the task never sends it twice."""

    key = models.CharField(max_length=200, unique=True)
    to = models.EmailField(max_length=254)
    subject = models.CharField(max_length=300)
    # What to render, recorded with the event: the sender renders it (``text``/``html`` keep
    # what was sent), so the transaction that decides pays no rendering cost.
    template = models.CharField(max_length=200, blank=True)
    context = models.JSONField(default=dict, blank=True)
    language = models.CharField(max_length=8, blank=True)
    # [{"storage": alias, "name": path, "filename": shown, "mimetype": ...}]: files the
    # message waits for (a receipt being rendered) and carries.
    attachments = models.JSONField(default=list, blank=True)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=models.Q(sent_at__isnull=True),
                name="email_unsent_idx",
            ),
            models.Index(fields=["-created_at"], name="email_latest_idx"),  # the dev page
        ]

    def __str__(self) -> str:
        return self.key
