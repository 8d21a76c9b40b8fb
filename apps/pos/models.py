"""In-store selling: the terminals a shop registers and the sessions staff start on them.

A session is one sale at the counter: staff enter the amount and the customer's phone, the
customer gets an SMS with a short link and finishes on their own phone (plan choice, then
the hosted checkout); the terminal follows the session's state and prints the tickets.
The Payment is created when the customer chooses their plan, with origin ``pos_device``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from djmoney.models.fields import MoneyField
from phonenumber_field.modelfields import PhoneNumberField

from apps.common.ids import new_public_id

MONEY = {"max_digits": 14, "decimal_places": 2, "default_currency": "EUR"}


def new_terminal_id() -> str:
    return new_public_id("terminal")


def new_session_id() -> str:
    return new_public_id("pos_session")


class Terminal(models.Model):
    """A payment terminal registered to one of a merchant's shops, in one mode.

    It calls the terminal API with its own secret (``tk_test_...`` / ``tk_live_...``), shown
    once when registered and stored as a SHA-256 hash. Revoking it stops it at once; its
    sessions and payments stay.
    """

    public_id = models.CharField(max_length=64, unique=True, default=new_terminal_id)
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="terminals"
    )
    livemode = models.BooleanField()
    name = models.CharField(_("name"), max_length=100)  # "Caisse 1"
    shop = models.CharField(_("shop"), max_length=150, blank=True)  # "Boutique de Lyon"
    serial_number = models.CharField(_("serial number"), max_length=64, blank=True)
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    display_prefix = models.CharField(max_length=16, editable=False)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("terminal")
        verbose_name_plural = _("terminals")
        indexes = [
            models.Index(
                fields=["merchant", "livemode", "-created_at"], name="pos_terminal_list_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def mode(self) -> str:
        return "live" if self.livemode else "test"

    @property
    def idempotency_scope(self) -> str:
        """Idempotency keys are remembered per terminal (apps.common.api.views)."""
        return f"terminal:{self.pk}"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class PosSession(models.Model):
    """One sale at the counter, from the amount typed by staff to paid (or not).

    States: ``started`` -> ``link_sent`` (the SMS is in the outbox) -> ``customer_in_progress``
    (the customer opened the link) -> ``paid`` | ``refused`` | ``cancelled`` | ``expired``.
    ``refused`` may still become ``paid``: a refused customer may pay the whole amount at
    once on the checkout page. Every change bumps ``version``, which the terminal API uses as
    its ETag. A session without a terminal was started from the dashboard's virtual terminal.
    """

    class State(models.TextChoices):
        STARTED = "started", _("Started")
        LINK_SENT = "link_sent", _("Link sent")
        CUSTOMER_IN_PROGRESS = "customer_in_progress", _("Customer paying on their phone")
        PAID = "paid", _("Paid")
        REFUSED = "refused", _("Refused")
        CANCELLED = "cancelled", _("Cancelled")
        EXPIRED = "expired", _("Expired")

    public_id = models.CharField(max_length=64, unique=True, default=new_session_id)
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="pos_sessions"
    )
    livemode = models.BooleanField()
    terminal = models.ForeignKey(
        Terminal, on_delete=models.PROTECT, null=True, blank=True, related_name="sessions"
    )
    staff_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    staff_name = models.CharField(_("staff member"), max_length=150, blank=True)
    amount = MoneyField(_("amount"), **MONEY)
    customer_phone = PhoneNumberField(_("customer's phone"), region="FR")
    reference = models.CharField(_("reference"), max_length=100, blank=True)
    state = models.CharField(
        _("state"), max_length=24, choices=State.choices, default=State.STARTED
    )
    version = models.PositiveIntegerField(default=1)
    # The short link's code (/p/<code>): random, unguessable, valid while the session is.
    link_code = models.CharField(max_length=16, unique=True)
    payment = models.OneToOneField(
        "payments.Payment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="pos_session",
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    link_sent_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("in-store session")
        verbose_name_plural = _("in-store sessions")
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    state__in=[
                        "started",
                        "link_sent",
                        "customer_in_progress",
                        "paid",
                        "refused",
                        "cancelled",
                        "expired",
                    ]
                ),
                name="pos_session_state_valid",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="pos_session_amount_positive"),
            # A terminal runs one sale at a time.
            models.UniqueConstraint(
                fields=["terminal"],
                condition=Q(state__in=["started", "link_sent", "customer_in_progress"]),
                name="pos_session_one_open_per_terminal",
            ),
        ]
        indexes = [
            models.Index(
                fields=["merchant", "livemode", "-created_at", "-id"], name="pos_session_list_idx"
            ),
            models.Index(
                fields=["terminal", "-created_at"],
                condition=Q(terminal__isnull=False),
                name="pos_session_terminal_idx",
            ),
            # The expiry sweep: open sessions whose time is up.
            models.Index(
                fields=["expires_at"],
                condition=Q(state__in=["started", "link_sent", "customer_in_progress"]),
                name="pos_session_expiry_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def is_final(self) -> bool:
        return self.state not in OPEN_STATES

    @property
    def etag(self) -> str:
        return f'"{self.public_id}.{self.version}"'


OPEN_STATES = frozenset(
    {
        PosSession.State.STARTED,
        PosSession.State.LINK_SENT,
        PosSession.State.CUSTOMER_IN_PROGRESS,
    }
)
