"""The terminal API: what a payment terminal (or a till) integrates to sell in instalments.

A terminal starts a session with the amount and the customer's phone, follows it (plain
polling with an ETag, or a long poll with ``?wait=``), cancels it, and prints its tickets.
Every call is authenticated with the terminal's own secret and scoped to its merchant and
mode: a session of another terminal of the same merchant is readable (the merchant's), any
other is a 404. Each method parses, makes one call into ``apps.pos.services`` (or the
tickets), and answers.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import status
from rest_framework.response import Response

from apps.common.api.views import BaseAPIView
from apps.common.errors import DomainError, NotFound
from apps.payments.api.payment_serializers import validated
from apps.pos import selectors, services, tickets
from apps.pos.api.authentication import (
    REALM,
    IsPosTerminal,
    TerminalAuthentication,
    TerminalRateThrottle,
)
from apps.pos.api.serializers import (
    TICKET_LANGUAGES,
    PosSessionSerializer,
    SessionPollQuerySerializer,
    SessionStartSerializer,
    TerminalSerializer,
    TicketListSerializer,
    TicketQuerySerializer,
    TicketsQuerySerializer,
    session_to_json,
    terminal_to_json,
    ticket_url,
)
from apps.pos.models import PosSession

TAGS = ["Terminal API"]
POLL_INTERVAL_SECONDS = 0.5
# The clock of the long poll (tests replace them with a fake one).
monotonic = time.monotonic
sleep = time.sleep


ERROR = {"$ref": "#/components/schemas/Error"}  # added by apps.common.api.schema's hook


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ERROR, description=description)


ETAG_HEADER = OpenApiParameter(
    "ETag",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=[200, 304],
    description="The session's version; send it back as If-None-Match.",
)
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="The ETag of the session as you last saw it: 304 (no body) while it is "
    "unchanged; with `wait`, the answer waits for a different version.",
)
ACCEPT_LANGUAGE = OpenApiParameter(
    "Accept-Language",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="The language of `message` (fr, the default, or en).",
)
SESSION_ERRORS = {
    401: _error(
        "`invalid_terminal_credentials`, or `terminal_revoked` (register the terminal again)."
    ),
    403: _error("`pos_not_available`: the merchant does not operate in France or is inactive."),
    404: _error("No such session for this merchant and mode."),
}
START_EXAMPLE = {"amount": 30000, "phone": "06 12 34 56 78", "reference": "T-1042", "staff": "Léa"}


class TerminalAPIView(BaseAPIView):
    """A terminal endpoint: terminal auth, a merchant who may sell in store, per-terminal
    rate limit, and Idempotency-Key per terminal (``request.auth.idempotency_scope``)."""

    authentication_classes = [TerminalAuthentication]
    permission_classes = [IsPosTerminal]
    throttle_classes = [TerminalRateThrottle]

    @property
    def terminal(self):
        return self.request.auth

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if response.status_code == status.HTTP_401_UNAUTHORIZED:
            response["WWW-Authenticate"] = REALM
        return response

    def session(self, session_id: str) -> PosSession:
        """The merchant's session in the terminal's mode, by id with or without prefix."""
        return selectors.session_for(
            merchant=self.request.user,
            livemode=self.terminal.livemode,
            session_id=session_id,
            now=timezone.now(),
        )

    def language(self) -> str:
        """The screen message's language: Accept-Language when it names one we speak,
        else French (the API's middleware activates English for error messages, so the
        header is read here)."""
        header = self.request.headers.get("Accept-Language", "")
        for part in header.split(","):
            code = part.split(";", 1)[0].strip().lower().split("-", 1)[0]
            if code in TICKET_LANGUAGES:
                return code
        return "fr"

    def session_response(self, session: PosSession, *, status_code: int = 200) -> Response:
        body = session_to_json(
            session,
            request=self.request,
            language=self.language(),
            tickets=tickets.tickets_available(session),
        )
        return Response(body, status=status_code, headers={"ETag": session.etag})


class SessionsView(TerminalAPIView):
    @extend_schema(
        operation_id="pos_sessions_start",
        summary="Start a sale",
        request=SessionStartSerializer,
        parameters=[ACCEPT_LANGUAGE],
        responses={
            201: PosSessionSerializer,
            200: OpenApiResponse(
                PosSessionSerializer,
                description="The same sale was started again on this terminal while open "
                "(a retry): the session as it is.",
            ),
            400: _error(
                "`validation_error` naming the field; `invalid_amount` (outside the in-store "
                "plans' bounds: `minimum`, `maximum` in cents); `invalid_phone` (malformed, "
                "foreign, or not a mobile)."
            ),
            409: _error("`terminal_busy`: another sale is open on this terminal."),
            **{k: v for k, v in SESSION_ERRORS.items() if k != 404},
        },
        tags=TAGS,
        examples=[OpenApiExample("300 EUR", value=START_EXAMPLE, request_only=True)],
    )
    def post(self, request):
        """Start a sale: the customer gets an SMS with a short link and finishes on their
        phone (plan, details, card). The terminal prints the `in_progress` ticket, then
        follows the session until it is final. A terminal runs one sale at a time: starting
        the same sale again while it is open answers it (200); another one is a 409."""
        data = validated(SessionStartSerializer, request.data)
        session, created = services.session_start(
            merchant=request.user,
            livemode=self.terminal.livemode,
            sale=services.SaleRequest(
                amount_cents=data["amount"],
                phone=data["phone"],
                reference=data.get("reference") or "",
                staff_name=data.get("staff") or "",
            ),
            terminal=self.terminal,
            now=timezone.now(),
        )
        return self.session_response(session, status_code=201 if created else 200)


def _etags(header: str | None) -> set[str]:
    if not header:
        return set()
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


class SessionView(TerminalAPIView):
    @extend_schema(
        operation_id="pos_sessions_fetch",
        summary="Follow a sale",
        parameters=[SessionPollQuerySerializer, IF_NONE_MATCH, ACCEPT_LANGUAGE, ETAG_HEADER],
        responses={
            200: PosSessionSerializer,
            304: OpenApiResponse(
                description="Unchanged since the If-None-Match version (or, with `wait`, "
                "nothing changed before the deadline). No body."
            ),
            400: _error("`validation_error`: `wait` is not 0 to the maximum."),
            **SESSION_ERRORS,
        },
        tags=TAGS,
    )
    def get(self, request, session_id: str):
        """The session, brought up to date with its payment and its expiry.

        Poll it every second or two with `If-None-Match` (304 while unchanged), or long-poll
        with `?wait=<seconds>`: the answer comes as soon as the session's version differs
        from If-None-Match (without it: as soon as its state changes), or at the deadline
        with a 304. A final session (paid, cancelled, expired) answers at once."""
        query = validated(SessionPollQuerySerializer, request.query_params)
        known = _etags(request.headers.get("If-None-Match"))
        session = self.session(session_id)
        wait = query.get("wait") or 0
        initial_state = session.state

        def changed(current: PosSession) -> bool:
            if known:
                return current.etag not in known and "*" not in known
            return current.state != initial_state

        if wait and not changed(session) and _may_change(session):
            with LONG_POLLS.slot() as granted:
                if granted:
                    session = self._wait(session, wait=wait, changed=changed)
            if not changed(session):
                headers = {"ETag": session.etag}
                if not granted:  # too many long polls here: answered as a plain poll
                    headers["Retry-After"] = "2"
                return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        if known and not changed(session):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": session.etag})
        return self.session_response(session)

    @staticmethod
    def _wait(session: PosSession, *, wait: int, changed) -> PosSession:
        """Re-read the session about every half second until it changed or ``wait`` seconds
        have passed; no transaction is open while sleeping."""
        deadline = monotonic() + wait
        while True:
            left = deadline - monotonic()
            if left <= 0:
                return session
            sleep(min(POLL_INTERVAL_SECONDS, left))
            session = services.session_sync(session_id=session.pk, now=timezone.now())
            if changed(session):
                return session


class _LongPolls:
    """At most ``POS_LONG_POLLS_PER_PROCESS`` long polls wait at once in one web process, so
    waiting terminals never take every thread (checkout, dashboard and API keep some). A
    poll beyond that answers at once, and the terminal simply polls again."""

    def __init__(self):
        self._lock = threading.Lock()
        self._waiting = 0

    @contextmanager
    def slot(self):
        with self._lock:
            granted = self._waiting < settings.POS_LONG_POLLS_PER_PROCESS
            if granted:
                self._waiting += 1
        try:
            yield granted
        finally:
            if granted:
                with self._lock:
                    self._waiting -= 1


LONG_POLLS = _LongPolls()


def _may_change(session: PosSession) -> bool:
    """Open sessions change; of the final ones only a refused one (its customer may still
    pay in full). Waiting on the others would only hold a connection."""
    return session.is_open or session.state == PosSession.State.REFUSED


class NotThisTerminal(DomainError):
    code = "not_this_terminal"
    http_status = 403
    default_message = (
        "This sale was started on another terminal (or the dashboard's virtual terminal): "
        "cancel it there."
    )


class SessionCancelView(TerminalAPIView):
    @extend_schema(
        operation_id="pos_sessions_cancel",
        summary="Cancel a sale",
        request=None,
        parameters=[ACCEPT_LANGUAGE],
        responses={
            200: PosSessionSerializer,
            403: _error("`not_this_terminal`: the sale was started on another terminal."),
            409: _error(
                "`session_finished` (paid or expired: a paid sale is refunded, not "
                "cancelled), or `invalid_payment_state` (the customer is being charged now)."
            ),
            **SESSION_ERRORS,
        },
        tags=TAGS,
    )
    def post(self, request, session_id: str):
        """Cancel the sale (the customer's link stops working and their payment, if any, is
        cancelled). Cancelling a cancelled session answers it again. A terminal cancels only
        its own sales: another till's, or the virtual terminal's, is cancelled there (403)."""
        session = self.session(session_id)
        if session.terminal_id != self.terminal.pk:
            raise NotThisTerminal()
        session = services.session_cancel(session_id=session.pk, now=timezone.now())
        return self.session_response(session)


class SessionTicketsView(TerminalAPIView):
    @extend_schema(
        operation_id="pos_sessions_tickets",
        summary="The sale's tickets",
        parameters=[TicketsQuerySerializer],
        responses={
            200: TicketListSerializer,
            400: _error("`validation_error`: `lang`."),
            **SESSION_ERRORS,
        },
        tags=TAGS,
    )
    def get(self, request, session_id: str):
        """The tickets the session has now, laid out for 32- and 48-column printers, with
        the PDF's address: `in_progress` once the link is sent; `customer` (the schedule)
        and `merchant` (the shop's copy) once paid."""
        query = validated(TicketsQuerySerializer, request.query_params)
        language = query.get("lang") or "fr"
        session = self.session(session_id)
        data = [
            {
                "kind": kind,
                "text_32": tickets.ticket_text(session, kind, width=32, language=language),
                "text_48": tickets.ticket_text(session, kind, width=48, language=language),
                "pdf_url": ticket_url(request, session, kind, format="pdf", lang=language),
            }
            for kind in tickets.tickets_available(session)
        ]
        return Response({"data": data})


class SessionTicketView(TerminalAPIView):
    def perform_content_negotiation(self, request, force=False):
        # The answer is text or PDF, whatever Accept says; errors stay JSON.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        operation_id="pos_sessions_ticket",
        summary="One ticket, ready to print",
        parameters=[
            TicketQuerySerializer,
            OpenApiParameter(
                "kind",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                enum=list(tickets.TICKET_KINDS),
            ),
        ],
        responses={
            (200, "text/plain"): OpenApiResponse(
                OpenApiTypes.STR, description="`format=text`: lines for the receipt printer."
            ),
            (200, "application/pdf"): OpenApiResponse(
                OpenApiTypes.BINARY, description="`format=pdf`: the ticket on 80 mm paper."
            ),
            400: _error("`validation_error`: `format`, `width` (32 or 48) or `lang`."),
            409: _error("`ticket_not_available`: not yet (e.g. `customer` before paid)."),
            **SESSION_ERRORS,
        },
        tags=TAGS,
    )
    def get(self, request, session_id: str, kind: str):
        """One ticket: `format=text` (UTF-8 text/plain, `width` 32 or 48 columns) or
        `format=pdf`. An unknown kind is a 404; one the session does not have yet a 409."""
        query = validated(TicketQuerySerializer, request.query_params)
        language = query.get("lang") or "fr"
        session = self.session(session_id)
        if kind not in tickets.TICKET_KINDS:
            raise NotFound("ticket", kind)
        if query.get("format") == "pdf":
            pdf = tickets.ticket_pdf(session, kind, language=language)
            response = HttpResponse(pdf, content_type="application/pdf")
            response["Content-Disposition"] = f'inline; filename="{session.public_id}-{kind}.pdf"'
            return response
        text = tickets.ticket_text(
            session, kind, width=int(query.get("width") or 48), language=language
        )
        return HttpResponse(text, content_type="text/plain; charset=utf-8")


class TerminalView(TerminalAPIView):
    @extend_schema(
        operation_id="pos_terminal_fetch",
        summary="Which terminal am I",
        responses={
            200: TerminalSerializer,
            **{k: v for k, v in SESSION_ERRORS.items() if k != 404},
        },
        tags=TAGS,
    )
    def get(self, request):
        """The terminal these credentials belong to, its shop and merchant: a terminal
        checks its credentials with it when it is installed."""
        return Response(terminal_to_json(self.terminal))
