"""The customer's plans, one plan's page (its instalments, receipts and history), and every
receipt and credit note. Plans are read only through the portal's selectors: another
customer's plan or receipt is a 404."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from apps.common.dates import business_date
from apps.common.money import display_eur, to_cents
from apps.payments.emails import date_display, plan_display
from apps.payments.models import Card, Instalment, Payment, PaymentEvent, PaymentState
from apps.schedules.models import Receipt
from apps.schedules.portal.selectors import OPEN_STATES, customer_plan, customer_plans
from apps.schedules.portal.session import customer_required
from apps.schedules.views import receipt_response

S = PaymentState
UNPAID = (Instalment.State.PENDING, Instalment.State.INCIDENT)


# --- what the pages show --------------------------------------------------------------


def plan_badge(payment: Payment) -> tuple[str, str]:
    """The plan's state in plain words, and its badge's colour (ok, bad, muted)."""
    if payment.state == S.PAID:
        if payment.is_completely_refunded:
            return _("Refunded"), "muted"
        return _("Paid off"), "ok"
    if payment.state == S.IN_PROGRESS:
        return _("On schedule"), "ok"
    if payment.state in (S.LATE_DUNNING, S.LATE_CONTACT_CUSTOMER):
        return _("Late"), "bad"
    if payment.state == S.DEFAULT:
        return _("In default"), "bad"
    if payment.state == S.COLLECTION_DONE:
        return _("Closed"), "muted"
    if payment.state == S.STOPPED:
        return _("Stopped"), "muted"
    return payment.get_state_display(), "muted"


def instalment_state(instalment: Instalment) -> tuple[str, str, str]:
    """An instalment's state in plain words, its badge's colour, and a note (the day it
    was paid)."""
    state = instalment.state
    if state == Instalment.State.PAID:
        if instalment.cancelled_by_refund:
            return _("Cancelled (refund)"), "muted", ""
        paid_on = date_display(business_date(instalment.paid_at)) if instalment.paid_at else ""
        return _("Paid"), "ok", paid_on
    if state == Instalment.State.INCIDENT:
        return _("Payment failed"), "bad", ""
    if state == Instalment.State.CLAIMED:
        return _("Passed to collection"), "bad", ""
    if state == Instalment.State.COVERED:
        return _("Settled"), "muted", ""
    return _("Scheduled"), "muted", ""


def card_display(card: Card | None) -> str:
    return f"{card.get_brand_display()} •••• {card.last4}" if card else ""


def plan_merchant(payment: Payment) -> str:
    """Who the plan is with, as the customer knows it: a Tranche-card purchase names the
    shop where the card was used (the programme's own account means nothing to them)."""
    if payment.origin == Payment.Origin.CARD:
        return _("Tranche card · %(shop)s") % {"shop": payment.seller_name}
    return payment.seller_name


def _cents(money) -> int:
    return to_cents(money)


def plan_summary(payment: Payment, instalments: list[Instalment]) -> dict[str, Any]:
    """What the list of plans shows of one plan."""
    total = sum(_cents(row.total_amount) for row in instalments)
    paid = sum(
        _cents(row.total_amount) for row in instalments if row.state == Instalment.State.PAID
    )
    upcoming = [row for row in instalments if row.state in UNPAID]
    following = min(upcoming, key=lambda row: (row.due_date, row.number), default=None)
    label, tone = plan_badge(payment)
    return {
        "payment": payment,
        "merchant": plan_merchant(payment),
        "plan": plan_display(payment),
        "purchase": display_eur(_cents(payment.purchase_amount)),
        "paid": display_eur(paid),
        "total": display_eur(total),
        "percent": round(100 * paid / total) if total else 100,
        "next_date": date_display(following.due_date) if following else "",
        "next_amount": display_eur(_cents(following.total_amount)) if following else "",
        "state": label,
        "tone": tone,
    }


def receipt_row(receipt: Receipt, payment: Payment) -> dict[str, Any]:
    data = receipt.data or {}
    credit_note = receipt.kind == Receipt.Kind.CREDIT_NOTE
    if credit_note:
        about = _("Refund from %(merchant)s") % {"merchant": plan_merchant(payment)}
    elif data.get("instalment_number") and data.get("instalments_count"):
        about = _("Instalment %(number)d of %(count)d") % {
            "number": data["instalment_number"],
            "count": data["instalments_count"],
        }
    else:
        about = _("Payment")
    return {
        "number": receipt.number,
        "kind": _("Credit note") if credit_note else _("Receipt"),
        "credit_note": credit_note,
        "about": about,
        "merchant": plan_merchant(payment),
        "payment_id": payment.public_id,
        "date": date_display(business_date(receipt.created_at)),
        "amount": display_eur(int(data.get("amount_cents") or 0)),
        "ready": receipt.rendered_at is not None,
    }


def _amount(detail: dict) -> str:
    cents = detail.get("amount")
    return display_eur(cents) if isinstance(cents, int) else ""


def _day(value: Any) -> str:
    try:
        return date_display(date.fromisoformat(value))
    except (TypeError, ValueError):
        return ""


def event_label(event: PaymentEvent) -> str | None:
    """A line of the plan's history in the customer's words; None for what only matters
    inside Tranche (charges started, emails, notifications...)."""
    detail = event.detail or {}
    number = detail.get("number")
    amount = _amount(detail)
    kind = event.kind
    if kind == "accepted":
        if detail.get("charge"):
            return _("Purchase accepted, first payment made")
        return _("Purchase accepted")
    if kind == "instalment_paid":
        values = {"number": number, "amount": amount}
        if detail.get("early"):
            return _("Instalment %(number)s paid early: %(amount)s") % values
        return _("Instalment %(number)s paid: %(amount)s") % values
    if kind == "instalment_debit_failed":
        return _("Instalment %(number)s could not be debited") % {"number": number}
    if kind == "instalment_postponed":
        moved, to = _day(detail.get("from")), _day(detail.get("to"))
        if moved and to:
            return _("Instalment %(number)s moved from %(from)s to %(to)s") % {
                "number": number,
                "from": moved,
                "to": to,
            }
        return _("Instalment %(number)s postponed") % {"number": number}
    if kind == "longer_delay_requested":
        return _("Longer delay asked for instalment %(number)s") % {"number": number}
    if kind == "card_replaced":
        return _("Card changed")
    if kind == "early_payment_failed":
        return _("An early payment did not go through")
    if kind == "refund_issued":
        return _("Refund from the merchant: %(amount)s") % {"amount": amount}
    if kind in ("paid_off", "nothing_left_to_pay"):
        return _("Nothing left to pay")
    if kind == "late":
        return _("Payment late")
    if kind == "back_on_schedule":
        return _("Back on schedule")
    if kind == "default":
        return _("Payment in default")
    return None


# --- pages ----------------------------------------------------------------------------


@customer_required
def plans(request: HttpRequest) -> HttpResponse:
    payments = customer_plans(request.customer).prefetch_related(
        Prefetch("instalments", queryset=Instalment.objects.order_by("number"))
    )
    rows = [plan_summary(payment, list(payment.instalments.all())) for payment in payments]
    return render(request, "portal/plans.html", {"plans": rows})


@customer_required
def plan(request: HttpRequest, payment_id: str) -> HttpResponse:
    payment = customer_plan(request.customer, payment_id)
    instalments = list(payment.instalments.order_by("number"))
    receipts = list(
        Receipt.objects.filter(payment=payment)
        .select_related("charge")
        .order_by("created_at", "pk")
    )
    # Each instalment's own receipts: by the instalment, or by the early payment that paid it.
    by_instalment: dict[int, list[Receipt]] = defaultdict(list)
    for receipt in receipts:
        if receipt.kind != Receipt.Kind.INSTALMENT or receipt.rendered_at is None:
            continue
        if receipt.instalment_id is not None:
            by_instalment[receipt.instalment_id].append(receipt)
        elif receipt.charge is not None:
            for instalment_id in receipt.charge.instalment_ids:
                by_instalment[instalment_id].append(receipt)
    is_open = payment.state in OPEN_STATES
    count = len(instalments)
    rows = []
    for row in instalments:
        state, tone, paid_on = instalment_state(row)
        rows.append(
            {
                "number": row.number,
                "label": _("%(number)d of %(count)d") % {"number": row.number, "count": count},
                "date": date_display(row.due_date),
                "moved_from": date_display(row.postponed_from) if row.postponed_from else "",
                "amount": display_eur(_cents(row.total_amount)),
                "state": state,
                "tone": tone,
                "paid_on": paid_on,
                "late": row.state == Instalment.State.INCIDENT,
                "receipts": [receipt.number for receipt in by_instalment.get(row.pk, [])],
                "actionable": is_open and row.state in UNPAID,
            }
        )
    owed = sum(_cents(row.total_amount) for row in instalments if row.state in UNPAID)
    history = []
    for event in PaymentEvent.objects.filter(payment=payment).order_by("created_at", "id"):
        label = event_label(event)
        if label:
            history.append(
                {
                    "date": date_display(business_date(event.created_at)),
                    "iso": event.created_at.isoformat(),
                    "label": label,
                }
            )
    summary = plan_summary(payment, instalments)
    return render(
        request,
        "portal/plan.html",
        {
            "payment": payment,
            "summary": summary,
            # A card purchase's "order" is the card network's reference: nothing to the customer.
            "orders": []
            if payment.origin == Payment.Origin.CARD
            else [
                order.merchant_reference
                for order in payment.orders.filter(detached_at__isnull=True).order_by("pk")
                if order.merchant_reference
            ],
            "card": card_display(payment.card),
            "rows": rows,
            "owed": display_eur(owed) if owed else "",
            "can_act": is_open and owed > 0,
            "receipts": [receipt_row(receipt, payment) for receipt in receipts],
            "history": history,
        },
    )


@customer_required
def receipt(request: HttpRequest, payment_id: str, number: str) -> HttpResponse:
    payment = customer_plan(request.customer, payment_id)
    return receipt_response(payment, number)


@customer_required
def receipts(request: HttpRequest) -> HttpResponse:
    payments = customer_plans(request.customer)
    rows = [
        receipt_row(found, found.payment)
        for found in Receipt.objects.filter(payment__in=payments)
        .select_related("payment__merchant")
        .order_by("-created_at", "-pk")
    ]
    return render(request, "portal/receipts.html", {"receipts": rows})
