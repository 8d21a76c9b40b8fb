"""A copy of everything Tranche holds about a customer (GDPR art. 15 and 20): a JSON
document with stable keys, and a readable PDF of the same.

What is in it: the profile, the cards (never their tokens), every payment with its plan,
instalments, orders and what the merchant sent about the customer, the details given at
checkout, the credit decisions and their reviews, the checks run on the phone, identity and
bank account (status and dates, never the documents), receipts and credit notes, support
requests, the emails and SMS sent (what and when, not the text) and the sign-ins to the
portal. Amounts are integer cents, dates ISO 8601 (datetimes in UTC); labels are in the
active language, next to the stable codes.

A fixed number of queries whatever the customer holds (prefetches, one query per kind).
"""

from __future__ import annotations

import functools
from datetime import date, datetime
from pathlib import Path
from typing import Any

from django.db.models import Prefetch
from django.template.loader import render_to_string
from django.utils import formats, timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.common.models import OutgoingEmail
from apps.common.money import display_eur, to_cents
from apps.payments.decision import reason_text
from apps.payments.models import (
    Card,
    CreditDecision,
    Customer,
    DecisionReview,
    Instalment,
    Order,
    Payment,
)
from apps.schedules.models import Receipt, SignInCode
from apps.verification.models import BankCheck, IdentityCheck, PhoneCheck, SmsMessage

PDF_TEMPLATE = "portal/data_export_pdf.html"
SCHEDULES_DIR = Path(__file__).resolve().parent.parent  # the receipt fonts live there
CHECKOUT_PURPOSE = "checkout"  # what the checkout names its verification checks for


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _profile(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.public_id,
        "livemode": customer.livemode,
        "email": customer.email,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "phone": customer.phone,
        "phone_verified_at": _iso(customer.phone_verified_at),
        "birth_date": _iso(customer.birth_date),
        "address": customer.address or {},
        "created_at": _iso(customer.created_at),
        "updated_at": _iso(customer.updated_at),
        "erased_at": _iso(customer.erased_at),
    }


def _tranche_card(customer: Customer) -> dict[str, Any]:
    """The customer's Tranche cards, the decisions on their requests and the purchases made
    with them (apps.issuing, read through the reverse relations): never a card number, which
    only the issuer holds."""
    cards = list(
        customer.virtual_cards.prefetch_related("authorisations__payment").order_by(
            "created_at", "pk"
        )
    )
    decisions = customer.card_decisions.order_by("created_at", "pk")
    purchases = sorted(
        (row for card in cards for row in card.authorisations.all()),
        key=lambda row: (row.created_at, row.pk),
    )
    return {
        "tranche_cards": [
            {
                "id": card.public_id,
                "last4": card.last4,
                "expiry": f"{card.exp_month:02d}/{card.exp_year}",
                "state": card.state,
                "limit": to_cents(card.limit),
                "created_at": _iso(card.created_at),
                "closed_at": _iso(card.closed_at),
            }
            for card in cards
        ],
        "tranche_card_decisions": [
            {
                "id": row.public_id,
                "outcome": row.outcome,
                "reasons": row.reasons,
                "limit": to_cents(row.limit),
                "created_at": _iso(row.created_at),
            }
            for row in decisions
        ],
        "tranche_card_purchases": [
            {
                "card": row.card.public_id,  # the prefetch's card: no query
                "shop": row.merchant_name,
                "amount": to_cents(row.amount),
                "state": row.state,
                "decline_code": row.decline_code,
                "plan": row.payment.public_id if row.payment_id else None,
                "at": _iso(row.requested_at or row.created_at),
            }
            for row in purchases
        ],
    }


def _card(card: Card) -> dict[str, Any]:
    # Never the processor token: it is Tranche's handle at the processor, not the customer's.
    return {
        "id": card.public_id,
        "brand": card.brand,
        "brand_label": str(card.get_brand_display()),
        "last4": card.last4,
        "funding": card.funding,
        "issuer_country": card.issuer_country,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
        "added_at": _iso(card.created_at),
        "three_ds_authenticated_at": _iso(card.three_ds_authenticated_at),
        "detached_at": _iso(card.detached_at),
    }


def _instalment(instalment: Instalment) -> dict[str, Any]:
    return {
        "number": instalment.number,
        "due_date": _iso(instalment.due_date),
        "amount_cents": to_cents(instalment.total_amount),
        "purchase_amount_cents": to_cents(instalment.purchase_amount),
        "customer_fee_cents": to_cents(instalment.customer_fee),
        "customer_interest_cents": to_cents(instalment.customer_interest),
        "state": instalment.state,
        "state_label": str(instalment.get_state_display()),
        "paid_at": _iso(instalment.paid_at),
        "postponed_from": _iso(instalment.postponed_from),
        "postponements": instalment.postponements,
    }


def _order(order: Order) -> dict[str, Any]:
    return {
        "merchant_reference": order.merchant_reference,
        "status": order.status,
        "is_shipped": order.is_shipped,
        "carrier": order.carrier,
        "tracking_number": order.tracking_number,
        "created_at": _iso(order.created_at),
        "replaced_at": _iso(order.detached_at),
    }


def _checkout(payment: Payment) -> dict[str, Any] | None:
    checkout = getattr(payment, "checkout", None)  # a payment never opened has none
    if checkout is None:
        return None
    return {
        "first_name": checkout.first_name,
        "last_name": checkout.last_name,
        "email": checkout.email,
        "phone": checkout.phone,
        "birth_date": _iso(checkout.birth_date),
        "address": checkout.address or {},
        "terms_accepted_at": _iso(checkout.terms_accepted_at),
        "phone_verified_at": _iso(checkout.phone_verified_at),
        "three_ds_completed_at": _iso(checkout.three_ds_completed_at),
        "language": checkout.language,
        "device_id": checkout.device_id,
        "ip_address": checkout.ip_address,
        "created_at": _iso(checkout.created_at),
    }


MADE_BY = {
    "checkout": "automated",
    "verification": "automated",
    "operator": "person",
}


def _decision(decision: CreditDecision) -> dict[str, Any]:
    if decision.made_by == "operator":
        # An operator's decision: its note is for the team, the outcome is the customer's.
        reasons = [gettext("Reviewed by a member of our team.")]
    else:
        reasons = [
            reason_text(reason.get("code", ""), reason.get("message", ""))
            for reason in decision.reasons or []
        ]
    return {
        "outcome": decision.outcome,
        "outcome_label": str(decision.get_outcome_display()),
        "decided_at": _iso(decision.created_at),
        "decided_by": MADE_BY.get(decision.made_by, "automated"),
        "made_by": decision.made_by,
        "rules_version": decision.rules_version,
        "reasons": [reason for reason in reasons if reason],
    }


def _review(review: DecisionReview) -> dict[str, Any]:
    return {
        "kind": review.kind,
        "kind_label": str(review.get_kind_display()),
        "status": review.status,
        "status_label": str(review.get_status_display()),
        "your_message": review.customer_message,
        "created_at": _iso(review.created_at),
        "decided_at": _iso(review.decided_at),
    }


def _receipt(receipt: Receipt) -> dict[str, Any]:
    data = receipt.data or {}
    return {
        "number": receipt.number,
        "kind": receipt.kind,
        "kind_label": str(receipt.get_kind_display()),
        "amount_cents": data.get("amount_cents"),
        "instalment_number": data.get("instalment_number"),
        "created_at": _iso(receipt.created_at),
    }


def _payment(
    payment: Payment, checks: dict[str, dict[str, list]], cards: dict[int, str]
) -> dict[str, Any]:
    verification = checks.get(payment.public_id, {})
    return {
        "id": payment.public_id,
        "merchant": payment.seller_name,
        "livemode": payment.livemode,
        "state": payment.state,
        "state_label": str(payment.get_state_display()),
        "kind": payment.kind,
        "installments_count": payment.installments_count,
        "purchase_amount_cents": to_cents(payment.purchase_amount),
        "customer_fee_cents": to_cents(payment.customer_fee),
        "customer_interest_cents": to_cents(payment.customer_interest),
        "annual_interest_rate_bps": payment.annual_interest_rate,
        "amount_refunded_cents": to_cents(payment.amount_refunded),
        "purchase_date": _iso(payment.purchase_date),
        "created_at": _iso(payment.created_at),
        "accepted_at": _iso(payment.accepted_at),
        "cancelled_at": _iso(payment.cancelled_at),
        "expired_at": _iso(payment.expired_at),
        "card": cards.get(payment.card_id) if payment.card_id else None,
        "instalments": [_instalment(row) for row in payment.instalments.all()],
        "orders": [_order(row) for row in payment.orders.all()],
        # What the merchant sent about the customer (the merchant holds its own copy).
        "merchant_sent": {
            "customer": payment.customer_data or {},
            "billing_address": payment.billing_address,
            "shipping_address": payment.shipping_address,
        },
        "checkout": _checkout(payment),
        "credit_decisions": [_decision(row) for row in payment.decisions.all()],
        "decision_reviews": [_review(row) for row in payment.reviews.all()],
        "verification": {
            "phone_checks": verification.get("phone", []),
            "identity_checks": verification.get("identity", []),
            "bank_checks": verification.get("bank", []),
        },
        "receipts": [_receipt(row) for row in payment.receipts.all()],
    }


def _verification_checks(payment_ids: list[str]) -> dict[str, dict[str, list]]:
    """The checks the checkout ran for these payments, by payment: phone (the number and
    the dates), identity and bank (status and dates, never the documents or the bank's
    transactions). Three queries."""
    found: dict[str, dict[str, list]] = {}
    if not payment_ids:
        return found

    def add(subject: str, kind: str, row: dict[str, Any]) -> None:
        found.setdefault(subject, {}).setdefault(kind, []).append(row)

    scope = {"purpose": CHECKOUT_PURPOSE, "subject__in": payment_ids}
    for check in PhoneCheck.objects.filter(**scope).order_by("created_at", "pk"):
        add(
            check.subject,
            "phone",
            {
                "phone": check.phone,
                "created_at": _iso(check.created_at),
                "verified_at": _iso(check.verified_at),
            },
        )
    for check in (
        IdentityCheck.objects.filter(**scope)
        .only("subject", "status", "created_at", "submitted_at", "decided_at", "files_deleted_at")
        .order_by("created_at", "pk")
    ):
        add(
            check.subject,
            "identity",
            {
                "status": check.status,
                "status_label": str(check.get_status_display()),
                "created_at": _iso(check.created_at),
                "submitted_at": _iso(check.submitted_at),
                "decided_at": _iso(check.decided_at),
                "documents_deleted_at": _iso(check.files_deleted_at),
            },
        )
    for check in (
        BankCheck.objects.filter(**scope)
        .only(
            "subject",
            "status",
            "bank_name",
            "consent_at",
            "analysed_at",
            "evidence_deleted_at",
        )
        .order_by("created_at", "pk")
    ):
        add(
            check.subject,
            "bank",
            {
                "status": check.status,
                "status_label": str(check.get_status_display()),
                "bank_name": check.bank_name,
                "consent_at": _iso(check.consent_at),
                "analysed_at": _iso(check.analysed_at),
                "transactions_deleted_at": _iso(check.evidence_deleted_at),
            },
        )
    return found


def _payments(customer: Customer) -> list[Payment]:
    return list(
        Payment.objects.filter(customer=customer)
        .select_related("merchant", "checkout")
        .prefetch_related(
            Prefetch("instalments", queryset=Instalment.objects.order_by("number")),
            Prefetch("orders", queryset=Order.objects.order_by("created_at", "pk")),
            Prefetch(
                "decisions",
                # Not what the decision saw (features): only what explains it.
                queryset=CreditDecision.objects.defer("features").order_by("created_at", "pk"),
            ),
            Prefetch("reviews", queryset=DecisionReview.objects.order_by("created_at", "pk")),
            Prefetch("receipts", queryset=Receipt.objects.order_by("created_at", "pk")),
        )
        .order_by("created_at", "pk")
    )


def _addresses(customer: Customer, payments: list[Payment]) -> tuple[set[str], set[str]]:
    """The email addresses and phone numbers the customer used (profile and checkouts)."""
    emails = {customer.email} if customer.email else set()
    phones = {customer.phone} if customer.phone else set()
    for payment in payments:
        checkout = getattr(payment, "checkout", None)
        if checkout is not None:
            if checkout.email:
                emails.add(checkout.email)
            if checkout.phone:
                phones.add(checkout.phone)
    return emails, phones


def customer_data(customer: Customer, *, now: datetime | None = None) -> dict[str, Any]:
    """Everything Tranche holds about ``customer``, JSON-serialisable, labels in the active
    language. ``now`` (when given) is recorded as ``generated_at``."""
    payments = _payments(customer)
    cards = list(customer.cards.order_by("created_at", "pk"))
    card_ids = {card.pk: card.public_id for card in cards}
    checks = _verification_checks([payment.public_id for payment in payments])
    emails, phones = _addresses(customer, payments)
    sent_emails = (
        # Only this mode's emails (their context says which): a test-mode customer with a
        # live customer's address never sees the live messages.
        OutgoingEmail.objects.filter(to__in=sorted(emails), context__livemode=customer.livemode)
        .only("subject", "to", "created_at", "sent_at")
        .order_by("created_at", "pk")
        if emails
        else []
    )
    sent_sms = (
        SmsMessage.objects.filter(phone__in=sorted(phones), livemode=customer.livemode)
        .only("key", "phone", "status", "created_at", "sent_at")
        .order_by("created_at", "pk")
        if phones
        else []
    )
    sign_ins = SignInCode.objects.filter(customer=customer, verified_at__isnull=False).order_by(
        "verified_at", "pk"
    )
    requests = customer.support_requests.select_related("payment").order_by("created_at", "pk")
    data: dict[str, Any] = {
        "format": "tranche-customer-data/1",
        "language": translation.get_language(),
        "profile": _profile(customer),
        "cards": [_card(card) for card in cards],
        "plans": [_payment(payment, checks, card_ids) for payment in payments],
        "support_requests": [
            {
                "reference": row.public_id,
                "kind": row.kind,
                "kind_label": str(row.get_kind_display()),
                "status": row.status,
                "status_label": str(row.get_status_display()),
                "payment": row.payment.public_id if row.payment_id else None,
                "name": row.name,
                "email": row.email,
                "message": row.message,
                "requested_date": _iso(row.requested_date),
                "created_at": _iso(row.created_at),
                "handled_at": _iso(row.handled_at),
            }
            for row in requests
        ],
        "emails_sent": [
            {
                "to": row.to,
                "subject": row.subject,
                "created_at": _iso(row.created_at),
                "sent_at": _iso(row.sent_at),
            }
            for row in sent_emails
        ],
        "sms_sent": [
            {
                "to": row.phone,
                "about": row.key.split(":", 1)[0],
                "created_at": _iso(row.created_at),
                "sent_at": _iso(row.sent_at),
            }
            for row in sent_sms
        ],
        "sign_ins": [
            {
                "channel": row.channel,
                "purpose": row.purpose,  # sign in, sign up, or confirming an email
                "at": _iso(row.verified_at),
                "ip_address": row.ip_address,
            }
            for row in sign_ins
        ],
        **_tranche_card(customer),
    }
    if now is not None:
        data["generated_at"] = _iso(now)
    return data


# --- the readable PDF ---------------------------------------------------------------------

# The readable names of the keys shown as "label: value" lines (others show as they are:
# what a merchant sent may have keys of its own).
LABELS = {
    "id": _("Reference"),
    "email": _("Email"),
    "first_name": _("First name"),
    "last_name": _("Last name"),
    "phone": _("Phone"),
    "phone_verified_at": _("Phone verified on"),
    "birth_date": _("Date of birth"),
    "created_at": _("Created on"),
    "updated_at": _("Updated on"),
    "erased_at": _("Erased on"),
    "address": _("Address"),
    "line1": _("Street"),
    "line2": _("Address (continued)"),
    "postal_code": _("Postal code"),
    "city": _("City"),
    "country": _("Country"),
    "terms_accepted_at": _("Terms accepted on"),
    "three_ds_completed_at": _("3-D Secure completed on"),
    "language": _("Language"),
    "device_id": _("Browser identifier"),
    "ip_address": _("IP address"),
    "customer": _("Customer"),
    "billing_address": _("Billing address"),
    "shipping_address": _("Delivery address"),
}


def _cents(value: int | None) -> str:
    return display_eur(value) if value is not None else ""


def _when(value: str | None, *, with_time: bool = False) -> str:
    """An ISO date or datetime from the data, spelled out in the active language (Paris
    time for a datetime)."""
    if not value:
        return ""
    if "T" not in value:
        return formats.date_format(date.fromisoformat(value), "DATE_FORMAT")
    moment = timezone.localtime(datetime.fromisoformat(value))
    return formats.date_format(moment, "DATETIME_FORMAT" if with_time else "DATE_FORMAT")


def _lines(values: dict[str, Any], prefix: str = "") -> list[str]:
    """Readable ``label: value`` lines of a (nested) dict, empty values left out."""
    lines = []
    for key, value in values.items():
        label = str(LABELS.get(key, key))
        name = f"{prefix}{label}"
        if isinstance(value, dict):
            lines += _lines(value, prefix=f"{name} – ")
        elif isinstance(value, list):
            if value:
                lines.append(f"{name}: {', '.join(str(item) for item in value)}")
        elif value in (None, ""):
            continue
        elif isinstance(value, str) and (key.endswith("_at") or key.endswith("_date")):
            lines.append(f"{name}: {_when(value, with_time=key.endswith('_at'))}")
        else:
            lines.append(f"{name}: {value}")
    return lines


def _plan_for_reading(plan: dict[str, Any]) -> dict[str, Any]:
    verification = plan["verification"]
    cost = plan["customer_fee_cents"] + plan["customer_interest_cents"]
    checks = [
        {
            "label": gettext("Phone %(phone)s") % {"phone": row["phone"]},
            "status": gettext("Verified") if row["verified_at"] else gettext("Not verified"),
            "at": _when(row["verified_at"] or row["created_at"], with_time=True),
        }
        for row in verification["phone_checks"]
    ]
    checks += [
        {
            "label": gettext("Identity document"),
            "status": row["status_label"],
            "at": _when(row["decided_at"] or row["created_at"], with_time=True),
        }
        for row in verification["identity_checks"]
    ]
    checks += [
        {
            "label": gettext("Bank data"),
            "status": row["status_label"],
            "at": _when(row["analysed_at"] or row["consent_at"], with_time=True),
        }
        for row in verification["bank_checks"]
    ]
    return {
        **plan,
        "purchase_amount": _cents(plan["purchase_amount_cents"]),
        "cost": _cents(cost) if cost else "",
        "refunded": _cents(plan["amount_refunded_cents"]) if plan["amount_refunded_cents"] else "",
        "created": _when(plan["created_at"]),
        "instalments": [
            {
                **row,
                "due": _when(row["due_date"]),
                "amount": _cents(row["amount_cents"]),
                "paid": _when(row["paid_at"]),
                "moved_from": _when(row["postponed_from"]),
            }
            for row in plan["instalments"]
        ],
        "references": [
            row["merchant_reference"] for row in plan["orders"] if row["merchant_reference"]
        ],
        "decisions": [
            {**row, "at": _when(row["decided_at"], with_time=True)}
            for row in plan["credit_decisions"]
        ],
        "reviews": [
            {**row, "at": _when(row["created_at"], with_time=True)}
            for row in plan["decision_reviews"]
        ],
        "receipts": [
            {**row, "at": _when(row["created_at"]), "amount": _cents(row["amount_cents"])}
            for row in plan["receipts"]
        ],
        "checks": checks,
        "merchant_sent_lines": _lines(plan["merchant_sent"]),
        "checkout_lines": _lines(plan["checkout"] or {}),
    }


def _pdf_context(data: dict[str, Any]) -> dict[str, Any]:
    """The data formatted for reading: amounts in euros, dates spelled out, labels."""
    profile = {key: value for key, value in data["profile"].items() if key != "livemode"}
    return {
        "language": data["language"],
        "livemode": data["profile"]["livemode"],
        "generated": _when(data.get("generated_at"), with_time=True),
        "profile_lines": _lines(profile),
        "cards": [
            {**card, "added": _when(card["added_at"]), "detached": _when(card["detached_at"])}
            for card in data["cards"]
        ],
        "plans": [_plan_for_reading(plan) for plan in data["plans"]],
        "support_requests": [
            {**row, "at": _when(row["created_at"], with_time=True)}
            for row in data["support_requests"]
        ],
        "emails_sent": [
            {**row, "at": _when(row["created_at"], with_time=True)} for row in data["emails_sent"]
        ],
        "sms_sent": [
            {**row, "at": _when(row["created_at"], with_time=True)} for row in data["sms_sent"]
        ],
        "sign_ins": [{**row, "when": _when(row["at"], with_time=True)} for row in data["sign_ins"]],
        "tranche_cards": [
            {**row, "created": _when(row["created_at"]), "limit_label": _cents(row["limit"])}
            for row in data["tranche_cards"]
        ],
        "tranche_card_purchases": [
            {**row, "when": _when(row["at"], with_time=True), "amount_label": _cents(row["amount"])}
            for row in data["tranche_card_purchases"]
        ],
    }


def customer_data_html(customer: Customer, *, now: datetime | None = None) -> str:
    """The export as the HTML the PDF is laid out from (active language)."""
    return render_to_string(PDF_TEMPLATE, _pdf_context(customer_data(customer, now=now)))


@functools.cache
def _fetcher():
    # Local files only (the shipped fonts): the document never fetches from the network.
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols={"file"})


def customer_data_document(customer: Customer, *, now: datetime | None = None):
    """The laid-out export (a ``weasyprint.Document``), before it is written as a PDF."""
    from weasyprint import HTML

    html = HTML(
        string=customer_data_html(customer, now=now),
        base_url=str(SCHEDULES_DIR),
        url_fetcher=_fetcher(),
    )
    return html.render()


def customer_data_pdf(customer: Customer, *, now: datetime | None = None) -> bytes:
    """The export as a readable PDF (active language)."""
    return customer_data_document(customer, now=now).write_pdf()
