"""Signing in to the portal: a one-time code by email or SMS (counted, locked, expiring,
rate-limited, saying nothing about who is a customer), sessions that end, safe redirects,
and the signed links of our emails (valid, tampered, expired, and the old /plan/ links)."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import signing
from django.test import Client
from django.utils import translation

from apps.common.emails import email_content
from apps.common.models import OutgoingEmail
from apps.payments import links
from apps.payments.models import Customer, Payment
from apps.schedules.models import SignInCode
from apps.schedules.portal import signin
from apps.schedules.portal.session import CUSTOMER_KEY
from apps.verification.models import SmsMessage
from tests.payments.builders import payment_create_for
from tests.portal.helpers import CAMILLE, DOMINIQUE, plan_for, sign_in

pytestmark = pytest.mark.django_db

BOUGHT = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # 4 x 100 EUR: Nov 2, Dec 2, Jan 2, Feb 2
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
BASE = "http://127.0.0.1:8000"


@pytest.fixture
def camille(shop):
    """Camille's test-mode plan at ``shop``, and Camille (the test-mode customer)."""
    payment = plan_for(shop, CAMILLE, when=BOUGHT)
    return payment.customer


def live_plan(shop, person: dict) -> Payment:
    """A live-mode plan for ``person``, marked accepted (the sandbox tokenises test cards
    only: the charge and the ledger are left out, which these pages do not read)."""
    payment = payment_create_for(shop, livemode=True, customer=dict(person), now=BOUGHT)
    Payment.objects.filter(pk=payment.pk).update(accepted_at=BOUGHT, state="in_progress")
    return Payment.objects.get(pk=payment.pk)


def english() -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE="en")


def ask_code(client: Client, identifier: str, *, test: bool = True, **extra):
    data = {"identifier": identifier, **({"mode": "test"} if test else {})}
    return client.post("/portal/sign-in", data, **extra)


def type_code(client: Client, code: str):
    return client.post("/portal/sign-in/code", {"action": "verify", "code": code})


def latest_sign_in() -> SignInCode:
    return SignInCode.objects.latest("created_at", "pk")


def signed_in(client: Client) -> int | None:
    return client.session.get(CUSTOMER_KEY)


def text_of(response) -> str:
    return response.content.decode()


# --- by email -------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_a_code_sent_by_email_signs_the_customer_in_and_opens_their_plans(camille, shop):
    client = english()

    asked = ask_code(client, "  Camille.Martin@Example.com ")

    assert asked.status_code == 302 and asked.url == "/portal/sign-in/code"
    row = latest_sign_in()
    assert row.customer == camille and row.channel == "email" and not row.livemode
    assert row.destination == "camille.martin@example.com"
    assert row.expires_at == NOW + timedelta(minutes=10)
    email = OutgoingEmail.objects.get(key=f"signin:{row.public_id}")
    assert email.to == "camille.martin@example.com"
    text, html = email_content(email)
    code = re.search(r"\b(\d{6})\b", text).group(1)
    assert code == row.test_code and code in html
    assert row.code_hash and code not in row.code_hash
    page = client.get("/portal/sign-in/code")
    assert "c•••@example.com" in text_of(page)
    assert f'data-testid="test-code">{code}<' in text_of(page)

    done = type_code(client, f"{code[:3]} {code[3:]}")

    assert done.status_code == 302 and done.url == "/portal/"
    assert signed_in(client) == camille.pk
    plans = client.get("/portal/")
    assert plans.status_code == 200 and shop.merchant.legal_name in text_of(plans)
    row.refresh_from_db()
    assert row.verified_at == NOW and row.attempts == 0


@time_machine.travel(NOW, tick=False)
def test_the_sign_in_email_is_written_in_the_pages_language(camille):
    ask_code(Client(HTTP_ACCEPT_LANGUAGE="fr"), CAMILLE["email"])

    row = latest_sign_in()
    email = OutgoingEmail.objects.get(key=f"signin:{row.public_id}")
    assert email.language == "fr"
    text, _html = email_content(email)
    assert row.test_code in text


# --- by SMS ---------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_a_code_sent_by_sms_goes_to_the_customer_who_verified_that_number(camille):
    Customer.objects.filter(pk=camille.pk).update(phone="+33612345678", phone_verified_at=BOUGHT)
    client = english()

    ask_code(client, "06 12 34 56 78")

    row = latest_sign_in()
    assert row.channel == "sms" and row.destination == "+33612345678"
    assert row.customer == camille
    sms = SmsMessage.objects.get(key=f"signin:{row.public_id}")
    assert sms.phone == "+33612345678" and sms.status == "not_sent_test_mode"
    code = re.search(r"\b(\d{6})\b", sms.text).group(1)
    assert "+33 6 •• •• •• 78" in text_of(client.get("/portal/sign-in/code"))
    type_code(client, code)
    assert signed_in(client) == camille.pk


@time_machine.travel(NOW, tick=False)
def test_a_live_sms_code_is_kept_masked_and_the_row_keeps_no_plain_code(db):
    customer = Customer.objects.create(
        livemode=True,
        email="live@example.com",
        phone="+33612345678",
        phone_verified_at=BOUGHT,
        created_at=BOUGHT,
        updated_at=BOUGHT,
    )

    row = signin.sign_in_start(
        identifier="+33 6 12 34 56 78", livemode=True, language="en", now=NOW
    )

    assert row.customer == customer and row.test_code == ""
    sms = SmsMessage.objects.get(key=f"signin:{row.public_id}")
    assert "••••••" in sms.text and sms.sealed_text
    assert not re.search(r"\d{6}", sms.text)


@time_machine.travel(NOW, tick=False)
def test_a_number_nobody_verified_or_that_two_customers_share_sends_no_code(camille, other_shop):
    dominique = plan_for(other_shop, DOMINIQUE, when=BOUGHT).customer

    signin.sign_in_start(identifier="+33612345678", livemode=False, language="en", now=NOW)
    unverified = latest_sign_in()
    Customer.objects.filter(pk__in=[camille.pk, dominique.pk]).update(
        phone="+33612345678", phone_verified_at=BOUGHT
    )
    signin.sign_in_start(identifier="+33612345678", livemode=False, language="en", now=NOW)
    shared = latest_sign_in()

    assert unverified.customer is None and shared.customer is None
    assert not SmsMessage.objects.exists()
    with pytest.raises(signin.SignInCodeWrong):
        signin.sign_in_verify(sign_in_id=shared.public_id, code=shared.test_code, now=NOW)


@pytest.mark.parametrize("typed", ["", "   ", "hello", "01 23", "a@b", "x" * 300 + "@e.com"])
def test_what_is_neither_an_email_nor_a_mobile_number_is_refused_clearly(db, typed):
    with translation.override("en"), time_machine.travel(NOW, tick=False):
        response = english().post("/portal/sign-in", {"identifier": typed, "mode": "test"})

    assert response.status_code == 400
    assert "Enter your email or your mobile number." in text_of(response)
    assert not SignInCode.objects.exists()


# --- nobody learns who is a customer --------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_an_unknown_email_gets_the_same_answer_as_a_customers_and_no_code(db):
    Customer.objects.create(
        livemode=True, email="anna@example.com", created_at=BOUGHT, updated_at=BOUGHT
    )
    known, unknown = english(), english()

    known_asked = ask_code(known, "anna@example.com", test=False)
    unknown_asked = ask_code(unknown, "anne@example.com", test=False)
    known_page = text_of(known.get("/portal/sign-in/code"))
    unknown_page = text_of(unknown.get("/portal/sign-in/code"))

    assert known_asked.status_code == unknown_asked.status_code == 302
    assert known_asked.url == unknown_asked.url
    mine, theirs = SignInCode.objects.order_by("pk")
    assert mine.customer is not None and theirs.customer is None
    assert OutgoingEmail.objects.filter(key__startswith="signin:").count() == 1
    assert OutgoingEmail.objects.get().to == "anna@example.com"

    def without_tokens(page: str) -> str:
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", page)

    assert without_tokens(known_page) == without_tokens(unknown_page)
    assert "a•••@example.com" in known_page  # both masks are the same here


@time_machine.travel(NOW, tick=False)
def test_an_erased_customer_is_not_found(camille):
    Customer.objects.filter(pk=camille.pk).update(erased_at=NOW)

    row = signin.sign_in_start(identifier=CAMILLE["email"], livemode=False, language="en", now=NOW)

    assert row.customer is None
    assert not OutgoingEmail.objects.filter(key__startswith="signin:").exists()


@time_machine.travel(NOW, tick=False)
def test_test_mode_and_live_customers_with_one_email_are_never_mixed(shop, camille):
    live = live_plan(shop, CAMILLE).customer
    assert live.pk != camille.pk and live.livemode

    test_row = signin.sign_in_start(
        identifier=CAMILLE["email"], livemode=False, language="en", now=NOW
    )
    live_row = signin.sign_in_start(
        identifier=CAMILLE["email"], livemode=True, language="en", now=NOW
    )

    assert test_row.customer == camille and live_row.customer == live
    assert live_row.test_code == "" and test_row.test_code
    # The test code never opens the live sign-in.
    with pytest.raises(signin.SignInCodeWrong):
        signin.sign_in_verify(sign_in_id=live_row.public_id, code=test_row.test_code, now=NOW)


# --- wrong codes, locks, expiry ------------------------------------------------------------


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


@time_machine.travel(NOW, tick=False)
def test_wrong_codes_are_counted_and_say_how_many_tries_are_left(camille):
    client = english()
    ask_code(client, CAMILLE["email"])
    row = latest_sign_in()

    response = type_code(client, wrong(row.test_code))

    assert response.status_code == 422
    assert "This code is not right. You have 4 attempts left." in text_of(response)
    row.refresh_from_db()
    assert row.attempts == 1 and row.locked_at is None
    assert signed_in(client) is None


@time_machine.travel(NOW, tick=False)
def test_the_fifth_wrong_code_locks_the_sign_in_even_for_the_right_code(camille, caplog):
    client = english()
    ask_code(client, CAMILLE["email"], REMOTE_ADDR="203.0.113.7")
    row = latest_sign_in()

    for _attempt in range(4):
        type_code(client, wrong(row.test_code))
    with caplog.at_level(logging.WARNING, logger="apps.schedules.portal.signin"):
        fifth = type_code(client, wrong(row.test_code))
    right = type_code(client, row.test_code)

    assert fifth.status_code == right.status_code == 429
    assert "Too many wrong codes" in text_of(right)
    assert "Start again" in text_of(right)
    row.refresh_from_db()
    assert row.attempts == 5 and row.locked_at == NOW
    assert signed_in(client) is None
    [record] = [r for r in caplog.records if "locked" in r.getMessage()]
    assert "c•••@example.com" in record.getMessage()
    assert "203.0.113.7" in record.getMessage()
    assert "camille.martin" not in record.getMessage()


def test_wrong_codes_on_a_sign_in_without_a_customer_lock_it_the_same_way(db):
    row = signin.sign_in_start(
        identifier="nobody@example.com", livemode=False, language="en", now=NOW
    )

    refusals = []
    for _attempt in range(5):
        with pytest.raises((signin.SignInCodeWrong, signin.SignInLocked)) as refused:
            signin.sign_in_verify(sign_in_id=row.public_id, code=row.test_code, now=NOW)
        refusals.append(type(refused.value).__name__)

    assert refusals == ["SignInCodeWrong"] * 4 + ["SignInLocked"]


def test_an_expired_code_is_refused(camille):
    row = signin.sign_in_start(identifier=CAMILLE["email"], livemode=False, language="en", now=NOW)

    with pytest.raises(signin.SignInCodeExpired):
        signin.sign_in_verify(
            sign_in_id=row.public_id, code=row.test_code, now=NOW + timedelta(minutes=10)
        )

    row.refresh_from_db()
    assert row.verified_at is None


def test_a_code_signs_in_once_a_double_submit_aside(camille):
    row = signin.sign_in_start(identifier=CAMILLE["email"], livemode=False, language="en", now=NOW)

    first = signin.sign_in_verify(sign_in_id=row.public_id, code=row.test_code, now=NOW)
    double = signin.sign_in_verify(
        sign_in_id=row.public_id, code=row.test_code, now=NOW + timedelta(seconds=2)
    )

    assert first == double == camille
    with pytest.raises(signin.SignInCodeUsed):
        signin.sign_in_verify(
            sign_in_id=row.public_id, code=row.test_code, now=NOW + timedelta(minutes=2)
        )


def test_the_code_page_without_a_sign_in_goes_back_to_the_form(db):
    response = english().get("/portal/sign-in/code")

    assert response.status_code == 302 and response.url == "/portal/sign-in"


# --- limits ---------------------------------------------------------------------------------


def test_one_destination_gets_five_codes_an_hour(camille):
    client = english()
    for minute in range(5):
        with time_machine.travel(NOW + timedelta(minutes=minute), tick=False):
            assert ask_code(client, CAMILLE["email"]).status_code == 302

    with time_machine.travel(NOW + timedelta(minutes=6), tick=False):
        refused = ask_code(client, CAMILLE["email"].upper())
    with time_machine.travel(NOW + timedelta(minutes=61), tick=False):
        later = ask_code(client, CAMILLE["email"])

    assert refused.status_code == 429
    assert "Too many codes were sent to this email or number" in text_of(refused)
    assert later.status_code == 302
    assert SignInCode.objects.count() == 6
    assert OutgoingEmail.objects.filter(key__startswith="signin:").count() == 6


def test_one_address_asks_for_a_limited_number_of_codes_whatever_the_destinations(db, settings):
    settings.PORTAL_CODES_PER_IP_PER_HOUR = 3
    client = english()

    with time_machine.travel(NOW, tick=False):
        answers = [
            ask_code(client, f"someone{n}@example.com", REMOTE_ADDR="198.51.100.4").status_code
            for n in range(4)
        ]
        elsewhere = ask_code(client, "someone9@example.com", REMOTE_ADDR="198.51.100.5")

    assert answers == [302, 302, 302, 429]
    assert elsewhere.status_code == 302


def test_a_new_code_waits_thirty_seconds_then_replaces_the_first(camille):
    client = english()
    with time_machine.travel(NOW, tick=False):
        ask_code(client, CAMILLE["email"])
    first = latest_sign_in()

    with time_machine.travel(NOW + timedelta(seconds=10), tick=False):
        early = client.post("/portal/sign-in/code", {"action": "resend"})
    with time_machine.travel(NOW + timedelta(seconds=31), tick=False):
        resent = client.post("/portal/sign-in/code", {"action": "resend"})
        second = latest_sign_in()
        type_code(client, second.test_code)

    assert early.status_code == 429
    assert "Please wait 20 seconds before asking for a new code." in text_of(early)
    assert resent.status_code == 302 and second.pk != first.pk
    assert second.customer == camille and second.destination == first.destination
    assert OutgoingEmail.objects.filter(key=f"signin:{second.public_id}").exists()
    assert signed_in(client) == camille.pk


# --- sessions -------------------------------------------------------------------------------


def test_a_session_ends_after_thirty_idle_minutes(camille):
    client = english()
    with time_machine.travel(NOW, tick=False):  # the session row expires from then
        sign_in(client, camille, when=NOW)

    with time_machine.travel(NOW + timedelta(minutes=29), tick=False):
        kept = client.get("/portal/")
    with time_machine.travel(NOW + timedelta(minutes=29 + 31), tick=False):
        ended = client.get("/portal/")

    assert kept.status_code == 200
    assert ended.status_code == 302 and ended.url == "/portal/sign-in?next=%2Fportal%2F"
    assert signed_in(client) is None


def test_a_session_ends_twelve_hours_after_signing_in_however_active(camille):
    client = english()
    with time_machine.travel(NOW, tick=False):  # the session row expires from then
        sign_in(client, camille, when=NOW)

    statuses = []
    at = NOW
    while at < NOW + timedelta(hours=12, minutes=20):
        at += timedelta(minutes=20)
        with time_machine.travel(at, tick=False):
            statuses.append((at - NOW, client.get("/portal/").status_code))

    assert all(code == 200 for elapsed, code in statuses if elapsed <= timedelta(hours=12))
    assert statuses[-1][1] == 302


def test_signing_out_ends_the_session_and_needs_a_post(camille):
    client = english()
    with time_machine.travel(NOW, tick=False):  # the session row expires from then
        sign_in(client, camille, when=NOW)

    with time_machine.travel(NOW, tick=False):
        assert client.get("/portal/sign-out").status_code == 405
        out = client.post("/portal/sign-out")
        after = client.get("/portal/")

    assert out.status_code == 302 and out.url == "/portal/sign-in"
    assert after.status_code == 302 and signed_in(client) is None


@pytest.mark.parametrize(
    ("asked", "landing"),
    [
        ("/portal/receipts", "/portal/receipts"),
        ("https://evil.example/portal/", "/portal/"),
        ("//evil.example/portal/", "/portal/"),
        ("javascript:alert(1)", "/portal/"),
    ],
)
@time_machine.travel(NOW, tick=False)
def test_after_signing_in_the_customer_goes_back_only_to_a_page_of_this_site(
    camille, asked, landing
):
    client = english()
    client.post("/portal/sign-in", {"identifier": CAMILLE["email"], "mode": "test", "next": asked})

    done = type_code(client, latest_sign_in().test_code)

    assert done.status_code == 302 and done.url == landing


@time_machine.travel(NOW, tick=False)
def test_a_page_asked_for_before_signing_in_opens_after(camille, shop):
    client = english()
    first = client.get("/portal/receipts")
    form = client.get(first.url + "&mode=test")
    assert 'name="next" value="/portal/receipts"' in text_of(form)

    client.post(
        "/portal/sign-in",
        {"identifier": CAMILLE["email"], "mode": "test", "next": "/portal/receipts"},
    )
    done = type_code(client, latest_sign_in().test_code)

    assert done.url == "/portal/receipts"


@time_machine.travel(NOW, tick=False)
def test_the_test_mode_form_says_so(db):
    page = text_of(english().get("/portal/sign-in?mode=test"))

    assert "Test mode: no real money moves." in page
    assert 'name="mode" value="test"' in page
    assert "Test mode: no real money moves." not in text_of(english().get("/portal/sign-in"))


# --- signed links ---------------------------------------------------------------------------


def path_of(url: str) -> str:
    assert url.startswith(BASE)
    return url.removeprefix(BASE)


@pytest.mark.parametrize(
    ("section", "page"),
    [
        ("", "/portal/plans/{id}"),
        ("card", "/portal/plans/{id}/card"),
        ("pay", "/portal/plans/{id}/pay"),
        ("receipts", "/portal/plans/{id}#receipts"),
    ],
)
def test_a_valid_link_signs_the_customer_in_on_the_page_it_names(shop, section, page):
    payment = plan_for(shop, CAMILLE, when=BOUGHT)
    with time_machine.travel(NOW, tick=False):
        url = links.plan_url(payment.public_id, section=section)
    client = english()

    with time_machine.travel(NOW + timedelta(days=29), tick=False):
        response = client.get(path_of(url))

    assert re.fullmatch(rf"{BASE}/portal/link/[^/?#]+", url)
    assert response.status_code == 302
    assert response.url == page.format(id=payment.public_id)
    assert signed_in(client) == payment.customer_id


def test_a_tampered_link_opens_a_page_to_sign_in_by_code(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT)
    with time_machine.travel(NOW, tick=False):
        token = path_of(links.plan_url(payment.public_id)).rsplit("/", 1)[1]
        forged = signing.dumps([payment.public_id, ""], salt="another.salt")
        client = english()
        answers = [
            client.get(f"/portal/link/{bad}")
            for bad in (token[:-2] + "xx", token[1:], forged, "nonsense")
        ]

    for answer in answers:
        assert answer.status_code == 400
        assert "This link does not work" in text_of(answer)
        assert 'href="/portal/sign-in"' in text_of(answer)
    assert signed_in(client) is None


def test_a_link_to_a_plan_that_is_not_accepted_signs_nobody_in(shop):
    payment = payment_create_for(shop, customer=dict(CAMILLE))
    with time_machine.travel(NOW, tick=False):
        client = english()
        response = client.get(path_of(links.plan_url(payment.public_id)))

    assert response.status_code == 400 and signed_in(client) is None


def test_an_expired_link_offers_a_new_one_by_email_that_works(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT, locale="en")
    with time_machine.travel(NOW, tick=False):
        old = path_of(links.plan_url(payment.public_id, section="card"))
    client = english()
    later = NOW + timedelta(days=31)

    with time_machine.travel(later, tick=False):
        page = client.get(old)
        sent = client.post(old)
        again = client.post(old)  # a double click: one email

    assert page.status_code == 410 and signed_in(client) is None
    assert "This link has expired" in text_of(page) and "Email me a new link" in text_of(page)
    assert "camille" not in text_of(page).lower()  # the email on file is not shown
    assert sent.status_code == 200 and "Check your emails" in text_of(sent)
    assert again.status_code == 200
    [email] = OutgoingEmail.objects.filter(key__startswith=f"portal-link:{payment.public_id}:")
    assert email.to == CAMILLE["email"] and email.language == "en"
    text, html = email_content(email)
    fresh = re.search(rf"{BASE}/portal/link/\S+", text).group(0)
    assert fresh in html and shop.merchant.legal_name in text
    with time_machine.travel(later + timedelta(minutes=5), tick=False):
        opened = client.get(path_of(fresh))
    assert opened.url == f"/portal/plans/{payment.public_id}/card"
    assert signed_in(client) == payment.customer_id


def test_a_tampered_link_cannot_ask_for_a_new_one(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT)
    with time_machine.travel(NOW, tick=False):
        response = english().post(f"/portal/link/{signing.dumps([payment.public_id, ''])}")

    assert response.status_code == 400
    assert not OutgoingEmail.objects.filter(key__startswith="portal-link:").exists()


def test_portal_link_read_tells_expired_from_tampered(db):
    with time_machine.travel(NOW, tick=False):
        token = path_of(links.plan_url("payment_abc", section="pay")).rsplit("/", 1)[1]
        assert links.portal_link_read(token) == ("payment_abc", "pay")
    with time_machine.travel(NOW + timedelta(days=30, seconds=1), tick=False):
        with pytest.raises(links.LinkExpired) as expired:
            links.portal_link_read(token)
        with pytest.raises(links.LinkInvalid):
            links.portal_link_read(token.replace(":", ";", 1))
    assert (expired.value.payment_id, expired.value.section) == ("payment_abc", "pay")
    with pytest.raises(ValueError):
        links.plan_url("payment_abc", section="admin")


def old_plan_link(payment_id: str) -> str:
    token = signing.dumps(payment_id, salt=links.PLAN_SALT, compress=False)
    return f"/plan/{payment_id}?t={token}"


def test_an_old_plan_link_signs_in_and_opens_the_portal_plan(shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT)
    with time_machine.travel(NOW, tick=False):
        old = old_plan_link(payment.public_id)
    client = english()

    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        response = client.get(old)
        page = client.get(response.url)

    assert response.status_code == 302 and response.url == f"/portal/plans/{payment.public_id}"
    assert page.status_code == 200 and signed_in(client) == payment.customer_id


def test_an_old_plan_link_that_is_expired_or_wrong_asks_for_a_new_one(shop, other_shop):
    payment = plan_for(shop, CAMILLE, when=BOUGHT)
    theirs = plan_for(other_shop, DOMINIQUE, when=BOUGHT)
    with time_machine.travel(NOW, tick=False):
        old = old_plan_link(payment.public_id)
    client = english()

    with time_machine.travel(NOW + timedelta(days=40), tick=False):
        expired = client.get(old)
        sent = client.post(old)
        swapped = client.get(old.replace(payment.public_id, theirs.public_id, 1))
        bare = client.get(f"/plan/{payment.public_id}")

    assert expired.status_code == 410 and "Email me a new link" in text_of(expired)
    assert sent.status_code == 200
    assert OutgoingEmail.objects.get(key__startswith="portal-link:").to == CAMILLE["email"]
    assert swapped.status_code == bare.status_code == 400
    assert signed_in(client) is None


def test_a_signed_in_customer_asking_for_the_form_goes_to_their_plans(camille):
    client = english()
    with time_machine.travel(NOW, tick=False):  # the session row expires from then
        sign_in(client, camille, when=NOW)

    with time_machine.travel(NOW, tick=False):
        response = client.get("/portal/sign-in?next=/portal/receipts")

    assert response.status_code == 302 and response.url == "/portal/receipts"
