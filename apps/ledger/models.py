"""The double-entry ledger: accounts, postings and their legs, payouts, reconciliation.

Signs: a leg's amount is positive for a debit and negative for a credit, so the legs of a
posting sum to zero and an account's ``balance`` is the sum of its legs. Accounts whose
normal side is credit (what Tranche owes: merchant balances; what it earns: revenue) carry
negative balances; ``Account.natural_balance`` flips them for display.

PostgreSQL enforces the guarantees (migration 0002), whoever writes: a posting's
legs are inserted in one statement, sum to zero, share one currency and number two or more;
legs and postings are never updated or deleted; each statement's legs carry the running
balance after them (``balance_after``, continuing the account's stored balance in
``posted_at``, id order) and the statement moves the accounts' balances under their row
locks; a leg on a closed account, on an account of the other mode or in another currency is
refused.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from djmoney.models.fields import MoneyField
from djmoney.money import Money

from apps.common.ids import new_public_id

MONEY = {"max_digits": 14, "decimal_places": 2, "default_currency": "EUR"}
BALANCE = {"max_digits": 16, "decimal_places": 2}


class AccountKind(models.TextChoices):
    MERCHANT_BALANCE = "merchant_balance", _("Merchant balance (payable)")
    MERCHANT_RESERVE = "merchant_reserve", _("Merchant reserve")
    CUSTOMER_RECEIVABLE = "customer_receivable", _("Customer receivable")
    PROCESSOR_CLEARING = "processor_clearing", _("Processor clearing")
    MERCHANT_FEE_REVENUE = "merchant_fee_revenue", _("Merchant-fee revenue")
    CUSTOMER_FEE_REVENUE = "customer_fee_revenue", _("Customer-fee revenue")
    INTEREST_REVENUE = "interest_revenue", _("Interest revenue")
    CREDIT_LOSSES = "credit_losses", _("Credit losses")
    REFUNDS_PAYABLE = "refunds_payable", _("Refunds owed to customers")
    PAYOUTS_IN_TRANSIT = "payouts_in_transit", _("Payouts in transit")
    BANK = "bank", _("Bank")


# Accounts whose balance grows with debits (what Tranche holds or spends); the others grow
# with credits (what it owes or earns).
DEBIT_NORMAL = frozenset(
    {
        AccountKind.CUSTOMER_RECEIVABLE,
        AccountKind.PROCESSOR_CLEARING,
        AccountKind.CREDIT_LOSSES,
        AccountKind.BANK,
    }
)
# One account per payment (the reference is the payment's id).
PER_PAYMENT = frozenset({AccountKind.CUSTOMER_RECEIVABLE})
# One account per mode and currency for the whole platform. Every other kind is kept per
# merchant, platform accounts included: revenue and clearing read by merchant, and no single
# row is locked by every posting of every merchant.
PLATFORM_WIDE = frozenset({AccountKind.BANK})


def account_key(
    *, kind: str, livemode: bool, currency: str, merchant_id: int | None, reference: str = ""
) -> str:
    """The unique, human-readable name of an account, e.g. ``test:EUR:merchant_balance:m42``."""
    parts = ["live" if livemode else "test", currency, kind]
    if merchant_id is not None:
        parts.append(f"m{merchant_id}")
    if reference:
        parts.append(reference)
    return ":".join(parts)


class Account(models.Model):
    key = models.CharField(_("key"), max_length=200, unique=True, editable=False)
    kind = models.CharField(_("kind"), max_length=32, choices=AccountKind.choices)
    livemode = models.BooleanField(_("live mode"))
    merchant = models.ForeignKey(
        "merchants.Merchant",
        verbose_name=_("merchant"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_accounts",
    )
    reference = models.CharField(_("reference"), max_length=64, blank=True)
    # The running balance (sum of the legs), maintained by the leg trigger only; its
    # currency is the account's currency.
    balance = MoneyField(_("balance"), default=0, **BALANCE, default_currency="EUR")
    # When its last leg was posted; the next legs may not be earlier (set with the balance).
    last_posted_at = models.DateTimeField(_("last posted at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("ledger account")
        verbose_name_plural = _("ledger accounts")
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=AccountKind.values), name="ledger_account_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=list(PLATFORM_WIDE), merchant__isnull=True)
                | (~Q(kind__in=list(PLATFORM_WIDE)) & Q(merchant__isnull=False)),
                name="ledger_account_owner_matches_kind",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=list(PER_PAYMENT), reference__gt="")
                | (~Q(kind__in=list(PER_PAYMENT)) & Q(reference="")),
                name="ledger_account_reference_matches_kind",
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "kind", "livemode"], name="ledger_account_owner_idx")
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def currency(self) -> str:
        return str(self.balance.currency)

    @property
    def debit_normal(self) -> bool:
        return self.kind in DEBIT_NORMAL

    @property
    def natural_balance(self) -> Money:
        """The balance on the account's normal side: what a merchant is owed is positive."""
        return self.balance if self.debit_normal else -self.balance


class Posting(models.Model):
    """One business event's money movement: two or more legs summing to zero."""

    kind = models.CharField(_("kind"), max_length=40)
    livemode = models.BooleanField(_("live mode"))
    # Who posts and under which key: a replayed job posts nothing twice.
    source = models.CharField(_("source"), max_length=64)
    idempotency_key = models.CharField(_("idempotency key"), max_length=200)
    merchant = models.ForeignKey(
        "merchants.Merchant",
        verbose_name=_("merchant"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_postings",
    )
    # The business object the posting is about (a payment, a refund, a payout id).
    reference = models.CharField(_("reference"), max_length=64, blank=True)
    # The card processor's id of the charge or refund this posting records, if any.
    processor_reference = models.CharField(_("processor reference"), max_length=100, blank=True)
    memo = models.CharField(_("memo"), max_length=200, blank=True)
    # When the event happened (the processor's time for card movements); created_at is
    # when it was recorded.
    effective_at = models.DateTimeField(_("effective at"))
    created_at = models.DateTimeField(_("recorded at"), db_default=models.functions.Now())
    reverses = models.OneToOneField(
        "self",
        verbose_name=_("reverses"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversed_by",
    )

    class Meta:
        verbose_name = _("posting")
        verbose_name_plural = _("postings")
        constraints = [
            models.UniqueConstraint(
                fields=["source", "idempotency_key"], name="ledger_posting_idempotent"
            ),
        ]
        indexes = [
            models.Index(
                fields=["merchant", "livemode", "-id"], name="ledger_posting_merchant_idx"
            ),
            models.Index(fields=["reference"], name="ledger_posting_reference_idx"),
            models.Index(
                fields=["processor_reference"],
                name="ledger_posting_processor_idx",
                condition=~Q(processor_reference=""),
            ),
            models.Index(fields=["livemode", "effective_at"], name="ledger_posting_effective_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class Leg(models.Model):
    posting = models.ForeignKey(
        Posting, verbose_name=_("posting"), on_delete=models.PROTECT, related_name="legs"
    )
    # Indexed by ledger_leg_account_time_idx below (its first column).
    account = models.ForeignKey(
        Account,
        verbose_name=_("account"),
        on_delete=models.PROTECT,
        related_name="legs",
        db_index=False,
    )
    # Positive = debit, negative = credit.
    amount = MoneyField(_("amount"), **MONEY)
    # The account's balance after this leg, and when it was posted: written with the leg
    # (under the account's row lock) and checked by the database.
    balance_after = models.DecimalField(_("balance after"), **BALANCE)
    posted_at = models.DateTimeField(_("posted at"))

    class Meta:
        verbose_name = _("leg")
        verbose_name_plural = _("legs")
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_leg_amount_nonzero"),
        ]
        indexes = [
            # Balance as of a time: one index-only probe.
            models.Index(
                fields=["account", "-posted_at", "-id"],
                include=["balance_after"],
                name="ledger_leg_account_time_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.amount}"


def new_payout_id() -> str:
    return new_public_id("payout")


class PayoutRun(models.Model):
    """One day's payouts in one mode, and the SEPA credit transfer file that carries them."""

    run_date = models.DateField(_("run date"))
    livemode = models.BooleanField(_("live mode"))
    message_id = models.CharField(_("SEPA message id"), max_length=35, blank=True)
    sepa_file = models.BinaryField(_("SEPA file (pain.001.001.03)"), null=True, editable=False)
    payout_count = models.PositiveIntegerField(_("payouts"), default=0)
    total = MoneyField(_("total"), default=0, **MONEY)
    created_at = models.DateTimeField(_("created at"))
    file_built_at = models.DateTimeField(_("file built at"), null=True, blank=True)

    class Meta:
        verbose_name = _("payout run")
        verbose_name_plural = _("payout runs")
        constraints = [
            models.UniqueConstraint(fields=["livemode", "run_date"], name="ledger_payout_run_day"),
        ]

    def __str__(self) -> str:
        return f"{'live' if self.livemode else 'test'} {self.run_date}"


class Payout(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Failed")

    public_id = models.CharField(
        _("id"), max_length=64, unique=True, default=new_payout_id, editable=False
    )
    run = models.ForeignKey(
        PayoutRun, verbose_name=_("payout run"), on_delete=models.PROTECT, related_name="payouts"
    )
    merchant = models.ForeignKey(
        "merchants.Merchant",
        verbose_name=_("merchant"),
        on_delete=models.PROTECT,
        related_name="payouts",
    )
    livemode = models.BooleanField(_("live mode"))
    amount = MoneyField(_("amount"), **MONEY)
    iban = models.CharField(_("IBAN"), max_length=34)
    bic = models.CharField(_("BIC"), max_length=11, blank=True)
    account_holder = models.CharField(_("account holder"), max_length=70)
    # The delay in force when the payout was made (check_ledger recomputes what was available).
    settlement_delay_days = models.PositiveSmallIntegerField(_("settlement delay (days)"))
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.PENDING
    )
    failure_reason = models.CharField(_("failure reason"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"))
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("payout")
        verbose_name_plural = _("payouts")
        constraints = [
            models.UniqueConstraint(fields=["run", "merchant"], name="ledger_payout_once_per_run"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="ledger_payout_positive"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "sent", "paid", "failed"]),
                name="ledger_payout_status_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "livemode", "-created_at"], name="ledger_payout_idx"),
            models.Index(fields=["status", "created_at"], name="ledger_payout_status_idx"),
        ]

    def __str__(self) -> str:
        return self.public_id


# The allowed status changes; services.payout_transition enforces it.
PAYOUT_TRANSITIONS: dict[str, set[str]] = {
    Payout.Status.PENDING: {Payout.Status.SENT},
    Payout.Status.SENT: {Payout.Status.PAID, Payout.Status.FAILED},
    Payout.Status.PAID: set(),
    Payout.Status.FAILED: set(),
}


class PayoutEvent(models.Model):
    """Append-only history of a payout's status changes."""

    payout = models.ForeignKey(Payout, on_delete=models.PROTECT, related_name="events")
    from_status = models.CharField(max_length=8, blank=True)
    to_status = models.CharField(max_length=8)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    detail = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["payout", "created_at"], name="ledger_payout_event_idx")]

    def __str__(self) -> str:
        return f"{self.payout_id} {self.from_status or '-'} -> {self.to_status}"


class ReconciliationRun(models.Model):
    """The processor's settlement report for one day, matched against processor clearing."""

    report_date = models.DateField(_("report date"))
    livemode = models.BooleanField(_("live mode"))
    report_lines = models.PositiveIntegerField(_("report lines"), default=0)
    ledger_entries = models.PositiveIntegerField(_("ledger entries"), default=0)
    matched = models.PositiveIntegerField(_("matched"), default=0)
    mismatches = models.PositiveIntegerField(_("mismatches"), default=0)
    ran_at = models.DateTimeField(_("ran at"))

    class Meta:
        verbose_name = _("reconciliation")
        verbose_name_plural = _("reconciliations")
        constraints = [
            models.UniqueConstraint(
                fields=["livemode", "report_date"], name="ledger_reconciliation_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{'live' if self.livemode else 'test'} {self.report_date}"


class Mismatch(models.Model):
    class Kind(models.TextChoices):
        MISSING_IN_LEDGER = "missing_in_ledger", _("In the report, not in the ledger")
        MISSING_IN_REPORT = "missing_in_report", _("In the ledger, not in the report")
        AMOUNT_DIFFERS = "amount_differs", _("Amounts differ")

    run = models.ForeignKey(
        ReconciliationRun,
        verbose_name=_("reconciliation"),
        on_delete=models.CASCADE,
        related_name="items",
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    processor_reference = models.CharField(_("processor reference"), max_length=100)
    report_amount = MoneyField(_("report amount"), null=True, blank=True, **MONEY)
    ledger_amount = MoneyField(_("ledger amount"), null=True, blank=True, **MONEY)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolution = models.CharField(_("resolution"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("reconciliation mismatch")
        verbose_name_plural = _("reconciliation mismatches")
        constraints = [
            models.UniqueConstraint(
                fields=["run", "processor_reference"], name="ledger_mismatch_once"
            ),
        ]
        indexes = [
            models.Index(
                fields=["run"], name="ledger_mismatch_open_idx", condition=Q(resolved_at=None)
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.processor_reference}"
