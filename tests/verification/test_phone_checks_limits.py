"""Phone checks: the per-address limit, and the warning left when a check is brute-forced."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from django.utils import timezone, translation

from apps.verification import services
from apps.verification.errors import TooManyAttempts, TooManyChecksFromAddress, WrongCode
from apps.verification.models import PhoneCheck, SmsMessage


@pytest.fixture(autouse=True)
def _english():
    """Messages are checked in English (the site's default language is French)."""
    with translation.override("en"):
        yield


START = "2026-11-22 10:00:00+00:00"
ADDRESS = "203.0.113.7"
PHONES = [f"+3361234567{digit}" for digit in range(10)]


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.PHONE_CHECKS_PER_IP_PER_HOUR = 3
    settings.PHONE_CODE_MAX_ATTEMPTS = 5
    settings.PHONE_CODE_TTL_MINUTES = 10


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


def start(phone: str, *, ip_address: str | None = ADDRESS, livemode=False) -> PhoneCheck:
    return services.phone_check_start(
        phone=phone,
        livemode=livemode,
        purpose="checkout",
        subject="payment_abc",
        language="en",
        now=timezone.now(),
        ip_address=ip_address,
    )


def test_the_address_a_check_came_from_is_kept(db, clock):
    assert start(PHONES[0]).ip_address == ADDRESS
    assert start(PHONES[1], ip_address="2001:db8::1").ip_address == "2001:db8::1"
    assert start(PHONES[2], ip_address=None).ip_address is None


def test_an_address_that_started_too_many_checks_in_an_hour_is_refused(db, clock):
    for phone in PHONES[:2]:
        start(phone)
    start(PHONES[2], livemode=True)  # both modes count: one address, one budget

    with pytest.raises(TooManyChecksFromAddress) as refused:
        start(PHONES[3])

    assert refused.value.code == "phone_too_many_checks_from_address"
    assert refused.value.http_status == 429
    assert refused.value.message == (
        "Too many verification codes were requested from your connection. "
        "Please try again in an hour."
    )
    assert PhoneCheck.objects.count() == 3
    assert SmsMessage.objects.count() == 3  # no code sent for the refused one


def test_other_addresses_and_requests_without_an_address_are_not_held_back(db, clock):
    for phone in PHONES[:3]:
        start(phone)

    start(PHONES[3], ip_address="198.51.100.20")
    for phone in PHONES[4:8]:
        start(phone, ip_address=None)

    assert PhoneCheck.objects.count() == 8


def test_the_address_may_start_checks_again_an_hour_later(db, clock):
    for phone in PHONES[:3]:
        start(phone)
    clock.shift(timedelta(minutes=59))
    with pytest.raises(TooManyChecksFromAddress):
        start(PHONES[3])

    clock.shift(timedelta(minutes=1))

    assert start(PHONES[3]).ip_address == ADDRESS


def test_the_limit_comes_from_the_settings(db, clock, settings):
    settings.PHONE_CHECKS_PER_IP_PER_HOUR = 5
    for phone in PHONES[:5]:
        start(phone)

    with pytest.raises(TooManyChecksFromAddress):
        start(PHONES[5])


def wrong_code(check: PhoneCheck) -> str:
    return f"{(int(check.test_code) + 1) % 1_000_000:06d}"


def test_a_check_locked_by_wrong_codes_leaves_a_warning_naming_it(db, clock, caplog):
    check = start(PHONES[0])
    caplog.set_level(logging.WARNING, logger="apps.verification.services")
    for _ in range(4):
        with pytest.raises(WrongCode):
            services.phone_check_verify(
                check_id=check.public_id, code=wrong_code(check), now=timezone.now()
            )
    assert not caplog.records  # wrong codes alone are not alarming

    with pytest.raises(TooManyAttempts):
        services.phone_check_verify(
            check_id=check.public_id,
            code=wrong_code(check),
            now=timezone.now(),
            ip_address="198.51.100.99",
        )

    [warning] = caplog.records
    text = warning.getMessage()
    assert warning.levelno == logging.WARNING
    assert check.public_id in text
    assert "+33 6 •• •• •• 70" in text
    assert PHONES[0] not in text
    assert not re.search(r"6\s?12\s?34\s?56", text)  # no unmasked digits
    assert ADDRESS in text
    assert "198.51.100.99" in text


def test_a_locked_check_warns_once(db, clock, caplog):
    check = start(PHONES[0])
    caplog.set_level(logging.WARNING, logger="apps.verification.services")

    for _ in range(8):
        with pytest.raises((WrongCode, TooManyAttempts)):
            services.phone_check_verify(
                check_id=check.public_id, code=wrong_code(check), now=timezone.now()
            )

    assert len(caplog.records) == 1
    assert "unknown address" in caplog.records[0].getMessage()  # this code came from nowhere known
