from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.payments.models import Payment

# Receipt numbers come from this PostgreSQL sequence (migration 0001): unique across
# processes without a lock; a rolled-back debit leaves a gap, never a duplicate.
RECEIPT_NUMBER_SEQUENCE = "schedules_receipt_number_seq"


class Receipt(models.Model):
    """The receipt of money a customer paid on a plan (an instalment debited, paid early or
    after an incident), numbered, rendered to PDF once by a task keyed by its number.

    ``data`` is what the receipt says, recorded with the payment event (raw values: cents,
    ISO dates, the language): rendering again gives the same document, whatever changed
    since. ``file_name`` is the PDF's name in the ``receipts`` storage, set once rendered.
    """

    class Kind(models.TextChoices):
        INSTALMENT = "instalment", _("Instalment")
        CREDIT_NOTE = "credit_note", _("Credit note")

    number = models.CharField(_("number"), max_length=40, unique=True)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.INSTALMENT)
    livemode = models.BooleanField()
    payment = models.ForeignKey(
        "payments.Payment", on_delete=models.PROTECT, related_name="receipts"
    )
    instalment = models.ForeignKey(
        "payments.Instalment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="receipts",
    )
    # The charge it acknowledges: one receipt per charge, whoever records it.
    charge = models.OneToOneField(
        "payments.Charge", on_delete=models.PROTECT, null=True, blank=True, related_name="receipt"
    )
    data = models.JSONField()
    # The email that carries it (OutgoingEmail.key), sent once the PDF exists.
    email_key = models.CharField(max_length=200, blank=True)
    file_name = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    rendered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("receipt")
        verbose_name_plural = _("receipts")
        indexes = [
            models.Index(fields=["payment", "created_at"], name="receipt_payment_idx"),
            # The sweep: receipts whose render task was lost.
            models.Index(
                fields=["created_at"],
                condition=Q(rendered_at__isnull=True),
                name="receipt_unrendered_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.number


class DefaultedPayment(Payment):
    """Payments in default, as operators work on them (closing the collection)."""

    class Meta:
        proxy = True
        verbose_name = _("payment in default")
        verbose_name_plural = _("payments in default")
