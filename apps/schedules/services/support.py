"""Requests to Tranche's support from the portal: a ticket for operators (the admin), an
acknowledgement to the customer and a notice to the support address, in one transaction."""

from __future__ import annotations

from datetime import date, datetime

from django.conf import settings
from django.db import transaction
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from apps.common.emails import email_queue
from apps.payments.emails import email_language
from apps.payments.models import Customer, Instalment, Payment
from apps.schedules.models import SupportRequest

SUBJECTS = {
    SupportRequest.Kind.POSTPONE: _("Your request for a longer delay"),
    SupportRequest.Kind.CONTACT: _("Your message to Tranche"),
    SupportRequest.Kind.CORRECTION: _("Your request to correct your data"),
    SupportRequest.Kind.DELETION: _("Your request to delete your data"),
}


def support_request_create(
    *,
    kind: str,
    livemode: bool,
    now: datetime,
    customer: Customer | None = None,
    payment: Payment | None = None,
    instalment: Instalment | None = None,
    name: str = "",
    email: str = "",
    message: str = "",
    requested_date: date | None = None,
    status: str = SupportRequest.Status.OPEN,
    language: str = "",
) -> SupportRequest:
    """Record a request and queue its two emails (sent after commit). ``email`` is where
    the answer goes (the customer's own by default); ``language`` the one the
    acknowledgement is written in (the page's by default)."""
    email = email or (customer.email if customer else "")
    language = email_language(language or get_language() or "")
    with transaction.atomic():
        request = SupportRequest.objects.create(
            kind=kind,
            status=status,
            livemode=livemode,
            customer=customer,
            payment=payment,
            instalment=instalment,
            name=name[:200],
            email=email,
            message=message[:5000],
            requested_date=requested_date,
            handled_at=now if status != SupportRequest.Status.OPEN else None,
            created_at=now,
        )
        values = {
            "reference": request.public_id,
            "kind": request.get_kind_display(),
            "kind_code": kind,
            "status": status,
            "payment_id": payment.public_id if payment else "",
            "merchant_name": payment.seller_name if payment else "",
            "instalment_number": instalment.number if instalment else None,
            "requested_date": requested_date.isoformat() if requested_date else "",
            "message": request.message,
            "name": request.name,
            "email": email,
            "livemode": livemode,
        }
        if email:
            email_queue(
                key=f"support:{request.public_id}:received",
                to=email,
                subject=SUBJECTS[kind],
                template="emails/portal/support_received",
                context=values,
                language=language,
                now=now,
            )
        email_queue(
            key=f"support:{request.public_id}:notice",
            to=settings.SUPPORT_EMAIL,
            subject=f"[{request.get_kind_display()}] {request.public_id}",
            template="emails/portal/support_notice",
            context=values,
            language="en",
            now=now,
        )
    return request
