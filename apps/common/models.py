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
