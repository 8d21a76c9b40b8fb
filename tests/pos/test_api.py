"""The terminal API: credentials, starting a sale (and every refusal), reading, cancelling,
tickets, "who am I", and the schema."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client as Browser
from django.utils import timezone, translation
from django.utils.translation import gettext
from rest_framework.test import APIClient

from apps.pos import services
from apps.pos.models import PosSession
from apps.verification.models import SmsMessage
from tests.conftest import make_shop
from tests.payments.test_checkout import finish, pay_up_to_code
from tests.pos.helpers import PHONE, PHONE_E164, started, terminal_for

pytestmark = pytest.mark.django_db

SESSIONS = "/v1/pos/sessions"
SALE = {"amount": 30000, "phone": PHONE, "reference": "T-1042", "staff": "Léa"}


def terminal_client(secret: str, scheme: str = "Terminal", **headers) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {secret}", **headers)
    return client


@pytest.fixture
def till(shop):
    """A terminal of ``shop`` and a client calling with its secret."""
    terminal, secret = terminal_for(shop)
    return terminal, terminal_client(secret)


# --- credentials ---------------------------------------------------------------------------


def test_an_unknown_secret_is_refused_with_invalid_terminal_credentials(shop):
    response = terminal_client("tk_test_" + "x" * 32).get("/v1/pos/terminal")

    assert response.status_code == 401
    assert response.json()["error_code"] == "invalid_terminal_credentials"
    assert response["WWW-Authenticate"].startswith("Terminal")


@pytest.mark.parametrize("header", ["", "Terminal", "Basic abc", "Terminal sk_test_abc"])
def test_a_missing_or_malformed_authorization_is_refused(shop, header):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)

    response = client.post(SESSIONS, SALE, format="json")

    assert response.status_code == 401
    assert response.json()["error_code"] == "invalid_terminal_credentials"


def test_a_merchant_api_key_does_not_open_the_terminal_api(shop):
    response = terminal_client(shop.test_key, scheme="Alma-Auth").get("/v1/pos/terminal")

    assert response.status_code == 401
    assert response.json()["error_code"] == "invalid_terminal_credentials"


def test_a_revoked_terminal_is_told_when_and_what_to_do(shop):
    terminal, secret = terminal_for(shop)
    services.terminal_revoke(terminal=terminal, now=timezone.now())

    response = terminal_client(secret).post(SESSIONS, SALE, format="json")

    assert response.status_code == 401
    body = response.json()
    assert body["error_code"] == "terminal_revoked"
    assert timezone.localdate().isoformat() in body["message"]
    assert "register it again" in body["message"]
    assert not PosSession.objects.exists()


def test_bearer_is_accepted_and_the_terminal_is_seen(shop):
    terminal, secret = terminal_for(shop)

    response = terminal_client(secret, scheme="Bearer").get("/v1/pos/terminal")

    assert response.status_code == 200
    terminal.refresh_from_db()
    assert terminal.last_seen_at is not None


def test_a_merchant_outside_france_gets_pos_not_available(db):
    belgian = make_shop(country="BE")
    terminal, secret = terminal_for(make_shop())  # registered while French...
    terminal.merchant = belgian.merchant
    terminal.save(update_fields=["merchant"])  # ...now the account is Belgian

    response = terminal_client(secret).post(SESSIONS, SALE, format="json")

    assert response.status_code == 403
    assert response.json()["error_code"] == "pos_not_available"
    assert "France" in response.json()["message"]


def test_a_suspended_merchant_gets_pos_not_available(shop):
    _terminal, secret = terminal_for(shop)
    shop.merchant.status = "suspended"
    shop.merchant.save(update_fields=["status"])

    response = terminal_client(secret).get("/v1/pos/terminal")

    assert response.status_code == 403
    assert response.json()["error_code"] == "pos_not_available"


def test_who_am_i(shop):
    terminal, secret = terminal_for(shop, name="Caisse 2")

    body = terminal_client(secret).get("/v1/pos/terminal").json()

    assert body == {
        "id": terminal.public_id,
        "name": "Caisse 2",
        "shop": "Boutique",
        "mode": "test",
        "merchant": {"id": shop.merchant.public_id, "name": shop.merchant.legal_name},
    }


# --- starting a sale ---------------------------------------------------------------------


def test_starting_a_sale_texts_the_customer_and_answers_the_session(shop, till):
    terminal, client = till

    response = client.post(SESSIONS, SALE, format="json")

    assert response.status_code == 201
    body = response.json()
    session = PosSession.objects.get()
    assert body["id"] == session.public_id
    assert body["object"] == "pos_session"
    assert body["state"] == "link_sent"
    assert body["amount"] == 30000
    assert body["currency"] == "EUR"
    assert body["phone"].startswith("+33 6") and body["phone"].endswith("78")
    assert "12 34 56" not in body["phone"]
    assert body["reference"] == "T-1042"
    assert body["staff"] == "Léa"
    assert body["terminal"] == {"id": terminal.public_id, "name": "Caisse 1"}
    assert body["expires"] - body["created"] == 15 * 60
    assert body["payment"] is None
    assert [t["kind"] for t in body["tickets"]] == ["in_progress"]
    assert "format=text" in body["tickets"][0]["text_url"]
    assert body["tickets"][0]["text_url"].startswith("http")
    assert response["ETag"] == session.etag
    sms = SmsMessage.objects.get(key=f"pos_session:{session.public_id}:link")
    assert sms.phone == PHONE_E164
    assert session.staff_name == "Léa"
    assert session.terminal == terminal


def test_the_same_sale_started_again_answers_the_same_session_with_200(till):
    _terminal, client = till
    first = client.post(SESSIONS, SALE, format="json")

    again = client.post(SESSIONS, SALE, format="json")

    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert PosSession.objects.count() == 1
    assert SmsMessage.objects.count() == 1


def test_an_idempotency_key_replays_the_first_answer(till):
    _terminal, client = till
    first = client.post(SESSIONS, SALE, format="json", HTTP_IDEMPOTENCY_KEY="sale-1")

    again = client.post(SESSIONS, SALE, format="json", HTTP_IDEMPOTENCY_KEY="sale-1")

    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


def test_another_sale_on_a_busy_terminal_is_a_409(till):
    _terminal, client = till
    client.post(SESSIONS, SALE, format="json")

    response = client.post(SESSIONS, {**SALE, "amount": 40000}, format="json")

    assert response.status_code == 409
    assert response.json()["error_code"] == "terminal_busy"


@pytest.mark.parametrize("amount", ["30000", 300.0, 300.5, True, None, [30000], {"v": 1}])
def test_an_amount_that_is_not_an_integer_is_a_400_naming_the_field(till, amount):
    _terminal, client = till

    response = client.post(SESSIONS, {**SALE, "amount": amount}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "validation_error"
    assert [e["field"] for e in body["errors"]] == ["amount"]
    assert not PosSession.objects.exists()


def test_a_missing_amount_or_phone_is_a_400(till):
    _terminal, client = till

    response = client.post(SESSIONS, {}, format="json")

    assert response.status_code == 400
    fields = {e["field"]: e["error_code"] for e in response.json()["errors"]}
    assert fields == {"amount": "missing_field", "phone": "missing_field"}


@pytest.mark.parametrize("amount", [4999, 200_001, 10**15])
def test_an_amount_out_of_bounds_is_a_400_with_the_bounds(till, amount):
    _terminal, client = till

    response = client.post(SESSIONS, {**SALE, "amount": amount}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "invalid_amount"
    assert body["minimum"] == 5000
    assert body["maximum"] == 200_000


@pytest.mark.parametrize("amount", [0, -100])
def test_a_zero_or_negative_amount_is_an_invalid_amount(till, amount):
    _terminal, client = till

    response = client.post(SESSIONS, {**SALE, "amount": amount}, format="json")

    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid_amount"


@pytest.mark.parametrize(
    ("phone", "says"),
    [
        ("06 12", "not valid"),
        ("", "not valid"),
        ("+32 470 12 34 56", "another country"),
        ("01 42 68 53 00", "mobile"),
    ],
)
def test_a_bad_phone_is_a_400_saying_what_is_wrong(till, phone, says):
    _terminal, client = till

    response = client.post(SESSIONS, {**SALE, "phone": phone}, format="json")

    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid_phone"
    assert says in response.json()["message"]
    assert not SmsMessage.objects.exists()


def test_a_phone_that_is_not_a_string_is_a_400_naming_the_field(till):
    _terminal, client = till

    response = client.post(SESSIONS, {**SALE, "phone": 612345678}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "phone"


# --- reading -------------------------------------------------------------------------------


def test_a_session_is_read_with_or_without_its_prefix(shop, till):
    terminal, client = till
    session = started(shop, terminal=terminal)

    with_prefix = client.get(f"{SESSIONS}/{session.public_id}")
    without = client.get(f"{SESSIONS}/{session.public_id.removeprefix('pos_session_')}")

    assert with_prefix.status_code == without.status_code == 200
    assert with_prefix.json()["id"] == without.json()["id"] == session.public_id


def test_another_terminal_of_the_merchant_reads_the_session(shop, till):
    terminal, _client = till
    session = started(shop, terminal=terminal)
    _other, other_secret = terminal_for(shop, name="Caisse 2")

    response = terminal_client(other_secret).get(f"{SESSIONS}/{session.public_id}")

    assert response.status_code == 200
    assert response.json()["terminal"]["name"] == "Caisse 1"


def test_a_virtual_terminal_session_has_no_terminal(shop, till):
    _terminal, client = till
    session = started(shop)

    body = client.get(f"{SESSIONS}/{session.public_id}").json()

    assert body["terminal"] is None


def test_another_merchants_or_the_other_modes_session_is_a_404(shop, other_shop, till):
    _terminal, client = till
    theirs = started(other_shop)
    live = started(shop, livemode=True)

    for session in (theirs, live):
        response = client.get(f"{SESSIONS}/{session.public_id}")
        assert response.status_code == 404
        assert response.json()["object_type"] == "pos_session"
        assert response.json()["value"] == session.public_id
        assert client.post(f"{SESSIONS}/{session.public_id}/cancel").status_code == 404
        assert client.get(f"{SESSIONS}/{session.public_id}/tickets").status_code == 404
    assert PosSession.objects.get(pk=theirs.pk).state == "link_sent"


def test_the_screen_message_is_french_by_default_and_english_on_request(shop, till):
    terminal, client = till
    session = started(shop, terminal=terminal)
    english = terminal_client(
        terminal_for(shop, name="x")[1], HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.8"
    )

    french = client.get(f"{SESSIONS}/{session.public_id}").json()["message"]
    in_english = english.get(f"{SESSIONS}/{session.public_id}").json()["message"]

    with translation.override("fr"):
        assert french == gettext("Link sent to the customer")
    assert in_english == "Link sent to the customer"


def test_an_expired_session_reads_expired(shop, till, time_machine):
    terminal, client = till
    session = started(shop, terminal=terminal)
    time_machine.move_to(timezone.now() + timedelta(minutes=16))

    body = client.get(f"{SESSIONS}/{session.public_id}", HTTP_ACCEPT_LANGUAGE="en").json()

    assert body["state"] == "expired"
    assert body["message"] == "Session expired"


# --- cancelling ----------------------------------------------------------------------------


def test_cancelling_answers_the_cancelled_session_and_again(shop, till):
    terminal, client = till
    session = started(shop, terminal=terminal)

    first = client.post(f"{SESSIONS}/{session.public_id}/cancel")
    again = client.post(f"{SESSIONS}/{session.public_id}/cancel")

    assert first.status_code == again.status_code == 200
    assert first.json()["state"] == again.json()["state"] == "cancelled"
    assert client.post(SESSIONS, {**SALE, "amount": 40000}, format="json").status_code == 201


def test_a_terminal_cancels_only_its_own_sales(shop, till):
    _terminal, client = till
    other_till, _secret = terminal_for(shop, name="Caisse 2")
    theirs = started(shop, terminal=other_till)
    virtual = started(shop, phone="07 81 23 45 67")

    for session in (theirs, virtual):
        response = client.post(f"{SESSIONS}/{session.public_id}/cancel")
        assert response.status_code == 403
        assert response.json()["error_code"] == "not_this_terminal"
        session.refresh_from_db()
        assert session.state == "link_sent"
    assert client.get(f"{SESSIONS}/{theirs.public_id}").status_code == 200  # still readable


def test_cancelling_an_expired_session_is_a_409(shop, till, time_machine):
    terminal, client = till
    session = started(shop, terminal=terminal)
    time_machine.move_to(timezone.now() + timedelta(minutes=16))

    response = client.post(f"{SESSIONS}/{session.public_id}/cancel")

    assert response.status_code == 409
    assert response.json()["error_code"] == "session_finished"


# --- tickets -------------------------------------------------------------------------------


def test_the_tickets_of_a_session_waiting_for_the_customer(shop, till):
    terminal, client = till
    session = started(shop, terminal=terminal)

    body = client.get(f"{SESSIONS}/{session.public_id}/tickets").json()

    assert [t["kind"] for t in body["data"]] == ["in_progress"]
    ticket = body["data"][0]
    assert max(len(line) for line in ticket["text_32"].splitlines()) <= 32
    assert max(len(line) for line in ticket["text_48"].splitlines()) <= 48
    assert max(len(line) for line in ticket["text_48"].splitlines()) > 32
    assert "format=pdf" in ticket["pdf_url"]


def test_one_ticket_as_text_and_as_pdf(shop, till):
    terminal, client = till
    session = started(shop, terminal=terminal)
    url = f"{SESSIONS}/{session.public_id}/tickets/in_progress"

    text = client.get(url, {"format": "text", "width": "32"}, HTTP_ACCEPT="text/plain")
    pdf = client.get(url, {"format": "pdf"}, HTTP_ACCEPT="application/pdf")

    assert text.status_code == 200
    assert text["Content-Type"].startswith("text/plain")
    lines = text.content.decode().splitlines()
    assert lines and max(len(line) for line in lines) <= 32
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")


def test_ticket_refusals(shop, till):
    terminal, client = till
    session = started(shop, terminal=terminal)
    base = f"{SESSIONS}/{session.public_id}/tickets"

    unknown = client.get(f"{base}/receipt")
    not_yet = client.get(f"{base}/customer")
    bad_width = client.get(f"{base}/in_progress", {"width": "40"})
    bad_lang = client.get(base, {"lang": "de"})

    assert unknown.status_code == 404
    assert unknown.json()["object_type"] == "ticket"
    assert not_yet.status_code == 409
    assert not_yet.json()["error_code"] == "ticket_not_available"
    assert bad_width.status_code == 400
    assert bad_width.json()["errors"][0]["field"] == "width"
    assert bad_lang.status_code == 400


# --- schema --------------------------------------------------------------------------------


def test_the_schema_documents_the_terminal_api(client):
    schema = client.get("/v1/schema").json()

    assert "Terminal" in schema["components"]["securitySchemes"]
    paths = schema["paths"]
    operations = [
        paths["/v1/pos/sessions"]["post"],
        paths["/v1/pos/sessions/{session_id}"]["get"],
        paths["/v1/pos/sessions/{session_id}/cancel"]["post"],
        paths["/v1/pos/sessions/{session_id}/tickets"]["get"],
        paths["/v1/pos/sessions/{session_id}/tickets/{kind}"]["get"],
        paths["/v1/pos/terminal"]["get"],
    ]
    for operation in operations:
        assert operation["tags"] == ["Terminal API"]
        assert operation["security"] == [{"Terminal": []}]
        assert operation["summary"]
        assert "401" in operation["responses"]
    poll = paths["/v1/pos/sessions/{session_id}"]["get"]
    assert {p["name"] for p in poll["parameters"]} >= {"wait", "If-None-Match"}
    assert "304" in poll["responses"]
    assert "ETag" in poll["responses"]["200"]["headers"]


def test_a_paid_session_shows_its_payment_and_both_tickets(shop, till):
    terminal, client = till
    session = started(shop, terminal=terminal)
    payment = services.session_choose_plan(session_id=session.pk, key="3_0_0", now=timezone.now())
    browser = Browser()
    finish(browser, pay_up_to_code(browser, payment))

    body = client.get(f"{SESSIONS}/{session.public_id}", HTTP_ACCEPT_LANGUAGE="en").json()
    tickets = client.get(f"{SESSIONS}/{session.public_id}/tickets", {"lang": "en"}).json()
    cancel = client.post(f"{SESSIONS}/{session.public_id}/cancel")

    assert body["state"] == "paid"
    assert body["message"] == "Payment accepted"
    assert body["payment"] == {
        "id": payment.public_id,
        "state": "in_progress",
        "installments_count": 3,
        "kind": "P3X",
        "purchase_amount": 30000,
        "customer_fee": body["payment"]["customer_fee"],
    }
    assert isinstance(body["payment"]["customer_fee"], int)
    assert {t["kind"] for t in body["tickets"]} == {"in_progress", "customer", "merchant"}
    assert {t["kind"] for t in tickets["data"]} == {"in_progress", "customer", "merchant"}
    merchant_copy = next(t for t in tickets["data"] if t["kind"] == "merchant")
    assert payment.public_id[-8:] in merchant_copy["text_48"].replace("\n", "")
    assert cancel.status_code == 409
    assert cancel.json()["error_code"] == "session_finished"
