"""Creating an account with a mobile number: a code by SMS to any EU mobile (landlines,
foreign and malformed numbers refused), wrong codes counted and locked, the limits shared
with signing in, one account per verified number and mode, and the pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from apps.payments.models import Customer
from apps.schedules.models import SignInCode
from apps.schedules.portal import signin, signup
from apps.schedules.portal.session import CUSTOMER_KEY
from apps.verification.models import SmsMessage

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
PHONE = "+33611223344"


def english() -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE="en")


def ask_code(client: Client, phone: str, *, test: bool = True):
    return client.post("/portal/sign-up", {"phone": phone, **({"mode": "test"} if test else {})})


def type_code(client: Client, code: str):
    return client.post("/portal/sign-up/code", {"action": "verify", "code": code})


def latest() -> SignInCode:
    return SignInCode.objects.latest("created_at", "pk")


def sms_code(row: SignInCode) -> str:
    sms = SmsMessage.objects.get(key=f"signin:{row.public_id}")
    return re.search(r"\b(\d{6})\b", sms.text).group(1)


def start(phone: str = PHONE, *, livemode: bool = False, ip: str | None = None, now=NOW):
    return signup.sign_up_start(
        phone=phone, livemode=livemode, language="en", now=now, ip_address=ip
    )


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def verified_customer(phone: str = PHONE, *, livemode: bool = False, **fields) -> Customer:
    return Customer.objects.create(
        livemode=livemode,
        phone=phone,
        phone_verified_at=NOW - timedelta(days=30),
        created_at=NOW - timedelta(days=30),
        updated_at=NOW - timedelta(days=30),
        **fields,
    )


# --- the code ---------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_a_new_number_gets_a_code_by_sms_and_the_code_creates_a_signed_in_customer():
    client = english()

    asked = ask_code(client, "06 11 22 33 44")
    row = latest()
    page = client.get("/portal/sign-up/code")
    done = type_code(client, sms_code(row))

    assert asked.status_code == 302 and asked.url == "/portal/sign-up/code"
    assert row.purpose == "sign_up" and row.channel == "sms" and row.destination == PHONE
    assert row.customer is None and not row.livemode
    sms = SmsMessage.objects.get(key=f"signin:{row.public_id}")
    assert sms.phone == PHONE and sms.status == "not_sent_test_mode"
    assert "+33 6 •• •• •• 44" in page.content.decode()
    assert row.test_code in page.content.decode()  # test mode shows the code
    assert done.status_code == 302 and done.url == "/portal/profile"
    customer = Customer.objects.get()
    assert client.session[CUSTOMER_KEY] == customer.pk
    assert customer.phone == PHONE and customer.phone_verified_at == NOW
    assert customer.email == "" and not customer.livemode
    assert SignInCode.objects.get(pk=row.pk).customer == customer


@time_machine.travel(NOW, tick=False)
def test_a_live_sign_up_code_is_sent_masked_and_never_kept_in_clear():
    row = start(livemode=True)

    sms = SmsMessage.objects.get(key=f"signin:{row.public_id}")
    assert row.test_code == "" and row.livemode
    assert sms.status == "queued" and sms.sealed_text
    assert not re.search(r"\d{6}", sms.text)


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("01 23 45 67 89", "not_mobile"),  # a French landline
        ("+1 202 555 0143", "foreign"),
        ("+41 78 123 45 67", "foreign"),  # Switzerland: not in the Union
        ("06 12", "invalid"),
        ("hello", "invalid"),
        ("", "invalid"),
        ("0" * 60, "invalid"),
    ],
)
def test_landlines_foreign_and_malformed_numbers_are_refused_and_nothing_is_sent(typed, reason):
    with pytest.raises(signup.InvalidSignUpPhone) as refused:
        start(typed)

    assert refused.value.reason == reason
    assert not SignInCode.objects.exists() and not SmsMessage.objects.exists()


@pytest.mark.parametrize(
    ("typed", "e164"),
    [("+32 470 12 34 56", "+32470123456"), ("+262 692 12 34 56", "+262692123456")],
)
def test_mobiles_of_other_eu_countries_and_overseas_france_are_accepted(typed, e164):
    assert signup.sign_up_phone_normalise(typed) == e164


def test_the_page_says_why_a_number_is_refused():
    response = ask_code(english(), "01 23 45 67 89")

    assert response.status_code == 400
    assert "This number is not a mobile" in response.content.decode()


@time_machine.travel(NOW, tick=False)
def test_a_wrong_code_is_refused_and_counted():
    client = english()
    ask_code(client, PHONE)
    row = latest()

    response = type_code(client, wrong(row.test_code))

    assert response.status_code == 422
    assert "4 attempts left" in response.content.decode()
    assert SignInCode.objects.get(pk=row.pk).attempts == 1
    assert CUSTOMER_KEY not in client.session and not Customer.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_the_code_locks_after_the_maximum_of_wrong_codes_and_then_refuses_the_right_one(
    settings,
):
    row = start()

    for _attempt in range(settings.PORTAL_CODE_MAX_ATTEMPTS - 1):
        with pytest.raises(signin.SignInCodeWrong):
            signup.sign_up_verify(sign_in_id=row.public_id, code=wrong(row.test_code), now=NOW)
    with pytest.raises(signin.SignInLocked):
        signup.sign_up_verify(sign_in_id=row.public_id, code=wrong(row.test_code), now=NOW)
    with pytest.raises(signin.SignInLocked):
        signup.sign_up_verify(sign_in_id=row.public_id, code=row.test_code, now=NOW)

    row.refresh_from_db()
    assert row.locked_at == NOW and row.attempts == settings.PORTAL_CODE_MAX_ATTEMPTS
    assert not Customer.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_an_expired_code_is_refused():
    row = start()

    with pytest.raises(signin.SignInCodeExpired):
        signup.sign_up_verify(
            sign_in_id=row.public_id, code=row.test_code, now=NOW + timedelta(minutes=11)
        )

    assert not Customer.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_a_locked_code_on_the_page_offers_to_start_again(settings):
    settings.PORTAL_CODE_MAX_ATTEMPTS = 1
    client = english()
    ask_code(client, PHONE)

    response = type_code(client, wrong(latest().test_code))

    assert response.status_code == 429
    assert 'href="/portal/sign-up?mode=test"' in response.content.decode()


# --- limits -----------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_a_number_gets_a_limited_number_of_codes_an_hour_sign_in_codes_included(settings):
    settings.PORTAL_CODES_PER_DESTINATION_PER_HOUR = 3
    signin.sign_in_start(identifier=PHONE, livemode=False, language="en", now=NOW)
    start()
    start(now=NOW + timedelta(minutes=1))

    with pytest.raises(signin.TooManyCodes):
        start(now=NOW + timedelta(minutes=2))
    later = start(now=NOW + timedelta(hours=1, minutes=1))

    assert later.purpose == "sign_up"
    assert SignInCode.objects.count() == 4


@time_machine.travel(NOW, tick=False)
def test_one_address_asks_for_a_limited_number_of_sign_up_codes(settings):
    settings.PORTAL_CODES_PER_IP_PER_HOUR = 2
    start("+33611111111", ip="203.0.113.9")
    start("+33622222222", ip="203.0.113.9")

    with pytest.raises(signin.TooManyCodesFromAddress):
        start("+33633333333", ip="203.0.113.9")
    start("+33633333333", ip="203.0.113.10")

    assert SmsMessage.objects.count() == 3


@time_machine.travel(NOW, tick=False)
def test_a_new_code_waits_for_the_resend_delay_and_keeps_the_purpose():
    client = english()
    ask_code(client, PHONE)
    first = latest()

    too_soon = client.post("/portal/sign-up/code", {"action": "resend"})
    with time_machine.travel(NOW + timedelta(seconds=31), tick=False):
        resent = client.post("/portal/sign-up/code", {"action": "resend"})
        second = latest()
        done = type_code(client, second.test_code)

    assert too_soon.status_code == 429
    assert resent.status_code == 302 and second.pk != first.pk
    assert second.purpose == "sign_up" and second.destination == PHONE
    assert done.status_code == 302 and Customer.objects.count() == 1


# --- one account per number -------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_a_number_one_customer_already_verified_signs_that_customer_in_without_a_duplicate():
    camille = verified_customer(email="camille@example.com", first_name="Camille")
    client = english()

    ask_code(client, "06 11 22 33 44")
    row = latest()
    type_code(client, sms_code(row))

    assert row.customer == camille
    assert Customer.objects.count() == 1
    assert client.session[CUSTOMER_KEY] == camille.pk


@time_machine.travel(NOW, tick=False)
def test_a_number_two_customers_share_or_nobody_verified_creates_a_new_customer():
    unverified = Customer.objects.create(
        livemode=False, phone=PHONE, created_at=NOW, updated_at=NOW
    )
    row = start()

    customer = signup.sign_up_verify(sign_in_id=row.public_id, code=row.test_code, now=NOW)

    assert customer.pk != unverified.pk and customer.phone_verified_at == NOW
    assert Customer.objects.count() == 2


@time_machine.travel(NOW, tick=False)
def test_the_same_code_typed_twice_signs_in_the_same_new_customer():
    row = start()

    first = signup.sign_up_verify(sign_in_id=row.public_id, code=row.test_code, now=NOW)
    again = signup.sign_up_verify(
        sign_in_id=row.public_id, code=row.test_code, now=NOW + timedelta(seconds=5)
    )

    assert first == again and Customer.objects.count() == 1


@time_machine.travel(NOW, tick=False)
def test_two_sign_ups_of_one_number_make_one_customer():
    one, two = start(), start(now=NOW + timedelta(seconds=1))

    first = signup.sign_up_verify(sign_in_id=one.public_id, code=one.test_code, now=NOW)
    second = signup.sign_up_verify(sign_in_id=two.public_id, code=two.test_code, now=NOW)

    assert first == second and Customer.objects.count() == 1


@time_machine.travel(NOW, tick=False)
def test_test_and_live_modes_are_separate_accounts():
    live = verified_customer(livemode=True, email="live@example.com")
    row = start(livemode=False)

    customer = signup.sign_up_verify(sign_in_id=row.public_id, code=row.test_code, now=NOW)

    assert row.customer is None  # the live customer is not this test-mode number's owner
    assert customer != live and not customer.livemode
    assert Customer.objects.filter(phone=PHONE).count() == 2


@time_machine.travel(NOW, tick=False)
def test_a_customer_who_signed_up_signs_in_later_by_phone():
    row = start()
    customer = signup.sign_up_verify(sign_in_id=row.public_id, code=row.test_code, now=NOW)

    later = NOW + timedelta(days=2)
    sign_in = signin.sign_in_start(
        identifier="06 11 22 33 44", livemode=False, language="en", now=later
    )

    assert sign_in.customer == customer and sign_in.purpose == "sign_in"
    assert SmsMessage.objects.filter(key=f"signin:{sign_in.public_id}").exists()
    assert signin.sign_in_verify(sign_in_id=sign_in.public_id, code=sign_in.test_code, now=later)


@time_machine.travel(NOW, tick=False)
def test_a_sign_up_code_cannot_be_used_on_the_sign_in_page_nor_a_sign_in_code_here():
    customer = verified_customer()
    up = start()
    sign_in = signin.sign_in_start(identifier=PHONE, livemode=False, language="en", now=NOW)

    with pytest.raises(signin.SignInNotFound):
        signin.sign_in_verify(sign_in_id=up.public_id, code=up.test_code, now=NOW)
    with pytest.raises(signin.SignInNotFound):
        signup.sign_up_verify(sign_in_id=sign_in.public_id, code=sign_in.test_code, now=NOW)
    assert (
        signin.sign_in_verify(sign_in_id=sign_in.public_id, code=sign_in.test_code, now=NOW)
        == customer
    )


def test_the_code_page_without_a_sign_up_goes_back_to_the_form():
    response = english().get("/portal/sign-up/code")

    assert response.status_code == 302 and response.url == "/portal/sign-up"


def test_the_sign_in_page_links_to_sign_up_in_the_same_mode():
    page = english().get("/portal/sign-in?mode=test").content.decode()

    assert 'href="/portal/sign-up?mode=test"' in page
