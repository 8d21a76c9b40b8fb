from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import OpClass
from django.db import models
from django.db.models import F, Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Lower, Upper
from django.utils.translation import gettext_lazy as _
from djmoney.models.fields import MoneyField

from apps.common.ids import new_public_id

MONEY = {"max_digits": 14, "decimal_places": 2, "default_currency": "EUR"}
QUARTER_FIRST_MONTHS = [1, 4, 7, 10]


class UsuryRate(models.Model):
    """One band of a quarter's usury table (taux d'usure), as the Banque de France publishes
    it each quarter for consumer credit: credits up to `max_credit_amount` (empty: the band
    above the others) may not cost more than `rate_bps` APR. Operators add each new quarter
    in the admin; regulation.usury_cap_bps reads the latest quarter in force."""

    effective_from = models.DateField(_("in force from"), help_text=_("First day of a quarter."))
    max_credit_amount = MoneyField(
        _("credit amount up to"),
        null=True,
        blank=True,
        help_text=_("Leave empty for the band above the others."),
        **MONEY,
    )
    rate_bps = models.PositiveIntegerField(
        _("usury rate (bps)"), help_text=_("Basis points: 2356 is 23.56 %.")
    )
    source = models.CharField(_("source"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("usury rate")
        verbose_name_plural = _("usury rates")
        ordering = ["-effective_from", "max_credit_amount"]
        constraints = [
            models.UniqueConstraint(
                fields=["effective_from", "max_credit_amount"],
                nulls_distinct=False,
                name="usury_rate_one_per_band",
            ),
            models.CheckConstraint(
                condition=Q(effective_from__day=1, effective_from__month__in=QUARTER_FIRST_MONTHS),
                name="usury_rate_starts_a_quarter",
            ),
            models.CheckConstraint(
                condition=Q(rate_bps__gt=0, rate_bps__lte=100_000), name="usury_rate_bounds"
            ),
            models.CheckConstraint(
                condition=Q(max_credit_amount__isnull=True) | Q(max_credit_amount__gt=0),
                name="usury_rate_band_positive",
            ),
        ]

    def __str__(self) -> str:
        band = self.max_credit_amount or _("above")
        return f"{self.effective_from:%Y-%m-%d} {band}: {self.rate_bps} bps"


# --- customers, cards, payments -----------------------------------------------------------


def new_customer_id() -> str:
    return new_public_id("customer")


def new_payment_id() -> str:
    return new_public_id("payment")


def new_instalment_id() -> str:
    return new_public_id("installment")  # Alma's spelling, on the wire


def new_order_id() -> str:
    return new_public_id("order")


def new_card_id() -> str:
    return new_public_id("card")


class Customer(models.Model):
    """A person who pays with Tranche, in one mode.

    Payments name their customer by email: the same email in the same mode is the same
    customer (so history, exposure and the portal see all their plans, at every merchant).
    A payment keeps its own copy of what its merchant sent (``Payment.customer_data``), so a
    merchant never reads what another merchant or the customer wrote. The phone and birth
    date here are the ones the customer confirmed at checkout.
    """

    public_id = models.CharField(max_length=64, unique=True, default=new_customer_id)
    livemode = models.BooleanField()
    email = models.EmailField(_("email"), max_length=254, blank=True)
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True)  # E.164 once confirmed
    phone_verified_at = models.DateTimeField(null=True, blank=True)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    # The postal address the customer gave in the portal's profile (line1, line2,
    # postal_code, city, country); a payment keeps the addresses its merchant sent.
    address = models.JSONField(_("address"), default=dict, blank=True, db_default={})
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    # The customer asked for their data to be erased (portal) with no plan open: the
    # profile was blanked; what the law keeps (payments, receipts, ledger) stays.
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        constraints = [
            models.UniqueConstraint(
                fields=["livemode", "email"],
                condition=~Q(email=""),
                name="customer_one_per_email_and_mode",
            )
        ]
        indexes = [models.Index(fields=["livemode", "phone"], name="customer_phone_idx")]

    def __str__(self) -> str:
        return self.email or self.public_id


class Card(models.Model):
    """A card as the processor described it after tokenising: never its number or CVC."""

    class Brand(models.TextChoices):
        CB = "cb", "CB"
        VISA = "visa", "Visa"
        MASTERCARD = "mastercard", "Mastercard"
        MAESTRO = "maestro", "Maestro"
        AMEX = "amex", "American Express"
        OTHER = "other", _("Other")

    public_id = models.CharField(max_length=64, unique=True, default=new_card_id)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="cards")
    livemode = models.BooleanField()
    processor_token = models.CharField(max_length=100, unique=True)
    bin = models.CharField(max_length=8)
    last4 = models.CharField(max_length=4)
    brand = models.CharField(max_length=12, choices=Brand.choices)
    funding = models.CharField(max_length=8)  # credit, debit, prepaid
    product = models.CharField(max_length=20, blank=True)  # electron, maestro, virtual, ...
    issuer_country = models.CharField(max_length=2)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    three_ds_authenticated_at = models.DateTimeField(null=True, blank=True)
    # The processor's stable fingerprint of the card number: the same card, whoever adds it.
    fingerprint = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()
    # The customer replaced it (portal): its token was detached at the processor and no
    # plan charges it any more; the row stays, as the record of past charges.
    detached_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("card")
        verbose_name_plural = _("cards")
        indexes = [
            # Velocity: how many people used this card lately, how many cards one person added.
            models.Index(
                fields=["livemode", "fingerprint", "created_at"],
                condition=~Q(fingerprint=""),
                name="card_fingerprint_idx",
            ),
            models.Index(fields=["customer", "created_at"], name="card_customer_idx"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.get_brand_display()} •••• {self.last4} ({self.exp_month:02d}/{self.exp_year})"
        )


class PaymentState(models.TextChoices):
    NOT_READY = "not_ready", _("Not ready")
    NOT_STARTED = "not_started", _("Not started")
    SCORED_NO = "scored_no", _("Refused")
    SCORED_MAYBE = "scored_maybe", _("More information needed")
    SCORED_YES = "scored_yes", _("Accepted")
    IN_PROGRESS = "in_progress", _("In progress")
    PAID = "paid", _("Paid")
    STOPPED = "stopped", _("Stopped")
    LATE_DUNNING = "late_dunning", _("Late (retrying)")
    LATE_CONTACT_CUSTOMER = "late_contact_customer", _("Late (contacting the customer)")
    DEFAULT = "default", _("In default")
    COLLECTION_DONE = "collection_done", _("Collection done")


S = PaymentState
# Every allowed change of a payment's state; services.payment_transition enforces it.
# A payment that is scored may be scored again (more information, a new card); a refused
# customer (no, or maybe) may still pay the whole amount at once (p1x): the payment is `paid`.
PAYMENT_TRANSITIONS: dict[str, set[str]] = {
    S.NOT_READY: {S.NOT_STARTED, S.STOPPED},
    S.NOT_STARTED: {S.SCORED_YES, S.SCORED_MAYBE, S.SCORED_NO, S.STOPPED},
    S.SCORED_MAYBE: {S.SCORED_YES, S.SCORED_MAYBE, S.SCORED_NO, S.PAID, S.STOPPED},
    S.SCORED_NO: {S.SCORED_YES, S.SCORED_MAYBE, S.SCORED_NO, S.PAID, S.STOPPED},
    S.SCORED_YES: {S.SCORED_YES, S.SCORED_MAYBE, S.SCORED_NO, S.IN_PROGRESS, S.PAID, S.STOPPED},
    S.IN_PROGRESS: {S.PAID, S.LATE_DUNNING, S.STOPPED},
    S.LATE_DUNNING: {S.IN_PROGRESS, S.PAID, S.LATE_CONTACT_CUSTOMER, S.STOPPED},
    S.LATE_CONTACT_CUSTOMER: {S.IN_PROGRESS, S.PAID, S.DEFAULT, S.STOPPED},
    S.DEFAULT: {S.COLLECTION_DONE, S.PAID},
    S.PAID: set(),
    S.STOPPED: set(),
    S.COLLECTION_DONE: set(),
}
# States in which the customer may still pay at checkout.
PAYABLE_STATES = frozenset({S.NOT_STARTED, S.SCORED_YES, S.SCORED_MAYBE, S.SCORED_NO})
# States in which a merchant may still cancel (nothing has been charged).
CANCELLABLE_STATES = PAYABLE_STATES | {S.NOT_READY}


class Payment(models.Model):
    """A purchase paid with Tranche: the aggregate of its plan's instalments, orders and events.

    Created by the merchant's API call with the plan computed once (instalment rows are
    written at creation and never re-derived); paid by the customer at checkout; its state
    moves only along PAYMENT_TRANSITIONS, each change recorded as a PaymentEvent. URLs are
    stored as the merchant sent them; the API appends ``pid``.
    """

    class Origin(models.TextChoices):
        ONLINE = "online", _("Online")
        ONLINE_IN_PAGE = "online_in_page", _("Online (in page)")
        POS = "pos", _("In store")
        POS_DEVICE = "pos_device", _("In store (terminal)")
        POS_LINK = "pos_link", _("In store (link)")
        POS_SMS = "pos_sms", _("In store (SMS)")
        # A purchase anywhere with the customer's own Tranche card (apps.issuing).
        CARD = "card", _("Tranche card")

    public_id = models.CharField(max_length=64, unique=True, default=new_payment_id)
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="payments"
    )
    livemode = models.BooleanField()
    state = models.CharField(
        _("state"), max_length=24, choices=PaymentState.choices, default=S.NOT_STARTED
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payments")
    card = models.ForeignKey(
        Card, on_delete=models.PROTECT, null=True, blank=True, related_name="payments"
    )
    # The plan, as priced at creation.
    installments_count = models.PositiveSmallIntegerField()
    deferred_days = models.PositiveSmallIntegerField(default=0)
    deferred_months = models.PositiveSmallIntegerField(default=0)
    purchase_amount = MoneyField(_("purchase amount"), **MONEY)
    customer_fee = MoneyField(_("customer fee"), **MONEY)
    customer_interest = MoneyField(_("customer interest"), **MONEY)
    merchant_fee = MoneyField(_("merchant fee"), **MONEY)
    annual_interest_rate = models.PositiveIntegerField(default=0)  # APR in bps
    purchase_date = models.DateField()  # business date (Europe/Paris) the plan counts from
    # What the merchant sent.
    return_url = models.URLField(max_length=1000, blank=True)
    customer_cancel_url = models.URLField(max_length=1000, blank=True)
    failure_return_url = models.URLField(max_length=1000, blank=True)
    ipn_callback_url = models.URLField(max_length=1000, blank=True)
    custom_data = models.JSONField(default=dict, blank=True)
    locale = models.CharField(max_length=35, blank=True)
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.ONLINE)
    # In-store sales: who sold it, and on which terminal (copied from apps.pos' session or
    # the dashboard's remote sale, for the lists, exports and payouts).
    staff_member = models.CharField(
        _("staff member"), max_length=150, blank=True, default="", db_default=""
    )
    terminal_name = models.CharField(
        _("terminal"), max_length=100, blank=True, default="", db_default=""
    )
    customer_data = models.JSONField(default=dict, blank=True)
    billing_address = models.JSONField(null=True, blank=True)
    shipping_address = models.JSONField(null=True, blank=True)
    shipping_info = models.JSONField(null=True, blank=True)
    cart = models.JSONField(null=True, blank=True)
    website_customer_details = models.JSONField(null=True, blank=True)
    deferred_trigger = models.BooleanField(default=False)
    deferred_trigger_description = models.CharField(max_length=500, blank=True)
    deferred_trigger_applied_at = models.DateTimeField(null=True, blank=True)
    # Life.
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    expired_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    paid_in_full_fallback = models.BooleanField(default=False)  # p1x after a refusal
    # Refunds (apps.refunds keeps each one; these totals are updated with it, under the
    # payment's lock): the purchase amount refunded so far, and the customer fees and
    # interest given back with a complete refund.
    amount_refunded = MoneyField(_("amount refunded"), default=0, **MONEY)
    customer_fees_refunded = MoneyField(_("customer fees refunded"), default=0, **MONEY)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=[value for value, _label in PaymentState.choices]),
                name="payment_state_valid",
            ),
            models.CheckConstraint(
                condition=Q(installments_count__gte=1, installments_count__lte=12),
                name="payment_installments_count_bounds",
            ),
            models.CheckConstraint(
                condition=Q(purchase_amount__gt=0), name="payment_purchase_amount_positive"
            ),
            # Never more refunded than the purchase, whatever the callers do.
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0, amount_refunded__lte=F("purchase_amount")),
                name="payment_refunds_within_purchase",
            ),
        ]
        indexes = [
            # The merchant's lists: newest first, by mode, optionally by state.
            models.Index(
                fields=["merchant", "livemode", "-created_at", "-id"], name="payment_list_idx"
            ),
            models.Index(
                fields=["merchant", "livemode", "state", "-created_at", "-id"],
                name="payment_state_list_idx",
            ),
            # The dashboard's list sorted by amount.
            models.Index(
                fields=["merchant", "livemode", "purchase_amount", "id"],
                name="payment_amount_list_idx",
            ),
            # The dashboard's search, in what this merchant sent (never another merchant's
            # copy): the email, and a case-insensitive prefix of the last name.
            models.Index(
                F("merchant"),
                F("livemode"),
                Lower(KeyTextTransform("email", "customer_data")),
                name="payment_customer_email_idx",
            ),
            models.Index(
                F("merchant"),
                F("livemode"),
                OpClass(Upper(KeyTextTransform("last_name", "customer_data")), "text_pattern_ops"),
                name="payment_customer_name_idx",
            ),
            # The expiry job: payments still payable whose time is up.
            models.Index(
                fields=["expires_at"],
                condition=Q(
                    expired_at__isnull=True,
                    state__in=[
                        "not_ready",
                        "not_started",
                        "scored_yes",
                        "scored_maybe",
                        "scored_no",
                    ],
                ),
                name="payment_expiry_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def seller_name(self) -> str:
        """Who the customer bought from, as pages, emails and receipts name it: the
        merchant, or for a purchase with the customer's Tranche card the shop where it was
        made (the card programme's account is Tranche's own)."""
        if self.origin == self.Origin.CARD:
            shop = ((self.custom_data or {}).get("card_purchase") or {}).get("shop")
            if shop:
                return shop
        return self.merchant.legal_name

    @property
    def kind(self) -> str:
        if self.deferred_days or self.deferred_months:
            return "PAY_LATER"
        return f"P{self.installments_count}X"

    @property
    def is_pay_later(self) -> bool:
        return bool(self.deferred_days or self.deferred_months)

    def may_become(self, state: str) -> bool:
        return state in PAYMENT_TRANSITIONS[self.state]

    @property
    def refundable_amount(self):
        """What the merchant may still refund (the purchase amount less its refunds)."""
        return self.purchase_amount - self.amount_refunded

    @property
    def is_completely_refunded(self) -> bool:
        return self.amount_refunded == self.purchase_amount


class Instalment(models.Model):
    """One due amount of a payment's plan, written once when the payment is created."""

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        PAID = "paid", _("Paid")
        INCIDENT = "incident", _("Incident")
        CLAIMED = "claimed", _("Claimed")
        COVERED = "covered", _("Covered")

    public_id = models.CharField(max_length=64, unique=True, default=new_instalment_id)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="instalments")
    number = models.PositiveSmallIntegerField()  # 1..n
    due_date = models.DateField()
    purchase_amount = MoneyField(**MONEY)
    original_purchase_amount = MoneyField(**MONEY)
    customer_fee = MoneyField(**MONEY)
    customer_interest = MoneyField(**MONEY)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    paid_at = models.DateTimeField(null=True, blank=True)
    # The debit run (apps.schedules): when it should next charge the saved card (set when
    # the payment is accepted, moved by each failed attempt along the dunning days; NULL
    # while an attempt is in flight and when nothing is to be charged), and how many
    # automatic attempts it made (each attempt's charge key ends with its number).
    next_debit_at = models.DateTimeField(null=True, blank=True)
    debit_attempts = models.PositiveSmallIntegerField(default=0)
    # The due date the last reminder announced: a moved date gets its own reminder.
    reminded_for = models.DateField(null=True, blank=True)
    # Postponed by the customer (portal): the due date first planned, and how many times.
    postponed_from = models.DateField(null=True, blank=True)
    postponements = models.PositiveSmallIntegerField(default=0, db_default=0)

    class Meta:
        verbose_name = _("instalment")
        verbose_name_plural = _("instalments")
        ordering = ["payment_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["payment", "number"], name="instalment_one_per_number"),
            models.CheckConstraint(
                condition=Q(state__in=["pending", "paid", "incident", "claimed", "covered"]),
                name="instalment_state_valid",
            ),
            models.CheckConstraint(
                condition=Q(purchase_amount__gte=0, customer_fee__gte=0, customer_interest__gte=0),
                name="instalment_amounts_not_negative",
            ),
        ]
        indexes = [
            models.Index(
                fields=["due_date"], condition=Q(state="pending"), name="instalment_due_idx"
            ),
            # The dashboard's "collected and due" chart: every state, by due date.
            models.Index(fields=["due_date", "payment"], name="instalment_due_date_idx"),
            # The debit run's claim: what is due to be charged, oldest first.
            # (A day's instalments share one debit time: the id breaks the tie in the index,
            # not in a sort of the whole day at each claim.)
            models.Index(
                fields=["next_debit_at", "id"],
                condition=Q(next_debit_at__isnull=False),
                name="instalment_debit_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.payment_id} #{self.number}"

    @property
    def total_amount(self):
        return self.purchase_amount + self.customer_fee + self.customer_interest

    @property
    def cancelled_by_refund(self) -> bool:
        """Nothing left to pay because refunds cancelled it all: it reads ``paid`` (the
        API's vocabulary has no other word), without a payment date."""
        return (
            self.state == self.State.PAID
            and self.paid_at is None
            and self.purchase_amount < self.original_purchase_amount
        )


class PaymentEvent(models.Model):
    """Append-only history of a payment: state changes and other things that happened."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=40)
    from_state = models.CharField(max_length=24, blank=True)
    to_state = models.CharField(max_length=24, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["payment", "created_at"], name="payment_event_idx")]

    def __str__(self) -> str:
        return f"{self.payment_id} {self.kind}"


class Order(models.Model):
    """The merchant's order(s) a payment pays for, with shipment and status as they send them."""

    public_id = models.CharField(max_length=64, unique=True, default=new_order_id)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="orders")
    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT, related_name="+")
    livemode = models.BooleanField()
    merchant_reference = models.CharField(max_length=200, blank=True, null=True)
    merchant_url = models.CharField(max_length=1000, blank=True, null=True)
    customer_url = models.CharField(max_length=1000, blank=True, null=True)
    comment = models.TextField(blank=True, null=True)
    data = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=100, blank=True, null=True)
    is_shipped = models.BooleanField(null=True, blank=True)
    carrier = models.CharField(max_length=200, blank=True, null=True)
    tracking_number = models.CharField(max_length=200, blank=True, null=True)
    tracking_url = models.CharField(max_length=1000, blank=True, null=True)
    # Replaced orders (POST .../orders) are kept, detached, for the record.
    detached_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        indexes = [
            models.Index(
                fields=["merchant", "livemode", "-created_at", "-id"], name="order_list_idx"
            ),
            models.Index(fields=["payment", "created_at"], name="order_payment_idx"),
            models.Index(
                fields=["merchant", "livemode", "merchant_reference"], name="order_reference_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.merchant_reference or self.public_id


class PotentialFraudFlag(models.Model):
    """A merchant's report that a payment looks wrong (amount mismatch, state error...)."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="fraud_flags")
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("potential fraud flag")
        verbose_name_plural = _("potential fraud flags")
        indexes = [models.Index(fields=["-created_at"], name="fraud_flag_recent_idx")]

    def __str__(self) -> str:
        return f"{self.payment_id}: {self.reason}"


class BusinessEvent(models.Model):
    """What a shop reports about its checkout (cart initiated, order confirmed)."""

    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.CASCADE, related_name="+")
    livemode = models.BooleanField()
    event_type = models.CharField(max_length=40)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["merchant", "livemode", "-created_at"], name="business_event_idx")
        ]

    def __str__(self) -> str:
        return self.event_type


class CreditDecision(models.Model):
    """A decision on a payment: outcome, score and the reasons, with the rules' version."""

    class Outcome(models.TextChoices):
        YES = "yes", _("Yes")
        MAYBE = "maybe", _("Maybe")
        NO = "no", _("No")

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="decisions")
    outcome = models.CharField(max_length=5, choices=Outcome.choices)
    score = models.IntegerField(default=0)
    # [{"code", "message", "points", "category"}], the ones that counted most first.
    reasons = models.JSONField(default=list)
    # The extra information a ``maybe`` asks for, in order: "phone", "identity", "bank".
    asks = models.JSONField(default=list, blank=True)
    # What the decision saw (features), so it can be explained and replayed later.
    features = models.JSONField(default=dict, blank=True)
    rules_version = models.CharField(max_length=40)
    # "checkout", "verification" (after more information), "operator" (a human review).
    made_by = models.CharField(max_length=20, default="checkout")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["payment", "created_at"], name="decision_payment_idx")]

    def __str__(self) -> str:
        return f"{self.payment_id}: {self.outcome}"


class DecisionRuleSet(models.Model):
    """A version of the decision's rules: weights, thresholds and limits, as data.

    Operators change the model by saving a new version (the admin copies the active one);
    versions are never edited once a decision used them, so every past decision is explained
    by the rules that made it (``CreditDecision.rules_version``). One version is active.
    """

    version = models.CharField(_("version"), max_length=40, unique=True)
    rules = models.JSONField(_("rules"))
    is_active = models.BooleanField(_("active"), default=False)
    note = models.CharField(_("note"), max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("decision rules")
        verbose_name_plural = _("decision rules")
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="decision_rules_one_active"
            )
        ]

    def __str__(self) -> str:
        return self.version


class DenyListEntry(models.Model):
    """Something Tranche will not lend to again: an email, a phone, a card (fingerprint) or
    a device, fed by defaults, by merchants' fraud flags and by operators. Removing an entry
    keeps its row (``removed_at``) as the record of why it was there."""

    class Kind(models.TextChoices):
        EMAIL = "email", _("Email")
        PHONE = "phone", _("Phone")
        CARD = "card", _("Card")
        DEVICE = "device", _("Device")

    class Source(models.TextChoices):
        DEFAULT = "default", _("Payment in default")
        FRAUD_FLAG = "fraud_flag", _("Merchant's fraud flag")
        OPERATOR = "operator", _("Operator")

    livemode = models.BooleanField(_("live mode"))
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    value = models.CharField(_("value"), max_length=254)  # normalised: lower-case email, E.164
    source = models.CharField(_("source"), max_length=12, choices=Source.choices)
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.CharField(_("note"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"))
    removed_at = models.DateTimeField(_("removed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("deny-list entry")
        verbose_name_plural = _("deny list")
        constraints = [
            models.UniqueConstraint(
                fields=["livemode", "kind", "value"],
                condition=Q(removed_at__isnull=True),
                name="denylist_one_live_entry",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.value}"


class DecisionReview(models.Model):
    """A human review of a credit decision: a payment left waiting on more information past
    the time limit, or a decision the customer contested (GDPR art. 22). The operator's
    approve or refuse is recorded here and as a new CreditDecision made by ``operator``."""

    class Kind(models.TextChoices):
        WAITING = "waiting", _("Waiting on more information")
        CONTESTED = "contested", _("Contested by the customer")

    class Status(models.TextChoices):
        OPEN = "open", _("To review")
        APPROVED = "approved", _("Approved")
        REFUSED = "refused", _("Refused")
        CLOSED = "closed", _("Closed without a decision")

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="reviews")
    decision = models.ForeignKey(CreditDecision, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.OPEN
    )
    customer_message = models.TextField(_("customer's message"), blank=True)
    operator_note = models.TextField(_("operator's note"), blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"))
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        verbose_name = _("decision review")
        verbose_name_plural = _("decision reviews")
        constraints = [
            models.UniqueConstraint(
                fields=["payment", "kind"],
                condition=Q(status="open"),
                name="review_one_open_per_payment_and_kind",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["open", "approved", "refused", "closed"]),
                name="review_status_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["created_at"], condition=Q(status="open"), name="review_open_idx")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_status_display()})"


class Charge(models.Model):
    """One call to the processor that moves money, recorded before the call is made.

    The row is committed (``pending``) before the processor is called, with the idempotency
    key the call carries; the result is recorded after. A row left ``pending`` or
    ``unknown`` (a crash, a timeout) is settled by asking the processor by that key, never
    by charging again.
    """

    class Kind(models.TextChoices):
        FIRST_INSTALMENT = "first_instalment", _("First instalment")
        PAY_IN_FULL = "pay_in_full", _("Whole amount")
        INSTALMENT = "instalment", _("Instalment")
        CARD_CHECK = "card_check", _("Card check")
        EARLY_PAYMENT = "early_payment", _("Early payment")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        UNKNOWN = "unknown", _("Unknown (being checked)")

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="charges")
    instalment = models.ForeignKey(
        Instalment, on_delete=models.PROTECT, null=True, blank=True, related_name="charges"
    )
    # An early payment (the customer pays from the portal) pays one or more instalments in
    # one charge: their ids, in number order (``instalment`` stays empty).
    covers = ArrayField(models.BigIntegerField(), default=list, blank=True, db_default=[])
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="charges")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    attempt = models.PositiveSmallIntegerField(default=1)
    idempotency_key = models.CharField(max_length=120, unique=True)
    amount = MoneyField(**MONEY)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    processor_reference = models.CharField(max_length=100, blank=True)
    failure_code = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "succeeded", "failed", "unknown"]),
                name="charge_status_valid",
            ),
            # A payment's checkout charge succeeds at most once, whatever the tabs do.
            models.UniqueConstraint(
                fields=["payment"],
                condition=Q(kind__in=["first_instalment", "pay_in_full"], status="succeeded"),
                name="charge_one_checkout_success",
            ),
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(status__in=["pending", "unknown"]),
                name="charge_in_doubt_idx",
            )
        ]

    def __str__(self) -> str:
        return self.idempotency_key

    @property
    def instalment_ids(self) -> list[int]:
        """The instalments this charge pays: the one it names, or those an early payment
        covers."""
        return (
            list(self.covers) if self.covers else [self.instalment_id] if self.instalment_id else []
        )


class Notification(models.Model):
    """An IPN to the merchant: ``GET ipn_callback_url?pid=`` signed, retried on a schedule."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Gave up")
        DROPPED = "dropped", _("Dropped (stale)")

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="notifications")
    # accepted, paid, default, or refund:<refund id> (one per refund)
    event = models.CharField(max_length=64)
    state_at_event = models.CharField(max_length=24)
    url = models.CharField(max_length=1100)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["payment", "event"], name="notification_one_per_payment_event"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "delivered", "failed", "dropped"]),
                name="notification_status_valid",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="notification_due_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.payment_id} {self.event}"


class NotificationAttempt(models.Model):
    """One delivery attempt of a notification, as it went."""

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="attempt_rows"
    )
    number = models.PositiveSmallIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    response_snippet = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["notification_id", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "number"], name="notification_attempt_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.notification_id} #{self.number}"


class Checkout(models.Model):
    """Where the customer stands on a payment's hosted page, shared by every tab they open.

    Steps: ``details`` (who, terms) -> ``card`` -> ``phone`` (SMS code) -> ``three_ds`` ->
    ``decision`` -> ``done``. Each step's view checks that it is the current one under a
    row lock, so replayed, out-of-order or concurrent posts cannot skip or repeat a step.
    """

    class Step(models.TextChoices):
        DETAILS = "details", _("Your details")
        CARD = "card", _("Card")
        PHONE = "phone", _("Phone check")
        THREE_DS = "three_ds", _("3-D Secure")
        DECISION = "decision", _("Decision")
        MORE_INFO = "more_info", _("More information")
        IDENTITY = "identity", _("Identity document")
        BANK = "bank", _("Bank data")
        REFUSED = "refused", _("Refused")
        DONE = "done", _("Done")

    payment = models.OneToOneField(Payment, on_delete=models.PROTECT, related_name="checkout")
    step = models.CharField(max_length=10, choices=Step.choices, default=Step.DETAILS)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    email = models.EmailField(max_length=254, blank=True)
    phone = models.CharField(max_length=20, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    address = models.JSONField(default=dict, blank=True)
    terms_accepted_at = models.DateTimeField(null=True, blank=True)
    card = models.ForeignKey(Card, on_delete=models.PROTECT, null=True, blank=True)
    phone_check_id = models.CharField(max_length=64, blank=True)  # verification's code id
    phone_verified_at = models.DateTimeField(null=True, blank=True)
    three_ds_reference = models.CharField(max_length=100, blank=True)
    three_ds_completed_at = models.DateTimeField(null=True, blank=True)
    pay_in_full = models.BooleanField(default=False)
    refusal_code = models.CharField(max_length=40, blank=True)
    # The browser (a random cookie) and address the customer came from, for velocity checks.
    device_id = models.CharField(max_length=64, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    language = models.CharField(max_length=8, blank=True)  # of the pages, SMS and emails
    # Extra information given after a ``maybe`` (verification's check ids).
    identity_check_id = models.CharField(max_length=64, blank=True)
    bank_check_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(
                fields=["device_id", "created_at"],
                condition=~Q(device_id=""),
                name="checkout_device_idx",
            ),
            # The review queue: checkouts waiting on more information.
            models.Index(
                fields=["updated_at"],
                condition=Q(step__in=["more_info", "identity", "bank"]),
                name="checkout_waiting_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.payment_id} at {self.step}"


# --- the sandbox card processor's own records (what a real processor keeps on its side) ---


class SandboxCard(models.Model):
    """A card the sandbox tokenised: what the processor knows, never the full number."""

    token = models.CharField(max_length=64, unique=True)
    livemode = models.BooleanField()
    bin = models.CharField(max_length=8)
    last4 = models.CharField(max_length=4)
    scenario = models.CharField(max_length=40)  # the test card's behaviour
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.token


class SandboxThreeDS(models.Model):
    """A 3-D Secure authentication the sandbox ACS runs (frictionless or challenge)."""

    reference = models.CharField(max_length=64, unique=True)
    card = models.ForeignKey(SandboxCard, on_delete=models.CASCADE)
    amount_cents = models.PositiveIntegerField()
    return_url = models.CharField(max_length=1000)
    status = models.CharField(max_length=12)  # challenge, authenticated, failed
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.reference


class SandboxCharge(models.Model):
    """A charge or refund the sandbox processed, keyed by the caller's idempotency key."""

    reference = models.CharField(max_length=64, unique=True)
    idempotency_key = models.CharField(max_length=120, unique=True)
    livemode = models.BooleanField()
    card = models.ForeignKey(SandboxCard, on_delete=models.PROTECT)
    kind = models.CharField(max_length=10)  # charge, refund
    amount_cents = models.PositiveIntegerField()
    status = models.CharField(max_length=10)  # succeeded, declined
    decline_code = models.CharField(max_length=40, blank=True)
    charge_reference = models.CharField(max_length=64, blank=True)  # a refund's charge
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["livemode", "created_at"], name="sandbox_charge_day_idx")]

    def __str__(self) -> str:
        return self.reference


def new_export_id() -> str:
    return new_public_id("export")


class DataExport(models.Model):
    """A file of the merchant's data for a period, built in the background (CSV and XLSX).

    Asked from the dashboard or the API (``POST /v1/data-exports``); a task writes both
    files to the ``exports`` storage, reporting its progress in ``rows_done`` of
    ``rows_total`` so the page can show a bar. ``kind`` is what the dashboard offers;
    ``api_type`` keeps the API's spelling (payments, accounting, accounting_for_payout).
    """

    class Kind(models.TextChoices):
        PAYMENTS = "payments", _("Payments")
        INSTALMENTS = "instalments", _("Instalments")
        REFUNDS = "refunds", _("Refunds")
        LEDGER = "ledger", _("Ledger lines")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Being built")
        DONE = "done", _("Ready")
        FAILED = "failed", _("Failed")

    class Origin(models.TextChoices):
        DASHBOARD = "dashboard", _("Dashboard")
        API = "api", _("API")

    public_id = models.CharField(max_length=64, unique=True, default=new_export_id)
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="data_exports"
    )
    livemode = models.BooleanField()
    kind = models.CharField(_("data"), max_length=12, choices=Kind.choices)
    api_type = models.CharField(max_length=24, blank=True)
    start = models.DateTimeField(_("from"), null=True, blank=True)
    end = models.DateTimeField(_("to"), null=True, blank=True)
    payout = models.ForeignKey(
        "ledger.Payout", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    include_child_accounts = models.BooleanField(default=False)
    custom_fields = models.JSONField(default=list, blank=True)
    origin = models.CharField(max_length=10, choices=Origin.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.PENDING
    )
    rows_total = models.PositiveIntegerField(null=True, blank=True)
    rows_done = models.PositiveIntegerField(default=0)
    csv_file = models.CharField(max_length=200, blank=True)  # names in the exports storage
    xlsx_file = models.CharField(max_length=200, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"))
    updated_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("data export")
        verbose_name_plural = _("data exports")
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["payments", "instalments", "refunds", "ledger"]),
                name="data_export_kind_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "running", "done", "failed"]),
                name="data_export_status_valid",
            ),
        ]
        indexes = [
            models.Index(
                fields=["merchant", "livemode", "-created_at", "-id"], name="data_export_list_idx"
            )
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def complete(self) -> bool:
        return self.status == self.Status.DONE
