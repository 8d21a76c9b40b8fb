from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.common.ids import new_public_id
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


# --- the customer portal ----------------------------------------------------------------


def new_sign_in_id() -> str:
    return new_public_id("signin")


def new_support_request_id() -> str:
    return new_public_id("request")


def new_card_setup_id() -> str:
    return new_public_id("cardsetup")


class SignInCode(models.Model):
    """One sign-in to the portal by a 6-digit code sent by SMS or email.

    A code is sent for every request, whether or not a customer has that phone or email
    (``customer`` empty): the page never tells who is a customer. Only an HMAC of the code
    is kept; ``test_code`` keeps the plain code in test mode only (the sandbox outbox shows
    it anyway). Wrong codes are counted on the row, which locks after
    ``PORTAL_CODE_MAX_ATTEMPTS``.
    """

    class Channel(models.TextChoices):
        SMS = "sms", _("SMS")
        EMAIL = "email", _("Email")

    class Purpose(models.TextChoices):
        SIGN_IN = "sign_in", _("Sign in")
        # Creating an account with a mobile number (the code goes to any number).
        SIGN_UP = "sign_up", _("Sign up")
        # Confirming the email a signed-in customer typed in their profile.
        EMAIL = "email", _("Email check")

    public_id = models.CharField(max_length=64, unique=True, default=new_sign_in_id)
    customer = models.ForeignKey(
        "payments.Customer", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    livemode = models.BooleanField()
    channel = models.CharField(max_length=5, choices=Channel.choices)
    purpose = models.CharField(
        max_length=8, choices=Purpose.choices, default=Purpose.SIGN_IN, db_default="sign_in"
    )
    destination = models.CharField(max_length=254)  # E.164 phone, or lower-case email
    code_hash = models.CharField(max_length=64)
    test_code = models.CharField(max_length=6, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    verified_at = models.DateTimeField(null=True, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("sign-in code")
        verbose_name_plural = _("sign-in codes")
        constraints = [
            models.CheckConstraint(
                condition=Q(livemode=False) | Q(test_code=""), name="signin_no_plain_code_in_live"
            ),
        ]
        indexes = [
            # The limits: codes sent lately to one destination, and from one address.
            models.Index(fields=["destination", "created_at"], name="signin_destination_idx"),
            models.Index(
                fields=["ip_address", "created_at"],
                condition=Q(ip_address__isnull=False),
                name="signin_ip_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.public_id


class SupportRequest(models.Model):
    """A request a customer (or a visitor) sends to Tranche's support from the portal: a
    delay longer than the portal allows, a question, a correction or the deletion of their
    data. Operators work on them in the admin."""

    class Kind(models.TextChoices):
        POSTPONE = "postpone", _("Longer delay")
        CONTACT = "contact", _("Question")
        CORRECTION = "correction", _("Data correction")
        DELETION = "deletion", _("Data deletion")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        DONE = "done", _("Done")
        CLOSED = "closed", _("Closed")

    public_id = models.CharField(max_length=64, unique=True, default=new_support_request_id)
    customer = models.ForeignKey(
        "payments.Customer",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="support_requests",
    )
    livemode = models.BooleanField()
    payment = models.ForeignKey(
        "payments.Payment", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    instalment = models.ForeignKey(
        "payments.Instalment", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.OPEN
    )
    name = models.CharField(_("name"), max_length=200, blank=True)
    email = models.EmailField(_("email"), max_length=254, blank=True)
    message = models.TextField(_("message"), max_length=5000, blank=True)
    # A longer delay: the date the customer asks for.
    requested_date = models.DateField(_("date asked for"), null=True, blank=True)
    operator_note = models.TextField(_("operator's note"), blank=True)
    handled_by = models.ForeignKey(
        "auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    handled_at = models.DateTimeField(_("handled at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("support request")
        verbose_name_plural = _("support requests")
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["postpone", "contact", "correction", "deletion"]),
                name="support_request_kind_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["open", "done", "closed"]),
                name="support_request_status_valid",
            ),
        ]
        indexes = [
            models.Index(
                fields=["created_at"], condition=Q(status="open"), name="support_open_idx"
            ),
            models.Index(fields=["customer", "created_at"], name="support_customer_idx"),
        ]

    def __str__(self) -> str:
        return self.public_id


class CardSetup(models.Model):
    """A new card given in the portal, on its way through 3-D Secure: to replace the card
    of the customer's plans, or to pay instalments early with.

    The card is tokenised (a ``payments.Card`` row) before 3-D Secure starts; the setup
    remembers what it is for, so the return from the bank finishes the right thing once.
    """

    class Purpose(models.TextChoices):
        REPLACE = "replace", _("Replace the card")
        PAY_EARLY = "pay_early", _("Pay early")

    class Status(models.TextChoices):
        STARTED = "started", _("Waiting for 3-D Secure")
        AUTHENTICATED = "authenticated", _("Authenticated")
        FAILED = "failed", _("3-D Secure failed")
        DONE = "done", _("Done")

    public_id = models.CharField(max_length=64, unique=True, default=new_card_setup_id)
    customer = models.ForeignKey("payments.Customer", on_delete=models.PROTECT, related_name="+")
    payment = models.ForeignKey("payments.Payment", on_delete=models.PROTECT, related_name="+")
    card = models.ForeignKey("payments.Card", on_delete=models.PROTECT, related_name="+")
    purpose = models.CharField(max_length=10, choices=Purpose.choices)
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.STARTED)
    # Pay early: the instalments it pays (ids, in number order) and the amount authenticated.
    instalment_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    amount_cents = models.PositiveIntegerField(default=0)
    three_ds_reference = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("card setup")
        verbose_name_plural = _("card setups")
        indexes = [models.Index(fields=["customer", "created_at"], name="card_setup_customer_idx")]

    def __str__(self) -> str:
        return self.public_id
