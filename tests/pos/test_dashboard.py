"""The dashboard's virtual terminal, a sale followed live, and the terminals page."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone, translation

from apps.merchants.models import Membership
from apps.pos import dashboard, services
from apps.pos.forms import euros_to_cents
from apps.pos.models import PosSession, Terminal
from apps.verification.models import SmsMessage
from tests.conftest import make_shop
from tests.factories import MembershipFactory
from tests.pos.helpers import PHONE, PHONE_E164, started, terminal_for


@pytest.fixture(autouse=True)
def _english(client):
    """The assertions read the English pages (French is the default; tested elsewhere)."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    with translation.override("en"):
        yield


pytestmark = pytest.mark.django_db

TERMINAL_URL = "/dashboard/terminal/"
TERMINALS_URL = "/dashboard/terminals/"


def _logged_in(client, user):
    client.force_login(user)
    return client


def _token(html: str) -> str:
    return re.search(r'name="token" value="([0-9a-f]{32})"', html).group(1)


def _sale_form(client) -> str:
    return _token(client.get(TERMINAL_URL).content.decode())


def _sale(client, token: str, *, amount="300", phone=PHONE, reference=""):
    return client.post(
        TERMINAL_URL,
        {"amount": amount, "phone": phone, "reference": reference, "token": token},
    )


# --- amounts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "cents"),
    [
        ("300", 30000),
        ("300,00", 30000),
        ("300.5", 30050),
        ("1 250,99", 125099),
        ("1\u202f250,01 €", 125001),
        ("0,07", 7),
    ],
)
def test_amounts_in_euros_read_as_exact_cents(raw, cents):
    assert euros_to_cents(raw) == cents


@pytest.mark.parametrize("raw", ["", "abc", "300,001", "-5", "3e2", "300,,00", "1.250,00"])
def test_what_is_not_an_amount_reads_as_nothing(raw):
    assert euros_to_cents(raw) is None


# --- the virtual terminal --------------------------------------------------------------------


def test_the_nav_leads_to_the_virtual_terminal(client, shop):
    html = _logged_in(client, shop.owner).get("/dashboard/").content.decode()

    assert f'href="{TERMINAL_URL}"' in html


def test_the_virtual_terminal_shows_the_form_and_an_empty_day(client, shop):
    response = _logged_in(client, shop.owner).get(TERMINAL_URL, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="amount"' in html and 'name="phone"' in html and 'name="reference"' in html
    assert "No sale today yet." in html
    assert "In-store plans take amounts from" in html


def test_a_staff_member_starts_a_sale_and_the_customer_gets_the_link(client, shop):
    member = MembershipFactory(merchant=shop.merchant, role=Membership.Role.STAFF).user
    member.first_name, member.last_name = "Léa", "Martin"
    member.save()
    client = _logged_in(client, member)

    response = _sale(client, _sale_form(client), amount="300,00", reference="T-42")

    session = PosSession.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("pos:session", args=[session.public_id])
    assert session.terminal is None
    assert session.staff_user == member
    assert session.staff_name == "Léa Martin"
    assert session.livemode is False
    assert session.amount.amount * 100 == 30000
    assert str(session.customer_phone) == PHONE_E164
    assert session.reference == "T-42"
    assert session.state == PosSession.State.LINK_SENT
    assert SmsMessage.objects.filter(key=f"pos_session:{session.public_id}:link").count() == 1


def test_the_sale_is_started_in_the_dashboard_mode(client, shop):
    client = _logged_in(client, shop.owner)
    client.post("/dashboard/mode/", {"mode": "live"})

    _sale(client, _sale_form(client))

    assert PosSession.objects.get().livemode is True


def test_a_double_submit_starts_one_session(client, shop):
    client = _logged_in(client, shop.owner)
    token = _sale_form(client)

    first = _sale(client, token)
    second = _sale(client, token)

    session = PosSession.objects.get()
    assert (
        first["Location"] == second["Location"] == reverse("pos:session", args=[session.public_id])
    )
    assert SmsMessage.objects.count() == 1


def test_a_token_the_session_never_issued_starts_nothing(client, shop):
    client = _logged_in(client, shop.owner)
    client.get(TERMINAL_URL)

    response = _sale(client, "0" * 32)

    assert response.status_code == 302
    assert response["Location"] == TERMINAL_URL
    assert not PosSession.objects.exists()


def test_an_amount_outside_the_plans_is_shown_on_its_field_and_the_form_may_be_corrected(
    client, shop
):
    client = _logged_in(client, shop.owner)
    token = _sale_form(client)

    refused = _sale(client, token, amount="20")
    accepted = _sale(client, token, amount="300")

    assert refused.status_code == 200
    form = refused.context["form"]
    assert "amount" in form.errors and "In-store plans take amounts" in form.errors["amount"][0]
    assert accepted.status_code == 302
    assert PosSession.objects.count() == 1


@pytest.mark.parametrize(
    ("phone", "words"),
    [("+32 470 12 34 56", "another country"), ("01 23 45 67 89", "not a mobile"), ("12", "")],
)
def test_a_bad_phone_is_shown_on_its_field(client, shop, phone, words):
    client = _logged_in(client, shop.owner)

    response = _sale(client, _sale_form(client), phone=phone)

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == ["phone"]
    assert words in errors["phone"][0]
    assert not PosSession.objects.exists()


def test_an_amount_that_is_not_a_number_is_shown_on_its_field(client, shop):
    client = _logged_in(client, shop.owner)

    response = _sale(client, _sale_form(client), amount="trois cents")

    assert list(response.context["form"].errors) == ["amount"]


def test_a_belgian_merchant_sees_why_instead_of_the_form(client, db):
    belgian = make_shop(country="BE")
    client = _logged_in(client, belgian.owner)

    page = client.get(TERMINAL_URL)
    posted = client.post(TERMINAL_URL, {"amount": "300", "phone": PHONE, "token": "0" * 32})

    html = page.content.decode()
    assert 'data-testid="pos-unavailable"' in html
    assert "only available to merchants operating in France" in html
    assert 'name="amount"' not in html
    assert posted.status_code == 200
    assert not PosSession.objects.exists()


def test_the_list_shows_todays_sessions_of_this_merchant_and_mode_newest_first(
    client, shop, other_shop
):
    now = timezone.now()
    yesterday = started(shop, amount_cents=10000, now=now - timedelta(days=1))
    older = started(shop, amount_cents=20000, now=now - timedelta(minutes=2))
    newer = started(shop, amount_cents=30000, now=now - timedelta(minutes=1))
    live = started(shop, amount_cents=40000, livemode=True, now=now)
    foreign = started(other_shop, amount_cents=50000, now=now)

    html = _logged_in(client, shop.owner).get(TERMINAL_URL).content.decode()

    shown = re.findall(r"/dashboard/terminal/sessions/(pos_session_\w+)/", html)
    assert shown == [newer.public_id, older.public_id]
    for hidden in (yesterday, live, foreign):
        assert hidden.public_id not in html


def test_the_list_is_paginated(client, shop, monkeypatch):
    monkeypatch.setattr(dashboard, "SESSIONS_PER_PAGE", 2)
    now = timezone.now()
    ids = [started(shop, now=now - timedelta(minutes=m)).public_id for m in (3, 2, 1)]
    client = _logged_in(client, shop.owner)

    first = client.get(TERMINAL_URL).content.decode()
    second = client.get(TERMINAL_URL + "?page=2").content.decode()

    assert ids[2] in first and ids[1] in first and ids[0] not in first
    assert ids[0] in second and ids[2] not in second
    assert "?page=2" in first


def test_the_list_shows_an_expired_session_as_expired(client, shop):
    session = started(shop, now=timezone.now() - timedelta(hours=1))

    html = _logged_in(client, shop.owner).get(TERMINAL_URL).content.decode()

    session.refresh_from_db()
    assert session.state == PosSession.State.EXPIRED
    assert 'class="badge expired"' in html


# --- one session -----------------------------------------------------------------------------


def _session_url(session, name="pos:session", *args):
    return reverse(name, args=[session.public_id, *args])


def test_the_session_page_shows_the_steps_the_ticket_and_the_cancel_button(client, shop):
    session = started(shop)

    response = _logged_in(client, shop.owner).get(_session_url(session), HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-state="link_sent"' in html
    assert "Link sent to the customer by SMS" in html
    assert '<pre class="ticket" data-kind="in_progress">' in html
    assert _session_url(session, "pos:session-ticket-pdf", "in_progress") in html
    assert _session_url(session, "pos:session-cancel") in html
    assert _session_url(session, "pos:session-status") in html
    assert "/static/js/pos-session.js" in html
    ticket = unescape(re.search(r'data-kind="in_progress">(.*?)</pre>', html, re.S).group(1))
    assert max(len(line) for line in ticket.splitlines()) <= 48


def test_the_session_is_found_without_its_prefix(client, shop):
    session = started(shop)
    short = session.public_id.removeprefix("pos_session_")

    response = _logged_in(client, shop.owner).get(f"/dashboard/terminal/sessions/{short}/")

    assert response.status_code == 200


def test_another_merchants_or_the_other_modes_session_is_not_found(client, shop, other_shop):
    foreign = started(other_shop)
    live = started(shop, livemode=True)
    client = _logged_in(client, shop.owner)

    for session in (foreign, live):
        assert client.get(_session_url(session)).status_code == 404
        assert client.get(_session_url(session, "pos:session-status")).status_code == 404
        assert client.post(_session_url(session, "pos:session-cancel")).status_code == 404
    assert PosSession.objects.get(pk=foreign.pk).state == PosSession.State.LINK_SENT


def test_the_status_answers_with_an_etag_and_304_while_nothing_changes(client, shop):
    session = started(shop)
    client = _logged_in(client, shop.owner)
    url = _session_url(session, "pos:session-status")

    first = client.get(url)
    same = client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])

    assert first.status_code == 200
    assert first["ETag"] == session.etag
    data = first.json()
    assert data["state"] == "link_sent"
    assert data["final"] is False and data["cancellable"] is True
    assert data["tickets"] == ["in_progress"]
    assert 'data-kind="in_progress"' in data["html"]
    assert same.status_code == 304


def test_the_status_follows_the_customer_and_the_cancel(client, shop):
    session = started(shop)
    client = _logged_in(client, shop.owner)
    url = _session_url(session, "pos:session-status")
    etag = client.get(url)["ETag"]

    services.session_opened(session_id=session.pk, now=timezone.now())
    opened = client.get(url, HTTP_IF_NONE_MATCH=etag)
    client.post(_session_url(session, "pos:session-cancel"))
    cancelled = client.get(url, HTTP_IF_NONE_MATCH=opened["ETag"])

    assert opened.status_code == 200 and opened.json()["state"] == "customer_in_progress"
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["final"] is True and cancelled.json()["cancellable"] is False


def test_cancelling_twice_is_harmless(client, shop):
    session = started(shop)
    client = _logged_in(client, shop.owner)
    url = _session_url(session, "pos:session-cancel")

    first = client.post(url)
    second = client.post(url)

    assert first.status_code == second.status_code == 302
    session.refresh_from_db()
    assert session.state == PosSession.State.CANCELLED


def test_an_expired_session_cannot_be_cancelled_and_says_why(client, shop):
    session = started(shop)
    client = _logged_in(client, shop.owner)

    with time_machine.travel(timezone.now() + timedelta(minutes=20)):
        response = client.post(_session_url(session, "pos:session-cancel"), follow=True)

    session.refresh_from_db()
    assert session.state == PosSession.State.EXPIRED
    messages = [str(m) for m in response.context["messages"]]
    assert any("can no longer be cancelled" in m for m in messages)


def test_cancel_only_posts(client, shop):
    session = started(shop)

    response = _logged_in(client, shop.owner).get(_session_url(session, "pos:session-cancel"))

    assert response.status_code == 405


def test_the_ticket_pdf_is_a_pdf(client, shop):
    session = started(shop)

    response = _logged_in(client, shop.owner).get(
        _session_url(session, "pos:session-ticket-pdf", "in_progress")
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")


def test_a_ticket_not_printed_yet_or_unknown_is_refused(client, shop):
    session = started(shop)
    client = _logged_in(client, shop.owner)

    not_yet = client.get(_session_url(session, "pos:session-ticket-pdf", "customer"))
    unknown = client.get(_session_url(session, "pos:session-ticket-pdf", "receipt"))

    assert not_yet.status_code == 409
    assert unknown.status_code == 404


# --- terminals -------------------------------------------------------------------------------


def _register_form(client) -> str:
    return _token(client.get(TERMINALS_URL).content.decode())


def _register(client, token, name="Caisse 2"):
    return client.post(
        TERMINALS_URL, {"name": name, "shop": "Lyon", "serial_number": "SN-1", "token": token}
    )


def test_the_owner_registers_a_terminal_and_sees_its_secret_once(client, shop):
    client = _logged_in(client, shop.owner)

    response = _register(client, _register_form(client))
    again = client.get(TERMINALS_URL)

    terminal = Terminal.objects.get()
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    html = response.content.decode()
    secret = re.search(r'data-testid="terminal-secret">(tk_test_\w+)<', html).group(1)
    assert services.terminal_for_secret(secret) == terminal
    assert f"/pos/simulator/#secret={secret}" in html
    assert (terminal.name, terminal.shop, terminal.serial_number) == ("Caisse 2", "Lyon", "SN-1")
    assert terminal.created_by == shop.owner and terminal.livemode is False
    assert secret not in again.content.decode()
    assert terminal.display_prefix in again.content.decode()


def test_registering_twice_with_one_form_registers_one_terminal(client, shop):
    client = _logged_in(client, shop.owner)
    token = _register_form(client)

    _register(client, token)
    second = _register(client, token)

    assert Terminal.objects.count() == 1
    assert second.status_code == 302
    page = client.get(second["Location"], HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "This terminal was already registered" in page
    assert 'data-testid="terminal-secret"' not in page


def test_a_terminal_needs_a_name(client, shop):
    client = _logged_in(client, shop.owner)

    response = _register(client, _register_form(client), name="  ")

    assert response.status_code == 400
    assert "name" in response.context["form"].errors
    assert not Terminal.objects.exists()


def test_the_list_shows_this_modes_terminals_and_their_state(client, shop, other_shop):
    test_terminal, _ = terminal_for(shop, name="Caisse test")
    revoked, _ = terminal_for(shop, name="Caisse ancienne")
    services.terminal_revoke(terminal=revoked, now=timezone.now())
    terminal_for(shop, livemode=True, name="Caisse live")
    terminal_for(other_shop, name="Caisse voisine")

    html = _logged_in(client, shop.owner).get(TERMINALS_URL, HTTP_ACCEPT_LANGUAGE="en")
    html = html.content.decode()

    assert "Caisse test" in html and "Caisse ancienne" in html
    assert "Caisse live" not in html and "Caisse voisine" not in html
    assert "Revoked on" in html and "Never" in html
    assert reverse("pos:terminal-revoke", args=[test_terminal.public_id]) in html
    assert reverse("pos:terminal-revoke", args=[revoked.public_id]) not in html


def test_a_staff_member_sees_the_terminals_but_may_not_register_or_revoke(client, shop):
    terminal, _ = terminal_for(shop)
    member = MembershipFactory(merchant=shop.merchant, role=Membership.Role.STAFF).user
    client = _logged_in(client, member)

    page = client.get(TERMINALS_URL)
    posted = client.post(TERMINALS_URL, {"name": "Caisse 3", "token": "0" * 32})
    revoked = client.post(reverse("pos:terminal-revoke", args=[terminal.public_id]))

    assert page.status_code == 200
    assert terminal.name in page.content.decode()
    assert 'data-testid="register-form"' not in page.content.decode()
    assert posted.status_code == 403 and revoked.status_code == 403
    assert Terminal.objects.count() == 1
    assert Terminal.objects.get().revoked_at is None


def test_revoking_a_terminal_stops_it_and_cancels_its_sale(client, shop):
    terminal, secret = terminal_for(shop)
    session = started(shop, terminal=terminal)

    response = _logged_in(client, shop.owner).post(
        reverse("pos:terminal-revoke", args=[terminal.public_id])
    )

    terminal.refresh_from_db()
    session.refresh_from_db()
    assert response.status_code == 302
    assert terminal.revoked_by == shop.owner and terminal.is_revoked
    assert session.state == PosSession.State.CANCELLED
    assert services.terminal_for_secret(secret).is_revoked


def test_another_merchants_terminal_cannot_be_revoked(client, shop, other_shop):
    foreign, _ = terminal_for(other_shop)

    response = _logged_in(client, shop.owner).post(
        reverse("pos:terminal-revoke", args=[foreign.public_id])
    )

    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None


def test_a_belgian_merchant_sees_why_on_the_terminals_page(client, db):
    belgian = make_shop(country="BE")

    html = _logged_in(client, belgian.owner).get(TERMINALS_URL).content.decode()

    assert "only available to merchants operating in France" in html
    assert 'data-testid="register-form"' not in html
