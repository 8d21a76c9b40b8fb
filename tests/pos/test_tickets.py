"""The tickets a terminal prints: which a session has, what each says (French first), that
every line fits a 32- or 48-column printer in characters it has, and the 80 mm PDF."""

from __future__ import annotations

import re
import zlib
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext, ngettext
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.common.money import to_cents
from apps.payments import links
from apps.pos import services, tickets
from apps.pos.models import PosSession
from apps.pos.tickets import (
    TICKET_KINDS,
    Ticket,
    TicketInstalment,
    TicketNotAvailable,
    ticket_document,
    ticket_lines,
    ticket_pdf,
    ticket_text,
    tickets_available,
)
from tests.pos.helpers import started, terminal_for
from tests.pos.test_services import NOW, customer_pays

MM = 72 / 25.4  # PDF points in a millimetre


@pytest.fixture(autouse=True)
def _today():
    with time_machine.travel(NOW, tick=False):
        yield


def fr(message: str) -> str:
    """``message`` as the French tickets print it (English until the lead translates it)."""
    with translation.override("fr"):
        return gettext(message)


@pytest.fixture
def in_store(shop):
    """A session on terminal "Caisse 1" of the shop "Boutique", its SMS sent at 14:05 in
    Paris."""
    terminal, _secret = terminal_for(shop)
    return started(shop, terminal=terminal, now=NOW)


@pytest.fixture
def paid(in_store):
    customer_pays(in_store, when=NOW + timedelta(minutes=2))
    return services.session_sync(session_id=in_store.pk, now=NOW + timedelta(minutes=2))


# --- which tickets a session has -------------------------------------------------------------


def test_a_session_whose_link_was_sent_has_only_the_in_progress_ticket(in_store):
    assert tickets_available(in_store) == ["in_progress"]


def test_a_session_not_yet_texted_has_no_ticket(shop):
    session = PosSession(state=PosSession.State.STARTED, link_sent_at=None)

    assert tickets_available(session) == []


def test_a_paid_session_has_all_three_tickets(paid):
    assert tickets_available(paid) == list(TICKET_KINDS)


def test_a_cancelled_or_expired_session_has_only_the_in_progress_ticket(shop):
    cancelled = services.session_cancel(session_id=started(shop, now=NOW).pk, now=NOW)
    expired = services.session_sync(
        session_id=started(shop, now=NOW).pk, now=NOW + timedelta(minutes=15)
    )

    assert cancelled.state == PosSession.State.CANCELLED
    assert expired.state == PosSession.State.EXPIRED
    assert tickets_available(cancelled) == tickets_available(expired) == ["in_progress"]


@pytest.mark.parametrize("kind", ["customer", "merchant"])
def test_the_schedule_tickets_wait_for_the_payment(in_store, kind):
    with pytest.raises(TicketNotAvailable) as raised:
        ticket_text(in_store, kind)
    with pytest.raises(TicketNotAvailable):
        ticket_pdf(in_store, kind)

    assert raised.value.code == "ticket_not_available"
    assert raised.value.http_status == 409


def test_a_session_that_moved_on_since_it_was_read_is_reread(in_store):
    stale = PosSession.objects.get(pk=in_store.pk)
    services.session_cancel(session_id=in_store.pk, now=NOW)

    assert "MERCHANT" not in ticket_text(stale, "in_progress")  # still printable
    stale.state = PosSession.State.PAID  # a caller's object that lies
    stale.payment_id = 1
    with pytest.raises(TicketNotAvailable):
        ticket_text(stale, "customer")


@pytest.mark.parametrize("width", [0, 40, 80, 47])
def test_a_printer_width_other_than_32_or_48_is_an_error(in_store, width):
    with pytest.raises(ValueError):
        ticket_text(in_store, "in_progress", width=width)


def test_an_unknown_kind_is_an_error(in_store):
    with pytest.raises(ValueError):
        ticket_text(in_store, "receipt")


# --- what they say ------------------------------------------------------------------------------


def test_the_in_progress_ticket_says_who_what_and_until_when(shop, in_store):
    text = ticket_text(in_store, "in_progress")

    assert fr("TRANSACTION IN PROGRESS") in text
    assert fr("The customer is finishing the payment on their phone.") in " ".join(text.split())
    assert shop.merchant.legal_name[:40] in text
    assert "Boutique" in text and "Caisse 1" in text
    assert "23/11/2026 14:05" in text  # Paris time
    assert "300,00 €" in text
    assert "+33 6 ** ** ** 78" in text
    assert "14:20" in text  # the link's expiry
    assert in_store.public_id[-10:] in text
    assert "Léa" in text


def test_the_customer_ticket_is_the_schedule_with_costs_and_the_portal(paid):
    payment = paid.payment
    rows = list(payment.instalments.order_by("number"))

    text = ticket_text(paid, "customer")

    lines = text.splitlines()
    assert fr("YOUR PAYMENT SCHEDULE") in text
    assert len(rows) == 3
    for row in rows:
        amount = f"{to_cents(row.total_amount) // 100},{to_cents(row.total_amount) % 100:02d} €"
        line = next(line for line in lines if line.startswith(f"{row.number}. "))
        assert row.due_date.strftime("%d/%m/%Y") in line and line.endswith(amount)
    assert rows[0].due_date == date(2026, 11, 23)
    assert "300,00 €" in text  # purchase, and total paid (no fees at 3x by default)
    assert "0,00 %" in text  # APR
    assert payment.public_id in text
    assert links.absolute(reverse("portal:sign-in")) in text
    assert fr("Sign in with your phone number or your email address.") in " ".join(text.split())
    assert "23/11/2026 14:07" in text  # accepted at


def test_the_merchant_copy_names_payment_fee_staff_and_terminal(paid):
    payment = paid.payment
    fee = to_cents(payment.merchant_fee)

    text = ticket_text(paid, "merchant")

    assert fr("MERCHANT COPY") in text
    assert payment.public_id in text
    assert paid.public_id[-10:] in text
    assert "23/11/2026 14:07" in text
    assert fee > 0
    assert f"{fee // 100},{fee % 100:02d} €" in text
    net = 30000 - fee
    assert f"{net // 100},{net % 100:02d} €" in text
    assert "Léa" in text and "Caisse 1" in text
    with translation.override("fr"):
        plan = ngettext(
            "Payment in %(count)d instalment", "Payment in %(count)d instalments", 3
        ) % {"count": 3}
    assert plan in text


def test_tickets_come_in_english_on_request(paid):
    text = ticket_text(paid, "merchant", language="en")

    assert "MERCHANT COPY" in text
    assert "€300.00" in text
    assert "11/23/2026" in text


@pytest.mark.parametrize("width", [32, 48])
@pytest.mark.parametrize("kind", TICKET_KINDS)
def test_every_real_ticket_line_fits_the_printer(paid, kind, width):
    for language in ("fr", "en"):
        text = ticket_text(paid, kind, width=width, language=language)

        assert all(len(line) <= width for line in text.splitlines())
        text.encode("cp858")  # every character exists on the printer
        assert "\u00a0" not in text and "\u202f" not in text


def test_the_ticket_text_reads_the_session_in_two_queries(paid, django_assert_num_queries):
    session = PosSession.objects.get(pk=paid.pk)

    with django_assert_num_queries(2):
        ticket_text(session, "customer")


# --- layout (pure) ---------------------------------------------------------------------------


def test_a_label_and_value_share_a_line_against_the_right_edge():
    assert tickets.pair("Montant", "300,00 €", 32) == ["Montant" + " " * 17 + "300,00 €"]


def test_a_label_and_value_too_long_for_one_line_take_two():
    lines = tickets.pair("Paiement", "payment_" + "x" * 34, 32)

    assert lines == ["Paiement", "payment_" + "x" * 24, "x" * 10]


def test_printable_turns_what_the_printer_lacks_into_look_alikes():
    assert tickets.printable("l’été\u00a0: 1\u202f234,00\u00a0€ – +33 6 •• 78\n") == (
        "l'été : 1 234,00 € - +33 6 ** 78"
    )
    assert tickets.printable("日本") == "??"


names = st.text(min_size=1, max_size=120)
cents = st.integers(min_value=0, max_value=10**9)
moments = st.datetimes(  # hypothesis bounds are naive; the values carry UTC
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001
    max_value=datetime(2099, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@st.composite
def any_ticket(draw) -> Ticket:
    count = draw(st.integers(min_value=1, max_value=12))
    return Ticket(
        kind=draw(st.sampled_from(TICKET_KINDS)),
        livemode=draw(st.booleans()),
        merchant_name=draw(names),
        shop=draw(st.text(max_size=150)),
        terminal_name=draw(st.text(max_size=100)),
        session_id="pos_session_" + draw(st.text(alphabet="abcXYZ019", min_size=34, max_size=34)),
        amount_cents=draw(cents),
        printed_for=draw(moments),
        phone_masked="+33 6 •• •• •• 78",
        expires_at=draw(moments),
        payment_id="payment_" + "A" * 34,
        installments_count=count,
        deferred_days=draw(st.sampled_from([0, 15, 30])),
        deferred_months=draw(st.sampled_from([0, 0, 1])),
        instalments=tuple(
            TicketInstalment(number=number, due_date=draw(st.dates()), amount_cents=draw(cents))
            for number in range(1, count + 1)
        ),
        customer_fee_cents=draw(cents),
        customer_interest_cents=draw(cents),
        annual_interest_rate_bps=draw(st.integers(min_value=0, max_value=10**5)),
        merchant_fee_cents=draw(cents),
        staff_name=draw(st.text(max_size=150)),
        reference=draw(st.text(max_size=100)),
        portal_url="https://tranche.example/portal/sign-in",
        paid_in_full=draw(st.booleans()),
    )


@settings(max_examples=150, deadline=None)
@given(ticket=any_ticket(), width=st.sampled_from([32, 48]), language=st.sampled_from(["fr", "en"]))
def test_no_ticket_line_is_wider_than_the_printer_or_outside_its_characters(
    ticket, width, language
):
    with translation.override(language):
        lines = ticket_lines(ticket, width)

    assert lines
    for line in lines:
        assert len(line) <= width
        line.encode("cp858")
        assert "\n" not in line


@settings(max_examples=50, deadline=None)
@given(ticket=any_ticket())
def test_long_names_are_wrapped_not_lost(ticket):
    with translation.override("fr"):
        lines = ticket_lines(ticket, 32)

    # The merchant's name is the ticket's first lines, centred: nothing of it is dropped.
    name = tickets.printable(ticket.merchant_name).replace(" ", "")
    assert name in "".join(lines).replace(" ", "")


# --- the PDF ------------------------------------------------------------------------------------


def inflated(pdf: bytes) -> bytes:
    """The PDF with its compressed streams (objects, content) inflated, for searching."""
    parts = [pdf]
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        try:
            parts.append(zlib.decompress(match.group(1)))
        except zlib.error:
            continue
    return b"\n".join(parts)


def test_the_pdf_is_one_80_mm_page_in_a_monospaced_font(paid):
    pdf = ticket_pdf(paid, "customer")

    assert pdf.startswith(b"%PDF-")
    boxes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", inflated(pdf))
    assert len(boxes) == 1  # one page
    width, height = (float(value) for value in boxes[0])
    assert width == pytest.approx(80 * MM, abs=0.01)  # 226.77 pt
    assert 80 * MM < height < 400 * MM
    fonts = re.findall(rb"/BaseFont\s*/[A-Z]{6}\+([A-Za-z0-9-]+)", inflated(pdf))
    assert fonts and all(b"Mono" in font for font in fonts)


def test_the_pdf_shows_the_48_column_text(paid):
    document = ticket_document(paid, "customer")

    assert len(document.pages) == 1
    shown = [
        "".join(child.text for child in box.descendants() if hasattr(child, "text"))
        for box in document.pages[0]._page_box.descendants(placeholders=True)
        if type(box).__name__ == "LineBox"
    ]
    assert shown == ticket_text(paid, "customer").splitlines()
    assert any(paid.payment.public_id in line for line in shown)


def test_a_longer_ticket_makes_a_longer_page(paid):
    def height(kind: str) -> float:
        found = re.search(
            rb"/MediaBox\s*\[\s*0\s+0\s+[\d.]+\s+([\d.]+)", inflated(ticket_pdf(paid, kind))
        )
        return float(found.group(1))

    assert height("customer") > height("in_progress")


def test_a_customer_who_paid_in_full_gets_no_schedule_and_no_credit_warning():
    """Refused credit, then paid the whole amount at once on the checkout page: the ticket
    must not announce instalments still to come, an APR or a credit."""
    ticket = Ticket(
        kind="customer",
        livemode=True,
        merchant_name="Boutique",
        shop="",
        terminal_name="Caisse 1",
        session_id="pos_session_" + "A" * 34,
        amount_cents=30000,
        printed_for=NOW,
        payment_id="payment_" + "B" * 34,
        installments_count=3,
        instalments=tuple(
            TicketInstalment(number=n, due_date=date(2026, 10 + n, 1), amount_cents=10000)
            for n in (1, 2)
        ),
        annual_interest_rate_bps=1990,
        portal_url="https://tranche.example/portal/sign-in",
        paid_in_full=True,
    )
    with translation.override("en"):
        text = "\n".join(tickets.ticket_lines(ticket, 48))
        paid = tickets.eur(30000)

    assert "Paid in full today" in text and "Paid today" in text and paid in text
    assert "instalments" not in text and "APR" not in text and "credit" not in text
    assert "01/11/2026" not in text and ("payment_" + "B" * 34) in text
