"""What the customer receives about a refund: an email with the new schedule (or the amount
back to the card) and a PDF credit note.

Both are recorded in the refund's transaction (``refund_documents_queue``, called by
``services.refund_open``), with the receipts' machinery of apps.schedules: the credit note is
a ``Receipt`` of kind credit note (numbered ``C2026-0000042`` from the receipts' sequence,
``data`` holding raw values), rendered after commit by ``render_receipts`` keyed by its
number; the email waits in the outbox (keyed ``refund:<id>:customer``) until the PDF exists,
and the render task sends it, once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.common.dates import business_date
from apps.common.emails import Attachment, EmailSpec, emails_queue_many
from apps.common.money import display_eur, to_cents
from apps.payments import links
from apps.payments.emails import date_display, email_language
from apps.payments.models import Card, Instalment, Payment
from apps.refunds.models import CardRefund, Refund
from apps.schedules.emails import BatchContext
from apps.schedules.models import Receipt
from apps.schedules.receipts import STORAGE_ALIAS, receipt_file_name
from apps.schedules.services.recording import receipt_numbers_next

TEMPLATE = "emails/refunds/refund_customer"
CREDIT_NOTE_PREFIX = "C"
RENDER_TASK = "apps.schedules.tasks.render_receipts"


def refund_documents_queue(
    *, refund: Refund, payment: Payment, instalments: list[Instalment], now: datetime
) -> Receipt:
    """Record the credit note and the customer's email in the refund's transaction.

    ``instalments`` are the payment's rows as they read after the refund, by number. The
    credit note is always made; the email only when the customer has an address. The PDF
    is rendered after commit (a task keyed by the credit note's number), which then sends
    the email with it attached. Returns the credit note."""
    context = BatchContext.load([payment], instalments)
    cards = _cards(refund, payment)
    (number,) = receipt_numbers_next(
        1, livemode=payment.livemode, year=business_date(now).year, prefix=CREDIT_NOTE_PREFIX
    )
    language = email_language(payment.locale)
    with translation.override(language):
        brands = [{"brand": _brand(card), "last4": card.last4} for card in cards]
    receipt = Receipt(
        number=number,
        kind=Receipt.Kind.CREDIT_NOTE,
        livemode=payment.livemode,
        payment=payment,
        data=_credit_note_data(
            refund=refund,
            payment=payment,
            context=context,
            number=number,
            language=language,
            cards=brands,
            now=now,
        ),
        created_at=now,
    )
    to = context.email(payment)
    if to:
        spec = _customer_email(
            refund=refund,
            payment=payment,
            context=context,
            receipt=receipt,
            to=to,
            language=language,
            cards=brands,
        )
        receipt.email_key = spec.key
    receipt.save(force_insert=True)
    refund.credit_note_number = number
    refund.save(update_fields=["credit_note_number"])
    if to:
        # Sent by the render task once the PDF exists.
        emails_queue_many([spec], now=now, send=False)
    transaction.on_commit(lambda: _enqueue_render(number), robust=True)
    return receipt


def _enqueue_render(number: str) -> None:
    from django_q.tasks import async_task

    async_task(RENDER_TASK, [number])


def _cards(refund: Refund, payment: Payment) -> list[Card]:
    """The cards the money goes back to (the charges' cards of the refund's card refunds,
    newest charge first), else the payment's card."""
    cards: dict[int, Card] = {}
    for part in (
        CardRefund.objects.filter(refund=refund).select_related("charge__card").order_by("number")
    ):
        cards.setdefault(part.charge.card_id, part.charge.card)
    if not cards and payment.card_id:
        return [payment.card]
    return list(cards.values())


def _brand(card: Card) -> str:
    return str(Card.Brand(card.brand).label) if card.brand in Card.Brand.values else card.brand


def _refunded_before(refund: Refund, payment: Payment) -> int:
    """Cents refunded on the payment before ``refund`` (``payment`` already counts it)."""
    return to_cents(payment.amount_refunded - refund.amount)


def _remaining(instalments: list[Instalment]) -> list[Instalment]:
    """What is left to pay after the refund (reduced instalments at their new amount)."""
    return [row for row in instalments if row.state != Instalment.State.PAID]


def _credit_note_data(
    *,
    refund: Refund,
    payment: Payment,
    context: BatchContext,
    number: str,
    language: str,
    cards: list[dict[str, str]],
    now: datetime,
) -> dict[str, Any]:
    """What the credit note says (raw values: the renderer formats them in its language)."""
    rows = context.instalments[payment.pk]
    return {
        "kind": Receipt.Kind.CREDIT_NOTE.value,
        "language": language,
        "livemode": payment.livemode,
        "number": number,
        "merchant_name": payment.seller_name,
        "order_references": context.references.get(payment.pk, []),
        "payment_id": payment.public_id,
        "customer_name": context.name(payment),
        "refund_id": refund.public_id,
        "merchant_reference": refund.merchant_reference,
        "refunded_at": now.isoformat(),
        "full": refund.full,
        # A complete refund after others gives back "the rest", not "the whole purchase".
        "refunded_before_cents": _refunded_before(refund, payment),
        "amount_cents": to_cents(refund.amount),
        "cancelled_cents": to_cents(refund.owed_cancelled + refund.written_off_cancelled),
        "to_card_cents": to_cents(refund.to_card),
        "fees_back_cents": to_cents(refund.customer_fee_refunded + refund.interest_refunded),
        "cards": cards,
        "instalments_count": len(rows),
        "remaining": [
            {
                "number": row.number,
                "due_date": row.due_date.isoformat(),
                "amount_cents": to_cents(row.total_amount),
            }
            for row in _remaining(rows)
        ],
    }


def _customer_email(
    *,
    refund: Refund,
    payment: Payment,
    context: BatchContext,
    receipt: Receipt,
    to: str,
    language: str,
    cards: list[dict[str, str]],
) -> EmailSpec:
    """ "Refund from <merchant>": what changed, what comes back, what is left to pay."""
    rows = context.instalments[payment.pk]
    count = len(rows)
    cancelled = to_cents(refund.owed_cancelled + refund.written_off_cancelled)
    back_to_card = to_cents(refund.back_to_card)
    fees_back = to_cents(refund.customer_fee_refunded + refund.interest_refunded)
    with translation.override(language):
        values = {
            "customer_name": context.name(payment),
            "merchant_name": payment.seller_name,
            "payment_id": payment.public_id,
            "order_references": context.references.get(payment.pk, []),
            "plan_link": links.plan_url(payment.public_id),
            "livemode": payment.livemode,
            "refund_id": refund.public_id,
            "full": refund.full,
            "refunded_before": bool(_refunded_before(refund, payment)),
            "amount": display_eur(to_cents(refund.amount)),
            "cancelled": display_eur(cancelled) if cancelled else "",
            "back_to_card": display_eur(back_to_card) if back_to_card else "",
            "fees_back": display_eur(fees_back) if fees_back else "",
            "card": " / ".join(f"{card['brand']} •••• {card['last4']}" for card in cards),
            "credit_note_number": receipt.number,
            "remaining": [
                {
                    "label": gettext("%(number)d of %(count)d")
                    % {"number": row.number, "count": count},
                    "date": date_display(row.due_date),
                    "amount": display_eur(to_cents(row.total_amount)),
                }
                for row in _remaining(rows)
            ],
        }
        subject = _("Refund from %(merchant)s: %(amount)s") % {
            "merchant": payment.seller_name,
            "amount": values["amount"],
        }
    return EmailSpec(
        key=f"refund:{refund.public_id}:customer",
        to=to,
        subject=subject,
        template=TEMPLATE,
        context=values,
        language=language,
        attachments=(
            Attachment(
                storage=STORAGE_ALIAS,
                name=receipt_file_name(receipt),
                filename=f"{receipt.number}.pdf",
            ),
        ),
    )
