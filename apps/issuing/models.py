"""The customer's own Tranche card: a permanent virtual card that splits any purchase in 3.

A customer who signed up in the portal (verified phone, profile) adds a funding bank card
through 3-D Secure and asks for the card; a ``CardDecision`` approves it with an exposure
limit or refuses it with its reasons. The card itself is issued by a card issuer-processor
(``apps.issuing.issuer``): Tranche keeps its token, last 4 digits and expiry, never its
number or CVC, which only the issuer holds and shows on request.

At every purchase the issuer asks Tranche (``IssuerMessage``); Tranche decides in real time
and an approved purchase (``CardAuthorisation``) becomes a 3x ``payments.Payment`` of the
card programme (origin ``card``) on the funding card: its first third charged at once, the
rest through the schedules like any plan. One authorisation makes at most one payment.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from djmoney.models.fields import MoneyField

from apps.common.ids import new_public_id
from apps.payments.models import MONEY


def new_decision_id() -> str:
    return new_public_id("card_decision")


def new_virtual_card_id() -> str:
    return new_public_id("vcard")


def new_authorisation_id() -> str:
    return new_public_id("cauth")


def new_funding_setup_id() -> str:
    return new_public_id("funding_setup")


class FundingCardSetup(models.Model):
    """A bank card the customer adds to fund their Tranche card, on its way through 3-D
    Secure. The latest setup names the funding card: authenticated (usable), or not
    finished (the card request is refused with that reason, as the product says)."""

    class Status(models.TextChoices):
        STARTED = "started", _("Waiting for 3-D Secure")
        AUTHENTICATED = "authenticated", _("Authenticated")
        FAILED = "failed", _("3-D Secure failed")

    public_id = models.CharField(max_length=64, unique=True, default=new_funding_setup_id)
    customer = models.ForeignKey(
        "payments.Customer", on_delete=models.PROTECT, related_name="funding_setups"
    )
    livemode = models.BooleanField()
    card = models.ForeignKey("payments.Card", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.STARTED)
    three_ds_reference = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("funding card setup")
        verbose_name_plural = _("funding card setups")
        indexes = [
            models.Index(fields=["customer", "created_at"], name="funding_setup_customer_idx")
        ]

    def __str__(self) -> str:
        return self.public_id


class CardDecision(models.Model):
    """The answer to a card request: approved with an exposure limit, or refused with its
    reasons (codes of ``apps.issuing.eligibility``), and the facts it was decided on."""

    class Outcome(models.TextChoices):
        APPROVED = "approved", _("Approved")
        REFUSED = "refused", _("Refused")

    public_id = models.CharField(max_length=64, unique=True, default=new_decision_id)
    customer = models.ForeignKey(
        "payments.Customer", on_delete=models.PROTECT, related_name="card_decisions"
    )
    livemode = models.BooleanField()
    outcome = models.CharField(_("outcome"), max_length=8, choices=Outcome.choices)
    reasons = models.JSONField(_("reasons"), default=list, blank=True)
    limit = MoneyField(_("limit"), default=0, **MONEY)
    facts = models.JSONField(default=dict, blank=True)
    rules_version = models.CharField(max_length=40)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("card decision")
        verbose_name_plural = _("card decisions")
        indexes = [
            models.Index(fields=["customer", "created_at"], name="card_decision_customer_idx")
        ]

    def __str__(self) -> str:
        return self.public_id


class VirtualCard(models.Model):
    """A customer's virtual card as the issuer described it: never its number or CVC.

    One live card (active or frozen) per customer; replacing it closes this one at the
    issuer and issues a new number (``replaced_by``)."""

    class State(models.TextChoices):
        ACTIVE = "active", _("Active")
        FROZEN = "frozen", _("Frozen")
        REPLACED = "replaced", _("Replaced")
        CLOSED = "closed", _("Closed")

    LIVE_STATES = (State.ACTIVE, State.FROZEN)

    public_id = models.CharField(max_length=64, unique=True, default=new_virtual_card_id)
    customer = models.ForeignKey(
        "payments.Customer", on_delete=models.PROTECT, related_name="virtual_cards"
    )
    livemode = models.BooleanField()
    state = models.CharField(_("state"), max_length=8, choices=State.choices, default=State.ACTIVE)
    issuer_token = models.CharField(max_length=100, unique=True)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    # The bank card its purchases' instalments are charged to (3-D Secure authenticated).
    funding_card = models.ForeignKey(
        "payments.Card", on_delete=models.PROTECT, related_name="+", verbose_name=_("funding card")
    )
    decision = models.ForeignKey(CardDecision, on_delete=models.PROTECT, related_name="+")
    limit = MoneyField(_("limit"), **MONEY)
    replaces = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="replaced_by"
    )
    created_at = models.DateTimeField(_("created at"))
    frozen_at = models.DateTimeField(_("frozen at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    # The number was last shown to the customer (on their request, in the portal).
    details_shown_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("virtual card")
        verbose_name_plural = _("virtual cards")
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(state__in=["active", "frozen"]),
                name="vcard_one_live_per_customer",
            ),
        ]
        indexes = [models.Index(fields=["customer", "created_at"], name="vcard_customer_idx")]

    def __str__(self) -> str:
        return f"•••• {self.last4}"

    @property
    def is_live(self) -> bool:
        return self.state in self.LIVE_STATES


class CardAuthorisation(models.Model):
    """One purchase the issuer asked Tranche about, by the issuer's reference.

    ``pending`` while its first third is being charged to the funding card; then
    ``approved`` (with its payment) or ``declined`` (with a code). ``reversed``: the issuer
    cancelled it (its own timeout, the shop's cancellation); a reversal that arrives before
    the request is kept as a reversed row with no ``requested_at``, so the late request is
    declined. The issuer's reference is unique per mode: a purchase never makes two plans.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("Being decided")
        APPROVED = "approved", _("Approved")
        DECLINED = "declined", _("Declined")
        REVERSED = "reversed", _("Reversed")

    public_id = models.CharField(max_length=64, unique=True, default=new_authorisation_id)
    livemode = models.BooleanField()
    issuer_reference = models.CharField(_("issuer reference"), max_length=64)
    card = models.ForeignKey(
        VirtualCard,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="authorisations",
        verbose_name=_("card"),
    )
    amount = MoneyField(_("amount"), **MONEY)
    merchant_name = models.CharField(_("shop"), max_length=200, blank=True)
    merchant_category = models.CharField(_("category code (MCC)"), max_length=4, blank=True)
    merchant_country = models.CharField(_("shop country"), max_length=2, blank=True)
    state = models.CharField(_("state"), max_length=8, choices=State.choices)
    decline_code = models.CharField(_("decline code"), max_length=40, blank=True)
    payment = models.OneToOneField(
        "payments.Payment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="card_authorisation",
    )
    requested_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    reversed_at = models.DateTimeField(null=True, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    cleared_amount = MoneyField(null=True, blank=True, **MONEY)
    refunded_amount = MoneyField(default=0, **MONEY)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("card authorisation")
        verbose_name_plural = _("card authorisations")
        constraints = [
            models.UniqueConstraint(
                fields=["livemode", "issuer_reference"], name="cauth_once_per_issuer_reference"
            ),
        ]
        indexes = [
            models.Index(fields=["card", "created_at"], name="cauth_card_idx"),
            models.Index(
                fields=["created_at"],
                condition=Q(state="pending"),
                name="cauth_pending_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.public_id


class IssuerMessage(models.Model):
    """Every message the issuer sent, kept with Tranche's answer: the same message again
    (the issuer retries what it did not see answered) gets the same answer."""

    message_id = models.CharField(max_length=64, unique=True)
    livemode = models.BooleanField()
    kind = models.CharField(max_length=40)
    body = models.JSONField()
    authorisation = models.ForeignKey(
        CardAuthorisation, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True)
    received_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("issuer message")
        verbose_name_plural = _("issuer messages")
        indexes = [models.Index(fields=["received_at"], name="issuer_message_received_idx")]

    def __str__(self) -> str:
        return self.message_id


# --- the sandbox issuer's own records (an outside party: Tranche's code never reads them) ---


class SandboxIssuedCard(models.Model):
    """A card the sandbox issuer issued. Its number and CVC are derived from the token with
    a keyed hash when shown, never stored; only a keyed fingerprint of the number is kept,
    to find the card a sandbox purchase names."""

    token = models.CharField(max_length=100, unique=True)
    # The caller's key: the same request issues one card, however often it is repeated.
    idempotency_key = models.CharField(max_length=100, unique=True)
    livemode = models.BooleanField()
    cardholder_name = models.CharField(max_length=200, blank=True)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    number_fingerprint = models.CharField(max_length=64, unique=True)
    state = models.CharField(max_length=8, default="active")  # active, frozen, closed
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.token


class SandboxIssuerAuthorisation(models.Model):
    """A purchase as the sandbox issuer (the card network's side) saw it."""

    reference = models.CharField(max_length=64, unique=True)
    card = models.ForeignKey(SandboxIssuedCard, on_delete=models.PROTECT, related_name="+")
    amount_cents = models.PositiveIntegerField()
    merchant_name = models.CharField(max_length=200)
    merchant_category = models.CharField(max_length=4)
    merchant_country = models.CharField(max_length=2)
    # approved, declined, timed_out (Tranche did not answer in time: declined at the network)
    status = models.CharField(max_length=10)
    decline_code = models.CharField(max_length=40, blank=True)
    refunded_cents = models.PositiveIntegerField(default=0)
    reversed_at = models.DateTimeField(null=True, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.reference


class SandboxIssuerOutbox(models.Model):
    """Messages the sandbox issuer still has to deliver to Tranche (advices it retries
    until answered: reversals, clearings, refunds)."""

    message_id = models.CharField(max_length=64, unique=True)
    livemode = models.BooleanField()
    kind = models.CharField(max_length=40)
    body = models.JSONField()
    due_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(
                fields=["due_at"],
                condition=Q(delivered_at__isnull=True),
                name="sandbox_issuer_outbox_due_idx",
            )
        ]

    def __str__(self) -> str:
        return self.message_id
