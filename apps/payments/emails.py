"""The emails a payment sends, queued in the transaction that accepts it (the email outbox).

The customer gets the confirmation with the schedule, in the payment's language; the
merchant gets "new payment accepted" at its contact address, in French (Tranche's merchant
language: merchants have no language setting yet). Both are pure renders of templates in
``templates/emails/`` with contexts built here; amounts and dates are formatted here, in
the email's language, so the text and HTML versions agree.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import formats, translation
from django.utils.translation import gettext, ngettext

from apps.common.emails import email_queue
from apps.common.models import OutgoingEmail
from apps.common.money import display_eur, to_cents
from apps.payments import links
from apps.payments.models import Checkout, Payment
from apps.payments.services.transitions import payment_event_record

LANGUAGES = ("fr", "en")


def email_language(locale: str) -> str:
    """The email language for a payment's ``locale`` (``fr``, ``fr_FR``, ``en-GB``...):
    English or French, French by default."""
    language = (locale or "").replace("_", "-").split("-", 1)[0].lower()
    return language if language in LANGUAGES else "fr"


def date_display(day: date) -> str:
    """A date spelled out in the active language: '5 octobre 2026', 'October 5, 2026'."""
    return formats.date_format(day, "DATE_FORMAT")


def plan_display(payment: Payment) -> str:
    if payment.deferred_months:
        return ngettext(
            "Pay in %(count)d month", "Pay in %(count)d months", payment.deferred_months
        ) % {"count": payment.deferred_months}
    if payment.deferred_days:
        return ngettext("Pay in %(count)d day", "Pay in %(count)d days", payment.deferred_days) % {
            "count": payment.deferred_days
        }
    if payment.installments_count == 1:
        return gettext("Pay now")
    return gettext("Pay in %(count)d instalments") % {"count": payment.installments_count}


def _checkout(payment: Payment) -> Checkout | None:
    return Checkout.objects.filter(payment=payment).first()


def customer_email(payment: Payment, checkout: Checkout | None) -> str:
    """Where the customer's emails go: the checkout's email, else the merchant's, else the
    customer's."""
    return (
        (checkout.email if checkout else "")
        or str((payment.customer_data or {}).get("email") or "")
        or payment.customer.email
    )


def customer_name(payment: Payment, checkout: Checkout | None) -> str:
    data = payment.customer_data or {}
    for first, last in (
        (checkout.first_name, checkout.last_name) if checkout else ("", ""),
        (data.get("first_name") or "", data.get("last_name") or ""),
        (payment.customer.first_name, payment.customer.last_name),
    ):
        name = " ".join(part for part in (str(first).strip(), str(last).strip()) if part)
        if name:
            return name
    return ""


def _plan_context(payment: Payment, checkout: Checkout | None) -> dict[str, Any]:
    """What both emails show, formatted in the active language."""
    instalments = list(payment.instalments.order_by("number"))
    count = len(instalments)
    rows = []
    for instalment in instalments:
        rows.append(
            {
                "label": gettext("%(number)d of %(count)d")
                % {"number": instalment.number, "count": count},
                "date": date_display(instalment.due_date),
                "amount": display_eur(to_cents(instalment.total_amount)),
                "paid": instalment.state == instalment.State.PAID,
            }
        )
    total_cents = sum(to_cents(instalment.total_amount) for instalment in instalments)
    card = payment.card or (checkout.card if checkout else None)
    fee_cents = to_cents(payment.customer_fee) + to_cents(payment.customer_interest)
    return {
        "payment_id": payment.public_id,
        "merchant_name": payment.seller_name,
        "plan": plan_display(payment),
        "instalments": rows,
        "purchase_amount": display_eur(to_cents(payment.purchase_amount)),
        "fees": display_eur(fee_cents) if fee_cents else "",
        "total": display_eur(total_cents),
        "card": f"{card.get_brand_display()} •••• {card.last4}" if card else "",
        "livemode": payment.livemode,
    }


def payment_confirmation_emails_queue(*, payment: Payment, now: datetime) -> list[OutgoingEmail]:
    """Queue the customer's confirmation and the merchant's notice of an accepted payment;
    call it in the transaction that accepts the payment (they are sent after commit).
    Calling it again queues nothing new. A payment without any customer email sends the
    merchant's notice only, and its history says why."""
    checkout = _checkout(payment)
    queued = []
    to = customer_email(payment, checkout)
    if to:
        queued.append(_customer_confirmation_queue(payment, checkout, to, now=now))
    elif not payment.events.filter(kind="confirmation_email_skipped").exists():
        payment_event_record(
            payment,
            kind="confirmation_email_skipped",
            now=now,
            detail={"reason": "no customer email"},
        )
    queued.append(_merchant_notice_queue(payment, checkout, now=now))
    return queued


def _customer_confirmation_queue(
    payment: Payment, checkout: Checkout | None, to: str, *, now: datetime
) -> OutgoingEmail:
    language = email_language(payment.locale)
    with translation.override(language):
        context = _plan_context(payment, checkout)
        context |= {
            "customer_name": customer_name(payment, checkout),
            "link": links.checkout_url(payment.public_id),
        }
        subject = gettext("Your payment to %(merchant)s is confirmed") % {
            "merchant": payment.seller_name
        }
    return email_queue(
        key=f"payment:{payment.public_id}:confirmation:customer",
        to=to,
        subject=subject,
        template="emails/payment_confirmed_customer",
        context=context,
        language=language,
        now=now,
    )


def _merchant_notice_queue(
    payment: Payment, checkout: Checkout | None, *, now: datetime
) -> OutgoingEmail:
    language = settings.LANGUAGE_CODE
    references = [
        order.merchant_reference
        for order in payment.orders.filter(detached_at__isnull=True).order_by("created_at", "pk")
        if order.merchant_reference
    ]
    with translation.override(language):
        context = _plan_context(payment, checkout)
        context |= {
            "customer_name": customer_name(payment, checkout),
            "order_references": references,
            "dashboard_link": links.absolute(reverse("dashboard:home")),
        }
        subject = gettext("New payment %(id)s accepted") % {"id": payment.public_id}
    return email_queue(
        key=f"payment:{payment.public_id}:accepted:merchant",
        to=payment.merchant.notifications_to,
        subject=subject,
        template="emails/payment_accepted_merchant",
        context=context,
        language=language,
        now=now,
    )


def payment_link_email_queue(*, payment: Payment, now: datetime) -> OutgoingEmail:
    """Email the customer the link to pay (a remote sale from the dashboard). Call it in a
    transaction; each call sends one more message (keyed by its number), as SMS links do."""
    to = customer_email(payment, None)
    sent = payment.events.filter(kind="payment_link_email").count()
    language = email_language(payment.locale)
    with translation.override(language):
        context = _plan_context(payment, None) | {
            "customer_name": customer_name(payment, None),
            "link": links.checkout_url(payment.public_id),
        }
        subject = gettext("%(merchant)s: your payment link") % {
            "merchant": payment.merchant.legal_name
        }
    email = email_queue(
        key=f"payment:{payment.public_id}:link-email:{sent + 1}",
        to=to,
        subject=subject,
        template="emails/payment_link_customer",
        context=context,
        language=language,
        now=now,
    )
    payment_event_record(payment, kind="payment_link_email", now=now, detail={"number": sent + 1})
    return email
