"""The terminal API's shapes: request bodies and query strings (shape checks only; the
services judge amounts and phones), and the answers, documented as serializers and built
by plain functions (``session_to_json``), as the payments API does."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from apps.common.api.fields import StrictCharField, StrictIntegerField
from apps.common.money import to_cents
from apps.pos.models import PosSession, Terminal
from apps.verification.phones import phone_mask

TICKET_WIDTHS = ("32", "48")
TICKET_FORMATS = ("text", "pdf")
TICKET_LANGUAGES = ("fr", "en")

# What the terminal's screen says for each state (customer-facing staff read it: French
# by default, the request's Accept-Language otherwise).
STATE_MESSAGES = {
    PosSession.State.STARTED: _("Sending the link to the customer"),
    PosSession.State.LINK_SENT: _("Link sent to the customer"),
    PosSession.State.CUSTOMER_IN_PROGRESS: _("The customer is paying on their phone"),
    PosSession.State.PAID: _("Payment accepted"),
    PosSession.State.REFUSED: _("Payment refused"),
    PosSession.State.CANCELLED: _("Session cancelled"),
    PosSession.State.EXPIRED: _("Session expired"),
}


# --- requests ----------------------------------------------------------------------------


class SessionStartSerializer(serializers.Serializer):
    amount = StrictIntegerField(
        help_text="The purchase in cents (an integer), within the merchant's in-store plans' "
        "bounds (a 400 `invalid_amount` gives `minimum` and `maximum`)."
    )
    phone = StrictCharField(
        max_length=40,
        allow_blank=True,
        help_text="The customer's French mobile number, e.g. `06 12 34 56 78` or "
        "`+33612345678`; the link goes there by SMS.",
    )
    reference = StrictCharField(
        max_length=100,
        required=False,
        allow_blank=True,
        help_text="Your reference for the sale (the till's ticket number); kept on the payment.",
    )
    staff = StrictCharField(
        max_length=150,
        required=False,
        allow_blank=True,
        help_text="The cashier's name or code, printed on the merchant's ticket.",
    )


class SessionPollQuerySerializer(serializers.Serializer):
    wait = serializers.IntegerField(
        required=False,
        min_value=0,
        help_text="Long poll: hold the answer up to this many seconds (at most "
        "POS_LONG_POLL_MAX_SECONDS, 20 by default) until the session changes.",
    )

    def validate_wait(self, value: int) -> int:
        maximum = settings.POS_LONG_POLL_MAX_SECONDS
        if value > maximum:
            raise serializers.ValidationError(
                f"Ensure this value is less than or equal to {maximum}.", code="max_value"
            )
        return value


class TicketsQuerySerializer(serializers.Serializer):
    lang = serializers.ChoiceField(
        choices=TICKET_LANGUAGES, required=False, help_text="The tickets' language (fr)."
    )


class TicketQuerySerializer(TicketsQuerySerializer):
    format = serializers.ChoiceField(
        choices=TICKET_FORMATS,
        required=False,
        help_text="`text` (text/plain, for a receipt printer; the default) or `pdf` "
        "(application/pdf, 80 mm wide).",
    )
    width = serializers.ChoiceField(
        choices=TICKET_WIDTHS,
        required=False,
        help_text="Columns of the text ticket: 32 or 48 (the default).",
    )


# --- answers -----------------------------------------------------------------------------


class TerminalRefSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()


class SessionPaymentSerializer(serializers.Serializer):
    id = serializers.CharField()
    state = serializers.CharField()
    installments_count = serializers.IntegerField()
    kind = serializers.CharField(help_text="P{n}X, or PAY_LATER.")
    purchase_amount = serializers.IntegerField()
    customer_fee = serializers.IntegerField()


class SessionTicketRefSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=("in_progress", "customer", "merchant"))
    text_url = serializers.CharField(help_text="The 48-column text ticket.")
    pdf_url = serializers.CharField(help_text="The PDF ticket (80 mm).")


class PosSessionSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="pos_session_…")
    object = serializers.CharField(help_text="Always `pos_session`.")
    state = serializers.CharField(
        help_text="started, link_sent, customer_in_progress (open); paid, refused, cancelled, "
        "expired (final; a refused session may still become paid if the customer pays in "
        "full).",
    )
    amount = serializers.IntegerField(help_text="Cents.")
    currency = serializers.CharField()
    phone = serializers.CharField(help_text="The customer's number, masked.")
    reference = serializers.CharField()
    staff = serializers.CharField()
    terminal = TerminalRefSerializer(
        allow_null=True, help_text="null: started from the dashboard's virtual terminal."
    )
    created = serializers.IntegerField(help_text="UNIX timestamp.")
    expires = serializers.IntegerField(help_text="UNIX timestamp.")
    updated = serializers.IntegerField(help_text="UNIX timestamp.")
    payment = SessionPaymentSerializer(
        allow_null=True, help_text="null until the customer chose their plan."
    )
    tickets = SessionTicketRefSerializer(many=True, help_text="The tickets available now.")
    message = serializers.CharField(
        help_text="A short line for the terminal's screen, in French unless Accept-Language "
        "asks for English."
    )


class TicketSerializer(serializers.Serializer):
    kind = serializers.CharField()
    text_32 = serializers.CharField(help_text="Laid out for a 32-column printer.")
    text_48 = serializers.CharField(help_text="Laid out for a 48-column printer.")
    pdf_url = serializers.CharField(help_text="The same ticket as a PDF (80 mm).")


class TicketListSerializer(serializers.Serializer):
    data = TicketSerializer(many=True)


class MerchantRefSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()


class TerminalSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="terminal_…")
    name = serializers.CharField()
    shop = serializers.CharField()
    mode = serializers.ChoiceField(choices=("test", "live"))
    merchant = MerchantRefSerializer()


# --- building the answers -------------------------------------------------------------------


def ticket_url(request, session: PosSession, kind: str, **query: str) -> str:
    path = reverse("api-pos-session-ticket", args=[session.public_id, kind])
    return request.build_absolute_uri(f"{path}?{urlencode(query)}")


def session_to_json(
    session: PosSession, *, request, language: str, tickets: list[str]
) -> dict[str, Any]:
    """A session as the terminal reads it. ``tickets`` are the kinds available now
    (``apps.pos.tickets.tickets_available``); ``language`` is the screen message's."""
    payment = session.payment if session.payment_id else None
    with translation.override(language):
        message = str(STATE_MESSAGES[session.state])
    return {
        "id": session.public_id,
        "object": "pos_session",
        "state": session.state,
        "amount": to_cents(session.amount),
        "currency": "EUR",
        "phone": phone_mask(str(session.customer_phone)),
        "reference": session.reference,
        "staff": session.staff_name,
        "terminal": (
            {"id": session.terminal.public_id, "name": session.terminal.name}
            if session.terminal_id
            else None
        ),
        "created": int(session.created_at.timestamp()),
        "expires": int(session.expires_at.timestamp()),
        "updated": int(session.updated_at.timestamp()),
        "payment": (
            {
                "id": payment.public_id,
                "state": payment.state,
                "installments_count": payment.installments_count,
                "kind": payment.kind,
                "purchase_amount": to_cents(payment.purchase_amount),
                "customer_fee": to_cents(payment.customer_fee),
            }
            if payment is not None
            else None
        ),
        "tickets": [
            {
                "kind": kind,
                "text_url": ticket_url(request, session, kind, format="text", width="48"),
                "pdf_url": ticket_url(request, session, kind, format="pdf"),
            }
            for kind in tickets
        ],
        "message": message,
    }


def terminal_to_json(terminal: Terminal) -> dict[str, Any]:
    return {
        "id": terminal.public_id,
        "name": terminal.name,
        "shop": terminal.shop,
        "mode": terminal.mode,
        "merchant": {"id": terminal.merchant.public_id, "name": terminal.merchant.legal_name},
    }
