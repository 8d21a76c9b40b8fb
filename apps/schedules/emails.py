"""What the schedule's emails and SMS say: built from a batch's rows, in the payment's
language, as JSON contexts the outbox renders when it sends (templates/emails/schedules/).

Everything a batch needs is read in a few queries (``BatchContext.load``); amounts and dates
are formatted here, in the email's language, so the text and HTML versions agree.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.common.dates import BUSINESS_TZ
from apps.common.emails import Attachment, EmailSpec
from apps.common.money import display_eur, to_cents
from apps.payments import links
from apps.payments.emails import customer_email, customer_name, date_display, email_language
from apps.payments.models import Card, Charge, Checkout, Instalment, Order, Payment

TEMPLATES = "emails/schedules"


@dataclass
class BatchContext:
    """A batch's payments with what their emails need, read once."""

    payments: dict[int, Payment]
    instalments: dict[int, list[Instalment]]  # payment id -> by number
    checkouts: dict[int, Checkout]
    references: dict[int, list[str]]

    @classmethod
    def load(cls, payments: Iterable[Payment], instalments: Iterable[Instalment]) -> BatchContext:
        by_id = {payment.pk: payment for payment in payments}
        by_payment: dict[int, list[Instalment]] = defaultdict(list)
        for instalment in sorted(instalments, key=lambda row: (row.payment_id, row.number)):
            by_payment[instalment.payment_id].append(instalment)
        checkouts = {
            row.payment_id: row
            for row in Checkout.objects.filter(payment_id__in=by_id).only(
                "payment_id", "email", "first_name", "last_name", "phone"
            )
        }
        references: dict[int, list[str]] = defaultdict(list)
        for payment_id, reference in (
            Order.objects.filter(payment_id__in=by_id, detached_at__isnull=True)
            .exclude(merchant_reference=None)
            .exclude(merchant_reference="")
            .order_by("created_at", "pk")
            .values_list("payment_id", "merchant_reference")
        ):
            references[payment_id].append(reference)
        return cls(by_id, by_payment, checkouts, references)

    def email(self, payment: Payment) -> str:
        return customer_email(payment, self.checkouts.get(payment.pk))

    def name(self, payment: Payment) -> str:
        return customer_name(payment, self.checkouts.get(payment.pk))

    def phone(self, payment: Payment) -> str:
        """The phone the customer verified, else the one given at checkout or by the shop."""
        checkout = self.checkouts.get(payment.pk)
        return (
            payment.customer.phone
            or (checkout.phone if checkout else "")
            or str((payment.customer_data or {}).get("phone") or "")
        )


# A batch formats the same few dates, amounts and brands thousands of times: each is
# formatted once per language.
@functools.lru_cache(maxsize=4096)
def _date_in(language: str, day: date) -> str:
    return date_display(day)


@functools.lru_cache(maxsize=4096)
def _eur_in(language: str, cents: int) -> str:
    return display_eur(cents)


@functools.lru_cache(maxsize=64)
def _brand_in(language: str, brand: str) -> str:
    return str(Card.Brand(brand).label) if brand in Card.Brand.values else brand


def _date(day: date) -> str:
    """``date_display`` in the active language."""
    return _date_in(translation.get_language(), day)


def _eur(cents: int) -> str:
    """``display_eur`` in the active language."""
    return _eur_in(translation.get_language(), cents)


def _brand(card: Card) -> str:
    return _brand_in(translation.get_language(), card.brand)


def _card(payment: Payment) -> str:
    card = payment.card
    return f"{_brand(card)} •••• {card.last4}" if card else ""


def _label(instalment: Instalment, count: int) -> str:
    return gettext("%(number)d of %(count)d") % {"number": instalment.number, "count": count}


def _common(context: BatchContext, payment: Payment) -> dict[str, Any]:
    """What every schedule email shows; call with the email's language active."""
    return {
        "customer_name": context.name(payment),
        "merchant_name": payment.seller_name,
        "payment_id": payment.public_id,
        "order_references": context.references.get(payment.pk, []),
        "card": _card(payment),
        "plan_link": links.plan_url(payment.public_id),
        "livemode": payment.livemode,
    }


def _remaining(
    rows: list[Instalment], after: Instalment | list[Instalment] | None = None
) -> list[dict[str, Any]]:
    """The instalments still to pay, leaving out ``after`` (the ones just paid)."""
    count = len(rows)
    if after is None:
        done = set()
    elif isinstance(after, Instalment):
        done = {after.pk}
    else:
        done = {row.pk for row in after}
    return [
        {
            "label": _label(row, count),
            "date": _date(row.due_date),
            "amount": _eur(to_cents(row.total_amount)),
        }
        for row in rows
        if row.state != Instalment.State.PAID and row.pk not in done
    ]


def _spec(
    payment: Payment,
    context: BatchContext,
    *,
    key: str,
    subject: Any,
    template: str,
    values: dict[str, Any],
    language: str,
    attachments: tuple[Attachment, ...] = (),
) -> EmailSpec:
    return EmailSpec(
        key=key,
        to=context.email(payment),
        subject=subject,
        template=f"{TEMPLATES}/{template}",
        context=values,
        language=language,
        attachments=attachments,
    )


def debit_succeeded(
    context: BatchContext,
    *,
    charge: Charge,
    instalments: list[Instalment],
    receipt,
    card: Card | None = None,
) -> EmailSpec:
    """ "We debited instalment k of n" (or "you paid instalments 2 to 4 early"): with the
    receipt (attached) and what is left. ``card`` is the card charged (the plan's by
    default)."""
    from apps.schedules.receipts import instalments_label, receipt_file_name

    payment = context.payments[charge.payment_id]
    rows = context.instalments[payment.pk]
    first = instalments[0]
    portal = charge.kind == Charge.Kind.EARLY_PAYMENT
    early = portal and bool(receipt.data.get("early"))
    language = email_language(payment.locale)
    with translation.override(language):
        values = _common(context, payment) | {
            "number": instalments_label([row.number for row in instalments], len(rows)),
            "several": len(instalments) > 1,
            "early": early,
            "portal": portal,
            "amount": _eur(to_cents(charge.amount)),
            "date": _date(first.due_date),
            "receipt_number": receipt.number,
            "remaining": _remaining(rows, after=instalments),
        }
        if card is not None:
            values["card"] = f"{_brand(card)} •••• {card.last4}"
        subject = _subject_paid(values, merchant=payment.seller_name)
    attachment = Attachment(
        storage="receipts",
        name=receipt_file_name(receipt),
        filename=f"{receipt.number}.pdf",
    )
    if portal:
        key = f"{charge.idempotency_key}:paid"
    else:
        key = f"instalment:{first.public_id}:paid:{charge.idempotency_key.rsplit(':', 1)[-1]}"
    return _spec(
        payment,
        context,
        key=key,
        subject=subject,
        template="debit_succeeded",
        values=values,
        language=language,
        attachments=(attachment,),
    )


def _subject_paid(values: dict[str, Any], *, merchant: str) -> str:
    names = {"number": values["number"], "merchant": merchant}
    if values["early"] and values["several"]:
        return gettext("Instalments %(number)s paid early: %(merchant)s") % names
    if values["early"]:
        return gettext("Instalment %(number)s paid early: %(merchant)s") % names
    if values["several"]:
        return gettext("Instalments %(number)s paid: %(merchant)s") % names
    return gettext("Instalment %(number)s paid: %(merchant)s") % names


def debit_failed(context: BatchContext, *, charge: Charge, instalment: Instalment) -> EmailSpec:
    """ "Your instalment could not be debited": when it is tried again, how to pay now."""
    payment = context.payments[charge.payment_id]
    rows = context.instalments[payment.pk]
    language = email_language(payment.locale)
    retry = instalment.next_debit_at
    with translation.override(language):
        values = _common(context, payment) | {
            "number": _label(instalment, len(rows)),
            "amount": _eur(to_cents(charge.amount)),
            "date": _date(instalment.due_date),
            "retry_date": _date(retry.astimezone(BUSINESS_TZ).date()) if retry else "",
            "late_fee": (
                _eur(settings.LATE_PAYMENT_FEE_CENTS) if settings.LATE_PAYMENT_FEE_CENTS else ""
            ),
        }
        subject = _("Action needed: your instalment to %(merchant)s could not be debited") % {
            "merchant": payment.seller_name
        }
    return _spec(
        payment,
        context,
        key=f"instalment:{instalment.public_id}:failed:{charge.attempt}",
        subject=subject,
        template="debit_failed",
        values=values,
        language=language,
    )


def paid_off(context: BatchContext, *, payment: Payment) -> EmailSpec:
    rows = context.instalments[payment.pk]
    language = email_language(payment.locale)
    total = sum(to_cents(row.total_amount) for row in rows)
    with translation.override(language):
        values = _common(context, payment) | {"total": _eur(total)}
        subject = _("Your purchase from %(merchant)s is paid off") % {
            "merchant": payment.seller_name
        }
    return _spec(
        payment,
        context,
        key=f"payment:{payment.public_id}:paid_off",
        subject=subject,
        template="paid_off",
        values=values,
        language=language,
    )


def reminder(context: BatchContext, *, payment: Payment, instalment: Instalment) -> EmailSpec:
    rows = context.instalments[payment.pk]
    language = email_language(payment.locale)
    with translation.override(language):
        values = _common(context, payment) | {
            "number": _label(instalment, len(rows)),
            "amount": _eur(to_cents(instalment.total_amount)),
            "date": _date(instalment.due_date),
            "change_card_link": links.plan_url(payment.public_id, section="card"),
        }
        subject = _("Reminder: %(amount)s will be debited on %(date)s") % {
            "amount": values["amount"],
            "date": values["date"],
        }
    return _spec(
        payment,
        context,
        key=f"instalment:{instalment.public_id}:reminder:{instalment.due_date.isoformat()}",
        subject=subject,
        template="reminder",
        values=values,
        language=language,
    )


def card_changed(
    context: BatchContext,
    *,
    payment: Payment,
    plans: list[Payment],
    old_card: Card | None,
    new_card: Card,
    key: str,
) -> EmailSpec:
    """ "Your card was changed": the new card, the old one, and the plans that now use it."""
    language = email_language(payment.locale)
    with translation.override(language):
        values = _common(context, payment) | {
            "new_card": f"{_brand(new_card)} •••• {new_card.last4}",
            "old_card": f"{_brand(old_card)} •••• {old_card.last4}" if old_card else "",
            "plans": [
                {"merchant": plan.seller_name, "payment_id": plan.public_id} for plan in plans
            ],
        }
        subject = gettext("Your card was changed")
    return _spec(
        payment,
        context,
        key=key,
        subject=subject,
        template="card_changed",
        values=values,
        language=language,
    )


def _owed(rows: list[Instalment], today: date) -> int:
    return sum(
        to_cents(row.total_amount)
        for row in rows
        if row.state == Instalment.State.INCIDENT
        or (row.state == Instalment.State.PENDING and row.due_date <= today)
    )


def late_contact(
    context: BatchContext, *, payment: Payment, today: date, days: int
) -> tuple[EmailSpec, str]:
    """The email and the SMS text of the contact stage (8 to 15 days late)."""
    rows = context.instalments[payment.pk]
    language = email_language(payment.locale)
    with translation.override(language):
        values = _common(context, payment) | {
            "owed": _eur(_owed(rows, today)),
            "days": days,
        }
        subject = _("Your payment to %(merchant)s is late") % {"merchant": payment.seller_name}
        sms = gettext(
            "Tranche: %(owed)s for your purchase from %(merchant)s is overdue. Pay or change "
            "your card: %(link)s"
        ) % {
            "owed": values["owed"],
            "merchant": payment.seller_name,
            "link": values["plan_link"],
        }
    spec = _spec(
        payment,
        context,
        key=f"payment:{payment.public_id}:late_contact",
        subject=subject,
        template="late_contact",
        values=values,
        language=language,
    )
    return spec, sms


def defaulted(context: BatchContext, *, payment: Payment, today: date) -> EmailSpec:
    rows = context.instalments[payment.pk]
    language = email_language(payment.locale)
    owed = sum(to_cents(row.total_amount) for row in rows if row.state != Instalment.State.PAID)
    with translation.override(language):
        values = _common(context, payment) | {"owed": _eur(owed)}
        subject = _("Your payment to %(merchant)s is in default") % {
            "merchant": payment.seller_name
        }
    return _spec(
        payment,
        context,
        key=f"payment:{payment.public_id}:default",
        subject=subject,
        template="defaulted",
        values=values,
        language=language,
    )


def receipt_data(
    context: BatchContext,
    *,
    charge: Charge,
    instalments: list[Instalment],
    number: str,
    card: Card | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """What the receipt says (raw values: the renderer formats them in its language).

    ``instalments`` are those the charge paid (one for a debit; one or more for a payment
    made in the portal, ``early`` when all were due after ``today``); ``card`` the card
    charged (the plan's by default)."""
    payment = context.payments[charge.payment_id]
    rows = context.instalments[payment.pk]
    card = card if card is not None else payment.card
    paid = {row.pk for row in instalments}
    early = (
        charge.kind == Charge.Kind.EARLY_PAYMENT
        and today is not None
        and all(row.due_date > today for row in instalments)
    )
    return {
        "language": email_language(payment.locale),
        "livemode": payment.livemode,
        "number": number,
        "merchant_name": payment.seller_name,
        "order_references": context.references.get(payment.pk, []),
        "payment_id": payment.public_id,
        "customer_name": context.name(payment),
        "instalment_number": instalments[0].number,
        "instalment_numbers": [row.number for row in instalments],
        "early": early,
        "instalments_count": len(rows),
        "amount_cents": to_cents(charge.amount),
        "principal_cents": sum(to_cents(row.purchase_amount) for row in instalments),
        "fee_cents": sum(to_cents(row.customer_fee) for row in instalments),
        "interest_cents": sum(to_cents(row.customer_interest) for row in instalments),
        "paid_at": (charge.finished_at or charge.created_at).isoformat(),
        "card": {"brand": _brand(card), "last4": card.last4} if card else None,
        "remaining": [
            {
                "number": row.number,
                "due_date": row.due_date.isoformat(),
                "amount_cents": to_cents(row.total_amount),
            }
            for row in rows
            if row.state != Instalment.State.PAID and row.pk not in paid
        ],
    }
