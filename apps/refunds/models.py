"""Refunds: what a merchant gave back on a payment, and each card refund that carries it.

A ``Refund`` is decided in one transaction (``services.refund_open``): the payment's unpaid
instalments are reduced from the last one backwards, the merchant's balance is debited, and
what exceeds the amount still owed is owed back to the customer's card, as one ``CardRefund``
per card charge (newest first). Each card refund is then made through the processor outside
any transaction, with its own idempotency key, and recorded; the refund is ``succeeded`` once
every card refund is.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from djmoney.models.fields import MoneyField

from apps.common.ids import new_public_id

MONEY = {"max_digits": 12, "decimal_places": 2, "default_currency": "EUR"}


def new_refund_id() -> str:
    return new_public_id("refund")


class Refund(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", _("Being refunded to the card")
        SUCCEEDED = "succeeded", _("Refunded")
        FAILED = "failed", _("Card refund refused")

    class Origin(models.TextChoices):
        API = "api", _("API")
        DASHBOARD = "dashboard", _("Dashboard")
        # The shop refunded a purchase made with the customer's Tranche card.
        CARD = "card", _("Tranche card")

    public_id = models.CharField(max_length=64, unique=True, default=new_refund_id)
    payment = models.ForeignKey(
        "payments.Payment", on_delete=models.PROTECT, related_name="refunds"
    )
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="refunds"
    )
    livemode = models.BooleanField()
    state = models.CharField(_("state"), max_length=10, choices=State.choices)
    # What the merchant refunded, against the purchase amount.
    amount = MoneyField(_("amount"), **MONEY)
    # Everything that was left (no amount given, or exactly what was left): the customer
    # fees and interest paid go back too.
    full = models.BooleanField(_("complete refund"), default=False)
    # Where it went: what the customer still owed, cancelled (for a payment in default, the
    # part already written off), and the rest back to the card.
    owed_cancelled = MoneyField(_("owed amount cancelled"), **MONEY)
    written_off_cancelled = MoneyField(_("written-off amount cancelled"), **MONEY)
    to_card = MoneyField(_("purchase amount back to the card"), **MONEY)
    customer_fee_refunded = MoneyField(_("customer fees refunded"), **MONEY)
    interest_refunded = MoneyField(_("interest refunded"), **MONEY)
    # The instalments it reduced: [{"number", "principal", "fee", "interest"}] (cents cut).
    instalments = models.JSONField(default=list)
    merchant_reference = models.CharField(_("your reference"), max_length=255, blank=True)
    comment = models.CharField(_("comment"), max_length=1000, blank=True)
    origin = models.CharField(max_length=10, choices=Origin.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
    )
    api_key = models.ForeignKey(
        "merchants.APIKey", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The credit note (apps.schedules.Receipt of kind credit note) sent to the customer.
    credit_note_number = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["pending", "succeeded", "failed"]),
                name="refund_state_valid",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
        ]
        indexes = [
            models.Index(fields=["payment", "created_at"], name="refund_payment_idx"),
            # The exports and the dashboard: a merchant's refunds in one mode, by time.
            models.Index(
                fields=["merchant", "livemode", "created_at", "id"], name="refund_list_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def back_to_card(self):
        return self.to_card + self.customer_fee_refunded + self.interest_refunded


# A refund is made (succeeded) when every card refund is, and failed when the processor
# refused one: both are final (services.refund_record checks it).
REFUND_TRANSITIONS: dict[str, set[str]] = {
    Refund.State.PENDING: {Refund.State.SUCCEEDED, Refund.State.FAILED},
    Refund.State.SUCCEEDED: set(),
    Refund.State.FAILED: set(),
}


class CardRefund(models.Model):
    """Part of a refund given back through one card charge, by one call to the processor.

    The row is written (``pending``) with the refund, before any call, carrying the key the
    call uses (``refund:<refund id>:<number>``): a retry, a crash or a second worker repeats
    the same call, which the processor answers once."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Refused")
        UNKNOWN = "unknown", _("Unknown (being checked)")

    refund = models.ForeignKey(Refund, on_delete=models.PROTECT, related_name="card_refunds")
    number = models.PositiveSmallIntegerField()
    charge = models.ForeignKey(
        "payments.Charge", on_delete=models.PROTECT, related_name="card_refunds"
    )
    amount = MoneyField(**MONEY)
    idempotency_key = models.CharField(max_length=120, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    processor_reference = models.CharField(max_length=100, blank=True)
    failure_code = models.CharField(max_length=40, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("card refund")
        verbose_name_plural = _("card refunds")
        constraints = [
            models.UniqueConstraint(fields=["refund", "number"], name="card_refund_one_per_number"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "succeeded", "failed", "unknown"]),
                name="card_refund_status_valid",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="card_refund_amount_positive"),
        ]
        indexes = [
            # The sweep: card refunds not confirmed yet.
            models.Index(
                fields=["created_at"],
                condition=Q(status__in=["pending", "unknown"]),
                name="card_refund_open_idx",
            )
        ]

    def __str__(self) -> str:
        return self.idempotency_key
