from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from djmoney.models.fields import MoneyField
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from apps.common.ids import new_public_id

MONEY = {"max_digits": 14, "decimal_places": 2, "default_currency": "EUR"}


class Country(models.TextChoices):
    """Where a merchant may be established (the countries Tranche serves)."""

    FR = "FR", _("France")
    BE = "BE", _("Belgium")
    ES = "ES", _("Spain")
    DE = "DE", _("Germany")
    IT = "IT", _("Italy")
    NL = "NL", _("Netherlands")
    LU = "LU", _("Luxembourg")
    PT = "PT", _("Portugal")
    AT = "AT", _("Austria")
    IE = "IE", _("Ireland")


def validate_iban(value: str) -> None:
    """An IBAN with a valid checksum and the right length and structure for its country."""
    try:
        IBAN(value)
    except SchwiftyException as error:
        raise ValidationError(_("Enter a valid IBAN."), code="invalid_iban") from error


def validate_bic(value: str) -> None:
    try:
        BIC(value)
    except SchwiftyException as error:
        raise ValidationError(_("Enter a valid BIC."), code="invalid_bic") from error


def compact_iban(value: str) -> str:
    """A valid IBAN without spaces, upper case (raises ValidationError otherwise)."""
    validate_iban(value)
    return IBAN(value).compact


def compact_bic(value: str) -> str:
    validate_bic(value)
    return BIC(value).compact


def new_merchant_id() -> str:
    return new_public_id("merchant")


class Merchant(models.Model):
    """A business that sells with Tranche.

    Registers as ``pending``; an operator activates it (which installs its default fee
    plans) and may suspend it. Only an active merchant's API keys are accepted.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending activation")
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")

    class Category(models.TextChoices):
        FASHION = "fashion", _("Fashion and accessories")
        HOME = "home", _("Home and garden")
        ELECTRONICS = "electronics", _("Electronics and appliances")
        SPORTS = "sports", _("Sports and outdoors")
        BEAUTY = "beauty", _("Beauty and health")
        TRAVEL = "travel", _("Travel and leisure")
        AUTO = "auto", _("Car and mobility")
        CHILDREN = "children", _("Children and toys")
        SERVICES = "services", _("Services and education")
        OTHER = "other", _("Other")

    class AuthorisationPolicy(models.TextChoices):
        FIRST_INSTALMENT = "first_instalment", _("First instalment")
        WHOLE_AMOUNT = "whole_amount", _("Whole amount (balance check)")

    public_id = models.CharField(
        max_length=64, unique=True, default=new_merchant_id, editable=False
    )
    legal_name = models.CharField(_("legal name"), max_length=200)
    country = models.CharField(_("country"), max_length=2, choices=Country.choices)
    website = models.URLField(_("website"), blank=True)
    contact_email = models.EmailField(_("contact email"))
    store_only = models.BooleanField(_("sells in store only"), default=False)
    # The partner directory customers browse in the portal (apps.schedules.portal).
    category = models.CharField(
        _("category"), max_length=16, choices=Category.choices, blank=True, db_default=""
    )
    listed_in_directory = models.BooleanField(
        _("listed in the partner directory"),
        default=True,
        db_default=True,
        help_text=_("Customers find the shop, its website and its plans in the Tranche app."),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    return_url = models.URLField(_("default return URL"), blank=True, max_length=1000)
    customer_cancel_url = models.URLField(_("default cancel URL"), blank=True, max_length=1000)
    ipn_callback_url = models.URLField(_("default IPN URL"), blank=True, max_length=1000)
    excluded_categories = ArrayField(
        models.CharField(max_length=100),
        verbose_name=_("excluded product categories"),
        default=list,
        blank=True,
    )
    authorisation_policy = models.CharField(
        _("authorisation at checkout"),
        max_length=20,
        choices=AuthorisationPolicy.choices,
        default=AuthorisationPolicy.FIRST_INSTALMENT,
    )
    # Payouts: where and when the merchant's balance is paid (SEPA credit transfer).
    payout_iban = models.CharField(
        _("IBAN for payouts"), max_length=34, blank=True, validators=[validate_iban]
    )
    payout_bic = models.CharField(
        _("BIC for payouts"), max_length=11, blank=True, validators=[validate_bic]
    )
    settlement_delay_days = models.PositiveSmallIntegerField(
        _("settlement delay (days)"),
        default=7,
        validators=[MaxValueValidator(90)],
        help_text=_("Days before a credit to the balance becomes available for payout."),
    )
    payout_minimum = MoneyField(_("minimum payout"), default=10, **MONEY)
    payment_expiry_minutes = models.PositiveIntegerField(
        _("payment expiry (minutes)"),
        default=1440,
        validators=[MinValueValidator(5), MaxValueValidator(60 * 24 * 30)],
        help_text=_(
            "A payment not paid within this time expires, unless the API call sets expires_after."
        ),
    )
    notification_email = models.EmailField(
        _("email for notifications"),
        blank=True,
        help_text=_("Where Tranche sends news of payments; the contact email when empty."),
    )
    sms_payment_links = models.BooleanField(
        _("payment links by SMS"),
        default=True,
        help_text=_("Lets the API send a payment's link to the customer by SMS."),
    )
    created_at = models.DateTimeField(_("created at"))
    activated_at = models.DateTimeField(_("activated at"), null=True, blank=True)

    class Meta:
        verbose_name = _("merchant")
        verbose_name_plural = _("merchants")
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "active", "suspended"]),
                name="merchant_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(authorisation_policy__in=["first_instalment", "whole_amount"]),
                name="merchant_authorisation_policy_valid",
            ),
        ]
        indexes = [models.Index(fields=["status", "-created_at"], name="merchant_status_idx")]

    def __str__(self) -> str:
        return self.legal_name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    @property
    def notifications_to(self) -> str:
        return self.notification_email or self.contact_email

    @property
    def legal_validation_state(self) -> str:
        """Alma's name for "an operator has reviewed and activated this account"."""
        return "validated" if self.activated_at is not None else "pending"


# The allowed status changes; services.merchant_transition enforces it.
MERCHANT_TRANSITIONS: dict[str, set[str]] = {
    Merchant.Status.PENDING: {Merchant.Status.ACTIVE, Merchant.Status.SUSPENDED},
    Merchant.Status.ACTIVE: {Merchant.Status.SUSPENDED},
    Merchant.Status.SUSPENDED: {Merchant.Status.ACTIVE},
}


class MerchantEvent(models.Model):
    """Append-only history of a merchant's status changes and key operations."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=40)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    detail = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["merchant", "-created_at"], name="merchant_event_idx")]

    def __str__(self) -> str:
        return f"{self.merchant_id} {self.kind} {self.created_at:%Y-%m-%d %H:%M}"


class Membership(models.Model):
    """A dashboard user's role at a merchant."""

    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        ADMIN = "admin", _("Administrator")
        STAFF = "staff", _("Staff")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=8, choices=Role.choices, default=Role.STAFF)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("staff membership")
        verbose_name_plural = _("staff memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "merchant"], name="membership_unique_user"),
            models.CheckConstraint(
                condition=Q(role__in=["owner", "admin", "staff"]), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.merchant} ({self.role})"

    @property
    def can_manage_keys(self) -> bool:
        return self.role in {self.Role.OWNER, self.Role.ADMIN}


class APIKey(models.Model):
    """A merchant's secret API key: its SHA-256 (to authenticate), a display prefix, and a
    sealed copy (to sign the merchant's IPNs), never the plain secret.

    The key's prefix decides its mode (``sk_test_`` or ``sk_live_``). A rotated key keeps
    working until ``expires_at`` (the grace period); a revoked key stops at once.
    """

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="api_keys")
    livemode = models.BooleanField()
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    display_prefix = models.CharField(max_length=16, editable=False)
    # The secret sealed with apps.common.signing: IPNs are signed with the key itself
    # (plugins check hash_hmac('sha256', pid, key)), which its hash cannot give back.
    # Empty for keys made before it existed: their IPNs cannot be signed until a rotation.
    secret_encrypted = models.TextField(blank=True, default="", editable=False)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    replaced_by = models.OneToOneField(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replaces"
    )

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        indexes = [models.Index(fields=["merchant", "livemode", "-created_at"], name="apikey_idx")]

    def __str__(self) -> str:
        return f"{self.display_prefix}… ({self.mode})"

    @property
    def mode(self) -> str:
        return "live" if self.livemode else "test"

    @property
    def idempotency_scope(self) -> str:
        return f"merchant:{self.merchant_id}:{self.mode}"

    def is_usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None:
            return "expiring" if self.expires_at > now else "expired"
        return "active"


class FeePlan(models.Model):
    """What a merchant may sell and at what price: one row per plan identity.

    The identity is (kind, installments_count, deferred_days, deferred_months), as in
    Alma's ``general_3_0_0`` keys. Fee plans are configuration, shared by test and live
    mode, so a merchant tests exactly what it will sell.
    """

    class Kind(models.TextChoices):
        GENERAL = "general", _("Online")
        POS = "pos", _("In store")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="fee_plans")
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.GENERAL)
    installments_count = models.PositiveSmallIntegerField(
        _("instalments"), validators=[MinValueValidator(1), MaxValueValidator(12)]
    )
    deferred_days = models.PositiveSmallIntegerField(_("deferred days"), default=0)
    deferred_months = models.PositiveSmallIntegerField(_("deferred months"), default=0)
    allowed = models.BooleanField(_("allowed"), default=True)
    available_online = models.BooleanField(_("available online"), default=True)
    available_in_pos = models.BooleanField(_("available in store"), default=False)
    min_purchase_amount = MoneyField(_("minimum purchase"), **MONEY)
    max_purchase_amount = MoneyField(_("maximum purchase"), **MONEY)
    merchant_fee_variable = models.PositiveIntegerField(_("merchant fee (bps)"), default=0)
    merchant_fee_fixed = MoneyField(_("merchant fee (fixed)"), default=0, **MONEY)
    customer_fee_variable = models.PositiveIntegerField(_("customer fee (bps)"), default=0)
    customer_fee_fixed = MoneyField(_("customer fee (fixed)"), default=0, **MONEY)
    customer_lending_rate = models.PositiveIntegerField(_("customer lending rate (bps)"), default=0)
    deferred_trigger_limit_days = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("fee plan")
        verbose_name_plural = _("fee plans")
        ordering = ["kind", "installments_count", "deferred_days", "deferred_months"]
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "merchant",
                    "kind",
                    "installments_count",
                    "deferred_days",
                    "deferred_months",
                ],
                name="fee_plan_unique_identity",
            ),
            models.CheckConstraint(
                condition=Q(installments_count__gte=1, installments_count__lte=12),
                name="fee_plan_installments_1_12",
            ),
            models.CheckConstraint(
                condition=Q(min_purchase_amount__lte=models.F("max_purchase_amount")),
                name="fee_plan_min_le_max",
            ),
            models.CheckConstraint(
                condition=Q(min_purchase_amount__gte=0)
                & Q(merchant_fee_fixed__gte=0)
                & Q(customer_fee_fixed__gte=0),
                name="fee_plan_amounts_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(deferred_days=0) | Q(deferred_months=0),
                name="fee_plan_one_deferral_unit",
            ),
            models.CheckConstraint(
                condition=Q(deferred_days=0, deferred_months=0) | Q(installments_count=1),
                name="fee_plan_deferred_has_one_instalment",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["general", "pos"]), name="fee_plan_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def key(self) -> str:
        return f"{self.kind}_{self.installments_count}_{self.deferred_days}_{self.deferred_months}"

    @property
    def is_deferred(self) -> bool:
        return self.deferred_days > 0 or self.deferred_months > 0
