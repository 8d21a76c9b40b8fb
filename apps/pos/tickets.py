"""The tickets a terminal prints for an in-store session: as text for 32- and 48-column
receipt printers, and as a PDF for 80 mm paper (the same 48-column layout).

- ``in_progress``: printed when the SMS with the link is sent ("transaction in progress");
- ``customer``: once paid, the schedule handed to the customer (each date and amount, the
  total, fees, interest, APR, how to reach the portal);
- ``merchant``: once paid, the shop's copy (payment id, amount, plan, merchant fee, staff).

Three steps, the middle one pure: :func:`ticket_data` reads the session, its payment and
instalments (two queries) into a :class:`Ticket`; :func:`ticket_lines` lays a ticket out
for a width (no ORM, no I/O: gettext and Django's formats in the active language);
:func:`ticket_text` / :func:`ticket_pdf` render the lines in a language (French first).

Characters: thermal printers sold in France print code page 858 (CP850 with the euro
sign), which has é, è, à, ç, « » and €, so accents and € stay. It lacks no-break spaces
(Django's French number format groups thousands with them), typographic quotes and
apostrophes (the French translations use ’), bullets (``phone_mask`` uses •) and dashes:
:func:`printable` turns those into their ASCII look-alikes and anything else outside
CP858 into "?", so every line can be sent to the printer as CP858 bytes.
"""

from __future__ import annotations

import functools
import math
import textwrap
import threading
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.template.defaultfilters import floatformat
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from apps.common.dates import BUSINESS_TZ
from apps.common.errors import DomainError
from apps.common.money import display_eur, to_cents
from apps.payments import links
from apps.payments.models import Instalment
from apps.pos.models import PosSession
from apps.verification.phones import phone_mask

IN_PROGRESS = "in_progress"
CUSTOMER = "customer"
MERCHANT = "merchant"
TICKET_KINDS = (IN_PROGRESS, CUSTOMER, MERCHANT)
WIDTHS = (32, 48)
PDF_WIDTH = 48  # the PDF shows the 48-column layout, as the 80 mm printer does
PDF_TEMPLATE = "pos/ticket_pdf.html"
ENCODING = "cp858"

# What CP858 lacks, turned into what it has (see the module docstring).
_LOOK_ALIKES = str.maketrans(
    {
        "\u00a0": " ",  # no-break space
        "\u202f": " ",  # narrow no-break space (French thousands)
        "\u2009": " ",  # thin space
        "\u2007": " ",  # figure space
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u2022": "*",  # phone_mask's bullet
        "\u2026": "...",
    }
)

# Pango and fontconfig objects behind a shared FontConfiguration are not made for
# concurrent use: threads take turns (processes each have their own).
_render_lock = threading.RLock()


class TicketNotAvailable(DomainError):
    code = "ticket_not_available"
    http_status = 409
    default_message = gettext_lazy("This ticket is not available for this session yet.")


@dataclass(frozen=True, slots=True)
class TicketInstalment:
    number: int
    due_date: date
    amount_cents: int  # principal + fee + interest


@dataclass(frozen=True, slots=True)
class Ticket:
    """Everything one ticket shows, read from the session and its payment."""

    kind: str
    livemode: bool
    merchant_name: str
    shop: str
    terminal_name: str  # "" for the dashboard's virtual terminal
    session_id: str
    amount_cents: int
    printed_for: datetime  # link sent (in progress) or payment accepted (customer, merchant)
    phone_masked: str = ""
    expires_at: datetime | None = None
    payment_id: str = ""
    installments_count: int = 0
    deferred_days: int = 0
    deferred_months: int = 0
    instalments: tuple[TicketInstalment, ...] = ()
    customer_fee_cents: int = 0
    customer_interest_cents: int = 0
    annual_interest_rate_bps: int = 0
    merchant_fee_cents: int = 0
    staff_name: str = ""
    reference: str = ""
    portal_url: str = ""
    # A customer refused credit who paid the whole amount at once: no schedule, no credit.
    paid_in_full: bool = False


# --- what a session has ----------------------------------------------------------------------


def tickets_available(session: PosSession) -> list[str]:
    """The kinds of ticket the session has now, in printing order: "in progress" once the
    link is sent, the customer's and the merchant's once paid. (Sync the session first.)"""
    kinds = []
    if session.link_sent_at is not None:
        kinds.append(IN_PROGRESS)
    if session.state == PosSession.State.PAID and session.payment_id is not None:
        kinds += [CUSTOMER, MERCHANT]
    return kinds


def _check_kind(session: PosSession, kind: str) -> None:
    if kind not in TICKET_KINDS:
        raise ValueError(f"unknown ticket kind {kind!r}")
    if kind not in tickets_available(session):
        raise TicketNotAvailable()


def _check_width(width: int) -> None:
    if width not in WIDTHS:
        raise ValueError(f"a ticket is {' or '.join(map(str, WIDTHS))} columns wide, not {width!r}")


def session_short_id(public_id: str) -> str:
    """The session id as staff read it on a ticket: its last 10 characters (enough to find
    it in the dashboard, short enough for any printer)."""
    return public_id.removeprefix("pos_session_")[-10:]


def ticket_data(session: PosSession, kind: str) -> Ticket:
    """The ticket ``kind`` of the session (``TicketNotAvailable`` if it has none yet), read
    in two queries: the session with its merchant, terminal and payment, then the
    payment's instalments."""
    _check_kind(session, kind)
    session = PosSession.objects.select_related("merchant", "terminal", "payment").get(
        pk=session.pk
    )
    _check_kind(session, kind)  # the row may have moved on since the caller read it
    terminal = session.terminal
    common: dict[str, Any] = {
        "kind": kind,
        "livemode": session.livemode,
        "merchant_name": session.merchant.legal_name,
        "shop": terminal.shop if terminal else "",
        "terminal_name": terminal.name if terminal else "",
        "session_id": session.public_id,
        "amount_cents": to_cents(session.amount),
        "staff_name": session.staff_name,
        "reference": session.reference,
    }
    if kind == IN_PROGRESS:
        return Ticket(
            **common,
            printed_for=session.link_sent_at,
            phone_masked=phone_mask(str(session.customer_phone)),
            expires_at=session.expires_at,
        )
    payment = session.payment
    rows = Instalment.objects.filter(payment=payment).order_by("number")
    return Ticket(
        **common,
        printed_for=payment.accepted_at or session.finished_at or session.updated_at,
        payment_id=payment.public_id,
        installments_count=payment.installments_count,
        deferred_days=payment.deferred_days,
        deferred_months=payment.deferred_months,
        instalments=tuple(
            TicketInstalment(
                number=row.number,
                due_date=row.due_date,
                amount_cents=to_cents(row.purchase_amount)
                + to_cents(row.customer_fee)
                + to_cents(row.customer_interest),
            )
            for row in rows
        ),
        customer_fee_cents=to_cents(payment.customer_fee),
        customer_interest_cents=to_cents(payment.customer_interest),
        annual_interest_rate_bps=payment.annual_interest_rate,
        merchant_fee_cents=to_cents(payment.merchant_fee),
        portal_url=links.absolute(reverse("portal:sign-in")),
        paid_in_full=payment.paid_in_full_fallback,
    )


# --- layout (pure) -----------------------------------------------------------------------------


def printable(text: str) -> str:
    """``text`` on one line, in characters a CP858 printer has (see the module docstring)."""
    text = " ".join(str(text).translate(_LOOK_ALIKES).split())  # also drops newlines, tabs
    return text.encode(ENCODING, errors="replace").decode(ENCODING)


def eur(cents: int) -> str:
    """An amount as the active language writes it, with plain spaces (printers)."""
    return printable(display_eur(cents))


def percent(bps: int) -> str:
    """Basis points as a percentage in the active language: 1990 -> "19,90 %"."""
    return f"{floatformat(Decimal(bps) / 100, 2)} %"


def when(moment: datetime) -> str:
    """A date and time in Paris, in the active language's short form (23/11/2026 14:05)."""
    local = moment.astimezone(BUSINESS_TZ)
    return "{} {}".format(
        formats.date_format(local, "SHORT_DATE_FORMAT"),
        formats.time_format(local, "TIME_FORMAT"),
    )


def day(value: date) -> str:
    return formats.date_format(value, "SHORT_DATE_FORMAT")


def wrapped(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` characters (words longer than a line, such
    as ids and URLs, are cut)."""
    return textwrap.wrap(printable(text), width, break_long_words=True, break_on_hyphens=False)


def centred(text: str, width: int) -> list[str]:
    return [line.center(width).rstrip() for line in wrapped(text, width)]


def separator(width: int, char: str = "-") -> str:
    return char * width


def pair(label: str, value: str, width: int) -> list[str]:
    """``label      value`` on one line when both fit (the value against the right edge),
    else the label's lines then the value right-aligned (cut across lines, left-aligned, when
    longer than a line)."""
    label, value = printable(label), printable(value)
    if not value:
        return wrapped(label, width)
    if len(label) + 1 + len(value) <= width:
        return [label + " " * (width - len(label) - len(value)) + value]
    if len(value) <= width:
        return [*wrapped(label, width), value.rjust(width)]
    return wrapped(label, width) + wrapped(value, width)  # an id or URL cut across lines


def plan_name(ticket: Ticket) -> str:
    """The plan in the customer's words: "Payment in 3 instalments", "Pay later: in 30 days"."""
    if ticket.paid_in_full:
        return _("Paid in full today")
    if ticket.deferred_months:
        return ngettext(
            "Pay later: in %(count)d month",
            "Pay later: in %(count)d months",
            ticket.deferred_months,
        ) % {"count": ticket.deferred_months}
    if ticket.deferred_days:
        return ngettext(
            "Pay later: in %(count)d day", "Pay later: in %(count)d days", ticket.deferred_days
        ) % {"count": ticket.deferred_days}
    return ngettext(
        "Payment in %(count)d instalment",
        "Payment in %(count)d instalments",
        ticket.installments_count,
    ) % {"count": ticket.installments_count}


def _header(ticket: Ticket, width: int) -> list[str]:
    lines = centred(ticket.merchant_name, width)
    if ticket.shop:
        lines += centred(ticket.shop, width)
    lines += centred(ticket.terminal_name or _("Virtual terminal"), width)
    if not ticket.livemode:
        lines += centred(_("TEST MODE - NOT A REAL PAYMENT"), width)
    return lines


def _in_progress_lines(ticket: Ticket, width: int) -> list[str]:
    lines = _header(ticket, width)
    lines += [separator(width)]
    lines += centred(_("TRANSACTION IN PROGRESS"), width)
    lines += [separator(width)]
    lines += pair(_("Date"), when(ticket.printed_for), width)
    lines += pair(_("Amount"), eur(ticket.amount_cents), width)
    lines += pair(_("Customer's phone"), ticket.phone_masked, width)
    lines += pair(_("Session"), session_short_id(ticket.session_id), width)
    if ticket.expires_at is not None:
        lines += pair(
            _("Link valid until"),
            formats.time_format(ticket.expires_at.astimezone(BUSINESS_TZ), "TIME_FORMAT"),
            width,
        )
    if ticket.staff_name:
        lines += pair(_("Staff member"), ticket.staff_name, width)
    lines += [separator(width)]
    lines += wrapped(_("The customer is finishing the payment on their phone."), width)
    return lines


def _customer_lines(ticket: Ticket, width: int) -> list[str]:
    lines = _header(ticket, width)
    lines += pair(_("Date"), when(ticket.printed_for), width)
    lines += [separator(width)]
    lines += centred(_("YOUR PAYMENT SCHEDULE"), width)
    lines += [separator(width)]
    lines += pair(_("Purchase amount"), eur(ticket.amount_cents), width)
    lines += wrapped(plan_name(ticket), width)
    lines += [separator(width)]
    if ticket.paid_in_full:
        return lines + _paid_in_full_lines(ticket, width)
    for row in ticket.instalments:
        lines += pair(
            _("%(number)d. %(date)s") % {"number": row.number, "date": day(row.due_date)},
            eur(row.amount_cents),
            width,
        )
    lines += [separator(width)]
    total = sum(row.amount_cents for row in ticket.instalments)
    lines += pair(_("Total paid with fees"), eur(total), width)
    lines += pair(_("Customer fees"), eur(ticket.customer_fee_cents), width)
    lines += pair(_("Interest"), eur(ticket.customer_interest_cents), width)
    lines += pair(_("APR"), percent(ticket.annual_interest_rate_bps), width)
    lines += [separator(width)]
    lines += pair(_("Payment ID"), ticket.payment_id, width)
    if ticket.reference:
        lines += pair(_("Reference"), ticket.reference, width)
    lines += [separator(width)]
    lines += wrapped(_("Your schedule, receipts and card:"), width)
    lines += wrapped(ticket.portal_url, width)
    lines += wrapped(_("Sign in with your phone number or your email address."), width)
    lines += [""]
    lines += wrapped(
        _(
            "A credit commits you and must be repaid. Check that you can repay it "
            "before committing yourself."
        ),
        width,
    )
    return lines


def _paid_in_full_lines(ticket: Ticket, width: int) -> list[str]:
    """The customer's ticket when they paid everything at once: what was paid, no schedule,
    no credit (so no APR and no credit warning)."""
    lines = pair(_("Paid today"), eur(ticket.amount_cents), width)
    lines += [separator(width)]
    lines += pair(_("Payment ID"), ticket.payment_id, width)
    if ticket.reference:
        lines += pair(_("Reference"), ticket.reference, width)
    lines += [separator(width)]
    lines += wrapped(_("Your receipt:"), width)
    lines += wrapped(ticket.portal_url, width)
    lines += wrapped(_("Sign in with your phone number or your email address."), width)
    return lines


def _merchant_lines(ticket: Ticket, width: int) -> list[str]:
    lines = _header(ticket, width)
    lines += [separator(width)]
    lines += centred(_("MERCHANT COPY"), width)
    lines += [separator(width)]
    lines += pair(_("Payment ID"), ticket.payment_id, width)
    lines += pair(_("Session"), session_short_id(ticket.session_id), width)
    lines += pair(_("Accepted on"), when(ticket.printed_for), width)
    lines += pair(_("Amount"), eur(ticket.amount_cents), width)
    lines += wrapped(plan_name(ticket), width)
    lines += pair(_("Merchant fee"), eur(ticket.merchant_fee_cents), width)
    lines += pair(
        _("Paid to the merchant"), eur(ticket.amount_cents - ticket.merchant_fee_cents), width
    )
    lines += [separator(width)]
    lines += pair(_("Staff member"), ticket.staff_name or "-", width)
    lines += pair(_("Terminal"), ticket.terminal_name or _("Virtual terminal"), width)
    if ticket.reference:
        lines += pair(_("Reference"), ticket.reference, width)
    return lines


_LAYOUTS = {IN_PROGRESS: _in_progress_lines, CUSTOMER: _customer_lines, MERCHANT: _merchant_lines}


def ticket_lines(ticket: Ticket, width: int) -> list[str]:
    """The ticket laid out in lines of at most ``width`` (32 or 48) CP858 characters, in
    the active language."""
    _check_width(width)
    return [line.rstrip() for line in _LAYOUTS[ticket.kind](ticket, width)]


# --- rendering ---------------------------------------------------------------------------------


def ticket_text(session: PosSession, kind: str, *, width: int = 48, language: str = "fr") -> str:
    """The ticket as text for a receipt printer ``width`` (32 or 48) columns wide, one line
    per printed line. ``TicketNotAvailable`` when the session has no such ticket yet,
    ``ValueError`` for another width or an unknown kind."""
    _check_width(width)
    ticket = ticket_data(session, kind)
    with translation.override(language):
        return "\n".join(ticket_lines(ticket, width)) + "\n"


@functools.cache
def _weasyprint() -> tuple[Any, Any]:
    """The font configuration and a local-files-only URL fetcher, built once per process."""
    from weasyprint.text.fonts import FontConfiguration
    from weasyprint.urls import URLFetcher

    return FontConfiguration(), URLFetcher(allowed_protocols={"file"})


# Line height in the PDF (millimetres): 7 pt type with 1.25 leading. 48 columns of DejaVu
# Sans Mono (0.602 em a character) at 7 pt take 71.5 mm of the 72 mm printable width.
FONT_SIZE_PT = 7
LINE_HEIGHT_MM = FONT_SIZE_PT * 1.25 * 25.4 / 72
PAGE_MARGIN_MM = 4


def ticket_pdf_context(lines: list[str], *, title: str) -> dict[str, Any]:
    # One spare line against rounding: a page too short would spill onto a second.
    height = 2 * PAGE_MARGIN_MM + math.ceil((len(lines) + 1) * LINE_HEIGHT_MM)
    return {
        "language": translation.get_language(),
        "title": title,
        "text": "\n".join(lines),
        "height_mm": height,
        "margin_mm": PAGE_MARGIN_MM,
        "font_size_pt": FONT_SIZE_PT,
    }


def ticket_document(session: PosSession, kind: str, *, language: str = "fr"):
    """The laid-out PDF ticket (a ``weasyprint.Document``, before the PDF bytes)."""
    from weasyprint import HTML

    ticket = ticket_data(session, kind)
    with translation.override(language):
        lines = ticket_lines(ticket, PDF_WIDTH)
        title = ticket.payment_id or ticket.session_id
        html = render_to_string(PDF_TEMPLATE, ticket_pdf_context(lines, title=title))
    font_config, fetcher = _weasyprint()
    with _render_lock:
        return HTML(string=html, url_fetcher=fetcher).render(font_config=font_config)


def ticket_pdf(session: PosSession, kind: str, *, language: str = "fr") -> bytes:
    """The ticket as a PDF on 80 mm wide paper (72 mm printed), as long as its lines: the
    48-column layout, so the PDF and the printer match."""
    with _render_lock:
        return ticket_document(session, kind, language=language).write_pdf()
