"""The profile page: name, birth date, email and postal address, prefilled, checked (a birth
date in the future, missing fields), saved, then on to the card. A new email is saved only
once the code sent to it is typed; an email another customer has gets no code, its owner a
notice, and the page says the same (nobody learns who is a customer)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from apps.common.emails import email_content
from apps.common.models import OutgoingEmail
from apps.payments.models import Customer
from apps.schedules.models import SignInCode
from apps.schedules.portal import signin, signup
from tests.portal.helpers import sign_in

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
FORM = {
    "first_name": "Léa",
    "last_name": "Bernard",
    "birth_date": "1990-04-12",
    "email": "Lea.Bernard@Example.com",
    "line1": "12 rue de la Paix",
    "line2": "",
    "postal_code": "75002",
    "city": "Paris",
    "country": "FR",
}


def customer_signed_up(*, livemode: bool = False, **fields) -> Customer:
    return Customer.objects.create(
        livemode=livemode,
        phone="+33611223344",
        phone_verified_at=NOW,
        created_at=NOW,
        updated_at=NOW,
        **fields,
    )


def signed_in_client(customer: Customer) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    sign_in(client, customer, when=NOW)
    return client


def post(client: Client, **changes):
    return client.post("/portal/profile", {**FORM, **changes})


def type_code(client: Client, code: str):
    return client.post("/portal/profile/email", {"action": "verify", "code": code})


def latest_check() -> SignInCode:
    return SignInCode.objects.filter(purpose=SignInCode.Purpose.EMAIL).latest("created_at", "pk")


def code_emailed(row: SignInCode) -> str:
    text, _html = email_content(OutgoingEmail.objects.get(key=f"email-check:{row.public_id}"))
    return re.search(r"\b(\d{6})\b", text).group(1)


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


@time_machine.travel(NOW, tick=False)
def test_the_profile_is_saved_and_a_new_email_waits_for_the_code_sent_to_it():
    customer = customer_signed_up()
    client = signed_in_client(customer)

    response = post(client)

    assert response.status_code == 302 and response.url == "/portal/profile/email"
    customer.refresh_from_db()
    assert customer.first_name == "Léa" and customer.last_name == "Bernard"
    assert customer.birth_date == date(1990, 4, 12)
    assert customer.address == {
        "line1": "12 rue de la Paix",
        "line2": "",
        "postal_code": "75002",
        "city": "Paris",
        "country": "FR",
    }
    assert customer.updated_at == NOW
    assert customer.phone == "+33611223344"  # untouched
    assert customer.email == ""  # not before the code
    row = latest_check()
    assert row.customer == customer and row.destination == "lea.bernard@example.com"
    assert row.channel == "email" and not row.livemode
    email = OutgoingEmail.objects.get(key=f"email-check:{row.public_id}")
    assert email.to == "lea.bernard@example.com"
    text, _html = email_content(email)
    assert f"Your code to confirm this email on Tranche is {row.test_code}" in text

    page = client.get("/portal/profile/email")

    html = page.content.decode()
    assert page.status_code == 200 and "no-store" in page.headers["Cache-Control"]
    assert "We sent a 6-digit code to l•••@example.com." in html
    assert "Use another email" in html and 'value="resend"' in html


@time_machine.travel(NOW, tick=False)
def test_the_right_code_saves_the_email_lower_cased_and_goes_to_the_card():
    customer = customer_signed_up()
    client = signed_in_client(customer)
    post(client)
    code = code_emailed(latest_check())

    response = type_code(client, code)

    assert response.status_code == 302 and response.url == "/portal/card/"
    customer.refresh_from_db()
    assert customer.email == "lea.bernard@example.com"
    card_page = client.get("/portal/card/")
    assert "Your email is confirmed." in card_page.content.decode()
    # The check is over: the page goes back to the profile.
    assert client.get("/portal/profile/email").url == "/portal/profile"


@time_machine.travel(NOW, tick=False)
def test_a_wrong_code_is_counted_and_saves_nothing_then_the_code_locks():
    customer = customer_signed_up()
    client = signed_in_client(customer)
    post(client)
    row = latest_check()
    wrong = other_code(code_emailed(row))

    first = type_code(client, wrong)

    assert first.status_code == 422
    assert "This code is not right. You have 4 attempts left." in first.content.decode()
    for _attempt in range(4):
        last = type_code(client, wrong)
    assert last.status_code == 429
    assert "Too many wrong codes" in last.content.decode()
    refused = type_code(client, code_emailed(row))  # the right code, too late
    assert refused.status_code == 429
    customer.refresh_from_db()
    assert customer.email == ""
    row.refresh_from_db()
    assert row.locked_at == NOW and row.attempts == 5


@time_machine.travel(NOW, tick=False)
def test_an_expired_code_saves_nothing():
    customer = customer_signed_up()
    client = signed_in_client(customer)
    post(client)
    code = code_emailed(latest_check())

    with time_machine.travel(NOW + timedelta(minutes=10), tick=False):
        response = type_code(client, code)

    assert response.status_code == 410
    assert "This code has expired" in response.content.decode()
    customer.refresh_from_db()
    assert customer.email == ""


@time_machine.travel(NOW, tick=False)
def test_a_new_code_is_sent_after_the_resend_delay_and_only_it_works():
    customer = customer_signed_up()
    client = signed_in_client(customer)
    post(client)
    first = latest_check()

    too_soon = client.post("/portal/profile/email", {"action": "resend"})
    assert too_soon.status_code == 429 and "Please wait 30 seconds" in too_soon.content.decode()
    with time_machine.travel(NOW + timedelta(seconds=30), tick=False):
        resent = client.post("/portal/profile/email", {"action": "resend"})
        second = latest_check()
        stale = type_code(client, code_emailed(first))
        right = type_code(client, code_emailed(second))

    assert resent.status_code == 302 and second.pk != first.pk
    assert second.destination == first.destination and second.customer == customer
    assert stale.status_code == 422  # the page now waits for the new code
    assert right.status_code == 302
    customer.refresh_from_db()
    assert customer.email == "lea.bernard@example.com"


@time_machine.travel(NOW, tick=False)
def test_the_codes_an_email_may_receive_in_an_hour_are_limited():
    customer = customer_signed_up()
    client = signed_in_client(customer)
    for minute in range(5):
        with time_machine.travel(NOW + timedelta(minutes=minute), tick=False):
            assert post(client).status_code == 302

    with time_machine.travel(NOW + timedelta(minutes=6), tick=False):
        refused = post(client)

    assert refused.status_code == 429
    assert "Too many codes were sent" in refused.content.decode()
    assert SignInCode.objects.filter(destination="lea.bernard@example.com").count() == 5
    customer.refresh_from_db()
    assert customer.first_name == "Léa" and customer.email == ""  # the rest is saved


@time_machine.travel(NOW, tick=False)
def test_the_page_is_prefilled_with_what_the_customer_gave_and_france_by_default():
    customer = customer_signed_up(
        first_name="Camille", email="camille@example.com", birth_date=date(1985, 1, 2)
    )

    page = signed_in_client(customer).get("/portal/profile")

    html = page.content.decode()
    assert page.status_code == 200
    assert 'value="Camille"' in html and 'value="camille@example.com"' in html
    assert 'value="1985-01-02"' in html
    assert '<option value="FR" selected>' in html
    assert "+33 6 •• •• •• 44" in html
    assert "no-store" in page.headers["Cache-Control"]


@time_machine.travel(NOW, tick=False)
def test_a_checkout_customer_completes_the_address_keeping_their_email():
    customer = Customer.objects.create(
        livemode=False,
        email="camille@example.com",
        first_name="Camille",
        last_name="Martin",
        created_at=NOW,
        updated_at=NOW,
    )
    client = signed_in_client(customer)

    response = post(
        client,
        first_name="Camille",
        last_name="Martin",
        email="camille@example.com",
        line2="Bâtiment B",
        country="BE",
        postal_code="1000",
        city="Bruxelles",
    )

    customer.refresh_from_db()
    assert response.status_code == 302 and response.url == "/portal/card/"  # nothing to confirm
    assert customer.email == "camille@example.com"
    assert not SignInCode.objects.filter(purpose=SignInCode.Purpose.EMAIL).exists()
    assert customer.address["line2"] == "Bâtiment B" and customer.address["country"] == "BE"


@time_machine.travel(NOW, tick=False)
def test_an_email_another_customer_has_gets_the_same_page_no_code_and_its_owner_a_notice():
    owner = Customer.objects.create(
        livemode=False, email="lea.bernard@example.com", created_at=NOW, updated_at=NOW
    )
    customer = customer_signed_up()
    client = signed_in_client(customer)

    response = post(client)

    assert response.status_code == 302 and response.url == "/portal/profile/email"
    page = client.get("/portal/profile/email").content.decode()
    assert "We sent a 6-digit code to l•••@example.com." in page
    assert "Another Tranche account" not in page
    row = latest_check()
    assert row.code_hash == "" and row.customer == customer
    assert not OutgoingEmail.objects.filter(key=f"email-check:{row.public_id}").exists()
    notice = OutgoingEmail.objects.get(key=f"email-taken:{row.public_id}")
    assert notice.to == "lea.bernard@example.com"
    text, _html = email_content(notice)
    assert "Someone tried to add this email to a Tranche account." in text
    assert "/portal/sign-in?mode=test" in text
    assert not re.search(r"\b\d{6}\b", text)  # no code in it
    # Whatever is typed (even the code the test page shows) does not match.
    wrong = type_code(client, row.test_code)
    assert wrong.status_code == 422 and "This code is not right" in wrong.content.decode()
    customer.refresh_from_db()
    assert customer.email == "" and customer.first_name == "Léa"  # the rest is saved
    owner.refresh_from_db()
    assert owner.email == "lea.bernard@example.com"
    assert Customer.objects.filter(email="lea.bernard@example.com").count() == 1


@time_machine.travel(NOW, tick=False)
def test_the_owner_of_a_taken_email_gets_at_most_one_notice_an_hour():
    Customer.objects.create(
        livemode=False, email="lea.bernard@example.com", created_at=NOW, updated_at=NOW
    )
    customer = customer_signed_up()
    for minutes in (0, 59, 61):
        signup.email_check_start(
            customer=customer,
            email="Lea.Bernard@example.com",
            language="fr",
            now=NOW + timedelta(minutes=minutes),
        )

    notices = OutgoingEmail.objects.filter(key__startswith="email-taken:")
    assert notices.count() == 2
    assert SignInCode.objects.filter(purpose="email", code_hash="").count() == 3


@time_machine.travel(NOW, tick=False)
def test_an_email_taken_after_the_code_was_sent_is_not_saved():
    customer = customer_signed_up()
    client = signed_in_client(customer)
    post(client)
    code = code_emailed(latest_check())
    Customer.objects.create(
        livemode=False, email="lea.bernard@example.com", created_at=NOW, updated_at=NOW
    )

    response = type_code(client, code)

    assert response.status_code == 410
    assert "This code has expired" in response.content.decode()
    customer.refresh_from_db()
    assert customer.email == ""


@time_machine.travel(NOW, tick=False)
def test_another_customers_pending_code_cannot_be_used():
    victim_side = Customer.objects.create(
        livemode=False, phone="+33611223355", phone_verified_at=NOW, created_at=NOW, updated_at=NOW
    )
    victim_client = signed_in_client(victim_side)
    post(victim_client)
    row = latest_check()
    code = code_emailed(row)
    attacker = customer_signed_up()

    with pytest.raises(signin.SignInNotFound):
        signup.email_check_verify(customer=attacker, check_id=row.public_id, code=code, now=NOW)
    attacker_client = signed_in_client(attacker)
    session = attacker_client.session
    session["portal_email_check_id"] = row.public_id
    session.save()
    assert attacker_client.get("/portal/profile/email").url == "/portal/profile"
    assert type_code(attacker_client, code).url == "/portal/profile"

    attacker.refresh_from_db()
    row.refresh_from_db()
    assert attacker.email == "" and row.attempts == 0 and row.verified_at is None


@time_machine.travel(NOW, tick=False)
def test_the_service_saves_nothing_of_the_email_and_says_which_needs_a_code():
    customer = customer_signed_up(email="camille@example.com")

    assert signup.email_to_confirm(customer=customer, email=" Camille@Example.com ") == ""
    assert signup.email_to_confirm(customer=customer, email="New@Example.com") == (
        "new@example.com"
    )
    saved = signup.profile_update(
        customer=customer,
        profile=signup.Profile(
            first_name="Camille",
            last_name="Martin",
            birth_date=date(1990, 4, 12),
            email="new@example.com",
            line1="1 rue",
            line2="",
            postal_code="75001",
            city="Paris",
            country="FR",
        ),
        now=NOW,
    )
    assert saved.email == "camille@example.com"
    customer.refresh_from_db()
    assert customer.email == "camille@example.com" and customer.last_name == "Martin"


@time_machine.travel(NOW, tick=False)
def test_the_same_email_in_the_other_mode_is_free():
    Customer.objects.create(
        livemode=True, email="lea.bernard@example.com", created_at=NOW, updated_at=NOW
    )
    customer = customer_signed_up(livemode=False)

    client = signed_in_client(customer)
    post(client)
    row = latest_check()

    response = type_code(client, code_emailed(row))

    customer.refresh_from_db()
    assert row.code_hash != "" and not OutgoingEmail.objects.filter(key__startswith="email-taken")
    assert response.status_code == 302 and customer.email == "lea.bernard@example.com"


@time_machine.travel(NOW, tick=False)
def test_a_birth_date_in_the_future_is_refused():
    customer = customer_signed_up()

    response = post(signed_in_client(customer), birth_date="2026-11-24")

    assert response.status_code == 400
    assert "The birth date cannot be in the future." in response.content.decode()
    customer.refresh_from_db()
    assert customer.birth_date is None


@time_machine.travel(NOW, tick=False)
def test_missing_and_malformed_fields_are_named():
    customer = customer_signed_up()

    response = post(
        signed_in_client(customer),
        first_name="",
        birth_date="12/04/1990",
        email="not-an-email",
        line1="",
        city="",
        postal_code="",
        country="US",
    )

    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) == {
        "first_name",
        "birth_date",
        "email",
        "line1",
        "city",
        "postal_code",
        "country",
    }
    assert "Enter the date as YYYY-MM-DD." in response.content.decode()
    customer.refresh_from_db()
    assert customer.first_name == "" and customer.address == {}


def test_the_profile_needs_a_signed_in_customer():
    response = Client().get("/portal/profile")

    assert response.status_code == 302
    assert response.url.startswith("/portal/sign-in?next=")


@time_machine.travel(NOW, tick=False)
def test_the_service_refuses_a_country_outside_the_union():
    customer = customer_signed_up()
    profile = signup.Profile(
        first_name="Léa",
        last_name="Bernard",
        birth_date=date(1990, 4, 12),
        email="lea@example.com",
        line1="1 rue",
        line2="",
        postal_code="75001",
        city="Paris",
        country="CH",
    )

    with pytest.raises(signup.ProfileInvalid) as refused:
        signup.profile_update(customer=customer, profile=profile, now=NOW)

    assert set(refused.value.errors) == {"country"}
    customer.refresh_from_db()
    assert customer.first_name == ""


@time_machine.travel(NOW, tick=False)
def test_a_birth_date_of_today_in_paris_is_accepted_even_before_utc_midnight():
    late_evening = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)  # already Nov 24 in Paris
    customer = customer_signed_up()

    saved = signup.profile_update(
        customer=customer,
        profile=signup.Profile(
            first_name="Léa",
            last_name="Bernard",
            birth_date=date(2026, 11, 24),
            email="lea@example.com",
            line1="1 rue",
            line2="",
            postal_code="75001",
            city="Paris",
            country="FR",
        ),
        now=late_evening,
    )

    assert saved.birth_date == date(2026, 11, 24)
    assert saved.updated_at == late_evening
